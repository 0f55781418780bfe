// Loading models (TorchScript files and torch.export programs) and running them.
import { Precision, PRECISIONS, SAE_STAGES } from '../core/names';
import { promises as fs } from 'fs';

import { callSite, CallSite, failure, guard, settle, TorchscopeError } from '../core/errors';
import { boolean, checkKeys, checkOptions, closestNames, isRecord, oneOf, optionKeys, positiveInteger } from '../core/validate';
import { binding } from '../native/addon';
import { NativeModel, NativeValue } from '../native/binding';
import { cancellable } from '../native/signal';
import { Device, Tensor, unwrapValue, wrapValue } from './tensor';
import { ModelManifest, readManifest } from './manifest';

/** A layer name's suffix for the module's first tensor input (native/program/hook_points.h kInputSuffix). */
export const INPUT_SUFFIX = ':input';
/** A layer name's suffix for an attention module's pattern, the probabilities of the softmax in its forward (kPatternSuffix). */
export const PATTERN_SUFFIX = ':pattern';
/** Between a module's path and the name of an operation in its forward: 'model.layers.0.self_attn/softmax' (kNodeSeparator). */
export const NODE_SEPARATOR = '/';

/** A layer name without an SAE stage (':features'...): the hook point itself. */
export function layerBase(name: string): string {
  const stage = SAE_STAGES.find((suffix) => name.endsWith(suffix));
  return stage ? name.slice(0, -stage.length) : name;
}

/** The module a layer name hooks: the module itself, its input, its pattern, an operation of its forward, or an SAE spliced at one of those. */
export function layerModule(given: string): string {
  const name = layerBase(given);
  const separator = name.indexOf(NODE_SEPARATOR);
  if (separator >= 0) return name.slice(0, separator);
  for (const suffix of [INPUT_SUFFIX, PATTERN_SUFFIX]) if (name.endsWith(suffix)) return name.slice(0, -suffix.length);
  return name;
}

/** What a model returns: tuples and lists become arrays, dicts objects. */
export type Value = Tensor | Value[] | { [key: string]: Value } | number | string | boolean | null;
/** What a model takes: tensors mostly; arrays of tensors become List[Tensor]. */
export type Input = Tensor | number | bigint | boolean | string | null | Input[] | { [key: string]: Input };

/** Options of a single call. */
export interface CallOptions {
  /** Aborts the call while it waits behind other calls; a running call is not interrupted. */
  signal?: AbortSignal;
}

const CALL_OPTIONS = optionKeys<CallOptions>({ signal: true });

/**
 * forward(x, { signal }): the last argument is the options when it is an object holding an
 * AbortSignal (no model input holds one), and then may hold nothing else.
 */
function splitCallOptions(args: (Input | CallOptions)[], what: string, site: CallSite): { inputs: Input[]; options: CallOptions } {
  const last = args[args.length - 1];
  if (!isRecord(last) || last instanceof Tensor || !Object.values(last).some((value) => value instanceof AbortSignal))
    return { inputs: args as Input[], options: {} };
  checkKeys(last, CALL_OPTIONS, what, site);
  return { inputs: args.slice(0, -1) as Input[], options: last as CallOptions };
}

