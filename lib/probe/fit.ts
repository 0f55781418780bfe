// torch.probe.fit: options checked and defaulted, labels, the held-out split and the control
// task made on the host (lib/probe/labels.ts), the fits and scores native (native/methods/probe.h).
import { callSite, CallSite, failure } from '../core/errors';
import { PROBE_KINDS, PROBE_MULTICLASS, ProbeKind, ProbeMulticlass } from '../core/names';
import { boolean, checkKeys, describeValue, finiteNumber, instance, integer, isRecord, oneOf, optionKeys, requiredOptions } from '../core/validate';
import { Tensor, tensor } from '../model/tensor';
import { binding } from '../native/addon';
import { NativeTensor } from '../native/binding';
import { cancellable } from '../native/signal';
import { checkedClasses, checkedTypes, controlLabels, hostLabels, labelTensor, ProbeLabels, ProbeTypes, split, Split } from './labels';
import { NativeProbeFit, NativeProbeRequest } from './native';
import { ControlResult, Probe } from './probe';

/** Held out by a seeded shuffle of x's rows: ceil(fraction * n) of them. */
export interface HeldOutFraction {
  /** In (0, 1). */
  fraction: number;
  /** Of the shuffle (mulberry32). Default 0. */
  seed?: number;
}

/** Held-out examples given apart. */
export interface HeldOutData {
  /** [m, d], as x. */
  x: Tensor;
  labels: ProbeLabels;
  /** Their control-task types (with control.types, which they continue). */
  types?: ProbeTypes;
}

/** The control task of Hewitt & Liang (2019), "Designing and Interpreting Probes with Control Tasks". */
export interface ControlTask {
  /**
   * What each row of x is an instance of (e.g. its token id): every type gets one random label,
   * so a probe can only do well on the control task by memorizing types. Default: each example
   * is its own type.
   */
  types?: ProbeTypes;
  /** Of the labels' draw (mulberry32). Default 0. */
  seed?: number;
}

export interface ProbeOptions {
  /** [n, d] float32 or float64: one row per example (e.g. a layer's activations at one position). Fitted in float64. */
  x: Tensor;
  /** One per row of x: class ids 0..C-1 (every class with a training example), or for kind 'linear' real targets. */
  labels: ProbeLabels;
  /**
   * - 'logistic' (default): logistic regression, binary or with `multiclass`.
   * - 'linear': ridge regression of a real quantity (scores are R^2).
   * - 'massMean': the mass-mean probe of Marks & Tegmark (2023), geometry-of-truth's MMProbe:
   *   binary labels; direction mean(x | 1) - mean(x | 0); predicts round(sigmoid(x . w)), no bias.
   */
  kind?: ProbeKind;
  /** logistic, more than two classes: one softmax over the classes ('multinomial', default, as scikit-learn >= 1.5), or one binary problem per class ('ovr'). */
  multiclass?: ProbeMulticlass;
  /**
   * The L2 penalty, default 1. logistic minimizes sum_i loss_i + (l2 / 2) ||W||^2 (the loss
   * summed over examples, the intercept unpenalized): scikit-learn's LogisticRegression with
   * C = 1 / l2. linear minimizes ||y - X w - b||^2 + l2 ||w||^2: scikit-learn's Ridge(alpha=l2).
   */
  l2?: number;
  /** logistic and linear: fit an unpenalized intercept (default true). */
  fitIntercept?: boolean;
  /** logistic: L-BFGS iterations at most (default 10000). */
  maxIterations?: number;
  /**
   * logistic: converged when every |entry| of the gradient of the mean objective (the objective
   * over n: scikit-learn's gtol) is at most this. Default 1e-10.
   */
  tolerance?: number;
  /** massMean: predict with pinv(Sigma) theta, Sigma the pooled within-class covariance (MMProbe's iid). Default false. */
  iid?: boolean;
  /** Held-out data, scored as validationAccuracy: a seeded fraction of x's rows, or other examples. */
  validation?: HeldOutFraction | HeldOutData;
  /** Fits a second probe on the control task (needs `validation`): control.accuracy and selectivity. */
  control?: ControlTask;
  /** Aborts the fit (between L-BFGS iterations) and what follows it. */
  signal?: AbortSignal;
}

export const PROBE_DEFAULTS = {
  kind: 'logistic' as ProbeKind,
  multiclass: 'multinomial' as ProbeMulticlass,
  l2: 1,
  fitIntercept: true,
  maxIterations: 10000,
  tolerance: 1e-10,
  iid: false,
  seed: 0,
};

