// SAELens's folder format: cfg.json, sae_weights.safetensors and, optionally, sparsity.safetensors
// (one tensor, `sparsity` [d_sae]). Read as SAE.load_from_disk reads it: the config parsed
// (lib/sae/config.ts), every tensor checked against it on the header, then read and cast to the
// config's dtype (read_sae_components_from_disk).
import { promises as fs } from 'fs';
import * as path from 'path';

import { CallSite, failure } from '../core/errors';
import { castHost, FloatDType, HostTensor } from '../io/host-tensor';
import { withSafetensors } from '../io/safetensors';
import { parseSaeLensConfig, readJsonFile, SaeConfig } from './config';
import { SAE_FILES, SAE_REQUIRED_TENSORS, SCALING_FACTOR_KEY, SPARSITY_KEY } from './names';
import { checkScalingFactor, checkTensorHeaders, SaeHostTensors, SaeSource } from './tensors';

export async function readSaeLensFolder(dir: string, dtype: FloatDType | undefined, site?: CallSite): Promise<SaeSource> {
  const cfgFile = path.join(dir, SAE_FILES.cfg);
  const cfg = parseSaeLensConfig(await readJsonFile(cfgFile, 'SAE config', site), cfgFile, dtype, site);
  const weightsFile = path.join(dir, SAE_FILES.weights);
  const tensors = await withSafetensors(weightsFile, site, async (reader) => {
    checkTensorHeaders(reader.entries, cfg, weightsFile, site);
    const read: SaeHostTensors = {};
    for (const name of SAE_REQUIRED_TENSORS[cfg.architecture]) read[name] = castHost(await reader.read(name), cfg.dtype);
    if (reader.entries.has(SCALING_FACTOR_KEY)) checkScalingFactor(castHost(await reader.read(SCALING_FACTOR_KEY), cfg.dtype), weightsFile, site);
    return read;
  });
  const hook = (key: string): string | null => {
    const value = cfg.metadata[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value === '')
      throw failure('MODEL_LOAD', `SAE config '${cfgFile}': metadata.${key} must be a hook name, got ${JSON.stringify(value)}`, site);
    return value;
  };
  return {
    cfg,
    tensors,
    sparsity: await readSparsity(path.join(dir, SAE_FILES.sparsity), cfg, site),
    hookName: hook('hook_name'),
    hookNameOut: hook('hook_name_out'),
    modulePath: null,
  };
}

/** sparsity.safetensors when the folder has one: its `sparsity` tensor, [d_sae]. */
async function readSparsity(file: string, cfg: SaeConfig, site?: CallSite): Promise<HostTensor | null> {
  try {
    await fs.access(file);
  } catch {
    return null;
  }
  return withSafetensors(file, site, async (reader) => {
    const entry = reader.entries.get(SPARSITY_KEY);
    if (!entry) throw failure('MODEL_LOAD', `sparsity file '${file}' has no tensor '${SPARSITY_KEY}'`, site);
    if (entry.shape.length !== 1 || entry.shape[0] !== cfg.d_sae) {
      throw failure(
        'MODEL_LOAD',
        `sparsity file '${file}': tensor '${SPARSITY_KEY}' has shape [${entry.shape.join(', ')}]; expected [${cfg.d_sae}] (d_sae)`,
        site,
      );
    }
    return reader.read(SPARSITY_KEY);
  });
}