export interface LoadOptions {
  /** Where the model runs; 'auto' picks the first GPU when one is usable. Default 'cpu'. */
  device?: Device;
  /**
   * A model file is a program. By default a file whose code (a TorchScript file's methods, a
   * `.pt2` program's nodes) calls an operator with effects outside tensor computation (writing or
   * reading files, process-wide state, network) is refused before any of it runs, naming the
   * operator and where it is called. true runs such a file. Default false.
   */
  trusted?: boolean;
  /** How far the archive may inflate, in bytes. Default 4 x the file's size + 64 MiB, at most the machine's memory. */
  maxInflatedBytes?: number;
  /** Aborts the load while it waits behind other calls. */
  signal?: AbortSignal;
  /**
   * Run frozen, inference-optimised programs (conv-BN folding; on the CPU, convolutions prepacked
   * for oneDNN's channels-last kernels; in transformers, linears prepacked for oneDNN with their
   * activation fused and attention fused into one kernel; else oneDNN's blocked layouts): faster,
   * with captured values and outputs within 1e-4 relative of PyTorch's instead of 1e-5 absolute.
   * Captures still see exactly what each module returned (a value a hook reads is never fused away).
   * Default false.
   */
  optimize?: boolean;
  /**
   * What matmul-like ops (convolutions, linear layers, matmuls) compute in: 'fp32' (default),
   * or 'bf16' / 'fp16', as PyTorch's torch.autocast(device, dtype) around every call of the
   * model (forward, captures, patches, gradients, maximize, attribution, sweeps). Numerically
   * sensitive ops (softmax, layer norm...) stay float32, as autocast decides. Captured values
   * and outputs come back in the type computed (bfloat16 / float16 tensors), or float32 with
   * `upcast`. On a CPU without native support (torch.info().cpu) it is emulated, slower than
   * float32: load warns (process warning TORCHSCOPE_EMULATED_PRECISION).
   */
  precision?: Precision;
  /** With a reduced precision: return captures and outputs as float32. Default false. */
  upcast?: boolean;
  /**
   * Load the cached decoding step the manifest names (`torchscope export` writes one beside a
   * causal LM; `model.decodeStep`), which torch.generate uses. Default true; false loads the
   * model alone.
   */
  decodeStep?: boolean;
}

/**
 * A call's own numerics over the model's (load's `precision` and `upcast`): run, activations,
 * inspect, gradients, attribute and logitLens take them; maximize and patchingSweep take
 * `precision` (what they return is float32 either way). Each precision is its own program,
 * built once per model and cached.
 */
export interface NumericsOptions {
  /** What this call's matmul-like ops compute in (see LoadOptions.precision). Default: the model's. */
  precision?: Precision;
  /** Return this call's captures and outputs as float32 (see LoadOptions.upcast). Default: the model's. */
  upcast?: boolean;
}

/** load()'s precisions (native/program/precision.h). */
export type { Precision } from '../core/names';

export interface ModuleInfo {
  /** The name to pass as a layer: 'layer4.1.conv2'; '' is the model itself. */
  path: string;
  /** The module's class name, e.g. 'Conv2d', 'BertSelfAttention'. */
  type: string;
  /** Whether it can be captured and patched: forward reaches a call of its forward that torchscope can name. */
  hookable: boolean;
  /** How many places in the model's code (all of forward, inlined) call its forward. */
  callSites: number;
  /** Why it cannot be hooked, when it cannot (picked from a container at run time, never called by forward, ...). */
  reason?: string;
}

/** An argument of a submodule's forward (Model.signature). */
export interface ArgumentInfo {
  name: string;
  /** Its TorchScript type, e.g. 'Tensor'. */
  type: string;
  /** The model gives it when the submodule is called alone (model.call, logit-lens heads); the caller gives the others. */
  supplied: boolean;
  /** It has a default: the caller may leave it out when it comes last. */
  optional: boolean;
  /** Where its value comes from: 'transformer.wte.weight', or "computed by 'model' from forward's inputs". */
  source?: string;
}

/** An operation of a module's forward that can be hooked (Model.nodes). */
export interface NodeInfo {
  /** The layer name that hooks it: '<module path>/<node>', e.g. 'model.layers.0.self_attn/softmax'. */
  name: string;
  /** Its operator, e.g. 'aten::softmax'. */
  op: string;
  /** It is the softmax that '<module path>:pattern' names. */
  pattern: boolean;
  /**
   * Its value's shape at the first call, when sample inputs were given (and it is a tensor);
   * without them, the shape an exported program (.pt2) records, -1 for a dynamic size.
   */
  shape?: number[];
}

