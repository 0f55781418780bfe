// EleutherAI's sparsify format: a folder named after its hook point (a module path of the base
// model, 'layers.5') holding cfg.json (SparseCoderConfig plus d_in) and sae.safetensors
// (encoder.weight [d_sae, d_in], encoder.bias [d_sae], W_dec [d_sae, d_in], b_dec [d_in]). Read as
// sparsify itself reads it (SparseCoder.load_from_disk, encode, decode): a TopK SAE that always
// subtracts b_dec from its input, in the dtype of the file's tensors. (SAELens's converter
// differs: it skips b_dec when normalize_decoder is set and loads bfloat16.)
import * as path from 'path';

import { CallSite, failure } from '../core/errors';
import { isRecord } from '../core/validate';
import { castHost, FloatDType, transpose2d } from '../io/host-tensor';
import { withSafetensors } from '../io/safetensors';
import { readJsonFile, SaeConfig } from './config';
import { SAE_FILES } from './names';
import { checkTensorHeaders, SaeSource, TensorHeader } from './tensors';

/** sparsify's tensor names, and the SAELens names they become. */
const SPARSIFY_TENSORS = { 'encoder.weight': 'W_enc', 'encoder.bias': 'b_enc', W_dec: 'W_dec', b_dec: 'b_dec' } as const;

// SparseCoderConfig's defaults.
const DEFAULT_EXPANSION_FACTOR = 32;
const DEFAULT_K = 32;

export async function readSparsifyFolder(dir: string, dtype: FloatDType | undefined, site?: CallSite): Promise<SaeSource> {
  const cfgFile = path.join(dir, SAE_FILES.cfg);
  const raw = await readJsonFile(cfgFile, 'sparsify config', site);
  const bad = (what: string): never => {
    throw failure('MODEL_LOAD', `sparsify config '${cfgFile}': ${what}`, site);
  };
  if (!isRecord(raw)) return bad('it is not a JSON object');
  const integer = (key: string, fallback: number | undefined, min: number): number => {
    const value = raw[key] === undefined ? fallback : raw[key];
    if (!Number.isSafeInteger(value) || (value as number) < min) bad(`${key} must be an integer >= ${min}, got ${JSON.stringify(raw[key])}`);
    return value as number;
  };
  // What sparsify trains but this TopK SAE does not compute is refused, not ignored.
  const refuseIf = (key: string, unsupported: unknown, fallback: unknown, why: string) => {
    if ((raw[key] === undefined ? fallback : raw[key]) === unsupported) bad(`${key} is ${JSON.stringify(unsupported)}: ${why}`);
  };
  refuseIf('transcode', true, false, 'sparsify transcoders (TopK, no b_dec on the input) are not an architecture torchscope computes');
  refuseIf('skip_connection', true, false, 'an SAE with a skip connection is not an architecture torchscope computes');
  refuseIf('signed', true, false, 'signed TopK is not an architecture torchscope computes');
  const activation = raw.activation === undefined ? 'topk' : raw.activation;
  if (activation !== 'topk') bad(`activation is ${JSON.stringify(activation)}; torchscope computes sparsify's 'topk'`);
  const dIn = integer('d_in', undefined, 1);
  const latents = integer('num_latents', 0, 0);
  const dSae = latents || dIn * integer('expansion_factor', DEFAULT_EXPANSION_FACTOR, 1);
  const k = integer('k', DEFAULT_K, 1);
  if (k > dSae) bad(`k is ${k}, more than the ${dSae} latents to keep them from`);

  const weightsFile = path.join(dir, SAE_FILES.sparsifyWeights);
  return withSafetensors(weightsFile, site, async (reader) => {
    const headers = new Map<string, TensorHeader>();
    for (const [name, entry] of reader.entries) {
      const renamed = Object.hasOwn(SPARSIFY_TENSORS, name) ? SPARSIFY_TENSORS[name as keyof typeof SPARSIFY_TENSORS] : `${name} (not a sparsify SAE tensor)`;
      // encoder.weight is [d_sae, d_in]: check it as the W_enc it becomes.
      headers.set(renamed, name === 'encoder.weight' ? { dtype: entry.dtype, shape: [...entry.shape].reverse() } : entry);
    }
    // The SAE's dtype is its first tensor's, by name, as SparseCoder.load_from_disk takes it.
    const first = [...reader.entries.keys()].sort()[0];
    const cfg: SaeConfig = {
      architecture: 'topk',
      d_in: dIn,
      d_sae: dSae,
      dtype: dtype ?? reader.entries.get(first)?.dtype ?? 'float32',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      reshape_activations: 'none',
      k,
      rescale_acts_by_decoder_norm: false,
      metadata: {},
    };
    checkTensorHeaders(headers, cfg, weightsFile, site);
    const read = async (name: keyof typeof SPARSIFY_TENSORS) => castHost(await reader.read(name), cfg.dtype);
    return {
      cfg,
      tensors: { W_enc: transpose2d(await read('encoder.weight')), b_enc: await read('encoder.bias'), W_dec: await read('W_dec'), b_dec: await read('b_dec') },
      sparsity: null,
      hookName: null,
      hookNameOut: null,
      modulePath: path.basename(dir),
    };
  });
}
