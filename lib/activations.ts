// Capture and patching: what PyTorch users do with register_forward_hook, done by native
// graph instrumentation (native/program/hooks.h) in one forward pass.
import { callSite, CallSite, failure, settle } from './errors';
import { NativePatch, NativeProgramSummary, NativeValue } from './native';
import { Input, Model, NumericsOptions, numericsRequest, unwrapInputs, Value } from './model';
import { cancellable } from './signal';
import { disposeValue, Tensor, wrapValue } from './tensor';

/** Which calls of a module called several times in one forward to keep. */
export type Calls = 'last' | 'all';

export interface CaptureRequest extends NumericsOptions {
  layers: string | string[];
  /** 'last' (default): the value of the last call; 'all': an array, one value per call. */
  calls?: Calls;
  /** See RunOptions.allowNotRun. */
  allowNotRun?: boolean;
  /** Aborts the call while it waits behind other calls; a running call is not interrupted. */
  signal?: AbortSignal;
}

/**
 * How to rewrite a layer's output. Exactly one of set / zero / add / scale. Without
 * `channels` / `positions` the whole output changes; with them only that region does:
 * - [N, C, H, W] and [N, C] outputs: channels index dim 1; positions are [y, x] pairs.
 * - [N, S, H] outputs (transformer hidden states): positions index dim 1, channels dim 2.
 * Tensor values must broadcast to the layer's output shape and have its dtype.
 * A module returning a tuple has its first tensor patched.
 */
export interface PatchSpec {
  set?: Tensor;
  zero?: true;
  add?: Tensor;
  scale?: number;
  channels?: number[];
  positions?: number[] | [number, number][];
}

