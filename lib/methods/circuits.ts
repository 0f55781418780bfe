// Transformer circuits, TransformerLens's experiments on any TorchScript model: activation-patching
// sweeps over layers x positions or layers x heads, natively batched, with attribution patching as
// their gradient estimate (native/methods/patching.h), and lag scores of attention patterns.
// The logit lens is lib/methods/logit-lens.ts.
import { SWEEP_METHODS, SweepMethod } from '../core/names';
import { callSite, CallSite, failure } from '../core/errors';
import { array, boolean, integer, integers, oneOf, optionKeys, requiredOptions } from '../core/validate';
import { drivePlannedRun, RunProgress } from '../native/planned';
import { Input, Model, normalizeInputs, NumericsOptions, numericsRequest, unwrapInputs } from '../model/model';
import { Tensor } from '../model/tensor';
import { SpliceOptions } from './activations';
import { nativeObjectives, Objective } from './objective';
import { splices } from '../sae/splice';

/** How a sweep scores a patched run: an objective on the output logits, averaged over the batch. */
export type Metric = Objective;

/** `precision`: every run of the sweep at this precision (its results are float32 metrics). */
/** `saes`: spliced into every run of the sweep (its clean, corrupted and patched runs); their values ('<point>:features') can be swept too. */
export interface PatchingSweepOptions extends Pick<NumericsOptions, 'precision'>, SpliceOptions {
  /** The clean run's inputs (forward's arguments). */
  clean: Input | Input[];
  /** The corrupted run's inputs, of the same shapes. */
  corrupted: Input | Input[];
  /** Hook points swept: module outputs, or 'path:input' (the residual stream entering a block). */
  layers: string[];
  /** Positions along dim 1 of every layer's value (negative from the end), or 'all' (default). */
  positions?: number[] | 'all';
  /** Per-head patching instead of positions: the layers' last dim split in this many heads (the input of an attention output projection), all positions. */
  heads?: number;
  /** E.g. { logitDiff: [a, b], position: -1 }, { logit: t }, { logProb: t }: position defaults to -1. */
  metric: Metric | Metric[];
  /** Report (patched - corrupted) / (clean - corrupted). Default false. */
  normalize?: boolean;
  /** Patched runs per forward (each copy of the batch its own cell). Default: as many as half the available memory holds. */
  batchSize?: number;
  /** 'activation' (default): the patched runs; 'attribution': their gradient estimate, one backward pass. */
  method?: SweepMethod;
  signal?: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
}

export interface PatchingSweepResult extends Disposable {
  /** [layers, positions] or [layers, heads]: the metric of each patched run (normalised with normalize). */
  results: Tensor;
  /** The metric of the clean and of the corrupted run. */
  clean: number;
  corrupted: number;
  /** Patched runs per forward (0 for attribution). */
  batchSize: number;
  elapsedMs: number;
  dispose(): void;
}

const positionedKinds = ['logit', 'logitDiff', 'logProb'];
const SWEEP_KEYS = optionKeys<PatchingSweepOptions>({
  clean: true,
  corrupted: true,
  layers: true,
  positions: true,
  heads: true,
  metric: true,
  normalize: true,
  batchSize: true,
  method: true,
  signal: true,
  onProgress: true,
  precision: true,
  saes: true,
  errorTerm: true,
});

function metricOf(model: Model, metric: Metric | Metric[], site: CallSite) {
  const list = (Array.isArray(metric) ? metric : [metric]).map((m) => {
    const kind = m !== null && typeof m === 'object' ? Object.keys(m).find((k) => positionedKinds.includes(k)) : undefined;
    return kind && (m as { position?: number }).position === undefined ? ({ ...m, position: -1 } as Metric) : m;
  });
  const spec = nativeObjectives(model, list, null, site);
  if (spec.layer !== '') throw failure('INVALID_ARGUMENT', 'a sweep metric reads the output logits: logitDiff, logit, logProb or target', site);
  return spec;
}

/**
 * TransformerLens's activation patching sweep: for every (layer, position), or (layer, head),
 * the corrupted run with that layer's value there taken from the clean run, scored by the metric.
 */
export async function patchingSweep(model: Model, given: PatchingSweepOptions): Promise<PatchingSweepResult> {
  const site = callSite(patchingSweep);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'patchingSweep(model, options): model must come from torch.load()', site);
  const options = requiredOptions(given, SWEEP_KEYS, 'patchingSweep', '{ clean, corrupted, layers, metric }', site);
  const spliced = splices(options.saes, options.errorTerm, model, site);
  const layers = (array(options.layers, 'layers', site, true) as string[]).map(spliced.layerName);
  model.checkLayers([...layers, ...spliced.points], site);
  const positions = options.positions === undefined || options.positions === 'all' ? [] : integers(options.positions, 'positions', {}, site);
  // 0: positions are patched, not heads.
  const heads = integer(options.heads ?? 0, 'heads', { min: 0 }, site);
  if (heads > 0 && options.positions !== undefined) throw failure('INVALID_ARGUMENT', 'heads patch every position: give heads or positions', site);
  // 0: as many as fit (measured natively).
  const batchSize = integer(options.batchSize ?? 0, 'batchSize', { min: 0 }, site);
  const method = oneOf(options.method ?? 'activation', 'method', SWEEP_METHODS, site);
  const request = {
    layers,
    positions,
    heads,
    metric: metricOf(model, options.metric, site),
    normalize: boolean(options.normalize ?? false, 'normalize', site),
    batchSize,
    method,
    precision: numericsRequest(model, { precision: options.precision }, site).precision,
    saes: spliced.native,
  };
  const handle = model.native(site);
  const clean = unwrapInputs(normalizeInputs(options.clean));
  const corrupted = unwrapInputs(normalizeInputs(options.corrupted));
  const { result, elapsedMs } = await drivePlannedRun(() => handle.patchingSweep(clean, corrupted, request), options, 'the sweep', site);
  const results = new Tensor(result.results);
  const dispose = () => results.dispose();
  return { results, clean: result.clean, corrupted: result.corrupted, batchSize: result.batchSize, elapsedMs, dispose, [Symbol.dispose]: dispose };
}

/**
 * Per head, the mean attention from each query q (from `fromQuery` on) to the key `lag` tokens
 * back, over the batch: lag 1 scores previous-token heads; on tokens repeated after `half`
 * positions, lag half - 1 from the repeat on scores induction heads (attention to the token
 * after the current one's previous occurrence). `pattern` is [batch, heads, queries, keys].
 */
export function lagScores(pattern: Tensor, lag: number, fromQuery = lag): number[] {
  const site = callSite(lagScores);
  if (!(pattern instanceof Tensor) || pattern.shape.length !== 4 || pattern.shape[2] !== pattern.shape[3]) {
    throw failure(
      'SHAPE',
      `lagScores takes an attention pattern [batch, heads, queries, keys], got ${pattern instanceof Tensor ? `[${pattern.shape}]` : typeof pattern}`,
      site,
    );
  }
  const [batch, heads, seq] = pattern.shape;
  integer(lag, 'lag', { min: 0, max: seq - 1 }, site);
  integer(fromQuery, 'fromQuery', { min: lag, max: seq - 1 }, site);
  const data = pattern.data() as Float32Array;
  return Array.from({ length: heads }, (_, h) => {
    let sum = 0;
    for (let b = 0; b < batch; b++) {
      for (let q = fromQuery; q < seq; q++) sum += data[((b * heads + h) * seq + q) * seq + q - lag];
    }
    return sum / (batch * (seq - fromQuery));
  });
}
