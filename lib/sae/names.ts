// Every name an SAE file or cfg.json may spell, one list each: SAELens's architectures and
// normalizations (sae_lens/saes/*.py, SAEConfig), the tensors each architecture holds, the file
// names of the three formats torchscope reads. The types are derived from these lists.
import { FloatDType } from '../io/host-tensor';

/** The architectures torchscope computes (SAELens 6's inference classes). */
export const SAE_ARCHITECTURES = ['standard', 'jumprelu', 'topk', 'gated', 'transcoder', 'skip_transcoder', 'jumprelu_transcoder'] as const;
/** @useDeclaredType */
export type SaeArchitecture = (typeof SAE_ARCHITECTURES)[number];

/** Architectures that read one hook point and write another (SAELens's Transcoder and subclasses). */
export const TRANSCODER_ARCHITECTURES = ['transcoder', 'skip_transcoder', 'jumprelu_transcoder'] as const satisfies readonly SaeArchitecture[];

/**
 * Names SAELens knows that torchscope does not compute, with why, so the refusal says more than
 * "unknown". (batchtopk and matryoshka_batchtopk are training classes that SAELens saves as jumprelu.)
 */
export const UNSUPPORTED_ARCHITECTURES: Readonly<Record<string, string>> = {
  jumprelu_skip_transcoder: 'a newer SAELens architecture torchscope does not compute yet',
  temporal: 'a newer SAELens architecture torchscope does not compute yet',
  matching_pursuit: 'a newer SAELens architecture torchscope does not compute yet',
  batchtopk: 'a training architecture: SAELens saves these SAEs as jumprelu',
  matryoshka_batchtopk: 'a training architecture: SAELens saves these SAEs as jumprelu',
};

/** cfg.json's normalize_activations (SAEConfig). */
export const SAE_NORMALIZATIONS = ['none', 'expected_average_only_in', 'constant_norm_rescale', 'layer_norm'] as const;
/** @useDeclaredType */
export type SaeNormalization = (typeof SAE_NORMALIZATIONS)[number];

/**
 * What the native SAE computes of them: 'expected_average_only_in' is 'none' there, since SAELens
 * scales by the dataset norm only in from_pretrained (folded into the weights), never from disk.
 */
export const NATIVE_NORMALIZATIONS = ['none', 'constant_norm_rescale', 'layer_norm'] as const satisfies readonly SaeNormalization[];
/** @useDeclaredType */
export type NativeNormalization = (typeof NATIVE_NORMALIZATIONS)[number];

/** cfg.json's reshape_activations: 'hook_z' flattens [..., heads, d_head] to [..., heads * d_head]. */
export const SAE_RESHAPES = ['none', 'hook_z'] as const;
/** @useDeclaredType */
export type SaeReshape = (typeof SAE_RESHAPES)[number];

/** cfg.json's dtype: SAELens's DTYPE_MAP reads both spellings; torchscope keeps the first. */
export const SAE_DTYPE_NAMES: Readonly<Record<string, FloatDType>> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  bfloat16: 'bfloat16',
  'torch.float32': 'float32',
  'torch.float64': 'float64',
  'torch.float16': 'float16',
  'torch.bfloat16': 'bfloat16',
};

/** Every tensor an SAE may hold, with its shape in terms of d_in, d_sae and d_out. */
export const SAE_TENSOR_SHAPES = {
  W_enc: ['d_in', 'd_sae'],
  b_enc: ['d_sae'],
  W_dec: ['d_sae', 'd_out'],
  b_dec: ['d_out'],
  threshold: ['d_sae'],
  b_gate: ['d_sae'],
  b_mag: ['d_sae'],
  r_mag: ['d_sae'],
  W_skip: ['d_out', 'd_in'],
} as const;
/** @useDeclaredType */
export type SaeTensorName = keyof typeof SAE_TENSOR_SHAPES;
export const SAE_TENSOR_NAMES = Object.keys(SAE_TENSOR_SHAPES) as SaeTensorName[];

/** The tensors each architecture holds, no more and no fewer (SAELens loads its state dict strictly). */
export const SAE_REQUIRED_TENSORS: Readonly<Record<SaeArchitecture, readonly SaeTensorName[]>> = {
  standard: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  topk: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  jumprelu: ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold'],
  gated: ['W_enc', 'W_dec', 'b_dec', 'b_gate', 'b_mag', 'r_mag'],
  transcoder: ['W_enc', 'b_enc', 'W_dec', 'b_dec'],
  skip_transcoder: ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'W_skip'],
  jumprelu_transcoder: ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold'],
};

/**
 * A tensor some files carry besides the SAE's own: SAELens drops it when it is all ones and
 * otherwise needs a finetuning scaling factor its version-6 classes no longer have.
 */
export const SCALING_FACTOR_KEY = 'scaling_factor';

/** The formats torchscope reads. */
export const SAE_FORMATS = ['saelens', 'sparsify', 'gemma-scope'] as const;
/** @useDeclaredType */
export type SaeFormat = (typeof SAE_FORMATS)[number];

/** File names (sae_lens/constants.py; sparsify's SparseCoder.save_to_disk; Gemma Scope's releases). */
export const SAE_FILES = {
  cfg: 'cfg.json',
  weights: 'sae_weights.safetensors',
  sparsity: 'sparsity.safetensors',
  sparsifyWeights: 'sae.safetensors',
  gemmaScope: 'params.npz',
} as const;

/** The one tensor of sparsity.safetensors: log10 of each feature's firing frequency. */
export const SPARSITY_KEY = 'sparsity';
