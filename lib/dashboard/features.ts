// Feature (or neuron) dashboards over a dataset, as SAEDashboard and Neuronpedia make them: two
// passes over an activation source, every batch's math native (native/methods/feature_stats.h:
// the SAE's encoding, the streaming top k, histc, the intervals' samples), JS only streaming the
// batches and reading the result. The state stays k candidates (and I x s samples) per feature,
// whatever the dataset's size.
import { callSite, CallSite, failure, guard, settle, toTorchscopeError, TorchscopeError } from '../core/errors';
import { abortSignal, callback, checkOptions, instance, integer, integers, isRecord, optionKeys, positiveInteger, string } from '../core/validate';
import { Model } from '../model/model';
import { Tensor } from '../model/tensor';
import { binding } from '../native/addon';
import { NativeTensor } from '../native/binding';
import { cancellable } from '../native/signal';
import { Sae } from '../sae/sae';
import { NativeFeatureStats, NativeFeatureStatsResult, NativeLogitEffects } from './native';
import { ActivationBatch, ActivationSource } from './source';
import { DashboardExample, DashboardHistogram, DashboardLogits, FeatureDashboard } from './types';

/** The unembedding a feature's decoder row goes through: a model's module(s), or W_U itself. */
export type DashboardLogitsSource = Tensor | { model: Model; layer: string | string[] };

export interface DashboardOptions {
  /** Dashboards of this SAE's features (it encodes each batch); without one, of the activations' own channels. */
  sae?: Sae;
  /** The SAE's features. Default: all of them. */
  features?: number[];
  /** Without an SAE: the channels (neurons) of the activations. Default: all of them. */
  neurons?: number[];
  /** Top examples per feature. Default 20. */
  k?: number;
  /**
   * `[before, after]`: a top or sampled token sits at least `before` positions from its row's start
   * and `after` from its end, and its window is those positions around it (SAEDashboard's (5, 5)).
   * Default null: every position, the whole row as the window (Neuronpedia's runner).
   */
  buffer?: [number, number] | null;
  /** Equal-width intervals of [0, max]. Default 10. */
  intervals?: number;
  /** Tokens sampled per interval. Default 5. */
  intervalSize?: number;
  /** Bins of the activation histogram (and the logit histogram). Default 50. */
  histogramBins?: number;
  /**
   * The intervals' samples, reproducible anywhere: of an interval's tokens within the buffer, the
   * intervalSize whose z is smallest, z the (t + 1)-th output of SplitMix64 seeded with `seed`
   * for the token's flat index t = row * contextSize + position (z = seed + (t + 1) *
   * 0x9E3779B97F4A7C15 mod 2^64; z = (z ^ z >>> 30) * 0xBF58476D1CE4E5B9; z = (z ^ z >>> 27) *
   * 0x94D049BB133111EB; z ^= z >>> 31; unsigned): a uniform sample without replacement. Default 0.
   */
  seed?: number;
  /**
   * SAEs only: each feature's decoder row through the unembedding. A Tensor is W_U [d_out, vocab]
   * (SAEDashboard's W_dec @ W_U, no final norm); { model, layer } applies the model's module (with
   * its bias, if it has one), or modules in order (['transformer.ln_f', 'lm_head'] normalizes
   * first, as directLogitEffects does).
   */
  logits?: DashboardLogitsSource;
  /** Aborts between batches (ABORTED). */
  signal?: AbortSignal;
  onProgress?: (progress: DashboardProgress) => void;
}

/** After each batch: which pass, the batches and rows read in it so far. */
export interface DashboardProgress {
  pass: 1 | 2;
  batches: number;
  rows: number;
}

export const DASHBOARD_DEFAULTS = { k: 20, buffer: null, intervals: 10, intervalSize: 5, histogramBins: 50, seed: 0, logitRows: 10 } as const;

const OPTION_KEYS = optionKeys<DashboardOptions>({
  sae: true,
  features: true,
  neurons: true,
  k: true,
  buffer: true,
  intervals: true,
  intervalSize: true,
  histogramBins: true,
  seed: true,
  logits: true,
  signal: true,
  onProgress: true,
});

/** Decoder rows through a model's head at once: [chunk, vocab] float32 stays well under memory. */
const LOGIT_CHUNK = 256;

interface Settings {
  sae?: Sae;
  features?: number[];
  k: number;
  buffer: [number, number] | null;
  intervals: number;
  intervalSize: number;
  bins: number;
  seed: number;
  logits?: DashboardLogitsSource;
  signal?: AbortSignal;
  onProgress?: (progress: DashboardProgress) => void;
}

