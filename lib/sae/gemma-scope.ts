// Gemma Scope's params.npz: W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec, threshold,
// float32 arrays of a JumpReLU SAE that does not subtract b_dec from its input. Read as SAELens's
// gemma_2_sae_huggingface_loader reads it: keys 'w_*' renamed 'W_*', every array cast to float32
// (or the dtype asked for). The file names no hook point: SAELens takes it from the release's folder
// names, so the caller gives one.
import { CallSite, failure } from '../core/errors';
import { castHost, FloatDType, HostTensor } from '../io/host-tensor';
import { readNpz } from '../io/npz';
import { SaeConfig } from './config';
import { SAE_REQUIRED_TENSORS, SCALING_FACTOR_KEY } from './names';
import { checkScalingFactor, checkTensorHeaders, SaeHostTensors, SaeSource } from './tensors';

/** The dtype SAELens loads Gemma Scope in. */
const GEMMA_SCOPE_DTYPE: FloatDType = 'float32';

export async function readGemmaScope(file: string, dtype: FloatDType | undefined, site?: CallSite): Promise<SaeSource> {
  const arrays = new Map<string, HostTensor>();
  for (const [key, array] of await readNpz(file, site)) arrays.set(key.startsWith('w_') ? `W_${key.slice(2)}` : key, array);
  const encoder = arrays.get('W_enc');
  if (!encoder || encoder.shape.length !== 2) {
    throw failure(
      'MODEL_LOAD',
      `Gemma Scope file '${file}': ${encoder ? `W_enc has shape [${encoder.shape.join(', ')}]` : 'no W_enc (or w_enc) array'}; it is [d_in, d_sae]`,
      site,
    );
  }
  const cfg: SaeConfig = {
    architecture: 'jumprelu',
    d_in: encoder.shape[0],
    d_sae: encoder.shape[1],
    dtype: dtype ?? GEMMA_SCOPE_DTYPE,
    apply_b_dec_to_input: false,
    normalize_activations: 'none',
    reshape_activations: 'none',
    metadata: {},
  };
  checkTensorHeaders(arrays, cfg, file, site);
  const scaling = arrays.get(SCALING_FACTOR_KEY);
  if (scaling) checkScalingFactor(castHost(scaling, cfg.dtype), file, site);
  const tensors: SaeHostTensors = {};
  for (const name of SAE_REQUIRED_TENSORS.jumprelu) tensors[name] = castHost(arrays.get(name)!, cfg.dtype);
  return { cfg, tensors, sparsity: null, hookName: null, hookNameOut: null, modulePath: null };
}
