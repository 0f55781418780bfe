// The native side of the dashboards (native/bindings/feature_stats_handle.h), merged into
// NativeBinding: the streaming statistics of one dashboard run, and the logit effects.
import { NativeCancelToken, NativeTensor } from '../native/binding';
import type { NativeSae } from '../sae/native';

declare module '../native/binding' {
  interface NativeBinding {
    FeatureStatsHandle: NativeFeatureStatsClass;
  }
}

/** What the FeatureStatsHandle constructor reads. */
export interface NativeFeatureStatsSpec {
  sae?: NativeSae;
  features: number[];
  contextSize: number;
  k: number;
  buffered: boolean;
  before: number;
  after: number;
  intervals: number;
  intervalSize: number;
  bins: number;
  seed: number;
  /** The libtorch-ops path on the CPU too (it runs off the CPU; the fused CPU pass is the default there). */
  tensorOps?: boolean;
}

/** FeatureStats::result(): F features, k top examples, I intervals of s samples, windows of w tokens. */
export interface NativeFeatureStatsResult {
  rows: number;
  window: number;
  /** [F] */
  max: NativeTensor;
  positive: NativeTensor;
  /** [F, <= k]; the index is the flat row * ctx + position. */
  topValue: NativeTensor;
  topIndex: NativeTensor;
  topWindow: NativeTensor;
  topTokens?: NativeTensor;
  /** [F], [F], [F, bins] */
  histLow: NativeTensor;
  histHigh: NativeTensor;
  histCount: NativeTensor;
  /** [F, I + 1], [F, I] */
  bounds: NativeTensor;
  intervalCount: NativeTensor;
  /** [F, I, s], index -1 where an interval has fewer than s tokens; windows [F, I, s, w]. */
  sampleValue: NativeTensor;
  sampleIndex: NativeTensor;
  sampleWindow: NativeTensor;
  sampleTokens?: NativeTensor;
}

export interface NativeLogitEffects {
  /** [F, k] each; the histogram [F], [F], [F, bins]. */
  topIds: NativeTensor;
  topValues: NativeTensor;
  bottomIds: NativeTensor;
  bottomValues: NativeTensor;
  histLow: NativeTensor;
  histHigh: NativeTensor;
  histCount: NativeTensor;
}

export interface NativeFeatureStats {
  /** [async] one batch of pass 1 or 2: activations [rows, ctx, ...], tokens [rows, ctx]. */
  add(pass: 1 | 2, activations: NativeTensor, tokens?: NativeTensor, cancel?: NativeCancelToken): Promise<void>;
  /** [async] once pass 2 saw every row. */
  result(): Promise<NativeFeatureStatsResult>;
  /** [async] the shapes of the state (the top k stays [F, k]) and its bytes. */
  stateSizes(): Promise<Record<'topValue' | 'topIndex' | 'topWindow' | 'sampleIndex' | 'sampleWindow', number[]> & { bytes: number }>;
  dispose(): void;
}

export interface NativeFeatureStatsClass {
  new (spec: NativeFeatureStatsSpec): NativeFeatureStats;
  /** [async] of logits [F, vocab], or of the SAE's decoder rows of `features` times `unembed` [d_out, vocab]. */
  logitEffects(
    request: { k: number; bins: number } & ({ logits: NativeTensor } | { sae: NativeSae; features: number[]; unembed: NativeTensor }),
  ): Promise<NativeLogitEffects>;
  /** [async] the SAE's decoder rows of `features`, float32 [F, d_out], on the SAE's device. */
  decoderRows(request: { sae: NativeSae; features: number[] }): Promise<NativeTensor>;
}