function distinct(values: number[], name: string, site: CallSite): number[] {
  if (new Set(values).size !== values.length) throw failure('INVALID_ARGUMENT', `${name} must be distinct`, site);
  return values;
}

function settings(source: ActivationSource, given: DashboardOptions | undefined, site: CallSite): Settings {
  const options = checkOptions(given, OPTION_KEYS, 'dashboard.features', site);
  if (!isRecord(source) || typeof source.batches !== 'function')
    throw failure('INVALID_ARGUMENT', 'dashboard.features: source must be an ActivationSource ({ contextSize, batches() })', site);
  const context = positiveInteger(source.contextSize, 'source.contextSize', site);
  const sae = options.sae === undefined ? undefined : instance(options.sae, 'sae', Sae, site);
  let features: number[] | undefined;
  if (sae) {
    if (options.neurons !== undefined) throw failure('INVALID_ARGUMENT', "neurons are a layer's channels: with an SAE, name its features", site);
    features =
      options.features === undefined
        ? Array.from({ length: sae.dSae }, (_, i) => i)
        : integers(options.features, 'features', { min: 0, max: sae.dSae - 1 }, site);
    distinct(features, 'features', site);
  } else {
    if (options.features !== undefined) throw failure('INVALID_ARGUMENT', "features index an SAE's: give sae, or neurons for the activations' channels", site);
    if (options.logits !== undefined) throw failure('INVALID_ARGUMENT', 'logits are the effects of an SAE decoder row: give sae', site);
    if (options.neurons !== undefined) features = distinct(integers(options.neurons, 'neurons', { min: 0 }, site), 'neurons', site);
  }
  let buffer: [number, number] | null = null;
  if (options.buffer !== undefined && options.buffer !== null) {
    if (!Array.isArray(options.buffer) || options.buffer.length !== 2) throw failure('INVALID_ARGUMENT', 'buffer must be [before, after] or null', site);
    buffer = [integer(options.buffer[0], 'buffer[0]', { min: 0 }, site), integer(options.buffer[1], 'buffer[1]', { min: 0 }, site)];
    if (buffer[0] + buffer[1] >= context) throw failure('INVALID_ARGUMENT', `a buffer of [${buffer}] leaves no position of a ${context}-token row`, site);
  }
  if (options.logits !== undefined && !(options.logits instanceof Tensor)) {
    const logits = options.logits as { model?: unknown; layer?: unknown };
    if (!isRecord(logits) || !(logits.model instanceof Model)) throw failure('INVALID_ARGUMENT', 'logits must be W_U (a Tensor) or { model, layer }', site);
    (Array.isArray(logits.layer) ? logits.layer : [logits.layer]).forEach((m, i) => string(m, `logits.layer[${i}]`, site));
  }
  return {
    sae,
    features,
    k: positiveInteger(options.k ?? DASHBOARD_DEFAULTS.k, 'k', site),
    buffer,
    intervals: positiveInteger(options.intervals ?? DASHBOARD_DEFAULTS.intervals, 'intervals', site),
    intervalSize: positiveInteger(options.intervalSize ?? DASHBOARD_DEFAULTS.intervalSize, 'intervalSize', site),
    bins: positiveInteger(options.histogramBins ?? DASHBOARD_DEFAULTS.histogramBins, 'histogramBins', site),
    seed: integer(options.seed ?? DASHBOARD_DEFAULTS.seed, 'seed', { min: 0, max: Number.MAX_SAFE_INTEGER }, site),
    logits: options.logits,
    signal: abortSignal(options.signal, site),
    onProgress: options.onProgress === undefined ? undefined : (callback(options.onProgress, 'onProgress', site) as Settings['onProgress']),
  };
}

function batchTensors(batch: ActivationBatch, site: CallSite): { activations: NativeTensor; tokens?: NativeTensor; rows: number } {
  if (!isRecord(batch) || !(batch.activations instanceof Tensor))
    throw failure('INVALID_ARGUMENT', 'each batch must be { activations: Tensor, tokens?: Tensor }', site);
  if (batch.tokens !== undefined && !(batch.tokens instanceof Tensor)) throw failure('INVALID_ARGUMENT', "a batch's tokens must be a Tensor", site);
  for (const t of [batch.activations, batch.tokens]) if (t?.disposed) throw failure('DISPOSED', "a batch's tensor was disposed before it was read", site);
  return { activations: batch.activations.handle, tokens: batch.tokens?.handle, rows: batch.activations.shape[0] };
}

