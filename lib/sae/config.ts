// An SAE's configuration, in SAELens 6's shape whatever the format it came in (`Sae.cfg`), and
// SAELens's cfg.json read into it as SAE.load_from_disk reads it: a pre-6.0 file converted first
// (lib/sae/legacy-config.ts), then the fields of the architecture's config class taken with that
// class's defaults, every value checked. Unknown architectures and normalizations are refused.
import { promises as fs } from 'fs';

import { CallSite, failure, TorchscopeError } from '../core/errors';
import { MAX_SAE_CONFIG_BYTES } from '../core/limits';
import { isRecord } from '../core/validate';
import { FloatDType } from '../io/host-tensor';
import { convertPre60Config, isPre60Config } from './legacy-config';
import {
  SAE_ARCHITECTURES,
  SAE_DTYPE_NAMES,
  SAE_NORMALIZATIONS,
  SAE_RESHAPES,
  SaeArchitecture,
  SaeNormalization,
  SaeReshape,
  TRANSCODER_ARCHITECTURES,
  UNSUPPORTED_ARCHITECTURES,
} from './names';

/** Field names as SAELens's SAEConfig spells them. */
export interface SaeConfig {
  architecture: SaeArchitecture;
  d_in: number;
  d_sae: number;
  /** Transcoders: the output's width. */
  d_out?: number;
  /** The SAE's dtype: the file's cfg, or the `dtype` the loader was given. */
  dtype: FloatDType;
  apply_b_dec_to_input: boolean;
  normalize_activations: SaeNormalization;
  reshape_activations: SaeReshape;
  /** topk: features kept per token. */
  k?: number;
  /** topk: pre-activations scaled by the decoder rows' norms before the top k (and divided again before decoding). */
  rescale_acts_by_decoder_norm?: boolean;
  /** hook_name, hook_name_out, hook_head_index, model_name, prepend_bos, context_size, ... as the file gives them. */
  metadata: Record<string, unknown>;
}

// SAELens's config-class defaults (SAEConfig, TopKSAEConfig, TranscoderConfig).
const DEFAULT_DTYPE = 'float32';
const DEFAULT_K = 100;
const DEFAULT_TRANSCODER_D_OUT = 768;

export function isTranscoder(architecture: SaeArchitecture): boolean {
  return (TRANSCODER_ARCHITECTURES as readonly string[]).includes(architecture);
}

/** A JSON file of at most `maxBytes`; MODEL_LOAD naming the file when it is not one. */
export async function readJsonFile(file: string, what: string, site?: CallSite, maxBytes = MAX_SAE_CONFIG_BYTES): Promise<unknown> {
  let text: string;
  try {
    const { size } = await fs.stat(file);
    if (size > maxBytes) throw failure('MODEL_LOAD', `${what} '${file}' is ${size} bytes, more than the ${maxBytes} it may have`, site);
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof TorchscopeError) throw e;
    throw failure('MODEL_LOAD', `${what} '${file}': ${(e as Error).message}`, site);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw failure('MODEL_LOAD', `${what} '${file}' is not JSON: ${(e as Error).message}`, site);
  }
}

/** SAELens's cfg.json (already parsed) as an SaeConfig; `dtype` overrides the file's. */
export function parseSaeLensConfig(raw: unknown, file: string, dtype: FloatDType | undefined, site?: CallSite): SaeConfig {
  const bad = (what: string): never => {
    throw failure('MODEL_LOAD', `SAE config '${file}': ${what}`, site);
  };
  if (!isRecord(raw)) return bad('it is not a JSON object');
  const cfg = isPre60Config(raw, bad) ? convertPre60Config(raw, bad) : raw;
  const architecture = parseArchitecture(cfg.architecture, bad);
  // An absent field takes the config class's default; null does not (SAELens would compute with None).
  const dims = (key: string, fallback?: number): number => {
    const value = cfg[key] === undefined ? fallback : cfg[key];
    if (!Number.isSafeInteger(value) || (value as number) <= 0) bad(`${key} must be a positive integer, got ${JSON.stringify(cfg[key])}`);
    return value as number;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const value = cfg[key] === undefined ? fallback : cfg[key];
    if (typeof value !== 'boolean') bad(`${key} must be true or false, got ${JSON.stringify(value)}`);
    return value as boolean;
  };
  const choice = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const value = cfg[key] === undefined ? fallback : cfg[key];
    if (!allowed.includes(value as T)) bad(`${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
    return value as T;
  };
  const dtypeName = cfg.dtype === undefined ? DEFAULT_DTYPE : cfg.dtype;
  const fileDtype = typeof dtypeName === 'string' && Object.hasOwn(SAE_DTYPE_NAMES, dtypeName) ? SAE_DTYPE_NAMES[dtypeName] : undefined;
  if (fileDtype === undefined) bad(`dtype must be one of ${Object.keys(SAE_DTYPE_NAMES).join(', ')}, got ${JSON.stringify(dtypeName)}`);
  const metadata = cfg.metadata === undefined ? {} : cfg.metadata;
  if (!isRecord(metadata)) return bad(`metadata must be an object, got ${JSON.stringify(metadata)}`);
  const config: SaeConfig = {
    architecture,
    d_in: dims('d_in'),
    d_sae: dims('d_sae'),
    dtype: dtype ?? fileDtype!,
    apply_b_dec_to_input: flag('apply_b_dec_to_input', true),
    normalize_activations: choice('normalize_activations', SAE_NORMALIZATIONS, 'none'),
    reshape_activations: choice('reshape_activations', SAE_RESHAPES, 'none'),
    metadata: { ...metadata },
  };
  if (architecture === 'topk') {
    config.k = dims('k', DEFAULT_K);
    if (config.k > config.d_sae) bad(`k is ${config.k}, more than the ${config.d_sae} features (d_sae) to keep them from`);
    config.rescale_acts_by_decoder_norm = flag('rescale_acts_by_decoder_norm', false);
  }
  if (isTranscoder(architecture)) {
    config.d_out = dims('d_out', DEFAULT_TRANSCODER_D_OUT);
    // TranscoderConfig refuses it: b_dec is d_out wide, the input d_in.
    if (config.apply_b_dec_to_input) bad(`apply_b_dec_to_input must be false for a ${architecture} (b_dec is the output's bias)`);
  }
  const hookName = config.metadata.hook_name;
  // SAELens's hook_z reshaping refuses an SAE whose hook is named and is not a hook_z.
  if (config.reshape_activations === 'hook_z' && typeof hookName === 'string' && !hookName.endsWith('_z')) {
    bad(`reshape_activations is 'hook_z' but metadata.hook_name '${hookName}' is not a hook_z`);
  }
  return config;
}

function parseArchitecture(value: unknown, bad: (what: string) => never): SaeArchitecture {
  if ((SAE_ARCHITECTURES as readonly unknown[]).includes(value)) return value as SaeArchitecture;
  const known = `torchscope computes ${SAE_ARCHITECTURES.join(', ')}`;
  if (typeof value === 'string' && Object.hasOwn(UNSUPPORTED_ARCHITECTURES, value))
    return bad(`architecture '${value}' is ${UNSUPPORTED_ARCHITECTURES[value]}; ${known}`);
  return bad(`architecture ${JSON.stringify(value)} is not an SAELens architecture; ${known}`);
}
