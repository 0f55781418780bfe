// cfg.json files written before SAELens 6, converted as SAELens converts them
// (sae_lens/loading/pretrained_sae_loaders.py: handle_config_defaulting, handle_pre_6_0_config):
// a file is pre-6.0 when neither its top level nor its `metadata` names a sae_lens_version of
// 6.0.0rc0 or later (SAELens 6 writes the version inside `metadata`, so a check of the top level
// alone would treat every 6.x file as old). Versions compare as PEP 440 orders them, as
// packaging.version.Version does in SAELens.
import { isRecord } from '../core/validate';

/** The first SAELens version whose cfg.json needs no conversion. */
const FIRST_6_0 = '6.0.0rc0';

/** The keys a pre-6.0 config moves into `metadata` (LLM_METADATA_KEYS). */
export const LEGACY_METADATA_KEYS = [
  'model_name',
  'hook_name',
  'model_class_name',
  'hook_head_index',
  'model_from_pretrained_kwargs',
  'prepend_bos',
  'exclude_special_tokens',
  'neuronpedia_id',
  'context_size',
  'seqpos_slice',
  'dataset_path',
  'sae_lens_version',
  'sae_lens_training_version',
  'hook_name_out',
  'hook_head_index_out',
] as const;

/** Renamed keys of old configs. */
const LEGACY_RENAMES: Readonly<Record<string, string>> = {
  hook_point: 'hook_name',
  hook_point_head_index: 'hook_head_index',
  activation_fn_str: 'activation_fn',
};

/** Whether `cfg` predates SAELens 6; `bad` throws for a version that is not one. */
export function isPre60Config(cfg: Record<string, unknown>, bad: (what: string) => never): boolean {
  let version = cfg.sae_lens_version;
  // Python's `not version`: absent, null, '' (and false, 0) all mean "no version".
  if (!version && isRecord(cfg.metadata)) version = cfg.metadata.sae_lens_version;
  if (!version) return true;
  if (typeof version !== 'string') return bad(`sae_lens_version must be a version string, got ${JSON.stringify(version)}`);
  const parsed = parsePep440(version);
  if (!parsed) return bad(`sae_lens_version ${JSON.stringify(version)} is not a PEP 440 version`);
  return comparePep440(parsed, parsePep440(FIRST_6_0)!) < 0;
}

/**
 * A pre-6.0 config in 6.0's shape: keys renamed, old defaults filled, a topk activation made the
 * topk architecture, a boolean normalize_activations named, the metadata keys gathered. Fields a
 * 6.0 class does not have are dropped later, as SAELens filters them (parseSaeLensConfig).
 */
export function convertPre60Config(cfg: Record<string, unknown>, bad: (what: string) => never): Record<string, unknown> {
  const converted: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(cfg)) converted[LEGACY_RENAMES[key] ?? key] = value;
  const setDefault = (key: string, value: unknown) => {
    if (!Object.hasOwn(converted, key)) converted[key] = value;
  };
  setDefault('prepend_bos', true);
  setDefault('apply_b_dec_to_input', true);
  setDefault('architecture', 'standard');
  setDefault('neuronpedia_id', null);
  setDefault('sae_lens_training_version', null);
  if (!Object.hasOwn(converted, 'reshape_activations')) {
    const hookName = converted.hook_name ?? '';
    if (typeof hookName !== 'string') bad(`hook_name must be a string, got ${JSON.stringify(hookName)}`);
    converted.reshape_activations = (hookName as string).includes('hook_z') ? 'hook_z' : 'none';
  }
  const activation = converted.activation_fn ?? 'relu';
  const kwargs = converted.activation_fn_kwargs;
  if ((activation === 'topk' || converted.architecture === 'topk') && kwargs !== undefined && !isRecord(kwargs)) {
    bad(`activation_fn_kwargs must be an object, got ${JSON.stringify(kwargs)}`);
  }
  if (activation === 'topk' && isRecord(kwargs) && kwargs.k !== undefined && kwargs.k !== null) converted.architecture = 'topk';
  // SAELens takes k from activation_fn_kwargs whenever a topk config has them.
  if (converted.architecture === 'topk' && isRecord(kwargs)) {
    if (!Object.hasOwn(kwargs, 'k')) bad('activation_fn_kwargs of a topk config has no k');
    converted.k = kwargs.k;
  }
  if (typeof converted.normalize_activations === 'boolean') {
    converted.normalize_activations = converted.normalize_activations ? 'expected_average_only_in' : 'none';
  }
  if (converted.normalize_activations === null || converted.normalize_activations === undefined) converted.normalize_activations = 'none';
  const metadata: Record<string, unknown> = {};
  for (const key of LEGACY_METADATA_KEYS) if (Object.hasOwn(converted, key)) metadata[key] = converted[key];
  converted.metadata = metadata;
  return converted;
}

interface Pep440 {
  epoch: number;
  release: number[];
  /** [phase (a 0, b 1, rc 2), number] */
  pre?: [number, number];
  post?: number;
  dev?: number;
}

// PEP 440's public version pattern (its appendix), case-insensitive.
const PEP440 =
  /^v?(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?(\d+)?)?(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?(?:[-_.]?(dev)[-_.]?(\d+)?)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$/i;

export function parsePep440(text: string): Pep440 | undefined {
  const m = PEP440.exec(text.trim());
  if (!m) return undefined;
  const [, epoch, release, preLabel, preNumber, postDash, postLabel, postNumber, devLabel, devNumber] = m;
  const phase = preLabel ? (({ a: 0, alpha: 0, b: 1, beta: 1 } as Record<string, number>)[preLabel.toLowerCase()] ?? 2) : undefined;
  const version: Pep440 = { epoch: Number(epoch ?? 0), release: release.split('.').map(Number) };
  if (phase !== undefined) version.pre = [phase, Number(preNumber ?? 0)];
  if (postDash !== undefined || postLabel !== undefined) version.post = Number(postDash ?? postNumber ?? 0);
  if (devLabel !== undefined) version.dev = Number(devNumber ?? 0);
  return version;
}

/** PEP 440's order (local labels, which SAELens never writes, are not compared). */
export function comparePep440(a: Pep440, b: Pep440): number {
  if (a.epoch !== b.epoch) return a.epoch - b.epoch;
  for (let i = 0; i < Math.max(a.release.length, b.release.length); i++) {
    const d = (a.release[i] ?? 0) - (b.release[i] ?? 0);
    if (d !== 0) return d;
  }
  return compareKeys(sortKey(a), sortKey(b));
}

// A dev release with no pre or post sorts before every pre-release of its release; a final
// release after them; post after final; dev before the release it develops.
function sortKey(v: Pep440): number[] {
  const pre = v.pre ?? (v.post === undefined && v.dev !== undefined ? [-Infinity, 0] : [Infinity, 0]);
  return [...pre, v.post ?? -Infinity, v.dev ?? Infinity];
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}
