// Capture and patching: what PyTorch users do with register_forward_hook, done by native
// graph instrumentation (native/torchscript/hooks.h) in one forward pass.
import { callSite, CallSite, failure, settle } from '../core/errors';
import { array, boolean, checkOptions, oneOf, optionKeys } from '../core/validate';
import { NativeProgramSummary, NativeValue } from '../native/binding';
import { cancellable } from '../native/signal';
import { Input, Model, normalizeInputs, NumericsOptions, numericsRequest, unwrapInputs, Value } from '../model/model';
import { disposeValue, wrapValue } from '../model/tensor';
import { nativePatches, patchedLayers, PatchSpec } from './patch';
import { Sae } from '../sae/sae';
import { SaeSplice, splices } from '../sae/splice';

/** Which calls of a module called several times in one forward to keep. */
export type Calls = 'last' | 'all';
const CALLS: readonly Calls[] = ['last', 'all'];

/** A checked `calls` option (default 'last'). */
export function callsOption(calls: Calls | undefined, site: CallSite): Calls {
  return oneOf(calls ?? 'last', 'calls', CALLS, site);
}

/** SAEs spliced into a run (lib/sae/splice.ts). */
export interface SpliceOptions {
  /** SAEs (torch.sae.load) whose output replaces their hook point's value; their values are layers: '<hook point>:features'... */
  saes?: (Sae | SaeSplice)[];
  /** Add each SAE's error term (x - SAE(x) of the clean input): the output is then unchanged until the features are edited. Default false, as SAELens. */
  errorTerm?: boolean;
}

export interface CaptureRequest extends NumericsOptions, SpliceOptions {
  layers: string | string[];
  /** 'last' (default): the value of the last call; 'all': an array, one value per call. */
  calls?: Calls;
  /** See RunOptions.allowNotRun. */
  allowNotRun?: boolean;
  /** Aborts the call while it waits behind other calls; a running call is not interrupted. */
  signal?: AbortSignal;
}

export interface RunOptions extends NumericsOptions, SpliceOptions {
  capture?: string[];
  patch?: Record<string, PatchSpec>;
  calls?: Calls;
  /**
   * A captured or patched layer whose calls this forward did not reach (they lie in a branch
   * the input did not take) rejects with LAYER_NOT_RUN by default. With true, such a capture
   * is null (calls 'last') or [] (calls 'all'), and the layer is listed in `notRun`.
   */
  allowNotRun?: boolean;
  /** Aborts the call while it waits behind other calls; a running call is not interrupted. */
  signal?: AbortSignal;
}

export interface RunResult extends Disposable {
  output: Value;
  activations: Record<string, Value>;
  /** Captured or patched layers whose hooks did not run (only with allowNotRun). */
  notRun: string[];
  /** Frees every tensor of the output and the activations now (`using result = await torch.run(...)`). */
  dispose(): void;
}

/** A record of activations that frees all its tensors with `using` / [Symbol.dispose](). */
export type ActivationRecord = Record<string, Value> & Disposable;

// Not enumerable: Object.keys and for..in see the layers only.
function disposable<T extends object>(target: T, values: () => unknown): T & Disposable {
  Object.defineProperty(target, Symbol.dispose, { value: () => disposeValue(values()), enumerable: false });
  return target as T & Disposable;
}

function pickCalls(calls: NativeValue[], which: Calls): Value {
  const values = calls.map((call) => wrapValue(call) as Value);
  if (which === 'all') return values;
  return values.length ? values[values.length - 1] : null;
}

// What activations and run share.
const SHARED_KEYS = { calls: true, allowNotRun: true, signal: true, precision: true, upcast: true, saes: true, errorTerm: true } as const;
const CAPTURE_KEYS = optionKeys<CaptureRequest>({ layers: true, ...SHARED_KEYS });
const RUN_KEYS = optionKeys<RunOptions>({ capture: true, patch: true, ...SHARED_KEYS });

