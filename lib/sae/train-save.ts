// A trained SAE written as SAELens 6.18 writes one (TrainingSAE.save_inference_model and the
// runner's save_final_sae): cfg.json (the inference config: batchtopk's is jumprelu's), the state
// dict in sae_weights.safetensors and log10 feature sparsity in sparsity.safetensors.
import { promises as fs } from 'fs';
import * as path from 'path';

import { HostTensor } from '../io/host-tensor';
import { writeSafetensors } from '../io/safetensors';
import { SAE_FILES, SaeTensorName, SPARSITY_KEY } from './names';
import { NativeSaeTrainSettings, SAE_LENS_VERSION } from './train-options';

export interface SavedSae {
  /** cfg.json as written. */
  cfg: Record<string, unknown>;
  tensors: Partial<Record<SaeTensorName, HostTensor>>;
  /** [d_sae] log10(firing frequency + 1e-10); null before any step. */
  sparsity: HostTensor | null;
}

/** get_inference_sae_cfg_dict of a trained SAE: its inference class's fields, the activation scale already folded in. */
export function savedConfig(settings: NativeSaeTrainSettings, dIn: number, device: string, metadata: Record<string, unknown>): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    architecture: settings.architecture === 'batchtopk' ? 'jumprelu' : settings.architecture,
    d_in: dIn,
    d_sae: settings.dSae,
    dtype: 'float32',
    device,
    apply_b_dec_to_input: settings.applyBDecToInput,
    normalize_activations: 'none',
    reshape_activations: 'none',
  };
  // TopKSAEConfig's fields, as trained (the saved weights have the decoder norms folded in).
  if (settings.architecture === 'topk') Object.assign(cfg, { k: settings.k, rescale_acts_by_decoder_norm: settings.rescaleByDecoderNorm });
  cfg.metadata = { ...metadata, sae_lens_version: SAE_LENS_VERSION, sae_lens_training_version: SAE_LENS_VERSION };
  return cfg;
}

/** Writes the folder (created if missing); cfg.json last, so a folder that has one is whole. */
export async function writeSaeFolder(dir: string, saved: SavedSae): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, SAE_FILES.weights), saved.tensors as Record<string, HostTensor>);
  if (saved.sparsity) await writeSafetensors(path.join(dir, SAE_FILES.sparsity), { [SPARSITY_KEY]: saved.sparsity });
  const cfgFile = path.join(dir, SAE_FILES.cfg);
  await fs.writeFile(`${cfgFile}.partial`, JSON.stringify(saved.cfg, null, 2));
  await fs.rename(`${cfgFile}.partial`, cfgFile);
}
