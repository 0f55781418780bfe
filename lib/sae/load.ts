// Loading an SAE's files: the format found from what the path holds, the files read and checked
// (lib/sae/saelens.ts, sparsify.ts, gemma-scope.ts), the hook points decided (lib/sae/hook-names.ts)
// and the native SAE's settings derived. Everything stays in host memory: createNativeSae
// (lib/sae/native.ts) makes the native SAE of the result.
import { promises as fs } from 'fs';
import * as path from 'path';

import { callSite, CallSite, failure } from '../core/errors';
import { checkOptions, isRecord, oneOf, optionKeys, string } from '../core/validate';
import { FLOAT_DTYPES, FloatDType, HostTensor } from '../io/host-tensor';
import { isTranscoder, SaeConfig } from './config';
import { readGemmaScope } from './gemma-scope';
import { HookModel, mapHookName } from './hook-names';
import { NativeSaeSettings } from './native';
import { SAE_FILES, SaeArchitecture, SaeFormat } from './names';
import { readSaeLensFolder } from './saelens';
import { readSparsifyFolder } from './sparsify';
import { SaeHostTensors, SaeSource } from './tensors';

export interface SaeLoadOptions {
  /** The torchscope hook point the SAE reads (a transcoder: its input), used as given. Default: mapped from the file's hook name. */
  hookPoint?: string;
  /** A transcoder's output point, the one its output replaces. Default: mapped from metadata.hook_name_out. */
  hookPointOut?: string;
  /** The SAE's dtype. Default: the file's (cfg.json's dtype; sparsify: its tensors'; Gemma Scope: float32). */
  dtype?: FloatDType;
  /** The model whose hook points the file's hook names map to (its manifest and module names). */
  model?: HookModel;
}

const LOAD_KEYS = optionKeys<SaeLoadOptions>({ hookPoint: true, hookPointOut: true, dtype: true, model: true });

/** An SAE's files, read and checked. */
export interface SaeFiles {
  format: SaeFormat;
  /** The folder, or the params.npz, read. */
  path: string;
  cfg: SaeConfig;
  architecture: SaeArchitecture;
  dIn: number;
  dSae: number;
  /** The output's width: d_in, or a transcoder's d_out. */
  dOut: number;
  dtype: FloatDType;
  /** The TransformerLens hook the file names (metadata.hook_name), or null. */
  hookName: string | null;
  /** A transcoder's output hook (metadata.hook_name_out), or null. */
  hookNameOut: string | null;
  /**
   * The torchscope hook point read: `hookPoint`, or hookName mapped on `model`. Null when the file
   * names a TransformerLens hook and no model was given to map it (mapHookName maps it later).
   */
  hookPoint: string | null;
  /** A transcoder's output point (null otherwise, or as hookPoint). */
  hookPointOut: string | null;
  /** What the native SAE is told besides its tensors. */
  spec: NativeSaeSettings;
  /** In `dtype`, each the shape its name has (W_enc [d_in, d_sae], W_dec [d_sae, d_out], ...). */
  tensors: SaeHostTensors;
  /** SAELens's sparsity.safetensors: log10 firing frequency per feature [d_sae]; null without one. */
  sparsity: HostTensor | null;
}

/** Reads the SAE at `file`: a SAELens or sparsify folder, a folder holding params.npz, or a params.npz. */
export async function loadSaeFiles(file: string, given?: SaeLoadOptions): Promise<SaeFiles> {
  const site = callSite(loadSaeFiles);
  const options = checkOptions(given, LOAD_KEYS, 'loadSaeFiles', site);
  string(file, 'path', site);
  if (options.hookPoint !== undefined) nonEmpty(options.hookPoint, 'hookPoint', site);
  if (options.hookPointOut !== undefined) nonEmpty(options.hookPointOut, 'hookPointOut', site);
  const dtype = options.dtype === undefined ? undefined : oneOf(options.dtype, 'dtype', FLOAT_DTYPES, site);
  const model = options.model;
  if (model !== undefined && !(isRecord(model) && typeof (model as { modules?: unknown }).modules === 'function' && 'manifest' in model)) {
    throw failure('INVALID_ARGUMENT', 'loadSaeFiles: model must be a model from torch.load()', site);
  }
  const resolved = path.resolve(file);
  const { format, location } = await detectFormat(resolved, site);
  const source =
    format === 'saelens'
      ? await readSaeLensFolder(location, dtype, site)
      : format === 'sparsify'
        ? await readSparsifyFolder(location, dtype, site)
        : await readGemmaScope(location, dtype, site);
  const { cfg } = source;
  const transcoder = isTranscoder(cfg.architecture);
  if (!transcoder && options.hookPointOut !== undefined)
    throw failure('INVALID_ARGUMENT', `hookPointOut is for transcoders; this SAE is ${cfg.architecture}`, site);
  const hookPoint = resolvePoint(options.hookPoint, 'hookPoint', source, format, location, model, site);
  const hookPointOut = transcoder ? resolvePoint(options.hookPointOut, 'hookPointOut', source, format, location, model, site) : null;
  return {
    format,
    path: location,
    cfg,
    architecture: cfg.architecture,
    dIn: cfg.d_in,
    dSae: cfg.d_sae,
    dOut: cfg.d_out ?? cfg.d_in,
    dtype: cfg.dtype,
    hookName: source.hookName,
    hookNameOut: source.hookNameOut,
    hookPoint,
    hookPointOut,
    spec: nativeSettings(cfg),
    tensors: source.tensors,
    sparsity: source.sparsity,
  };
}

