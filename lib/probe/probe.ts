// A fitted linear probe: its parameters, how well it did (train, held out, against the control
// task), its predictions off the event loop (native/methods/probe.h), and its direction as the
// interventions and objectives of the rest of the API take it: a steering patch, a projection
// patch, a direction objective.
import { callSite, CallSite, failure, settle } from '../core/errors';
import { ProbeKind, ProbeMulticlass } from '../core/names';
import { finiteNumber, instance, integer, string } from '../core/validate';
import { Objective } from '../methods/objective';
import { PatchSpec } from '../methods/patch';
import { Tensor, tensor } from '../model/tensor';
import { hostLabels, labelTensor, ProbeLabels, Split } from './labels';
import { NativeProbe, NativeProbeFit } from './native';

/** The control task's outcome (Hewitt & Liang 2019). */
export interface ControlResult {
  /** The control probe's accuracy on the held-out rows, against their control labels. */
  accuracy: number;
  /** The control label of each row of x. */
  labels: Int32Array;
  /** The control label of each row of validation.x, when held-out data was given. */
  validationLabels?: Int32Array;
}

/** @internal What fit() measured besides the parameters. */
export interface ProbeOutcome {
  kind: ProbeKind;
  multiclass: ProbeMulticlass;
  classes: number | null;
  dtype: 'float32' | 'float64';
  trainAccuracy: number;
  validationAccuracy: number | undefined;
  control: ControlResult | undefined;
  split: Split | undefined;
}

export class Probe implements Disposable {
  readonly kind: ProbeKind;
  /** How more than two classes are fitted: one softmax, or one binary problem per class. */
  readonly multiclass: ProbeMulticlass;
  /** The number of classes (2 for a binary probe); null for a linear (regression) probe. */
  readonly classes: number | null;
  /** Features per example (d). */
  readonly dim: number;
  /** The dtype of the x it was fitted on: that of the vectors steer() and objective() give. */
  readonly dtype: 'float32' | 'float64';
  /**
   * [rows, d] float64 on the CPU: one row (binary logistic, linear, massMean: the weight it
   * predicts with, pinv(Sigma) theta with iid) or one per class (multinomial, one-vs-rest; the
   * multinomial rows sum to zero). Owned by the probe: disposed with it.
   */
  readonly weight: Tensor;
  /** [rows] float64: the intercepts (0 without fitIntercept, and for massMean; multinomial ones sum to zero). */
  readonly bias: Tensor;
  /** Accuracy on the rows fitted on (R^2 for a linear probe). */
  readonly trainAccuracy: number;
  /** Accuracy on the held-out rows (R^2 for a linear probe), when `validation` was given. */
  readonly validationAccuracy: number | undefined;
  /** The control task's probe, when `control` was given. */
  readonly control: ControlResult | undefined;
  /** validationAccuracy - control.accuracy: how much of the accuracy the control task does not explain. */
  readonly selectivity: number | undefined;
  /** The rows of x fitted on and held out, for validation: { fraction }. */
  readonly split: Split | undefined;
  /** L-BFGS iterations (the most of any class for one-vs-rest); 0 for the closed forms. */
  readonly iterations: number;
  /** Whether the gradient tolerance was met (always for the closed forms). */
  readonly converged: boolean;
  private readonly rows: Float64Array[];
  private readonly single: Float64Array | null;
  private readonly singleTensor: Tensor | null;
  private handle: NativeProbe | null;

  /** @internal Probes come from torch.probe.fit(). */
  constructor(fitted: NativeProbeFit, outcome: ProbeOutcome) {
    this.handle = fitted.probe;
    this.weight = new Tensor(fitted.weight);
    this.bias = new Tensor(fitted.bias);
    this.singleTensor = fitted.direction ? new Tensor(fitted.direction) : null;
    const [count, dim] = this.weight.shape;
    const data = this.weight.data() as Float64Array;
    this.rows = Array.from({ length: count }, (_, r) => data.slice(r * dim, (r + 1) * dim));
    this.single = this.singleTensor ? (this.singleTensor.data() as Float64Array).slice() : null;
    this.dim = dim;
    this.kind = outcome.kind;
    this.multiclass = outcome.multiclass;
    this.classes = outcome.classes;
    this.dtype = outcome.dtype;
    this.trainAccuracy = outcome.trainAccuracy;
    this.validationAccuracy = outcome.validationAccuracy;
    this.control = outcome.control;
    this.selectivity = outcome.control && outcome.validationAccuracy !== undefined ? outcome.validationAccuracy - outcome.control.accuracy : undefined;
    this.split = outcome.split;
    this.iterations = fitted.iterations;
    this.converged = fitted.converged;
  }

  get disposed(): boolean {
    return this.handle === null;
  }

  /**
   * [d] float64: the probe's direction, for a probe with one weight row (binary logistic and
   * linear: the weight; massMean: mean(positive) - mean(negative), also with iid). A probe with a
   * row per class has none: use directionOf(class). Owned by the probe.
   */
  get direction(): Tensor {
    const site = callSite(Object.getOwnPropertyDescriptor(Probe.prototype, 'direction')!.get!);
    this.native(site);
    if (this.singleTensor === null) throw this.perClass(site);
    return this.singleTensor;
  }

