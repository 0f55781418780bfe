// Loading TorchScript models and running them.
import { promises as fs } from 'fs';
import { distance } from 'fastest-levenshtein';

import { callSite, CallSite, failure, guard, settle } from './errors';
import { binding, NativeModel, NativeValue } from './native';
import { Device, Tensor, unwrapValue, wrapValue } from './tensor';

/** What a model returns: tuples and lists become arrays, dicts objects. */
export type Value = Tensor | Value[] | { [key: string]: Value } | number | string | boolean | null;
/** What a model takes: tensors mostly; arrays of tensors become List[Tensor]. */
export type Input = Tensor | number | bigint | boolean | string | null | Input[] | { [key: string]: Input };

export interface LoadOptions {
  /** Where the model runs; 'auto' picks the first GPU when one is usable. Default 'cpu'. */
  device?: Device;
  /**
   * Run frozen, inference-optimised programs (conv-BN folding, oneDNN layouts): faster, with
   * captured values and outputs within 1e-4 relative of PyTorch's instead of 1e-5 absolute.
   * Captures still see exactly what each module returned (a folded conv is never captured).
   * Default false.
   */
  optimize?: boolean;
}

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

export class Model {
  /** The file the model was loaded from. */
  readonly path: string;
  private handle: NativeModel | null;
  private moduleList: ModuleInfo[];

  /** @internal Models come from torch.load(). */
  constructor(handle: NativeModel, file: string) {
    this.handle = handle;
    this.path = file;
    this.moduleList = handle.modules().map(([path, type, callSites, reason]) =>
      reason ? { path, type, hookable: false, callSites, reason } : { path, type, hookable: true, callSites },
    );
  }

  /** 'cpu' or 'cuda:N'. */
  get device(): string {
    return guard(() => this.native().device());
  }

  get disposed(): boolean {
    return this.handle === null;
  }

  /** Every submodule, the model itself ('') first, in definition order. */
  modules(): ModuleInfo[] {
    this.native();
    return this.moduleList.map((m) => ({ ...m }));
  }

  /** Runs forward(...inputs). Outputs come back on the CPU. */
  async forward(...inputs: Input[]): Promise<Value> {
    const site = callSite(this.forward);
    const handle = this.native(site);
    const result = await settle(() => handle.run(unwrapInputs(inputs), { output: true }), site);
    return wrapValue(result.output) as Value;
  }

  /** Frees the model once calls in flight finish; later calls reject with DISPOSED. Idempotent. */
  dispose(): void {
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

  /** @internal Rejects unknown layer names, suggesting the closest real ones. */
  checkLayers(layers: readonly string[], site: CallSite): void {
    const names = this.moduleList.map((m) => m.path).filter((p) => p !== '');
    const known = new Set(names);
    for (const layer of layers) {
      if (typeof layer !== 'string' || layer === '') {
        throw failure('INVALID_ARGUMENT', `layer names are non-empty strings, got ${JSON.stringify(layer)}`, site);
      }
      if (known.has(layer)) continue;
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

function closestNames(name: string, names: string[], count = 3): string[] {
  return names
    .map((candidate) => ({ candidate, d: distance(name, candidate) }))
    .filter(({ candidate, d }) => d <= Math.max(3, Math.ceil(Math.max(name.length, candidate.length) / 3)))
    .sort((a, b) => a.d - b.d || a.candidate.localeCompare(b.candidate))
    .slice(0, count)
    .map(({ candidate }) => candidate);
}

/** @internal */
export function unwrapInputs(inputs: readonly Input[]): NativeValue[] {
  return inputs.map((input) => unwrapValue(input)) as NativeValue[];
}

/** Loads a TorchScript file (torch.jit.trace or torch.jit.script, then torch.jit.save). */
export async function load(file: string, options: LoadOptions = {}): Promise<Model> {
  const site = callSite(load);
  if (typeof file !== 'string') throw failure('INVALID_ARGUMENT', 'load(path): path must be a string', site);
  const device = options.device ?? 'cpu';
  try {
    await fs.access(file);
  } catch {
    throw failure('MODEL_LOAD', `no such file: '${file}'`, site);
  }
  const handle = await settle(() => binding().ModelHandle.load(file, device, options.optimize ?? false), site);
  return new Model(handle, file);
}