/** The native SAE's settings from a configuration. */
export function nativeSettings(cfg: SaeConfig): NativeSaeSettings {
  const transcoder = isTranscoder(cfg.architecture);
  return {
    architecture: cfg.architecture,
    normalization: cfg.normalize_activations === 'expected_average_only_in' ? 'none' : cfg.normalize_activations,
    applyBDecToInput: cfg.apply_b_dec_to_input,
    // SAELens's transcoders never reshape their input (Transcoder.process_sae_in).
    reshapeHeads: cfg.reshape_activations === 'hook_z' && !transcoder,
    k: cfg.architecture === 'topk' ? cfg.k! : 0,
    rescaleByDecoderNorm: cfg.architecture === 'topk' && cfg.rescale_acts_by_decoder_norm === true,
  };
}

/** What `file` holds: a folder of one of the formats, or a params.npz. */
async function detectFormat(file: string, site: CallSite): Promise<{ format: SaeFormat; location: string }> {
  const kinds = `a SAELens folder (${SAE_FILES.cfg} + ${SAE_FILES.weights}), a sparsify folder (${SAE_FILES.cfg} + ${SAE_FILES.sparsifyWeights}) or a Gemma Scope ${SAE_FILES.gemmaScope}`;
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (e) {
    throw failure('MODEL_LOAD', `SAE '${file}': ${(e as Error).message}`, site);
  }
  if (stat.isFile()) {
    if (file.endsWith('.npz')) return { format: 'gemma-scope', location: file };
    throw failure('MODEL_LOAD', `SAE '${file}' is a file but not an .npz; an SAE is ${kinds}`, site);
  }
  const has = async (name: string) => (await fs.stat(path.join(file, name)).catch(() => null))?.isFile() === true;
  const cfg = await has(SAE_FILES.cfg);
  if (cfg && (await has(SAE_FILES.weights))) return { format: 'saelens', location: file };
  if (cfg && (await has(SAE_FILES.sparsifyWeights))) return { format: 'sparsify', location: file };
  if (await has(SAE_FILES.gemmaScope)) return { format: 'gemma-scope', location: path.join(file, SAE_FILES.gemmaScope) };
  const found = cfg ? `it has ${SAE_FILES.cfg} but no weights beside it` : 'it holds none of their files';
  throw failure('MODEL_LOAD', `SAE folder '${file}': ${found}; an SAE is ${kinds}`, site);
}

/**
 * One hook point: the one given; else the file's hook mapped on the model (sparsify's module path
 * found among its modules); else null while a TransformerLens name waits for a model.
 */
function resolvePoint(
  given: string | undefined,
  option: 'hookPoint' | 'hookPointOut',
  source: SaeSource,
  format: SaeFormat,
  location: string,
  model: HookModel | undefined,
  site: CallSite,
): string | null {
  if (given !== undefined) return given;
  const hookName = option === 'hookPoint' ? source.hookName : source.hookNameOut;
  if (format === 'sparsify' && option === 'hookPoint') return sparsifyPoint(source.modulePath!, model, site);
  if (hookName === null) {
    const why =
      format === 'gemma-scope'
        ? `a Gemma Scope ${SAE_FILES.gemmaScope} names no hook point (SAELens takes it from the release's folder names)`
        : `its config names no ${option === 'hookPoint' ? 'metadata.hook_name' : 'metadata.hook_name_out'}`;
    throw failure('INVALID_ARGUMENT', `SAE '${location}': ${why}; pass { ${option} } (a layer name of the model)`, site);
  }
  if (model === undefined) return null;
  const headIndex = source.cfg.metadata[option === 'hookPoint' ? 'hook_head_index' : 'hook_head_index_out'];
  return mapHookName(hookName, model, headIndex, site);
}

/** The model's module that sparsify's path names: the same path, or one ending with it ('model.layers.5' for 'layers.5'). */
function sparsifyPoint(modulePath: string, model: HookModel | undefined, site: CallSite): string {
  const ask = `pass { hookPoint } (a layer name of the model)`;
  if (model === undefined)
    throw failure(
      'INVALID_ARGUMENT',
      `a sparsify SAE names its hook point by its folder, '${modulePath}', in the base model: pass { model } to find it there, or ${ask}`,
      site,
    );
  const matches = model
    .modules()
    .map((m) => m.path)
    .filter((p) => p === modulePath || p.endsWith(`.${modulePath}`));
  if (matches.length !== 1) {
    const found = matches.length ? `several modules end with it (${matches.join(', ')})` : 'no module of the model is or ends with it';
    throw failure('INVALID_ARGUMENT', `a sparsify SAE reads module '${modulePath}' of the base model, but ${found}; ${ask}`, site);
  }
  return matches[0];
}

function nonEmpty(value: unknown, name: string, site: CallSite): void {
  if (string(value, name, site) === '') throw failure('INVALID_ARGUMENT', `${name} must be a layer name, got ''`, site);
}
