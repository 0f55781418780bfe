// Which SAE features matter, on a prompt: the features that fire at each token; each feature's
// attribution to a metric (gradient x activation at '<hook point>:features', the first-order
// estimate of what ablating it does) with the exact effect of ablating the top ones, all in one
// batched run; and each feature's direct effect on the logits (its decoder row through the
// model's head). Built on the spliced runs (lib/sae/splice.ts), no method of its own natively.
import { callSite, CallSite, failure } from '../core/errors';
import { checkOptions, integer, integers, optionKeys, requiredOptions, string } from '../core/validate';
import { Model } from '../model/model';
import { disposeValue, Tensor, tensor } from '../model/tensor';
import { activations } from '../methods/activations';
import { gradients } from '../methods/gradients';
import { Objective } from '../methods/objective';
import { Sae } from './sae';

/** A prompt's token ids: an int64 tensor [1, seq], or an array of ids. */
export type FeaturePrompt = Tensor | number[];

/** Turns ids into the tokens shown (torch.Tokenizer, Gpt2Tokenizer, BertTokenizer). */
export interface FeatureTokenizer {
  idToToken?(id: number): string | undefined;
  decode?(ids: number[]): string;
}

export interface TopFeaturesOptions {
  /** Features listed per position. Default 10. */
  k?: number;
  /** Gives the tokens; without one they are the ids. */
  tokenizer?: FeatureTokenizer;
}

export interface FeatureActivations {
  /** The prompt's tokens. */
  tokens: string[];
  /** float32 [seq, d_sae]: each feature's activation at each position. */
  features: Tensor;
  /** Per position, its k most active features (activation > 0), largest first. */
  top: { position: number; token: string; features: { index: number; activation: number }[] }[];
  dispose(): void;
}

export interface FeatureAttributionOptions {
  /** What the features are attributed to: an objective on the output, e.g. { logitDiff: [a, b] } or { logit: t } (position -1 by default). */
  metric: Objective;
  /** Features whose ablation is also run exactly (the largest |attribution| first). Default 10; 0 for none. */
  top?: number;
  /** Splice with the error term, so the clean metric is the model's own. Default true. */
  errorTerm?: boolean;
}

export interface FeatureAttribution {
  /** The metric of the clean run (with the error term: the model's own). */
  clean: number;
  /** float32 [seq, d_sae]: gradient x activation at ':features'; -attribution estimates the change ablating it at that position makes. */
  attribution: Tensor;
  /** float32 [d_sae]: attribution summed over positions. */
  total: Tensor;
  /** The `top` features by |total|: their total attribution and the exact change in the metric when they are ablated at every position. */
  ablations: { feature: number; attribution: number; effect: number }[];
  dispose(): void;
}

export interface DirectLogitOptions {
  /** The head's modules in order: ['transformer.ln_f', 'lm_head'] applies the final norm first (a stated choice), ['lm_head'] the unembedding alone. */
  head: string[];
  /** Features to describe. Default: all, in chunks. */
  features?: number[];
  /** Tokens listed per feature at each end. Default 10. */
  k?: number;
  tokenizer?: FeatureTokenizer;
}

export interface DirectLogitEffect {
  feature: number;
  /** The tokens its decoder direction raises most, and lowers most, with their logits. */
  top: { id: number; token: string; logit: number }[];
  bottom: { id: number; token: string; logit: number }[];
}

const TOP_KEYS = optionKeys<TopFeaturesOptions>({ k: true, tokenizer: true });
const ATTRIBUTION_KEYS = optionKeys<FeatureAttributionOptions>({ metric: true, top: true, errorTerm: true });
const DIRECT_KEYS = optionKeys<DirectLogitOptions>({ head: true, features: true, k: true, tokenizer: true });
// Decoder rows pushed through the head at once: [chunk, vocab] float32 stays well under memory.
const DIRECT_CHUNK = 256;

function promptTensor(prompt: FeaturePrompt, site: CallSite): { input: Tensor; ids: number[]; owned: boolean } {
  if (prompt instanceof Tensor) {
    if (prompt.dtype !== 'int64' || prompt.shape.length !== 2 || prompt.shape[0] !== 1) {
      throw failure('INVALID_ARGUMENT', `the prompt must be int64 ids [1, seq], got ${prompt.dtype} [${prompt.shape}]`, site);
    }
    return { input: prompt, ids: Array.from(prompt.data() as BigInt64Array, Number), owned: false };
  }
  const ids = integers(prompt, 'prompt', { min: 0 }, site);
  return { input: tensor(BigInt64Array.from(ids, BigInt), [1, ids.length], 'int64'), ids, owned: true };
}

