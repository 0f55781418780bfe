// torch.probe: linear probes on activations (logistic, ridge, mass-mean), fitted natively in
// float64 to scikit-learn's and geometry-of-truth's definitions, with held-out and control-task
// scores, and their directions as steering and projection patches and as objectives.
export { fit, ProbeOptions, HeldOutFraction, HeldOutData, ControlTask, PROBE_DEFAULTS } from './fit';
export { Probe, ControlResult } from './probe';
export type { ProbeLabels, ProbeTypes, Split } from './labels';
export type { ProbeKind, ProbeMulticlass } from '../core/names';