  /**
   * [d] float64, a new tensor: the direction that raises class `c`'s score: its weight row (a
   * row per class), or for a binary probe the direction for class 1 and its negation for class 0.
   */
  directionOf(c: number): Tensor {
    const site = callSite(this.directionOf);
    this.native(site);
    return tensor(this.vector(c, site), [this.dim], 'float64');
  }

  /** Class ids (int64 [n]) of x [n, d], or for a linear probe its predicted values (float64 [n]). */
  async predict(x: Tensor): Promise<Tensor> {
    const site = callSite(this.predict);
    const handle = this.native(site);
    return new Tensor(await settle(() => handle.predict(input(x, site)), site));
  }

  /** [n, classes] float64 class probabilities of x (binary: [1 - p, p]; one-vs-rest: sigmoids normalized). */
  async probabilities(x: Tensor): Promise<Tensor> {
    const site = callSite(this.probabilities);
    const handle = this.native(site);
    return new Tensor(await settle(() => handle.probabilities(input(x, site)), site));
  }

  /** Accuracy of predict(x) against `labels` (R^2 for a linear probe, as scikit-learn's score). */
  async score(x: Tensor, labels: ProbeLabels): Promise<number> {
    const site = callSite(this.score);
    const handle = this.native(site);
    const rows = input(x, site);
    const values = await hostLabels(labels, 'labels', x.shape[0], this.classes !== null, site);
    const native = labelTensor(values, this.classes !== null);
    try {
      return await settle(() => handle.score(rows, native.handle), site);
    } finally {
      native.dispose();
    }
  }

  /**
   * A patch adding `alpha` times the unit direction (a class's with a row per class): torch.run(model,
   * inputs, { patch: { [layer]: probe.steer(4) } }). The [d] vector, of the probe's dtype,
   * broadcasts over the last dim of the layer's output ([N, d] and [N, S, d] outputs).
   */
  steer(alpha: number, c?: number): PatchSpec {
    const site = callSite(this.steer);
    finiteNumber(alpha, 'alpha', {}, site);
    const unit = this.unit(c, site);
    return {
      add: tensor(
        unit.map((v) => alpha * v),
        [this.dim],
        this.dtype,
      ),
    };
  }

  /**
   * A patch removing the probe's direction from the layer's output (the `project` patch: x -
   * (x.u)u over channels): with a row per class, every row's (their span) unless `c` picks one.
   */
  projectOut(c?: number): PatchSpec {
    const site = callSite(this.projectOut);
    this.native(site);
    if (c === undefined && this.single === null)
      return { project: tensor(Float64Array.from(this.rows.flatMap((r) => [...r])), [this.rows.length, this.dim], 'float64') };
    return { project: tensor(this.vector(c, site), [this.dim], 'float64') };
  }

  /**
   * The objective { layer, direction: unit direction } (a class's with a row per class): the
   * mean over positions of the layer's output projected on it, for torch.maximize and
   * torch.gradients.
   */
  objective(layer: string, c?: number): Objective {
    const site = callSite(this.objective);
    string(layer, 'layer', site);
    return { layer, direction: tensor(this.unit(c, site), [this.dim], this.dtype) };
  }

  /** Frees the probe and its weight, bias and direction; later calls reject with DISPOSED. Idempotent. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = null;
    for (const t of [this.weight, this.bias, this.singleTensor]) t?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private native(site: CallSite): NativeProbe {
    if (this.handle === null) throw failure('DISPOSED', 'this probe has been disposed', site);
    return this.handle;
  }

  private perClass(site: CallSite) {
    return failure('INVALID_ARGUMENT', `this probe has a weight row per class (${this.rows.length}): name the class, e.g. directionOf(0)`, site);
  }

  /** The direction of class c, or the probe's one direction when c is undefined. */
  private vector(c: number | undefined, site: CallSite): Float64Array {
    this.native(site);
    if (c === undefined) {
      if (this.single === null) throw this.perClass(site);
      return this.single.slice();
    }
    if (this.classes === null) throw failure('INVALID_ARGUMENT', 'a linear probe has no classes: use its direction', site);
    integer(c, 'class', { min: 0, max: this.classes - 1 }, site);
    if (this.rows.length > 1) return this.rows[c].slice();
    const one = this.single!;
    return c === 1 ? one.slice() : one.map((v) => -v);
  }

  private unit(c: number | undefined, site: CallSite): Float64Array {
    const v = this.vector(c, site);
    const norm = Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
    if (!(norm > 0)) throw failure('INVALID_ARGUMENT', 'the probe direction is zero: it has no unit direction', site);
    return v.map((x) => x / norm);
  }
}

function input(x: Tensor, site: CallSite) {
  instance(x, 'x', Tensor, site);
  if (x.disposed) throw failure('DISPOSED', 'x has been disposed', site);
  return x.handle;
}