/** Reads the source twice into the native statistics; returns them and the features they are of. */
async function stream(source: ActivationSource, s: Settings, site: CallSite): Promise<{ stats: NativeFeatureStats; features: number[] }> {
  let stats: NativeFeatureStats | undefined;
  let features = s.features;
  const rows = [0, 0];
  try {
    for (const pass of [1, 2] as const) {
      let batches = 0;
      for await (const batch of source.batches()) {
        if (s.signal?.aborted) throw failure('ABORTED', 'the signal was aborted', site);
        const b = batchTensors(batch, site);
        if (!stats) {
          // Without an SAE or a list, the channels are the first batch's.
          const shape = batch.activations.shape;
          if (!features && shape.length !== 3) throw failure('SHAPE', `activations must be [rows, ${source.contextSize}, channels], got [${shape}]`, site);
          features ??= Array.from({ length: shape[2] }, (_, i) => i);
          const { buffer } = s;
          const spec = {
            sae: s.sae?.native(site),
            features,
            contextSize: source.contextSize,
            k: s.k,
            buffered: buffer !== null,
            before: buffer?.[0] ?? 0,
            after: buffer?.[1] ?? 0,
            intervals: s.intervals,
            intervalSize: s.intervalSize,
            bins: s.bins,
            seed: s.seed,
          };
          stats = guard(() => new (binding().FeatureStatsHandle)(spec), site);
        }
        const handle = stats;
        await cancellable(s.signal, site, (cancel) => handle.add(pass, b.activations, b.tokens, cancel));
        rows[pass - 1] += b.rows;
        s.onProgress?.({ pass, batches: ++batches, rows: rows[pass - 1] });
      }
      if (rows[0] === 0) throw failure('INVALID_ARGUMENT', 'the source gave no rows', site);
    }
    if (rows[1] !== rows[0])
      throw failure(
        'INVALID_ARGUMENT',
        `the source gave ${rows[0]} rows, then ${rows[1]}: batches() must give the same batches each time (a generator is read once)`,
        site,
      );
    return { stats: stats!, features: features! };
  } catch (error) {
    stats?.dispose();
    // The source's own errors (a model run's, say) point at this call too.
    throw error instanceof TorchscopeError ? toTorchscopeError(error, site) : error;
  }
}

// Typed views of the result's tensors, read as numbers.
const floats = (t: NativeTensor) => t.data() as Float32Array;
const longs = (t: NativeTensor) => t.data() as BigInt64Array;

function example(
  flat: number,
  value: number,
  ctx: number,
  buffer: [number, number] | null,
  values: Float32Array,
  tokens: BigInt64Array | undefined,
): DashboardExample {
  const position = flat % ctx;
  return {
    row: Math.floor(flat / ctx),
    position,
    value,
    start: buffer ? position - buffer[0] : 0,
    tokens: tokens ? Array.from(tokens, Number) : null,
    values: Array.from(values),
  };
}

function histogram(low: number, high: number, counts: BigInt64Array): DashboardHistogram {
  return { min: low, max: high, counts: Array.from(counts, Number) };
}

/** The dashboards from the native result (every array on the CPU). */
function assemble(raw: NativeFeatureStatsResult, features: number[], ctx: number, s: Settings): FeatureDashboard[] {
  const w = raw.window;
  const total = raw.rows * ctx;
  const max = floats(raw.max),
    positive = longs(raw.positive);
  const topValue = floats(raw.topValue),
    topIndex = longs(raw.topIndex),
    topWindow = floats(raw.topWindow);
  const topTokens = raw.topTokens ? longs(raw.topTokens) : undefined;
  const kept = raw.topValue.shape()[1];
  const histLow = floats(raw.histLow),
    histHigh = floats(raw.histHigh),
    histCount = longs(raw.histCount);
  const bounds = floats(raw.bounds),
    intervalCount = longs(raw.intervalCount);
  const sampleValue = floats(raw.sampleValue),
    sampleIndex = longs(raw.sampleIndex),
    sampleWindow = floats(raw.sampleWindow);
  const sampleTokens = raw.sampleTokens ? longs(raw.sampleTokens) : undefined;
  const { intervals: I, intervalSize: size, bins } = s;
  return features.map((index, f) => {
    const topExamples: DashboardExample[] = [];
    for (let e = 0; e < kept; e++) {
      const at = f * kept + e;
      topExamples.push(
        example(Number(topIndex[at]), topValue[at], ctx, s.buffer, topWindow.subarray(at * w, (at + 1) * w), topTokens?.subarray(at * w, (at + 1) * w)),
      );
    }
    const intervals =
      max[f] > 0
        ? Array.from({ length: I }, (_, j) => {
            const examples: DashboardExample[] = [];
            for (let i = 0; i < size; i++) {
              const at = (f * I + j) * size + i;
              if (sampleIndex[at] < 0n) continue;
              examples.push(
                example(
                  Number(sampleIndex[at]),
                  sampleValue[at],
                  ctx,
                  s.buffer,
                  sampleWindow.subarray(at * w, (at + 1) * w),
                  sampleTokens?.subarray(at * w, (at + 1) * w),
                ),
              );
            }
            examples.sort((a, b) => b.value - a.value || a.row - b.row || a.position - b.position);
            const count = Number(intervalCount[f * I + j]);
            return { lower: bounds[f * (I + 1) + j], upper: bounds[f * (I + 1) + j + 1], count, fraction: count / total, examples };
          })
        : [];
    const active = Number(positive[f]);
    return {
      index,
      maxActivation: max[f],
      active,
      density: active / total,
      rows: raw.rows,
      contextSize: ctx,
      topExamples,
      intervals,
      histogram: active > 0 ? histogram(histLow[f], histHigh[f], histCount.subarray(f * bins, (f + 1) * bins)) : null,
      logits: null,
    };
  });
}