/** `options` checked by its caller: run's, or activations' with its layers as `capture`. */
async function runInstrumented(model: Model, inputs: Input[], options: RunOptions, wantOutput: boolean, site: CallSite): Promise<RunResult> {
  const given = array(options.capture ?? [], 'capture', site) as string[];
  const calls = callsOption(options.calls, site);
  const allowNotRun = boolean(options.allowNotRun ?? false, 'allowNotRun', site);
  const spliced = splices(options.saes, options.errorTerm, model, site);
  const capture = given.map(spliced.layerName);
  const patch = options.patch && Object.fromEntries(Object.entries(options.patch).map(([layer, spec]) => [spliced.layerName(layer), spec]));
  model.checkLayers([...capture, ...patchedLayers(patch), ...spliced.points], site);
  const handle = model.native(site);
  const request = {
    capture,
    patch: nativePatches(patch, site),
    saes: spliced.native,
    output: wantOutput,
    ...numericsRequest(model, options, site),
  };
  const result = await cancellable(options.signal, site, (cancel) => handle.run(unwrapInputs(inputs), request, cancel));
  const notRun = Object.keys(result.calls).filter((layer) => result.calls[layer] === 0);
  if (notRun.length && !allowNotRun) {
    const patched = notRun.filter((layer) => patch?.[layer] !== undefined);
    throw failure(
      'LAYER_NOT_RUN',
      `layer(s) ${notRun.map((l) => `'${l}'`).join(', ')} did not run in this forward: their call sites were not reached with this input ` +
        `(a branch not taken, or a loop that ran zero times)${patched.length ? `, so the patch of ${patched.map((l) => `'${l}'`).join(', ')} changed nothing` : ''}. ` +
        'Pass allowNotRun: true to get null for such captures instead.',
      site,
    );
  }
  const record: Record<string, Value> = {};
  given.forEach((layer, i) => (record[layer] = pickCalls(result.captures[capture[i]], calls)));
  const activations: ActivationRecord = disposable(record, () => record);
  const output = wrapValue(result.output) as Value;
  const dispose = () => disposeValue([output, activations]);
  return { output, activations, notRun, dispose, [Symbol.dispose]: dispose };
}

/**
 * The output of one layer (a Tensor; an array for modules returning tuples) or of several
 * (a record by layer name), from one forward pass that stops after the last requested layer.
 */
export function activations(model: Model, layer: string, ...inputs: Input[]): Promise<Value>;
export function activations(model: Model, layers: string[], ...inputs: Input[]): Promise<ActivationRecord>;
export function activations(model: Model, request: CaptureRequest & { layers: string }, ...inputs: Input[]): Promise<Value>;
export function activations(model: Model, request: CaptureRequest & { layers: string[] }, ...inputs: Input[]): Promise<ActivationRecord>;
export async function activations(model: Model, what: string | string[] | CaptureRequest, ...inputs: Input[]): Promise<Value | ActivationRecord> {
  const site = callSite(activations);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'activations(model, layer, ...inputs): model must come from torch.load()', site);
  const { layers: named, ...request }: CaptureRequest =
    typeof what === 'string' || Array.isArray(what) ? { layers: what } : checkOptions(what, CAPTURE_KEYS, 'activations', site);
  const single = typeof named === 'string';
  const layers = single ? [named] : named;
  if (!Array.isArray(layers) || layers.length === 0) throw failure('INVALID_ARGUMENT', 'name at least one layer', site);
  const result = await runInstrumented(model, inputs, { ...request, capture: layers }, false, site);
  return single ? result.activations[layers[0]] : result.activations;
}

/**
 * One forward pass with patches applied and activations captured. Captures downstream of a
 * patch see the patched values; a captured patched layer shows its patched output.
 */
export async function run(model: Model, inputs: Input | Input[], options?: RunOptions): Promise<RunResult> {
  const site = callSite(run);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'run(model, inputs, options): model must come from torch.load()', site);
  return runInstrumented(model, normalizeInputs(inputs), checkOptions(options, RUN_KEYS, 'run', site), true, site);
}

/**
 * What torch.inspect reports (fields documented on NativeProgramSummary, which it is).
 * @useDeclaredType
 */
export type ProgramInfo = NativeProgramSummary;

/** What torch.inspect builds a program for: run's capture and patch, or torch.gradients' program. */
export interface InspectOptions extends NumericsOptions {
  capture?: string[];
  patch?: Record<string, PatchSpec>;
  /** Layers whose gradients the program takes. */
  gradient?: string[];
  /** Whether the program returns the model's output. Default false. */
  output?: boolean;
}

const INSPECT_KEYS = optionKeys<InspectOptions>({ capture: true, patch: true, gradient: true, output: true, precision: true, upcast: true });

/**
 * What the instrumented program for a request runs: the module calls left, op counts, build
 * time. `gradient` names layers whose gradients the program takes (torch.gradients' program:
 * with the objective's layer as `capture` and no output, it shows where the forward stops).
 */
export async function inspect(model: Model, given?: InspectOptions): Promise<ProgramInfo> {
  const site = callSite(inspect);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'inspect(model, options): model must come from torch.load()', site);
  const options = checkOptions(given, INSPECT_KEYS, 'inspect', site);
  const capture = array(options.capture ?? [], 'capture', site) as string[];
  const gradient = array(options.gradient ?? [], 'gradient', site) as string[];
  model.checkLayers([...capture, ...gradient, ...patchedLayers(options.patch)], site);
  const patch = nativePatches(options.patch, site);
  const output = boolean(options.output ?? false, 'output', site);
  const handle = model.native(site);
  return settle(() => handle.inspect({ capture, patch, gradient, output, ...numericsRequest(model, options, site) }), site);
}