function tokenOf(id: number, tokenizer: FeatureTokenizer | undefined): string {
  return tokenizer?.idToToken?.(id) ?? tokenizer?.decode?.([id]) ?? String(id);
}

/** The indices of the k largest (sign 1) or smallest (-1) values, in that order, ties to the lower index: one pass, no sort of the row. */
function largest(values: Float32Array, k: number, sign: 1 | -1): number[] {
  const kept: number[] = [];
  const better = (a: number, b: number) => sign * values[a] > sign * values[b] || (values[a] === values[b] && a < b);
  for (let i = 0; i < values.length; i++) {
    if (kept.length === k && !better(i, kept[k - 1])) continue;
    let at = kept.length;
    while (at > 0 && better(i, kept[at - 1])) at--;
    kept.splice(at, 0, i);
    if (kept.length > k) kept.pop();
  }
  return kept;
}

function requireSae(model: Model, sae: Sae, what: string, site: CallSite): void {
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', `${what}: model must come from torch.load()`, site);
  if (!(sae instanceof Sae)) throw failure('INVALID_ARGUMENT', `${what}: sae must come from torch.sae.load()`, site);
}

/** [seq, d_sae] of a [1, seq, d_sae] (or [seq, d_sae]) float32 value, as a fresh float32 copy. */
function rows(value: Tensor, dSae: number, what: string, site: CallSite): Float32Array {
  const data = value.dtype === 'float32' ? (value.data() as Float32Array) : undefined;
  if (!data || value.shape[value.shape.length - 1] !== dSae)
    throw failure('RUNTIME', `${what}: expected float32 [..., ${dSae}], got ${value.dtype} [${value.shape}]`, site);
  return Float32Array.from(data);
}

/** The features that fire at each token of a prompt (the SAE spliced at its hook point). */
export async function topFeatures(model: Model, sae: Sae, prompt: FeaturePrompt, given?: TopFeaturesOptions): Promise<FeatureActivations> {
  const site = callSite(topFeatures);
  requireSae(model, sae, 'topFeatures', site);
  const options = checkOptions(given, TOP_KEYS, 'topFeatures', site);
  const k = integer(options.k ?? 10, 'k', { min: 1 }, site);
  const { input, ids, owned } = promptTensor(prompt, site);
  try {
    const layer = `${sae.points(model, site).read}:features`;
    const value = (await activations(model, { layers: layer, saes: [sae] }, input)) as Tensor;
    const data = rows(value, sae.dSae, layer, site);
    value.dispose();
    const tokens = ids.map((id) => tokenOf(id, options.tokenizer));
    const top = tokens.map((token, position) => {
      const row = data.subarray(position * sae.dSae, (position + 1) * sae.dSae);
      const order = Array.from(row.keys()).filter((i) => row[i] > 0);
      order.sort((a, b) => row[b] - row[a] || a - b);
      return { position, token, features: order.slice(0, k).map((index) => ({ index, activation: row[index] })) };
    });
    const features = tensor(data, [ids.length, sae.dSae], 'float32');
    return { tokens, features, top, dispose: () => features.dispose() };
  } finally {
    if (owned) input.dispose();
  }
}

/**
 * Each feature's attribution to a metric on a prompt (gradient x activation at ':features', one
 * forward and backward with the SAE spliced), and the exact effect of ablating the `top` ones at
 * every position, all of them in one batched run.
 */