function readLogits(effects: NativeLogitEffects, rows: number, bins: number): DashboardLogits[] {
  const k = effects.topIds.shape()[1];
  const topIds = longs(effects.topIds),
    topValues = floats(effects.topValues);
  const bottomIds = longs(effects.bottomIds),
    bottomValues = floats(effects.bottomValues);
  const low = floats(effects.histLow),
    high = floats(effects.histHigh),
    counts = longs(effects.histCount);
  const list = (ids: BigInt64Array, values: Float32Array, r: number) =>
    Array.from({ length: k }, (_, i) => ({ id: Number(ids[r * k + i]), logit: values[r * k + i] }));
  return Array.from({ length: rows }, (_, r) => ({
    top: list(topIds, topValues, r),
    bottom: list(bottomIds, bottomValues, r),
    histogram: histogram(low[r], high[r], counts.subarray(r * bins, (r + 1) * bins)),
  }));
}

function disposeAll(record: object): void {
  for (const value of Object.values(record)) if (value && typeof (value as NativeTensor).dispose === 'function') (value as NativeTensor).dispose();
}

/** Each feature's decoder row through the unembedding, LOGIT_CHUNK features at a time. */
async function logitEffects(sae: Sae, features: number[], source: DashboardLogitsSource, s: Settings, site: CallSite): Promise<DashboardLogits[]> {
  const native = binding().FeatureStatsHandle;
  const out: DashboardLogits[] = [];
  for (let start = 0; start < features.length; start += LOGIT_CHUNK) {
    const chunk = features.slice(start, start + LOGIT_CHUNK);
    const request = { k: DASHBOARD_DEFAULTS.logitRows, bins: s.bins };
    let effects: NativeLogitEffects;
    if (source instanceof Tensor) {
      effects = await settle(() => native.logitEffects({ ...request, sae: sae.native(site), features: chunk, unembed: source.handle }), site);
    } else {
      let value = new Tensor(await settle(() => native.decoderRows({ sae: sae.native(site), features: chunk }), site));
      for (const module of Array.isArray(source.layer) ? source.layer : [source.layer]) {
        const next = await source.model.call(module, value);
        value.dispose();
        if (!(next instanceof Tensor)) throw failure('INVALID_ARGUMENT', `logits: module '${module}' returned no tensor`, site);
        value = next;
      }
      const logits = value;
      try {
        effects = await settle(() => native.logitEffects({ ...request, logits: logits.handle }), site);
      } finally {
        logits.dispose();
      }
    }
    out.push(...readLogits(effects, chunk.length, s.bins));
    disposeAll(effects);
  }
  return out;
}

/**
 * Dashboards of an SAE's features, or of a layer's neurons, over the activations a source gives
 * (torch.dashboard.modelSource for a model and token sequences): per feature the max activation,
 * the density (activation > 0), the top k examples, the equal-width intervals of [0, max] with
 * what each contains and a sample of each, the histogram of the activations above 0, and (SAEs,
 * with `logits`) the tokens each decoder row raises and lowers. The source is read twice.
 */
export async function features(source: ActivationSource, options?: DashboardOptions): Promise<FeatureDashboard[]> {
  const site = callSite(features);
  const s = settings(source, options, site);
  const { stats, features: chosen } = await stream(source, s, site);
  let raw: NativeFeatureStatsResult | undefined;
  try {
    raw = await settle(() => stats.result(), site);
    const dashboards = assemble(raw, chosen, source.contextSize, s);
    if (s.sae && s.logits !== undefined) {
      const effects = await logitEffects(s.sae, chosen, s.logits, s, site);
      dashboards.forEach((d, i) => (d.logits = effects[i]));
    }
    return dashboards;
  } finally {
    if (raw) disposeAll(raw);
    stats.dispose();
  }
}
