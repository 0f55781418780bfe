// Dashboards as Neuronpedia takes them: SAEDashboard's batch JSON (sae_dashboard/neuronpedia/
// neuronpedia_dashboard.py's to_dict field names, filled as neuronpedia_converter.py fills them).
import { callSite, failure } from '../core/errors';
import { array, checkOptions, integer, optionKeys } from '../core/validate';
import { DashboardExample, DashboardHistogram, DashboardTokenizer, FeatureDashboard, tokenText } from './types';

export interface NeuronpediaOptions {
  /** Turns the examples' and logits' token ids into text. Default: the ids as text. */
  tokenizer?: DashboardTokenizer;
  /** The batch's model_id, layer, sae_set, and each feature's dataset. */
  modelId?: string;
  layer?: number;
  saeSet?: string;
  dataset?: string;
}

/** One example (an element of a feature's `activations`). */
export interface NeuronpediaActivation {
  /** The group's bounds and its fraction of tokens; the top examples' group is (-1, max, -1). */
  bin_min: number;
  bin_max: number;
  bin_contains: number;
  tokens: string[];
  values: number[];
  /** The example's token within `tokens`. */
  qualifying_token_index: number;
}

export interface NeuronpediaFeature {
  feature_index: number;
  // Feature tables torchscope does not compute: empty, as SAEDashboard's defaults.
  neuron_alignment_indices: number[];
  neuron_alignment_values: number[];
  neuron_alignment_l1: number[];
  correlated_neurons_indices: number[];
  correlated_neurons_l1: number[];
  correlated_neurons_pearson: number[];
  correlated_features_indices: number[];
  correlated_features_l1: number[];
  correlated_features_pearson: number[];
  neg_str: string[];
  neg_values: number[];
  pos_str: string[];
  pos_values: number[];
  frac_nonzero: number;
  freq_hist_data_bar_values: number[];
  freq_hist_data_bar_heights: number[];
  logits_hist_data_bar_heights: number[];
  logits_hist_data_bar_values: number[];
  n_prompts_total: number;
  n_tokens_in_prompt: number;
  dataset: string;
  decoder_weights_dist: number[];
  activations: NeuronpediaActivation[];
}

export interface NeuronpediaBatch {
  model_id: string;
  layer: number;
  sae_set: string;
  features: NeuronpediaFeature[];
}

const KEYS = optionKeys<NeuronpediaOptions>({ tokenizer: true, modelId: true, layer: true, saeSet: true, dataset: true });

// SAEDashboard rounds lists to 3 decimals (FeatureProcessor.round_list) and prints bounds with
// .3f and fractions with .3%.
const round = (value: number, decimals: number) => Number(value.toFixed(decimals));
const round3 = (values: number[]) => values.map((v) => round(v, 3));

/** SAEDashboard's bar values: each bin's centre. */
function bars(histogram: DashboardHistogram | null): { values: number[]; heights: number[] } {
  if (!histogram) return { values: [], heights: [] };
  const width = (histogram.max - histogram.min) / histogram.counts.length;
  return { values: histogram.counts.map((_, i) => round(histogram.min + (i + 0.5) * width, 3)), heights: histogram.counts.slice() };
}

/**
 * Neuronpedia's batch JSON of dashboards (`JSON.stringify` it): per feature the logit tables
 * (pos_str/pos_values, neg_str/neg_values), frac_nonzero, the activation and logit histograms'
 * bars, n_prompts_total, n_tokens_in_prompt, and the activations: the top examples, then each
 * interval's, highest first, with bin_min, bin_max, bin_contains and qualifying_token_index.
 */
export function toNeuronpedia(dashboards: FeatureDashboard[], options?: NeuronpediaOptions): NeuronpediaBatch {
  const site = callSite(toNeuronpedia);
  const o = checkOptions(options, KEYS, 'toNeuronpedia', site);
  array(dashboards, 'dashboards', site);
  const text = (id: number) => tokenText(id, o.tokenizer);
  const activation = (e: DashboardExample, binMin: number, binMax: number, contains: number): NeuronpediaActivation => {
    if (e.tokens === null) throw failure('INVALID_ARGUMENT', 'toNeuronpedia: the examples have no tokens (their source gave none)', site);
    return {
      bin_min: binMin,
      bin_max: binMax,
      bin_contains: contains,
      tokens: e.tokens.map(text),
      values: round3(e.values),
      qualifying_token_index: e.position - e.start,
    };
  };
  const features = dashboards.map((d): NeuronpediaFeature => {
    const activations = d.topExamples.map((e) => activation(e, -1, round(d.maxActivation, 3), -1));
    for (const interval of [...d.intervals].reverse()) {
      for (const e of interval.examples) activations.push(activation(e, round(interval.lower, 3), round(interval.upper, 3), round(interval.fraction, 5)));
    }
    const freq = bars(d.histogram);
    const logitBars = bars(d.logits?.histogram ?? null);
    return {
      feature_index: d.index,
      neuron_alignment_indices: [],
      neuron_alignment_values: [],
      neuron_alignment_l1: [],
      correlated_neurons_indices: [],
      correlated_neurons_l1: [],
      correlated_neurons_pearson: [],
      correlated_features_indices: [],
      correlated_features_l1: [],
      correlated_features_pearson: [],
      neg_str: (d.logits?.bottom ?? []).map((t) => text(t.id)),
      neg_values: round3((d.logits?.bottom ?? []).map((t) => t.logit)),
      pos_str: (d.logits?.top ?? []).map((t) => text(t.id)),
      pos_values: round3((d.logits?.top ?? []).map((t) => t.logit)),
      frac_nonzero: d.density,
      freq_hist_data_bar_values: freq.values,
      freq_hist_data_bar_heights: freq.heights,
      logits_hist_data_bar_heights: logitBars.heights,
      logits_hist_data_bar_values: logitBars.values,
      n_prompts_total: d.rows,
      n_tokens_in_prompt: d.contextSize,
      dataset: o.dataset ?? '',
      decoder_weights_dist: [],
      activations,
    };
  });
  return { model_id: o.modelId ?? '', layer: integer(o.layer ?? 0, 'layer', { min: 0 }, site), sae_set: o.saeSet ?? '', features };
}
