// A sparse autoencoder (or transcoder) loaded for use: its files read and checked
// (lib/sae/load.ts), its weights held natively on the model's device (native/sae/sae.h), its math
// off the event loop. `torch.run(model, inputs, { saes: [sae] })` splices it into a forward
// (lib/sae/splice.ts).
import { callSite, CallSite, failure, settle } from '../core/errors';
import { checkOptions, optionKeys, string } from '../core/validate';
import { FloatDType } from '../io/host-tensor';
import { Model } from '../model/model';
import { Tensor, tensor } from '../model/tensor';
import { SaeConfig } from './config';
import { mapHookName } from './hook-names';
import { loadSaeFiles, SaeFiles } from './load';
import { createNativeSae, NativeSae } from './native';
import { SAE_TENSOR_NAMES, SaeArchitecture, SaeFormat, SaeTensorName } from './names';

export interface SaeOptions {
  /** The hook point it reads (a transcoder: its input), e.g. 'transformer.h.5:input'. Default: mapped from the file's TransformerLens hook name on `model`. */
  hookPoint?: string;
  /** A transcoder's output point, which its output replaces. Default: mapped from metadata.hook_name_out. */
  hookPointOut?: string;
  /** The model it is for: maps the file's hook names, and gives the device. */
  model?: Model;
  /** 'cpu' or 'cuda:N'. Default: the model's device, else 'cpu'. */
  device?: string;
  /** The SAE's dtype. Default: the file's. */
  dtype?: FloatDType;
}

const SAE_KEYS = optionKeys<SaeOptions>({ hookPoint: true, hookPointOut: true, model: true, device: true, dtype: true });

export class Sae implements Disposable {
  /** Its config as SAELens reads it (pre-6.0 files converted). */
  readonly cfg: SaeConfig;
  readonly format: SaeFormat;
  /** The folder or params.npz it was read from. */
  readonly path: string;
  readonly architecture: SaeArchitecture;
  readonly dIn: number;
  readonly dSae: number;
  /** The output's width: dIn, or a transcoder's d_out. */
  readonly dOut: number;
  readonly dtype: FloatDType;
  /** The TransformerLens hook the file names (metadata.hook_name), or null. */
  readonly hookName: string | null;
  /** A transcoder's output hook (metadata.hook_name_out), or null. */
  readonly hookNameOut: string | null;
  /** The torchscope hook point it reads; null until a model maps the file's hook name. */
  readonly hookPoint: string | null;
  /** The hook point its output replaces: hookPoint, or a transcoder's output point. */
  readonly hookPointOut: string | null;
  /** log10 firing frequency per feature [d_sae] (SAELens's sparsity.safetensors), or null. */
  readonly sparsity: Tensor | null;
  private handle: NativeSae | null;

  /** @internal SAEs come from torch.sae.load(). */
  constructor(files: SaeFiles, handle: NativeSae) {
    this.cfg = files.cfg;
    this.format = files.format;
    this.path = files.path;
    this.architecture = files.architecture;
    this.dIn = files.dIn;
    this.dSae = files.dSae;
    this.dOut = files.dOut;
    this.dtype = files.dtype;
    this.hookName = files.hookName;
    this.hookNameOut = files.hookNameOut;
    this.hookPoint = files.hookPoint;
    this.hookPointOut = files.hookPointOut ?? files.hookPoint;
    this.sparsity = files.sparsity ? tensor(files.sparsity.data, files.sparsity.shape, files.sparsity.dtype) : null;
    this.handle = handle;
  }

  /** Whether it reads one hook point and writes another. */
  get transcoder(): boolean {
    return this.architecture.endsWith('transcoder');
  }

  get disposed(): boolean {
    return this.handle === null;
  }

  /** The features (post-activation, `hook_sae_acts_post`) of x [..., d_in]: [..., d_sae]. */
  async encode(x: Tensor): Promise<Tensor> {
    const site = callSite(this.encode);
    const { features, featuresPre } = await settle(() => this.native(site).encode(input(x, 'x', site)), site);
    featuresPre.dispose();
    return new Tensor(features);
  }

  /** The pre-activation (`hook_sae_acts_pre`) of x: [..., d_sae]. */
  async featuresPre(x: Tensor): Promise<Tensor> {
    const site = callSite(this.featuresPre);
    const { features, featuresPre } = await settle(() => this.native(site).encode(input(x, 'x', site)), site);
    features.dispose();
    return new Tensor(featuresPre);
  }

