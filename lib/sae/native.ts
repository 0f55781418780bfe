// The native SAE (native/: encode, decode, forward and the error term, held and computed by
// libtorch), merged into NativeBinding below, and the one way loaded files become one: their host
// tensors copied to native memory on the model's device, then SaeHandle.create.
import { binding } from '../native/addon';
import { NativeTensor } from '../native/binding';
import type { SaeFiles } from './load';
import { NativeNormalization, SAE_TENSOR_NAMES, SaeArchitecture, SaeTensorName } from './names';

declare module '../native/binding' {
  interface NativeBinding {
    SaeHandle: { create(spec: NativeSaeSpec): Promise<NativeSae> };
  }
}

/** What SaeHandle.create reads. */
export interface NativeSaeSpec {
  architecture: SaeArchitecture;
  /** cfg's 'expected_average_only_in' arrives as 'none' (identity when loaded from disk). */
  normalization: NativeNormalization;
  /** Transcoders: always false. */
  applyBDecToInput: boolean;
  /** reshape_activations 'hook_z': the input's last two dims [heads, d_head] are flattened, and the output unflattened. */
  reshapeHeads: boolean;
  /** topk only; 0 otherwise. */
  k: number;
  /** topk's rescale_acts_by_decoder_norm. */
  rescaleByDecoderNorm: boolean;
  /** W_enc [d_in, d_sae], W_dec [d_sae, d_out], b_dec [d_out], W_skip [d_out, d_in]; all of the SAE's dtype, on the model's device. */
  tensors: Record<SaeTensorName, NativeTensor | undefined>;
}

/** The spec without its tensors: what loading the files decides. */
export type NativeSaeSettings = Omit<NativeSaeSpec, 'tensors'>;

export interface NativeSae {
  /** [async] { featuresPre, features } for x [..., d_in] (or [..., heads, d_head] with reshapeHeads). */
  encode(x: NativeTensor): Promise<{ featuresPre: NativeTensor; features: NativeTensor }>;
  /** [async] features -> output; `x` (the input that was encoded) is needed to undo a normalization. */
  decode(features: NativeTensor, x?: NativeTensor): Promise<NativeTensor>;
  /** [async] decode(encode(x)) */
  forward(x: NativeTensor): Promise<NativeTensor>;
  /** [async] x - forward(x) (transcoders: not defined here; the error is taken at the output point) */
  errorTerm(x: NativeTensor): Promise<NativeTensor>;
  /** [async] one of its tensors, on the CPU; null when it has none. */
  weight(name: SaeTensorName): Promise<NativeTensor | null>;
  dispose(): void;
}

/** The native SAE of loaded files, its weights on `device`. */
export async function createNativeSae(files: SaeFiles, device: string): Promise<NativeSae> {
  const addon = binding();
  const made: NativeTensor[] = [];
  try {
    const tensors = Object.fromEntries(SAE_TENSOR_NAMES.map((name) => [name, undefined])) as Record<SaeTensorName, NativeTensor | undefined>;
    for (const name of SAE_TENSOR_NAMES) {
      const host = files.tensors[name];
      if (!host) continue;
      const cpu = addon.TensorHandle.fromData(host.data, host.shape, host.dtype);
      made.push(cpu);
      const placed = device === 'cpu' ? cpu : await cpu.to(device);
      if (placed !== cpu) made.push(placed);
      tensors[name] = placed;
    }
    return await addon.SaeHandle.create({ ...files.spec, tensors });
  } finally {
    // The native SAE holds its own references to the weights; these handles were only the way in.
    for (const t of made) t.dispose();
  }
}
