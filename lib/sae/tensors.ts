// An SAE's tensors against its configuration: the keys its architecture holds, no more and no fewer
// (SAELens loads state dicts strictly), each of the shape d_in, d_sae and d_out make. Checked on
// the files' headers, before any data is read; then read and cast to the SAE's dtype.
import { CallSite, failure } from '../core/errors';
import { castHost, FloatDType, HostTensor } from '../io/host-tensor';
import { SaeConfig } from './config';
import { SAE_REQUIRED_TENSORS, SAE_TENSOR_SHAPES, SaeTensorName, SCALING_FACTOR_KEY } from './names';

export type SaeHostTensors = Partial<Record<SaeTensorName, HostTensor>>;

/** What a file says of a tensor before it is read. */
export interface TensorHeader {
  dtype: FloatDType;
  shape: readonly number[];
}

/** The shape `name` must have under `cfg`. */
export function expectedShape(name: SaeTensorName, cfg: SaeConfig): number[] {
  const dims = { d_in: cfg.d_in, d_sae: cfg.d_sae, d_out: cfg.d_out ?? cfg.d_in };
  return SAE_TENSOR_SHAPES[name].map((d) => dims[d]);
}

/**
 * Refuses a file whose tensors are not exactly its architecture's, or of other shapes; `file`
 * names it in the message. A scaling_factor tensor may come along (checkScalingFactor).
 */
export function checkTensorHeaders(headers: ReadonlyMap<string, TensorHeader>, cfg: SaeConfig, file: string, site?: CallSite): void {
  const bad = (what: string): never => {
    throw failure('MODEL_LOAD', `SAE weights '${file}': ${what}`, site);
  };
  const required = SAE_REQUIRED_TENSORS[cfg.architecture];
  const has = `a ${cfg.architecture} SAE has ${required.join(', ')}`;
  const missing = required.filter((name) => !headers.has(name));
  if (missing.length) bad(`no tensor ${missing.map((m) => `'${m}'`).join(', ')} (${has})`);
  for (const [name, header] of headers) {
    if (name === SCALING_FACTOR_KEY) {
      if (!sameShape(header.shape, [cfg.d_sae])) bad(`tensor '${name}' has shape [${header.shape.join(', ')}]; expected [${cfg.d_sae}] (d_sae)`);
      continue;
    }
    if (!(required as readonly string[]).includes(name)) bad(`unexpected tensor '${name}' (${has})`);
    const expected = expectedShape(name as SaeTensorName, cfg);
    if (!sameShape(header.shape, expected)) {
      const dims = SAE_TENSOR_SHAPES[name as SaeTensorName].join(', ');
      bad(`tensor '${name}' has shape [${header.shape.join(', ')}]; the config makes it [${expected.join(', ')}] ([${dims}])`);
    }
  }
}

/**
 * SAELens's rule for a scaling_factor tensor (read_sae_components_from_disk): all ones
 * (torch.allclose) means none and is dropped; any other needs a finetuning scaling factor,
 * which SAELens 6's SAEs no longer have, so it is refused.
 */
export function checkScalingFactor(t: HostTensor, file: string, site?: CallSite): void {
  const values = castHost(t, 'float64').data;
  for (let i = 0; i < values.length; i++) {
    // allclose(x, 1): |x - 1| <= atol + rtol * 1
    if (!(Math.abs(values[i] - 1) <= 1e-8 + 1e-5)) {
      throw failure(
        'MODEL_LOAD',
        `SAE weights '${file}': tensor '${SCALING_FACTOR_KEY}' is not all ones; a finetuning scaling factor is not supported (SAELens 6 refuses it too)`,
        site,
      );
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** What each format's reader gives load.ts. */
export interface SaeSource {
  cfg: SaeConfig;
  /** Cast to cfg.dtype. */
  tensors: SaeHostTensors;
  /** log10 firing frequency per feature (SAELens's sparsity.safetensors), in its file's dtype. */
  sparsity: HostTensor | null;
  /** The TransformerLens hooks the file names (metadata.hook_name, hook_name_out), or null. */
  hookName: string | null;
  hookNameOut: string | null;
  /** sparsify: the module whose output the SAE reads, as a path in the base model ('layers.5'). */
  modulePath: string | null;
}