const PROBE_KEYS = optionKeys<ProbeOptions>({
  x: true,
  labels: true,
  kind: true,
  multiclass: true,
  l2: true,
  fitIntercept: true,
  maxIterations: true,
  tolerance: true,
  iid: true,
  validation: true,
  control: true,
  signal: true,
});
const VALIDATION_KEYS = [...optionKeys<HeldOutFraction>({ fraction: true, seed: true }), ...optionKeys<HeldOutData>({ x: true, labels: true, types: true })];
const CONTROL_KEYS = optionKeys<ControlTask>({ types: true, seed: true });
// The options that mean something for a kind; another kind rejects them.
const APPLIES: Partial<Record<keyof ProbeOptions, readonly ProbeKind[]>> = {
  multiclass: ['logistic'],
  l2: ['logistic', 'linear'],
  fitIntercept: ['logistic', 'linear'],
  maxIterations: ['logistic'],
  tolerance: ['logistic'],
  iid: ['massMean'],
  control: ['logistic', 'massMean'],
};

/** x, or validation.x: [n, d] float32 / float64, d as given. */
function features(value: unknown, name: string, dim: number | null, site: CallSite): Tensor {
  const x = instance(value, name, Tensor, site);
  if (x.disposed) throw failure('DISPOSED', `${name} has been disposed`, site);
  const shape = x.shape;
  if (shape.length !== 2 || shape[0] === 0 || shape[1] === 0) throw failure('SHAPE', `${name} must be [n, d] with n, d >= 1, got shape [${shape}]`, site);
  if (dim !== null && shape[1] !== dim) throw failure('SHAPE', `${name} has ${shape[1]} features but x has ${dim}`, site);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw failure('DTYPE', `${name} must be float32 or float64, got ${x.dtype}`, site);
  return x;
}

function nested<T extends object>(value: unknown, keys: readonly string[], name: string, example: string, site: CallSite): T | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw failure('INVALID_ARGUMENT', `probe.fit: ${name} must be an object such as ${example}, got ${describeValue(value)}`, site);
  checkKeys(value, keys, `probe.fit ${name}`, site);
  return value as T;
}

/**
 * Fits a linear probe on x's rows (natively, in float64, off the event loop) and scores it:
 * train accuracy, and with `validation` held-out accuracy, and with `control` the control task's
 * accuracy and the selectivity. Errors reject with a code: INVALID_ARGUMENT (labels out of range
 * or one class, row counts that differ, non-finite x, options), SHAPE, DTYPE, ABORTED.
 */
