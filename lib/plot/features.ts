// SAE features on one prompt, read once for its pictures (feature-html.ts, feature-heatmap.ts):
// the input checked, and one pass over the [seq, d_sae] activations for what both pictures rank
// by (each feature's max over the prompt and how many tokens it fires on, each token's L0).
import { CallSite, failure } from '../core/errors';
import { describeValue, integer } from '../core/validate';
import { Tensor } from '../model/tensor';

/** What the feature pictures take: a prompt's SAE feature activations (e.g. an SAE's `:features` capture). */
export interface FeatureActivationsLike {
  /** The prompt's tokens, one per position. */
  tokens: string[];
  /** float32 [seq, d_sae] (or [1, seq, d_sae]): each feature's activation at each position. */
  features: Tensor;
  /** Optional names of features (e.g. Neuronpedia labels), by feature index. */
  labels?: Record<number, string>;
}

/** The feature pictures' defaults and bounds, in one place. */
export const FEATURE_PLOT_LIMITS = {
  /** featureHtml: features listed per token. */
  topK: { default: 10, max: 100 },
  /** featureHeatmap: rows, the most active features. */
  top: { default: 16, max: 256 },
  /** Longest prompt a page holds (positions are stored as uint16). */
  maxTokens: 65_536,
  /** featureHeatmap: row labels longer than this end in an ellipsis (the page shows them whole). */
  labelChars: 80,
} as const;

// A module constant: the global Infinity is a slow lookup in some hosts (jest's vm contexts).
const INFINITY = Number.POSITIVE_INFINITY;

/** The activations of one prompt, checked, with per-feature and per-token counts. */
export interface FeatureTable {
  tokens: string[];
  seq: number;
  dSae: number;
  /** A view of the tensor's memory: features[p, f] = values[p * dSae + f]. */
  values: Float32Array | Float64Array;
  labels: Map<number, string>;
  /** Per feature: its largest activation on the prompt (0 when it never fires). */
  max: Float64Array;
  /** Per feature: on how many tokens it fires (activation > 0). */
  count: Uint32Array;
  /** Per token: how many features fire there (its L0). */
  l0: Uint32Array;
  /** Active entries in all. */
  nnz: number;
}

/** Checks `acts` and reads it: shape, dtype, device, tokens, labels, and every value finite and >= 0. */
export function featureTable(acts: FeatureActivationsLike, site: CallSite): FeatureTable {
  if (!acts || typeof acts !== 'object' || !(acts.features instanceof Tensor) || !Array.isArray(acts.tokens)) {
    throw failure('INVALID_ARGUMENT', `expected feature activations { tokens: string[], features: Tensor, labels? }, got ${describeValue(acts)}`, site);
  }
  const features = acts.features;
  if (features.disposed) throw failure('DISPOSED', 'the features tensor was disposed', site);
  const shape = features.shape;
  if (!(shape.length === 2 || (shape.length === 3 && shape[0] === 1))) {
    throw failure('SHAPE', `features must be [seq, d_sae] or [1, seq, d_sae] (one prompt); got [${shape}]`, site);
  }
  const [seq, dSae] = shape.slice(-2);
  if (seq < 1 || dSae < 1) throw failure('SHAPE', `features must have at least one token and one feature; got [${shape}]`, site);
  if (seq > FEATURE_PLOT_LIMITS.maxTokens) throw failure('SHAPE', `at most ${FEATURE_PLOT_LIMITS.maxTokens} tokens are shown; got ${seq}`, site);
  if (features.device !== 'cpu') throw failure('DEVICE', `features are on ${features.device}; plots read CPU memory: use await features.to('cpu')`, site);
  if (features.dtype !== 'float32' && features.dtype !== 'float64') throw failure('DTYPE', `features must be float32 or float64; got ${features.dtype}`, site);
  const tokens = acts.tokens;
  if (tokens.length !== seq) throw failure('SHAPE', `${tokens.length} tokens for features of ${seq} positions ([${shape}])`, site);
  tokens.forEach((t, i) => {
    if (typeof t !== 'string') throw failure('INVALID_ARGUMENT', `tokens must be strings; token ${i} is ${describeValue(t)}`, site);
  });
  const labels = readLabels(acts.labels, dSae, site);
  const values = features.data() as Float32Array | Float64Array;
  const max = new Float64Array(dSae);
  const count = new Uint32Array(dSae);
  const l0 = new Uint32Array(seq);
  let nnz = 0;
  for (let p = 0; p < seq; p++) {
    const row = p * dSae;
    let active = 0;
    for (let f = 0; f < dSae; f++) {
      const v = values[row + f];
      if (v === 0) continue;
      // NaN, infinities and negatives fail here; an SAE's activation functions give finite values >= 0.
      if (!(v > 0 && v < INFINITY)) {
        throw failure(
          'INVALID_ARGUMENT',
          `features must be finite activations >= 0 (an SAE's ':features', after its activation function); got ${v} at position ${p}, feature ${f}`,
          site,
        );
      }
      active++;
      count[f]++;
      if (v > max[f]) max[f] = v;
    }
    l0[p] = active;
    nnz += active;
  }
  return { tokens: tokens.slice(), seq, dSae, values, labels, max, count, l0, nnz };
}

/** `labels`: feature index -> name, a record (or an array) of strings for indices in [0, dSae). */
function readLabels(given: unknown, dSae: number, site: CallSite): Map<number, string> {
  const labels = new Map<number, string>();
  if (given === undefined) return labels;
  if (given === null || typeof given !== 'object')
    throw failure('INVALID_ARGUMENT', `labels must be a record of feature index -> string, got ${describeValue(given)}`, site);
  for (const [key, label] of Object.entries(given)) {
    const index = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : NaN;
    if (!(index < dSae)) throw failure('INVALID_ARGUMENT', `labels: ${JSON.stringify(key)} is not a feature index in [0, ${dSae})`, site);
    if (typeof label !== 'string') throw failure('INVALID_ARGUMENT', `labels: feature ${key}'s label must be a string, got ${describeValue(label)}`, site);
    labels.set(index, label);
  }
  return labels;
}

/** The `features` option: distinct feature indices in [0, dSae). */
export function featureIndices(value: unknown, dSae: number, site: CallSite): number[] {
  if (!Array.isArray(value) || value.length === 0)
    throw failure('INVALID_ARGUMENT', `features must be a non-empty array of feature indices, got ${describeValue(value)}`, site);
  const seen = new Set<number>();
  for (const f of value) {
    integer(f, 'features', { min: 0, max: dSae - 1 }, site);
    if (seen.has(f)) throw failure('INVALID_ARGUMENT', `features lists feature ${f} twice`, site);
    seen.add(f);
  }
  return value as number[];
}

/** `first` in their order, then every other active feature by max activation (descending; ties by index). */
export function rankFeatures(table: FeatureTable, first: readonly number[] = []): number[] {
  const pinned = new Set(first);
  const rest: number[] = [];
  for (let f = 0; f < table.dSae; f++) if (table.count[f] > 0 && !pinned.has(f)) rest.push(f);
  rest.sort((a, b) => table.max[b] - table.max[a] || a - b);
  return [...first, ...rest];
}

/** A title option: any string ('' for none). */
export function titleOption(value: unknown, fallback: string, site: CallSite): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw failure('INVALID_ARGUMENT', `title must be a string, got ${describeValue(value)}`, site);
  return value;
}

/** An activation as the pictures print it: 4 significant digits, no trailing zeros (the page's fmt() is the same). */
export function formatActivation(value: number): string {
  return value === 0 ? '0' : String(Number(value.toPrecision(4)));
}