export class Model {
  /** The file the model was loaded from. */
  readonly path: string;
  /** What `torchscope export` wrote beside the file (`<name>.torchscope.json`): names, sizes, hook points, tokenizer; null without one. */
  readonly manifest: ModelManifest | null;
  /**
   * A causal LM's cached decoding step (`manifest.decodeStep`), loaded with the model and holding
   * no second copy of its weights: the same modules, forward taking `input_ids` [batch, new] and
   * each layer's past keys and values [batch, heads, past, head dim] (an empty past, size 0, to
   * prefill), returning [logits of the new positions, ...keys and values over past + new]. Hooks
   * on it see the new positions only, and a block's (or attention module's) output there also
   * carries its keys and values: a tuple whose first tensor is the output. torch.generate uses
   * it; disposed with the model. null without one.
   */
  readonly decodeStep: Model | null;
  private handle: NativeModel | null;
  private moduleList: ModuleInfo[];

  /** @internal Models come from torch.load(). */
  constructor(handle: NativeModel, file: string, manifest: ModelManifest | null = null, decodeStep: Model | null = null) {
    this.handle = handle;
    this.path = file;
    this.manifest = manifest;
    this.decodeStep = decodeStep;
    this.moduleList = handle
      .modules()
      .map(({ path, type, callSites, unhookable }) =>
        unhookable ? { path, type, hookable: false, callSites, reason: unhookable } : { path, type, hookable: true, callSites },
      );
  }

  /** 'cpu' or 'cuda:N'. */
  get device(): string {
    return guard(() => this.native().device());
  }

  get disposed(): boolean {
    return this.handle === null;
  }

  /** forward's arguments as its schema declares them (after self): names and TorchScript types. */
  get inputs(): { name: string; type: string }[] {
    return guard(() => this.native().forwardArguments()).map(({ name, type }) => ({ name, type }));
  }

  /** Every submodule, the model itself ('') first, in definition order. */
  modules(): ModuleInfo[] {
    this.native();
    return this.moduleList.map((m) => ({ ...m }));
  }

  /** Runs forward(...inputs); a last `{ signal }` aborts it while queued. Outputs come back on the CPU. */
  async forward(...args: (Input | CallOptions)[]): Promise<Value> {
    const site = callSite(this.forward);
    const handle = this.native(site);
    const { inputs, options } = splitCallOptions(args, 'forward', site);
    const result = await cancellable(options.signal, site, (cancel) => handle.run(unwrapInputs(inputs), { output: true }, cancel));
    return wrapValue(result.output) as Value;
  }

  /**
   * Runs a submodule's forward on given values, natively and off the event loop, without
   * gradients: `model.call('transformer.ln_f', resid)`. Inputs are converted to the types its
   * forward declares; a last `{ signal }` aborts it while queued.
   */
  async call(path: string, ...args: (Input | CallOptions)[]): Promise<Value> {
    const site = callSite(this.call);
    const handle = this.native(site);
    if (typeof path !== 'string' || path === '') throw failure('INVALID_ARGUMENT', 'call(path, ...inputs): path names a submodule', site);
    this.checkLayers([path], site, false); // called, not hooked
    const { inputs, options } = splitCallOptions(args, 'call', site);
    return wrapValue(await cancellable(options.signal, site, (cancel) => handle.call(path, unwrapInputs(inputs), cancel))) as Value;
  }

  /**
   * What a submodule's forward takes after self, as `call(path, ...)` fills it: arguments the
   * model supplies (a head's weight tied to the embedding, found where its caller reads it) and
   * those the caller gives, in order, with where the model computes them.
   */
  async signature(path: string): Promise<ArgumentInfo[]> {
    const site = callSite(this.signature);
    const handle = this.native(site);
    this.checkLayers([path], site, false);
    const args = await settle(() => handle.signature(path), site);
    return args.map(({ name, type, supplied, hasDefault, source }) => ({ name, type, supplied, optional: hasDefault, ...(source ? { source } : {}) }));
  }