  /**
   * The output of `features` [..., d_sae]. An SAE that normalizes its input (or a skip transcoder,
   * or one on hook_z) needs `x`, the input the features were encoded from, to undo it.
   */
  async decode(features: Tensor, x?: Tensor): Promise<Tensor> {
    const site = callSite(this.decode);
    const handle = this.native(site);
    const f = input(features, 'features', site);
    const given = x === undefined ? undefined : input(x, 'x', site);
    return new Tensor(await settle(() => handle.decode(f, given), site));
  }

  /** The reconstruction decode(encode(x)). */
  async forward(x: Tensor): Promise<Tensor> {
    const site = callSite(this.forward);
    return new Tensor(await settle(() => this.native(site).forward(input(x, 'x', site)), site));
  }

  /** x - forward(x): what a splice with the error term adds back. */
  async errorTerm(x: Tensor): Promise<Tensor> {
    const site = callSite(this.errorTerm);
    return new Tensor(await settle(() => this.native(site).errorTerm(input(x, 'x', site)), site));
  }

  /** One of its tensors (W_enc [d_in, d_sae], W_dec [d_sae, d_out], b_dec, threshold...), copied to the CPU; null when its architecture has none. */
  async weight(name: SaeTensorName): Promise<Tensor | null> {
    const site = callSite(this.weight);
    const handle = this.native(site);
    if (!(SAE_TENSOR_NAMES as readonly string[]).includes(name))
      throw failure('INVALID_ARGUMENT', `an SAE's tensors are ${SAE_TENSOR_NAMES.join(', ')}; got '${name}'`, site);
    const tensor = await settle(() => handle.weight(name), site);
    return tensor ? new Tensor(tensor) : null;
  }

  /** Frees its weights once calls in flight finish; later calls reject with DISPOSED. Idempotent. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = null;
    this.sparsity?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal */
  native(site?: CallSite): NativeSae {
    if (this.handle === null) throw failure('DISPOSED', `the SAE '${this.path}' has been disposed`, site);
    return this.handle;
  }

  /** @internal The hook points it reads and writes on `model`: its own, or its hook names mapped there. */
  points(model: Model, site: CallSite): { read: string; write: string } {
    const read = this.hookPoint ?? (this.hookName ? mapHookName(this.hookName, model, this.cfg.metadata.hook_head_index ?? null, site) : null);
    if (read === null) throw failure('INVALID_ARGUMENT', `the SAE '${this.path}' names no hook point: load it with { hookPoint }`, site);
    if (!this.transcoder) return { read, write: read };
    const write = this.hookPointOut ?? (this.hookNameOut ? mapHookName(this.hookNameOut, model, null, site) : null);
    if (write === null) throw failure('INVALID_ARGUMENT', `the transcoder '${this.path}' names no output point: load it with { hookPointOut }`, site);
    return { read, write };
  }
}

function input(x: Tensor, name: string, site: CallSite) {
  if (!(x instanceof Tensor)) throw failure('INVALID_ARGUMENT', `${name} must be a Tensor`, site);
  if (x.disposed) throw failure('DISPOSED', `${name} has been disposed`, site);
  return x.handle;
}

/**
 * Loads an SAE: a SAELens folder (cfg.json + sae_weights.safetensors), an EleutherAI sparsify
 * folder (cfg.json + sae.safetensors) or Gemma Scope's params.npz (which names no hook point:
 * give `hookPoint`). Files are untrusted: every tensor is checked against the file and cfg.json
 * before use.
 */
export async function load(path: string, given?: SaeOptions): Promise<Sae> {
  const site = callSite(load);
  const options = checkOptions(given, SAE_KEYS, 'sae.load', site);
  string(path, 'path', site);
  if (options.model !== undefined && !(options.model instanceof Model)) throw failure('INVALID_ARGUMENT', 'sae.load: model must come from torch.load()', site);
  const files = await loadSaeFiles(path, { hookPoint: options.hookPoint, hookPointOut: options.hookPointOut, dtype: options.dtype, model: options.model });
  const device = options.device ?? options.model?.device ?? 'cpu';
  const handle = await settle(() => createNativeSae(files, device), site);
  return new Sae(files, handle);
}