export async function featureAttribution(model: Model, sae: Sae, prompt: FeaturePrompt, given: FeatureAttributionOptions): Promise<FeatureAttribution> {
  const site = callSite(featureAttribution);
  requireSae(model, sae, 'featureAttribution', site);
  const options = requiredOptions(given, ATTRIBUTION_KEYS, 'featureAttribution', '{ metric: { logit: 42 } }', site);
  if (options.metric === undefined) throw failure('INVALID_ARGUMENT', 'featureAttribution needs a metric: an objective such as { logit: 42 }', site);
  const topCount = integer(options.top ?? 10, 'top', { min: 0, max: sae.dSae }, site);
  const saes = [{ sae, errorTerm: options.errorTerm ?? true }];
  const layer = `${sae.points(model, site).read}:features`;
  const { input, owned } = promptTensor(prompt, site);
  const made: unknown[] = [];
  try {
    const result = await gradients(model, [input], { objective: options.metric, wrt: layer, saes });
    made.push(result);
    const grad = rows(result.gradients[layer] as Tensor, sae.dSae, layer, site);
    const values = rows(result.values[layer] as Tensor, sae.dSae, layer, site);
    const seq = grad.length / sae.dSae;
    const attribution = grad.map((g, i) => g * values[i]);
    const total = new Float32Array(sae.dSae);
    for (let i = 0; i < attribution.length; i++) total[i % sae.dSae] += attribution[i];
    const chosen = Array.from(total.keys())
      .sort((a, b) => Math.abs(total[b]) - Math.abs(total[a]) || a - b)
      .slice(0, topCount);
    let ablations: FeatureAttribution['ablations'] = [];
    if (chosen.length > 0) {
      // One row per feature: the clean features with that one set to 0 at every position (setting
      // the value at this layer is exact: the features themselves are computed before it).
      const ablated = new Float32Array(chosen.length * values.length);
      chosen.forEach((feature, row) => {
        const block = ablated.subarray(row * values.length, (row + 1) * values.length);
        block.set(values);
        for (let p = 0; p < seq; p++) block[p * sae.dSae + feature] = 0;
      });
      const batch = tensor(
        BigInt64Array.from({ length: chosen.length * seq }, (_, i) => (input.data() as BigInt64Array)[i % seq]),
        [chosen.length, seq],
        'int64',
      );
      const value = tensor(ablated, [chosen.length, seq, sae.dSae], 'float32');
      made.push(batch, value);
      const runs = await gradients(model, [batch], { objective: options.metric, wrt: layer, saes, patch: { [layer]: { set: value } } });
      made.push(runs);
      ablations = chosen.map((feature, row) => ({ feature, attribution: total[feature], effect: runs.objective[row] - result.objective[0] }));
    }
    const attributionTensor = tensor(attribution, [seq, sae.dSae], 'float32');
    const totalTensor = tensor(total, [sae.dSae], 'float32');
    const dispose = () => disposeValue([attributionTensor, totalTensor]);
    return { clean: result.objective[0], attribution: attributionTensor, total: totalTensor, ablations, dispose };
  } finally {
    for (const item of made) (item as { dispose(): void }).dispose();
    if (owned) input.dispose();
  }
}

/**
 * Each feature's direct effect on the logits: its decoder direction (a row of W_dec) through the
 * head's modules, and the tokens it raises and lowers most. With the final norm in `head`, the
 * direction is normalized as a residual of its own would be (a stated approximation: in a run the
 * norm sees the whole residual stream).
 */
export async function directLogitEffects(model: Model, sae: Sae, given: DirectLogitOptions): Promise<DirectLogitEffect[]> {
  const site = callSite(directLogitEffects);
  requireSae(model, sae, 'directLogitEffects', site);
  const options = requiredOptions(given, DIRECT_KEYS, 'directLogitEffects', "{ head: ['lm_head'] }", site);
  if (!Array.isArray(options.head) || options.head.length === 0) throw failure('INVALID_ARGUMENT', 'head lists the modules applied in order', site);
  options.head.forEach((m, i) => string(m, `head[${i}]`, site));
  const k = integer(options.k ?? 10, 'k', { min: 1 }, site);
  const features =
    options.features === undefined
      ? Array.from({ length: sae.dSae }, (_, i) => i)
      : integers(options.features, 'features', { min: 0, max: sae.dSae - 1 }, site);
  const decoder = (await sae.weight('W_dec'))!;
  const rowsOf = decoder.data() as Float32Array;
  const width = sae.dOut;
  const out: DirectLogitEffect[] = [];
  try {
    for (let start = 0; start < features.length; start += DIRECT_CHUNK) {
      const chunk = features.slice(start, start + DIRECT_CHUNK);
      const directions = new Float32Array(chunk.length * width);
      chunk.forEach((f, i) => directions.set(rowsOf.subarray(f * width, (f + 1) * width), i * width));
      let value: Tensor = tensor(directions, [chunk.length, width], 'float32');
      for (const module of options.head) {
        const next = (await model.call(module, value)) as Tensor;
        value.dispose();
        if (!(next instanceof Tensor)) throw failure('RUNTIME', `head module '${module}' returned no tensor`, site);
        value = next;
      }
      const logits = value.data() as Float32Array;
      const vocab = logits.length / chunk.length;
      chunk.forEach((feature, i) => {
        const row = logits.subarray(i * vocab, (i + 1) * vocab);
        const entry = (id: number) => ({ id, token: tokenOf(id, options.tokenizer), logit: row[id] });
        out.push({ feature, top: largest(row, k, 1).map(entry), bottom: largest(row, k, -1).map(entry) });
      });
      value.dispose();
    }
    return out;
  } finally {
    decoder.dispose();
  }
}
