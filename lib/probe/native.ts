// The native probe (native/methods/probe.h: fitted in float64 on the data's device, predicting
// and scoring there), merged into NativeBinding below.
import { ProbeKind, ProbeMulticlass } from '../core/names';
import { NativeCancelToken, NativeTensor } from '../native/binding';

declare module '../native/binding' {
  interface NativeBinding {
    ProbeHandle: { fit(request: NativeProbeRequest, cancel?: NativeCancelToken): Promise<NativeProbeFit> };
  }
}

/** What ProbeHandle.fit reads: every field given (lib/probe/fit.ts holds the defaults). */
export interface NativeProbeRequest {
  kind: ProbeKind;
  multiclass: ProbeMulticlass;
  l2: number;
  fitIntercept: boolean;
  maxIterations: number;
  /** On the mean objective's gradient, max-abs. */
  tolerance: number;
  iid: boolean;
  /** Class ids are in [0, classes); 0 for linear. */
  classes: number;
  /** [n, d] floating. */
  x: NativeTensor;
  /** [n]: integer class ids, or float64 targets. */
  labels: NativeTensor;
  /** The rows of x and labels fitted on (integer [m]); all without. */
  rows?: NativeTensor;
}

export interface NativeProbeFit {
  probe: NativeProbe;
  /** [rows, d] float64 on the CPU. */
  weight: NativeTensor;
  /** [rows] */
  bias: NativeTensor;
  /** [d], for a one-row probe (massMean: theta); null for a row per class. */
  direction: NativeTensor | null;
  iterations: number;
  converged: boolean;
}

export interface NativeProbe {
  /** [async] class ids (int64) or values (float64) on the CPU. */
  predict(x: NativeTensor): Promise<NativeTensor>;
  /** [async] [n, classes] float64 on the CPU. */
  probabilities(x: NativeTensor): Promise<NativeTensor>;
  /** [async] accuracy (R^2 for linear) on `rows` of x and labels (all without). */
  score(x: NativeTensor, labels: NativeTensor, rows?: NativeTensor, cancel?: NativeCancelToken): Promise<number>;
  dispose(): void;
}