export interface RunOptions extends NumericsOptions {
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

/** The patch operator's modes (native/program/patch.h; test/constants.test.ts compares). */
export const PATCH_MODES = { set: 0, zero: 1, add: 2, scale: 3 } as const;
const patchKeys = new Set(['set', 'zero', 'add', 'scale', 'channels', 'positions']);

function checkIndices(values: unknown, what: string, layer: string, site: CallSite): number[] {
  if (!Array.isArray(values)) throw failure('INVALID_ARGUMENT', `patch '${layer}': ${what} must be an array`, site);
  const flat = values.flat() as unknown[];
  for (const value of flat) {
    if (!Number.isInteger(value)) {
      throw failure('INVALID_ARGUMENT', `patch '${layer}': ${what} must be integers, got ${JSON.stringify(value)}`, site);
    }
  }
  if (flat.length === 0) throw failure('INVALID_ARGUMENT', `patch '${layer}': ${what} is empty, so nothing would change`, site);
  return flat as number[];
}

export function toNativePatch(layer: string, spec: PatchSpec, site: CallSite): NativePatch {
  if (spec === null || typeof spec !== 'object') throw failure('INVALID_ARGUMENT', `patch '${layer}' must be an object`, site);
  for (const key of Object.keys(spec)) {
    if (!patchKeys.has(key)) {
      throw failure('INVALID_ARGUMENT', `patch '${layer}': unknown key '${key}' (expected set, zero, add, scale, channels, positions)`, site);
    }
  }
  const modes = (Object.keys(PATCH_MODES) as (keyof typeof PATCH_MODES)[]).filter((k) => spec[k] !== undefined);
  if (modes.length !== 1) {
    throw failure('INVALID_ARGUMENT', `patch '${layer}' needs exactly one of set, zero, add, scale; got ${modes.length ? modes.join(', ') : 'none'}`, site);
  }
  const mode = modes[0];
  const out: NativePatch = { layer, mode: PATCH_MODES[mode] };
  if (mode === 'set' || mode === 'add') {
    const value = spec[mode];
    if (!(value instanceof Tensor)) throw failure('INVALID_ARGUMENT', `patch '${layer}': ${mode} must be a Tensor`, site);
    out.value = value.handle;
  } else if (mode === 'zero' && spec.zero !== true) {
    throw failure('INVALID_ARGUMENT', `patch '${layer}': zero must be true`, site);
  } else if (mode === 'scale' && (typeof spec.scale !== 'number' || !Number.isFinite(spec.scale))) {
    throw failure('INVALID_ARGUMENT', `patch '${layer}': scale must be a finite number`, site);
  }
  if (mode === 'scale') out.scale = spec.scale;
  if (spec.channels !== undefined) out.channels = checkIndices(spec.channels, 'channels', layer, site);
  if (spec.positions !== undefined) out.positions = checkIndices(spec.positions, 'positions', layer, site);
  return out;
}

function pickCalls(calls: NativeValue[], which: Calls): Value {
  const values = calls.map((call) => wrapValue(call) as Value);
  if (which === 'all') return values;
  return values.length ? values[values.length - 1] : null;
}

export function normalizeInputs(inputs: Input | Input[]): Input[] {
  return Array.isArray(inputs) ? inputs : [inputs];
}

async function runInstrumented(model: Model, inputs: Input[], options: RunOptions, wantOutput: boolean, site: CallSite): Promise<RunResult> {
  const capture = options.capture ?? [];
  const patches = Object.entries(options.patch ?? {});
  const calls = options.calls ?? 'last';
  if (calls !== 'last' && calls !== 'all') throw failure('INVALID_ARGUMENT', `calls must be 'last' or 'all', got ${JSON.stringify(calls)}`, site);
  if (!Array.isArray(capture)) throw failure('INVALID_ARGUMENT', 'capture must be an array of layer names', site);
  model.checkLayers([...capture, ...patches.map(([layer]) => layer)], site);
  const handle = model.native(site);
  const request = {
    capture,
    patch: patches.map(([layer, spec]) => toNativePatch(layer, spec, site)),
    output: wantOutput,
    ...numericsRequest(model, options, site),
  };
  const result = await cancellable(options.signal, site, (cancel) => handle.run(unwrapInputs(inputs), request, cancel));
  const notRun = Object.keys(result.calls).filter((layer) => result.calls[layer] === 0);
  if (notRun.length && options.allowNotRun !== true) {
    const patched = notRun.filter((layer) => options.patch?.[layer] !== undefined);
    throw failure(
      'LAYER_NOT_RUN',
      `layer(s) ${notRun.map((l) => `'${l}'`).join(', ')} did not run in this forward: their call sites were not reached with this input ` +
        `(a branch not taken, or a loop that ran zero times)${patched.length ? `, so the patch of ${patched.map((l) => `'${l}'`).join(', ')} changed nothing` : ''}. ` +
        'Pass allowNotRun: true to get null for such captures instead.',
      site,
    );
  }
  const record: Record<string, Value> = {};
  for (const layer of capture) record[layer] = pickCalls(result.captures[layer], calls);
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
  const request: CaptureRequest = typeof what === 'string' || Array.isArray(what) ? { layers: what } : what;
  const single = typeof request.layers === 'string';
  const layers = single ? [request.layers as string] : (request.layers as string[]);
  if (!Array.isArray(layers) || layers.length === 0) throw failure('INVALID_ARGUMENT', 'name at least one layer', site);
  const result = await runInstrumented(
    model,
    inputs,
    { ...request, capture: layers },
    false,
    site,
  );
  return single ? result.activations[layers[0]] : result.activations;
}

/**
 * One forward pass with patches applied and activations captured. Captures downstream of a
 * patch see the patched values; a captured patched layer shows its patched output.
 */
export async function run(model: Model, inputs: Input | Input[], options: RunOptions = {}): Promise<RunResult> {
  const site = callSite(run);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'run(model, inputs, options): model must come from torch.load()', site);
  return runInstrumented(model, normalizeInputs(inputs), options, true, site);
}

/** What torch.inspect reports (fields documented on NativeProgramSummary, which it is). */
export type ProgramInfo = NativeProgramSummary;

/**
 * What the instrumented program for a request runs: the module calls left, op counts, build
 * time. `gradient` names layers whose gradients the program takes (torch.gradients' program:
 * with the objective's layer as `capture` and no output, it shows where the forward stops).
 */
export async function inspect(model: Model, options: RunOptions & { output?: boolean; gradient?: string[] }): Promise<ProgramInfo> {
  const site = callSite(inspect);
  const capture = options.capture ?? [];
  const gradient = options.gradient ?? [];
  const patches = Object.entries(options.patch ?? {});
  model.checkLayers([...capture, ...gradient, ...patches.map(([layer]) => layer)], site);
  const patch = patches.map(([layer, spec]) => toNativePatch(layer, spec, site));
  const handle = model.native(site);
  return settle(() => handle.inspect({ capture, patch, gradient, output: options.output ?? false, ...numericsRequest(model, options, site) }), site);
}