  /**
   * The operations of a submodule's forward that can be hooked (captured, patched, tapped) as
   * `'<path>/<name>'`, in order; `pattern` marks the softmax that `'<path>:pattern'` names.
   * With sample inputs (forward's), each gets the shape of its value at the first call.
   */
  async nodes(path: string, ...args: (Input | CallOptions)[]): Promise<NodeInfo[]> {
    const site = callSite(this.nodes);
    const handle = this.native(site);
    this.checkLayers([path], site, args.length > 0);
    const { inputs, options } = splitCallOptions(args, 'nodes', site);
    const listed = await settle(() => handle.nodes(path), site);
    const nodes: NodeInfo[] = listed.map(({ name, op, pattern }) => ({ name: path + NODE_SEPARATOR + name, op, pattern }));
    if (inputs.length === 0 || nodes.length === 0) {
      // An exported program records its values' shapes (-1 for a dynamic size).
      return nodes.map((node, i) => (listed[i].shape ? { ...node, shape: listed[i].shape } : node));
    }
    const capture = nodes.map((n) => n.name);
    const result = await cancellable(options.signal, site, (cancel) => handle.run(unwrapInputs(inputs), { capture, output: false }, cancel));
    return nodes.map((node) => {
      const first = result.captures[node.name]?.[0];
      const shape = first && typeof first === 'object' && 'shape' in first && typeof first.shape === 'function' ? first.shape() : undefined;
      for (const value of result.captures[node.name] ?? []) wrapValue(value);
      return shape ? { ...node, shape } : node;
    });
  }

