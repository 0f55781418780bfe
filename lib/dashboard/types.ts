// What a feature dashboard holds (lib/dashboard/features.ts computes it; lib/plot/feature-dashboard.ts
// draws it; lib/dashboard/neuronpedia.ts exports it), and how its token ids become text.

/** A token and its context window, as a dashboard shows it. */
export interface DashboardExample {
  /** The row (sequence) in the dataset's order. */
  row: number;
  /** The token's position in its row. */
  position: number;
  /** The feature's activation at the token. */
  value: number;
  /** The window's first position: it covers positions start .. start + values.length - 1 of the row. */
  start: number;
  /** Token ids over the window; null when the source gave no tokens. */
  tokens: number[] | null;
  /** The feature's activation at each position of the window. */
  values: number[];
}

/** One of the equal-width intervals linspace(0, max, intervals + 1) (SAEDashboard's "quantile" groups). */
export interface DashboardInterval {
  lower: number;
  upper: number;
  /** Tokens with lower <= activation <= upper, over every position of every row (the lowest interval holds the zeros). */
  count: number;
  /** count over all tokens: "INTERVAL lower - upper CONTAINS fraction". */
  fraction: number;
  /** Up to intervalSize of those tokens (within the buffer): the ones of smallest hash (seed, token), shown by value, largest first. */
  examples: DashboardExample[];
}

/** torch.histc's bins: counts[i] of [min + i * w, min + (i + 1) * w), w = (max - min) / bins, the last bin closed. */
export interface DashboardHistogram {
  min: number;
  max: number;
  counts: number[];
}

/** A feature's direct effect on the logits: its decoder row through the unembedding. */
export interface DashboardLogits {
  /** The tokens it raises most (largest first) and lowers most (smallest first); ties to the lower id. */
  top: { id: number; logit: number }[];
  bottom: { id: number; logit: number }[];
  /** Over the whole vocabulary. */
  histogram: DashboardHistogram;
}

/** One feature's (or neuron's) dashboard over a dataset. */
export interface FeatureDashboard {
  /** The SAE feature, or the channel of the layer. */
  index: number;
  /** The largest activation over every token. */
  maxActivation: number;
  /** Tokens whose activation is above 0, and their fraction of all tokens. */
  active: number;
  density: number;
  /** The dataset: rows of contextSize tokens. */
  rows: number;
  contextSize: number;
  /** The k largest activations (value descending, then dataset order), positions within the buffer. */
  topExamples: DashboardExample[];
  /** Lowest first; none when the max is not above 0. */
  intervals: DashboardInterval[];
  /** Of the activations above 0; null when there are none. */
  histogram: DashboardHistogram | null;
  /** With the `logits` option (SAEs only); null otherwise. */
  logits: DashboardLogits | null;
}

/** What turns token ids into text (torch.Tokenizer, Gpt2Tokenizer, BertTokenizer). */
export interface DashboardTokenizer {
  decode?(ids: number[]): string;
  idToToken?(id: number): string | undefined;
}

/** A token id as text: decode([id]) (text as written, ' the'), else idToToken, else the id itself. */
export function tokenText(id: number, tokenizer: DashboardTokenizer | undefined): string {
  return tokenizer?.decode?.([id]) ?? tokenizer?.idToToken?.(id) ?? String(id);
}
