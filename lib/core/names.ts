// Every enumeration whose names cross to the addon, one list each (native/core/names.h holds the
// addon's; test/constants.test.ts compares the two). The API's literal types are derived from
// them, so a name is written once in lib/ (@useDeclaredType: the API docs list the names).
export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
/** @useDeclaredType */
export type Precision = (typeof PRECISIONS)[number];

export const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int8', 'uint8', 'int16', 'int32', 'int64', 'bool'] as const;
/** @useDeclaredType */
export type DType = (typeof DTYPES)[number];

export const ATTRIBUTION_METHODS = [
  'saliency',
  'inputXGradient',
  'integratedGradients',
  'layerIntegratedGradients',
  'layerGradCam',
  'occlusion',
  'featureAblation',
] as const;
/** @useDeclaredType */
export type AttributionMethod = (typeof ATTRIBUTION_METHODS)[number];

/** Integrated gradients' approximation of the path integral (Captum's approximation_methods). */
export const INTEGRATIONS = ['gausslegendre', 'riemann_left', 'riemann_right', 'riemann_middle', 'riemann_trapezoid'] as const;
/** @useDeclaredType */
export type Integration = (typeof INTEGRATIONS)[number];

/** The noise tunnel's types (Captum's NoiseTunnel). */
export const NOISE_TYPES = ['smoothgrad', 'smoothgrad_sq', 'vargrad'] as const;
/** @useDeclaredType */
export type NoiseType = (typeof NOISE_TYPES)[number];

/** Grad-CAM's upsampling: 'nearest' (Captum's), 'bilinear' (2-D), 'linear' (1-D). */
export const UPSAMPLE_MODES = ['nearest', 'bilinear', 'linear'] as const;
/** @useDeclaredType */
export type UpsampleMode = (typeof UPSAMPLE_MODES)[number];

/** Activation maximization: how the parameters make an image, and how it stays in [0, 1]. */
export const PARAMETERIZATIONS = ['fft', 'pixel'] as const;
/** @useDeclaredType */
export type Parameterization = (typeof PARAMETERIZATIONS)[number];
export const IMAGE_RANGES = ['sigmoid', 'clamp', 'none'] as const;
/** @useDeclaredType */
export type ImageRange = (typeof IMAGE_RANGES)[number];
export const TRANSFORM_KINDS = ['pad', 'jitter', 'scale', 'rotate'] as const;
/** @useDeclaredType */
export type TransformKind = (typeof TRANSFORM_KINDS)[number];

/** A patching sweep: the patched runs, or their one-backward-pass estimate. */
export const SWEEP_METHODS = ['activation', 'attribution'] as const;
/** @useDeclaredType */
export type SweepMethod = (typeof SWEEP_METHODS)[number];

/** An objective's kind: the key that names it ({ channel: 3 }, { logit: 7 }...). */
export const OBJECTIVE_KINDS = ['channel', 'neuron', 'direction', 'logit', 'logitDiff', 'logProb', 'target', 'sum'] as const;
/** @useDeclaredType */
export type ObjectiveKind = (typeof OBJECTIVE_KINDS)[number];

/**
 * The values of a sparse autoencoder spliced into a run, named by the hook point it reads and one
 * of these: 'transformer.h.1:input:features' (native/program/hook_points.h kSae*Suffix).
 */
export const SAE_STAGES = [':featuresPre', ':features', ':reconstruction', ':error'] as const;
/** @useDeclaredType */
export type SaeStage = (typeof SAE_STAGES)[number];

/** A linear probe's kind (torch.probe.fit), and a logistic probe's scheme for more than two classes. */
export const PROBE_KINDS = ['logistic', 'linear', 'massMean'] as const;
/** @useDeclaredType */
export type ProbeKind = (typeof PROBE_KINDS)[number];
export const PROBE_MULTICLASS = ['multinomial', 'ovr'] as const;
/** @useDeclaredType */
export type ProbeMulticlass = (typeof PROBE_MULTICLASS)[number];

/** torch.sae.train's architectures, as SAELens 6.18 names its training classes (batchtopk is saved as jumprelu). */
export const SAE_TRAIN_ARCHITECTURES = ['standard', 'topk', 'batchtopk', 'jumprelu'] as const;
/** @useDeclaredType */
export type SaeTrainArchitecture = (typeof SAE_TRAIN_ARCHITECTURES)[number];

/** What torch.sae.train does to its input (normalize_activations): 'expected_average_only_in' scales by sqrt(d_in) / mean norm, folded in when saved. */
export const SAE_TRAIN_NORMALIZATIONS = ['none', 'expected_average_only_in'] as const;
/** @useDeclaredType */
export type SaeTrainNormalization = (typeof SAE_TRAIN_NORMALIZATIONS)[number];

/** SAELens's learning-rate schedulers (lr_scheduler_name; training/optim.py). */
export const LR_SCHEDULERS = ['constant', 'cosineannealing', 'cosineannealingwarmrestarts'] as const;
/** @useDeclaredType */
export type LrScheduler = (typeof LR_SCHEDULERS)[number];

/** JumpReLU's sparsity loss (jumprelu_sparsity_loss_mode): 'step' is Google DeepMind's L0, 'tanh' Anthropic's. */
export const JUMPRELU_SPARSITY_LOSSES = ['step', 'tanh'] as const;
/** @useDeclaredType */
export type JumpReluSparsityLoss = (typeof JUMPRELU_SPARSITY_LOSSES)[number];