export async function fit(options: ProbeOptions): Promise<Probe> {
  const site = callSite(fit);
  const o = requiredOptions(options, PROBE_KEYS, 'probe.fit', '{ x, labels }', site);
  const validation = nested<HeldOutFraction & HeldOutData>(o.validation, VALIDATION_KEYS, 'validation', '{ fraction: 0.2 }', site);
  const control = nested<ControlTask>(o.control, CONTROL_KEYS, 'control', '{ seed: 0 }', site);
  const kind = oneOf(o.kind ?? PROBE_DEFAULTS.kind, 'kind', PROBE_KINDS, site);
  for (const [key, kinds] of Object.entries(APPLIES)) {
    if (o[key as keyof ProbeOptions] !== undefined && !kinds.includes(kind))
      throw failure('INVALID_ARGUMENT', `probe.fit: ${key} applies to ${kinds.join(' and ')} probes, not ${kind}`, site);
  }
  const request = {
    kind,
    multiclass: oneOf(o.multiclass ?? PROBE_DEFAULTS.multiclass, 'multiclass', PROBE_MULTICLASS, site),
    l2: finiteNumber(o.l2 ?? PROBE_DEFAULTS.l2, 'l2', { min: 0 }, site),
    fitIntercept: boolean(o.fitIntercept ?? PROBE_DEFAULTS.fitIntercept, 'fitIntercept', site),
    maxIterations: integer(o.maxIterations ?? PROBE_DEFAULTS.maxIterations, 'maxIterations', { min: 1, max: 2 ** 31 }, site),
    tolerance: finiteNumber(o.tolerance ?? PROBE_DEFAULTS.tolerance, 'tolerance', { min: 0 }, site),
    iid: boolean(o.iid ?? PROBE_DEFAULTS.iid, 'iid', site),
  };
  const x = features(o.x, 'x', null, site);
  const [n, dim] = x.shape;
  const isClassifier = kind !== 'linear';
  const labels = await hostLabels(o.labels, 'labels', n, isClassifier, site);

  let rows: Split | undefined;
  let heldOut: { x: Tensor; labels: Float64Array; types?: ArrayLike<number> } | undefined;
  if (validation !== undefined) {
    const byFraction = validation.fraction !== undefined || validation.seed !== undefined;
    const byData = validation.x !== undefined || validation.labels !== undefined || validation.types !== undefined;
    if (byFraction === byData) throw failure('INVALID_ARGUMENT', 'probe.fit: validation is { fraction, seed? } or { x, labels, types? }', site);
    if (byFraction) {
      const fraction = finiteNumber(validation.fraction, 'validation.fraction', { above: 0, below: 1 }, site);
      rows = split(n, fraction, integer(validation.seed ?? PROBE_DEFAULTS.seed, 'validation.seed', { min: 0 }, site), site);
    } else {
      const heldX = features(validation.x, 'validation.x', dim, site);
      heldOut = { x: heldX, labels: await hostLabels(validation.labels, 'validation.labels', heldX.shape[0], isClassifier, site) };
      if (validation.types !== undefined) {
        if (control?.types === undefined) throw failure('INVALID_ARGUMENT', 'probe.fit: validation.types go with control.types', site);
        heldOut.types = checkedTypes(validation.types, 'validation.types', heldX.shape[0], site);
      }
    }
  }

  let classes = 0;
  if (isClassifier) {
    classes = checkedClasses(labels, rows?.train, 'labels', site);
    if (kind === 'massMean' && classes !== 2)
      throw failure('INVALID_ARGUMENT', `a massMean probe is binary (labels 0 and 1); these have ${classes} classes`, site);
    const outside = heldOut?.labels.findIndex((label) => label >= classes) ?? -1;
    if (outside >= 0)
      throw failure('INVALID_ARGUMENT', `validation.labels[${outside}] is class ${heldOut!.labels[outside]}, but the classes are 0..${classes - 1}`, site);
  }

  let task: { labels: Int32Array; heldOut: Int32Array; classes: number } | undefined;
  if (control !== undefined) {
    if (validation === undefined) throw failure('INVALID_ARGUMENT', 'probe.fit: control is scored on held-out data: give validation too', site);
    const types = control.types === undefined ? null : checkedTypes(control.types, 'control.types', n, site);
    if (types !== null && heldOut !== undefined && heldOut.types === undefined)
      throw failure('INVALID_ARGUMENT', 'probe.fit: with control.types, held-out data needs validation.types', site);
    const seed = integer(control.seed ?? PROBE_DEFAULTS.seed, 'control.seed', { min: 0 }, site);
    const drawn = controlLabels(labels, types, heldOut?.types ?? null, heldOut?.x.shape[0] ?? 0, seed);
    task = { ...drawn, classes: checkedClasses(Float64Array.from(drawn.labels), rows?.train, "the control task's labels", site) };
  }

  const signal = o.signal;
  const made: Tensor[] = [];
  const make = (t: Tensor) => (made.push(t), t);
  const fitOn = async (labelValues: NativeTensor, classCount: number): Promise<NativeProbeFit> => {
    const native: NativeProbeRequest = { ...request, classes: classCount, x: x.handle, labels: labelValues };
    if (rows) native.rows = make(tensor(rows.train)).handle;
    return cancellable(signal, site, (cancel) => binding().ProbeHandle.fit(native, cancel));
  };
  const scoreOn = (fitted: NativeProbeFit, on: Tensor, labelValues: Tensor, pick?: Int32Array) => {
    const picked = pick && make(tensor(pick)).handle;
    return cancellable(signal, site, (cancel) => fitted.probe.score(on.handle, labelValues.handle, picked, cancel));
  };
  const release = (fitted: NativeProbeFit) => {
    fitted.probe.dispose();
    for (const t of [fitted.weight, fitted.bias, fitted.direction]) t?.dispose();
  };

  let fitted: NativeProbeFit | undefined;
  try {
    const taskLabels = make(labelTensor(labels, isClassifier));
    fitted = await fitOn(taskLabels.handle, classes);
    const trainAccuracy = await scoreOn(fitted, x, taskLabels, rows?.train);
    let validationAccuracy: number | undefined;
    if (rows) validationAccuracy = await scoreOn(fitted, x, taskLabels, rows.validation);
    if (heldOut) validationAccuracy = await scoreOn(fitted, heldOut.x, make(labelTensor(heldOut.labels, isClassifier)), undefined);
    let controlResult: ControlResult | undefined;
    if (task) {
      const controlFit = await fitOn(make(tensor(task.labels)).handle, task.classes);
      try {
        const accuracy = heldOut
          ? await scoreOn(controlFit, heldOut.x, make(tensor(task.heldOut)), undefined)
          : await scoreOn(controlFit, x, make(tensor(task.labels)), rows!.validation);
        controlResult = { accuracy, labels: task.labels, ...(heldOut ? { validationLabels: task.heldOut } : {}) };
      } finally {
        release(controlFit);
      }
    }
    const dtype = x.dtype as 'float32' | 'float64';
    return new Probe(fitted, {
      kind,
      multiclass: request.multiclass,
      classes: isClassifier ? classes : null,
      dtype,
      trainAccuracy,
      validationAccuracy,
      control: controlResult,
      split: rows,
    });
  } catch (error) {
    if (fitted) release(fitted);
    throw error;
  } finally {
    for (const t of made) t.dispose();
  }
}