  /** Frees the model (and its decoding step) once calls in flight finish; later calls reject with DISPOSED. Idempotent. */
  dispose(): void {
    this.decodeStep?.dispose();
    this.handle?.dispose();
    this.handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal */
  native(site?: CallSite): NativeModel {
    if (this.handle === null) throw failure('DISPOSED', `model '${this.path}' has been disposed`, site);
    return this.handle;
  }

  /**
   * @internal Rejects unknown layer names, suggesting the closest real ones, and (when they are
   * to be `hooked`) layers no hook point reaches, with the reason, before any work is queued. A
   * name is a module path (its output), the path with ':input' (its first tensor input, what a
   * pre-hook sees) or ':pattern', or 'path/node' (an operation of its forward, checked natively).
   */
  checkLayers(layers: readonly string[], site: CallSite, hooked = true): void {
    const names = this.moduleList.map((m) => m.path).filter((p) => p !== '');
    const known = new Set(names);
    for (const name of layers) {
      if (typeof name !== 'string' || name === '') {
        throw failure('INVALID_ARGUMENT', `layer names are non-empty strings, got ${JSON.stringify(name)}`, site);
      }
      const layer = layerModule(name);
      if (known.has(layer)) {
        const module = this.moduleList.find((m) => m.path === layer)!;
        if (hooked && !module.hookable) throw failure('UNHOOKABLE_LAYER', `layer '${name}' cannot be hooked: ${module.reason}`, site);
        continue;
      }
      const suggestions = closestNames(layer, names);
      throw failure(
        'UNKNOWN_LAYER',
        `no layer '${layer}' in ${this.path}` + (suggestions.length ? `; did you mean ${suggestions.map((s) => `'${s}'`).join(', ')}?` : ''),
        site,
        suggestions,
      );
    }
  }
}

/** @internal A call's inputs: one input, or an array of them (forward's arguments). */
export function normalizeInputs(inputs: Input | Input[]): Input[] {
  return Array.isArray(inputs) ? inputs : [inputs];
}

/** @internal */
export function unwrapInputs(inputs: readonly Input[]): NativeValue[] {
  return inputs.map((input) => unwrapValue(input)) as NativeValue[];
}

const LOAD_OPTIONS = optionKeys<LoadOptions>({
  device: true,
  optimize: true,
  precision: true,
  upcast: true,
  trusted: true,
  maxInflatedBytes: true,
  signal: true,
  decodeStep: true,
});

/**
 * Loads a TorchScript file (torch.jit.trace or torch.jit.script, then torch.jit.save) or a
 * torch.export program (torch.export.save: a `.pt2` archive), told apart by their content.
 */
export async function load(file: string, given?: LoadOptions): Promise<Model> {
  const site = callSite(load);
  if (typeof file !== 'string') throw failure('INVALID_ARGUMENT', 'load(path): path must be a string', site);
  const options = checkOptions(given, LOAD_OPTIONS, 'load', site);
  const device = options.device ?? 'cpu';
  const maxInflatedBytes = options.maxInflatedBytes === undefined ? undefined : positiveInteger(options.maxInflatedBytes, 'maxInflatedBytes', site);
  try {
    await fs.access(file);
  } catch {
    throw failure('MODEL_LOAD', `no such file: '${file}'`, site);
  }
  checkNumerics(options, site);
  const precision = options.precision ?? 'fp32';
  const request = {
    device,
    optimize: boolean(options.optimize ?? false, 'optimize', site),
    trusted: boolean(options.trusted ?? false, 'trusted', site),
    maxInflatedBytes,
    precision,
    upcast: options.upcast ?? false,
  };
  const withStep = boolean(options.decodeStep ?? true, 'decodeStep', site);
  // Before the model: a bad manifest fails the load without loading the model.
  const manifest = await readManifest(file, site);
  const handle = await cancellable(options.signal, site, (cancel) => binding().ModelHandle.load(file, request, cancel));
  const stepFile = withStep ? manifest?.decodeStep?.file : undefined;
  let step: Model | null = null;
  if (stepFile !== undefined) {
    try {
      const stepRequest = { ...request, sharesTensorsOf: handle };
      step = new Model(await cancellable(options.signal, site, (cancel) => binding().ModelHandle.load(stepFile, stepRequest, cancel)), stepFile);
    } catch (e) {
      handle.dispose();
      if (e instanceof TorchscopeError && e.code === 'ABORTED') throw e;
      const why = e instanceof TorchscopeError ? e.message : String(e);
      throw failure('MODEL_LOAD', `the decoding step '${stepFile}' its manifest names: ${why} (load with { decodeStep: false } to load the model alone)`, site);
    }
  }
  const model = new Model(handle, file, manifest, step);
  warnIfEmulated(precision, model.device);
  return model;
}

function checkNumerics({ precision, upcast }: NumericsOptions, site: CallSite): void {
  if (precision !== undefined) oneOf(precision, 'precision', PRECISIONS, site);
  if (upcast !== undefined) boolean(upcast, 'upcast', site);
}

/** @internal A call's checked { precision, upcast } for its native request (absent: the model's). */
export function numericsRequest(model: Model, options: NumericsOptions, site: CallSite): NumericsOptions {
  checkNumerics(options, site);
  if (options.precision !== undefined) warnIfEmulated(options.precision, model.device);
  return { precision: options.precision, upcast: options.upcast };
}

/** A reduced precision on a CPU that would emulate it is slower than float32: say so once per precision. */
const warnedPrecisions = new Set<Precision>();
function warnIfEmulated(precision: Precision, device: string): void {
  if (precision === 'fp32' || device !== 'cpu' || warnedPrecisions.has(precision)) return;
  const { cpuCapability, cpuBf16, cpuFp16 } = guard(() => binding().buildInfo());
  if (precision === 'bf16' ? cpuBf16 : cpuFp16) return;
  warnedPrecisions.add(precision);
  process.emitWarning(`precision '${precision}' on this CPU (${cpuCapability}, no AVX-512/AMX ${precision} instructions) is emulated and slower than float32`, {
    code: 'TORCHSCOPE_EMULATED_PRECISION',
    detail: 'torch.info().cpu says what the CPU supports; use a CPU with them, or a GPU.',
  });
}
