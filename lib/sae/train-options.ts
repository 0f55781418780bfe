// torch.sae.train's options: SAELens 6.18's training configuration under camelCase names (the
// runner's LanguageModelSAERunnerConfig for the trainer, each architecture's TrainingSAEConfig),
// its defaults in one place, every value checked, and an option that the architecture, the
// scheduler or the other options would leave unused refused rather than dropped.
import { CallSite, failure } from '../core/errors';
import {
  JUMPRELU_SPARSITY_LOSSES,
  JumpReluSparsityLoss,
  LR_SCHEDULERS,
  LrScheduler,
  SAE_TRAIN_ARCHITECTURES,
  SAE_TRAIN_NORMALIZATIONS,
  SaeTrainArchitecture,
  SaeTrainNormalization,
} from '../core/names';
import { abortSignal, boolean, callback, finiteNumber, integer, isRecord, oneOf, optionKeys, positiveInteger, requiredOptions, string } from '../core/validate';
import { Tensor } from '../model/tensor';

/** Weights to start from (so a run can start where another, or a reference, starts). */
export interface SaeInitialWeights {
  /** [dIn, dSae] */
  W_enc: Tensor;
  /** [dSae, dIn] */
  W_dec: Tensor;
  /** [dSae] */
  b_enc: Tensor;
  /** [dIn] */
  b_dec: Tensor;
  /** jumprelu: [dSae], positive (trained as its log). Default: initThreshold everywhere. */
  threshold?: Tensor;
}

export interface SaeTrainStats {
  /** The total loss and its terms as SAELens names them: mse_loss, then l1_loss (standard), auxiliary_reconstruction_loss (topk, batchtopk), l0_loss and pre_act_loss (jumprelu). */
  loss: number;
  losses: Record<string, number>;
  /** mse_loss: the squared error summed over dIn, averaged over the batch's tokens. */
  mse: number;
  /** Latents firing per token. */
  l0: number;
  /** 1 - mean squared error / mean variance, over the batch. */
  explainedVariance: number;
  /** Latents that have not fired for more than deadFeatureWindow steps. */
  deadFeatures: number;
  /** The learning rate the step used. */
  lr: number;
  /** standard's l1 / jumprelu's l0 coefficient the step used (warmed up). */
  coefficient?: number;
  /** batchtopk: the running threshold the SAE is saved with. */
  topkThreshold?: number;
}

export interface SaeTrainProgress extends SaeTrainStats {
  /** Steps trained so far. */
  step: number;
  steps: number;
  trainedTokens: number;
  elapsedMs: number;
}

export interface SaeTrainOptions {
  /** [tokens, dIn] activations, one batch per step (another floating dtype is cast to float32). The caller owns them: they are not disposed. */
  batches: AsyncIterable<Tensor> | Iterable<Tensor>;
  architecture: SaeTrainArchitecture;
  /** Latents. */
  dSae: number;
  /** Training steps (one batch each). Give steps or trainingTokens. */
  steps?: number;
  /** SAELens's training_tokens: steps while fewer tokens were trained, the schedules planned over trainingTokens // the first batch's tokens. */
  trainingTokens?: number;
  /** topk: latents kept per token (an integer); batchtopk: their mean over the batch. Default 100. */
  k?: number;
  /** topk, batchtopk: the auxiliary loss's coefficient (aux_loss_coefficient). Default 1. */
  auxLossCoefficient?: number;
  /** topk, batchtopk: pre-activations scaled by the decoder rows' norms (folded into the weights when saved). Default true. */
  rescaleActsByDecoderNorm?: boolean;
  /** batchtopk: the threshold's EMA rate (topk_threshold_lr). Default 0.01. */
  topkThresholdLr?: number;
  /** standard: the sparsity penalty's coefficient. Default 1. */
  l1Coefficient?: number;
  /** standard: p of the penalty's p-norm (lp_norm). Default 1. */
  lpNorm?: number;
  /** standard: steps over which l1Coefficient warms up from 0. Default 0. */
  l1WarmupSteps?: number;
  /** jumprelu: the L0 loss's coefficient (l0_coefficient). Default 1. */
  l0Coefficient?: number;
  /** jumprelu: steps over which l0Coefficient warms up from 0. Default 0. */
  l0WarmupSteps?: number;
  /** jumprelu: the width of the threshold's pseudo-derivative (jumprelu_bandwidth). Default 0.05. */
  bandwidth?: number;
  /** jumprelu: the threshold every latent starts at (jumprelu_init_threshold). Default 0.01. */
  initThreshold?: number;
  /** jumprelu: 'step' (default, Google DeepMind's L0) or 'tanh' (Anthropic's). */
  sparsityLoss?: JumpReluSparsityLoss;
  /** jumprelu 'tanh': its scale (jumprelu_tanh_scale). Default 4. */
  tanhScale?: number;
  /** jumprelu: Anthropic's pre-activation loss on dead latents (pre_act_loss_coefficient). Default: none. */
  preActLossCoefficient?: number;
  /** Adam's. Default 3e-4. */
  lr?: number;
  /** Default 0.9. */
  adamBeta1?: number;
  /** Default 0.999. */
  adamBeta2?: number;
  /** Default 'constant'. */
  lrScheduler?: LrScheduler;
  /** Linear warm-up from lr / lrWarmupSteps. Default 0. */
  lrWarmupSteps?: number;
  /** Linear decay to 0 over the last lrDecaySteps steps, from lrEnd (from lr for 'constant'). Default 0. */
  lrDecaySteps?: number;
  /** The cosine schedulers' floor and where the decay starts. Default lr / 10. */
  lrEnd?: number;
  /** cosineannealingwarmrestarts: its cycles. Default 1. */
  nRestartCycles?: number;
  /** Steps without firing after which a latent is dead (the auxiliary losses' dead latents). Default 1000. */
  deadFeatureWindow?: number;
  /** Steps over which the saved sparsity (firing frequency) is counted before it restarts. Default 2000. */
  featureSamplingWindow?: number;
  /** 'expected_average_only_in': the first normEstimateBatches batches estimate sqrt(dIn) / mean |x|, every training batch is scaled by it, and it is folded into the saved weights. Default 'none'. */
  normalizeActivations?: SaeTrainNormalization;
  /** Default 1000 (SAELens's). */
  normEstimateBatches?: number;
  /** The decoder rows' initial norm; null for kaiming-uniform rows as they are. Default 0.1. */
  decoderInitNorm?: number | null;
  /** x - b_dec is encoded. Default true. */
  applyBDecToInput?: boolean;
  /** Seeds the initialisation (the CPU generator, as torch.manual_seed). Default 42. */
  seed?: number;
  /** Start from these instead of SAELens's initialisation. */
  initialWeights?: SaeInitialWeights;
  /** Where it trains: 'cpu' (default), 'cuda', 'cuda:N', 'auto'. */
  device?: string;
  /** cfg.json's metadata (hook_name, model_name, ...); sae_lens_version and sae_lens_training_version are set to 6.18.0. */
  metadata?: Record<string, unknown>;
  /** Writes the trained SAE here as SAELens does (cfg.json, sae_weights.safetensors, sparsity.safetensors). Not when aborted. */
  out?: string;
  /** Every `every` steps, the SAE so far (saved as `out` is) in `dir`/<trained tokens>/. */
  checkpoints?: { every: number; dir: string };
  /** Stops within one step; the promise then resolves with the SAE so far and `aborted: true`. */
  signal?: AbortSignal;
  /** Called every `progressEvery` steps (default 10) and after the last. */
  onProgress?: (progress: SaeTrainProgress) => void;
  progressEvery?: number;
}

/** SAELens 6.18's defaults (LanguageModelSAERunnerConfig, the TrainingSAEConfig classes). */
export const SAE_TRAIN_DEFAULTS = {
  lr: 3e-4,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  lrScheduler: 'constant' as LrScheduler,
  lrWarmupSteps: 0,
  lrDecaySteps: 0,
  nRestartCycles: 1,
  deadFeatureWindow: 1000,
  featureSamplingWindow: 2000,
  normalizeActivations: 'none' as SaeTrainNormalization,
  normEstimateBatches: 1000,
  decoderInitNorm: 0.1,
  applyBDecToInput: true,
  seed: 42,
  k: 100,
  auxLossCoefficient: 1,
  rescaleActsByDecoderNorm: true,
  topkThresholdLr: 0.01,
  l1Coefficient: 1,
  lpNorm: 1,
  l1WarmupSteps: 0,
  l0Coefficient: 1,
  l0WarmupSteps: 0,
  bandwidth: 0.05,
  initThreshold: 0.01,
  sparsityLoss: 'step' as JumpReluSparsityLoss,
  tanhScale: 4,
  device: 'cpu',
  progressEvery: 10,
};

/** The SAELens version whose definitions torch.sae.train follows, written into cfg.json's metadata. */
export const SAE_LENS_VERSION = '6.18.0';

const TRAIN_KEYS = optionKeys<SaeTrainOptions>({
  batches: true,
  architecture: true,
  dSae: true,
  steps: true,
  trainingTokens: true,
  k: true,
  auxLossCoefficient: true,
  rescaleActsByDecoderNorm: true,
  topkThresholdLr: true,
  l1Coefficient: true,
  lpNorm: true,
  l1WarmupSteps: true,
  l0Coefficient: true,
  l0WarmupSteps: true,
  bandwidth: true,
  initThreshold: true,
  sparsityLoss: true,
  tanhScale: true,
  preActLossCoefficient: true,
  lr: true,
  adamBeta1: true,
  adamBeta2: true,
  lrScheduler: true,
  lrWarmupSteps: true,
  lrDecaySteps: true,
  lrEnd: true,
  nRestartCycles: true,
  deadFeatureWindow: true,
  featureSamplingWindow: true,
  normalizeActivations: true,
  normEstimateBatches: true,
  decoderInitNorm: true,
  applyBDecToInput: true,
  seed: true,
  initialWeights: true,
  device: true,
  metadata: true,
  out: true,
  checkpoints: true,
  signal: true,
  onProgress: true,
  progressEvery: true,
});
const WEIGHT_KEYS = optionKeys<SaeInitialWeights>({ W_enc: true, W_dec: true, b_enc: true, b_dec: true, threshold: true });
const CHECKPOINT_KEYS = optionKeys<NonNullable<SaeTrainOptions['checkpoints']>>({ every: true, dir: true });

/** The options only some architectures read. */
const ARCHITECTURE_OPTIONS: Partial<Record<keyof SaeTrainOptions, readonly SaeTrainArchitecture[]>> = {
  k: ['topk', 'batchtopk'],
  auxLossCoefficient: ['topk', 'batchtopk'],
  rescaleActsByDecoderNorm: ['topk', 'batchtopk'],
  topkThresholdLr: ['batchtopk'],
  l1Coefficient: ['standard'],
  lpNorm: ['standard'],
  l1WarmupSteps: ['standard'],
  l0Coefficient: ['jumprelu'],
  l0WarmupSteps: ['jumprelu'],
  bandwidth: ['jumprelu'],
  initThreshold: ['jumprelu'],
  sparsityLoss: ['jumprelu'],
  tanhScale: ['jumprelu'],
  preActLossCoefficient: ['jumprelu'],
};

/** What SaeTrain's native entry reads (native/bindings/sae_train.cpp), less dIn and the weights. */
export interface NativeSaeTrainSettings {
  architecture: SaeTrainArchitecture;
  dSae: number;
  applyBDecToInput: boolean;
  lpNorm: number;
  k: number;
  rescaleByDecoderNorm: boolean;
  auxLossCoefficient: number;
  bandwidth: number;
  sparsityLoss: JumpReluSparsityLoss;
  tanhScale: number;
  preActLossCoefficient?: number;
  coefficient: number;
  coefficientWarmupSteps: number;
  topkThresholdLr: number;
  initThreshold: number;
  decoderInitNorm?: number;
  seed: number;
  adamBeta1: number;
  adamBeta2: number;
  lrScheduler: LrScheduler;
  lr: number;
  lrEnd: number;
  lrWarmupSteps: number;
  lrDecaySteps: number;
  nRestartCycles: number;
  deadFeatureWindow: number;
  featureSamplingWindow: number;
  normEstimateBatches: number;
  checkpointEvery: number;
  device: string;
}

/** The options checked, with their defaults. */
export interface SaeTrainPlan {
  native: NativeSaeTrainSettings;
  batches: AsyncIterable<Tensor> | Iterable<Tensor>;
  steps?: number;
  trainingTokens?: number;
  initialWeights?: SaeInitialWeights;
  metadata: Record<string, unknown>;
  out?: string;
  checkpointDir?: string;
  progressEvery: number;
}

export function planTraining(given: SaeTrainOptions, what: string, site: CallSite): SaeTrainPlan {
  const options = requiredOptions(given, TRAIN_KEYS, what, "{ batches, architecture: 'topk', dSae: 8192, steps: 1000 }", site);
  const d = SAE_TRAIN_DEFAULTS;
  const architecture = oneOf(options.architecture, 'architecture', SAE_TRAIN_ARCHITECTURES, site);
  for (const [key, architectures] of Object.entries(ARCHITECTURE_OPTIONS)) {
    if (options[key as keyof SaeTrainOptions] !== undefined && !architectures.includes(architecture))
      throw failure('INVALID_ARGUMENT', `${key} is for ${architectures.join(' and ')} SAEs; this one is ${architecture}`, site);
  }
  const batches = options.batches as unknown;
  if (batches === null || typeof batches !== 'object' || !(Symbol.asyncIterator in batches || Symbol.iterator in batches))
    throw failure('INVALID_ARGUMENT', 'batches must be an iterable or async iterable of [tokens, dIn] Tensors', site);
  const dSae = positiveInteger(options.dSae, 'dSae', site);
  if ((options.steps === undefined) === (options.trainingTokens === undefined))
    throw failure('INVALID_ARGUMENT', 'give steps or trainingTokens (one of them)', site);
  const steps = options.steps === undefined ? undefined : positiveInteger(options.steps, 'steps', site);
  const trainingTokens = options.trainingTokens === undefined ? undefined : positiveInteger(options.trainingTokens, 'trainingTokens', site);

  const k =
    architecture === 'topk'
      ? integer(options.k ?? d.k, 'k', { min: 1, max: dSae }, site)
      : architecture === 'batchtopk'
        ? finiteNumber(options.k ?? d.k, 'k', { above: 0, max: dSae }, site)
        : 0;
  const lr = finiteNumber(options.lr ?? d.lr, 'lr', { above: 0 }, site);
  const lrScheduler = oneOf(options.lrScheduler ?? d.lrScheduler, 'lrScheduler', LR_SCHEDULERS, site);
  const lrDecaySteps = integer(options.lrDecaySteps ?? d.lrDecaySteps, 'lrDecaySteps', { min: 0 }, site);
  if (options.lrEnd !== undefined && lrScheduler === 'constant')
    throw failure('INVALID_ARGUMENT', "lrEnd is for the cosine schedulers (lrScheduler 'constant' decays from lr)", site);
  if (options.nRestartCycles !== undefined && lrScheduler !== 'cosineannealingwarmrestarts')
    throw failure('INVALID_ARGUMENT', "nRestartCycles is for lrScheduler 'cosineannealingwarmrestarts'", site);
  const normalizeActivations = oneOf(options.normalizeActivations ?? d.normalizeActivations, 'normalizeActivations', SAE_TRAIN_NORMALIZATIONS, site);
  if (options.normEstimateBatches !== undefined && normalizeActivations === 'none')
    throw failure('INVALID_ARGUMENT', "normEstimateBatches is for normalizeActivations 'expected_average_only_in'", site);
  const initialWeights = options.initialWeights === undefined ? undefined : checkWeights(options.initialWeights, architecture, site);
  if (initialWeights) {
    for (const key of ['seed', 'decoderInitNorm'] as const)
      if (options[key] !== undefined) throw failure('INVALID_ARGUMENT', `${key} sets up the initial weights; initialWeights replaces them`, site);
    if (initialWeights.threshold && options.initThreshold !== undefined)
      throw failure('INVALID_ARGUMENT', 'initThreshold and initialWeights.threshold both set the initial threshold', site);
  }
  const decoderInitNorm = options.decoderInitNorm === undefined ? d.decoderInitNorm : options.decoderInitNorm;
  const checkpoints = options.checkpoints === undefined ? undefined : checkCheckpoints(options.checkpoints, site);
  abortSignal(options.signal, site);
  if (options.onProgress !== undefined) callback(options.onProgress, 'onProgress', site);
  const coefficient = architecture === 'standard' ? (options.l1Coefficient ?? d.l1Coefficient) : (options.l0Coefficient ?? d.l0Coefficient);
  const coefficientWarmupSteps = architecture === 'standard' ? (options.l1WarmupSteps ?? d.l1WarmupSteps) : (options.l0WarmupSteps ?? d.l0WarmupSteps);
  return {
    batches: options.batches,
    steps,
    trainingTokens,
    initialWeights,
    metadata: checkMetadata(options.metadata, site),
    out: options.out === undefined ? undefined : string(options.out, 'out', site),
    checkpointDir: checkpoints?.dir,
    progressEvery: positiveInteger(options.progressEvery ?? d.progressEvery, 'progressEvery', site),
    native: {
      architecture,
      dSae,
      applyBDecToInput: boolean(options.applyBDecToInput ?? d.applyBDecToInput, 'applyBDecToInput', site),
      lpNorm: finiteNumber(options.lpNorm ?? d.lpNorm, 'lpNorm', { above: 0 }, site),
      k,
      rescaleByDecoderNorm: boolean(options.rescaleActsByDecoderNorm ?? d.rescaleActsByDecoderNorm, 'rescaleActsByDecoderNorm', site),
      auxLossCoefficient: finiteNumber(options.auxLossCoefficient ?? d.auxLossCoefficient, 'auxLossCoefficient', { min: 0 }, site),
      bandwidth: finiteNumber(options.bandwidth ?? d.bandwidth, 'bandwidth', { above: 0 }, site),
      sparsityLoss: oneOf(options.sparsityLoss ?? d.sparsityLoss, 'sparsityLoss', JUMPRELU_SPARSITY_LOSSES, site),
      tanhScale: finiteNumber(options.tanhScale ?? d.tanhScale, 'tanhScale', {}, site),
      preActLossCoefficient:
        options.preActLossCoefficient === undefined ? undefined : finiteNumber(options.preActLossCoefficient, 'preActLossCoefficient', { min: 0 }, site),
      coefficient: finiteNumber(coefficient, architecture === 'standard' ? 'l1Coefficient' : 'l0Coefficient', { min: 0 }, site),
      coefficientWarmupSteps: integer(coefficientWarmupSteps, architecture === 'standard' ? 'l1WarmupSteps' : 'l0WarmupSteps', { min: 0 }, site),
      topkThresholdLr: finiteNumber(options.topkThresholdLr ?? d.topkThresholdLr, 'topkThresholdLr', { min: 0, max: 1 }, site),
      initThreshold: finiteNumber(options.initThreshold ?? d.initThreshold, 'initThreshold', { above: 0 }, site),
      decoderInitNorm: decoderInitNorm === null ? undefined : finiteNumber(decoderInitNorm, 'decoderInitNorm', { above: 0 }, site),
      seed: integer(options.seed ?? d.seed, 'seed', { min: 0 }, site),
      adamBeta1: finiteNumber(options.adamBeta1 ?? d.adamBeta1, 'adamBeta1', { min: 0, below: 1 }, site),
      adamBeta2: finiteNumber(options.adamBeta2 ?? d.adamBeta2, 'adamBeta2', { min: 0, below: 1 }, site),
      lrScheduler,
      lr,
      lrEnd: finiteNumber(options.lrEnd ?? lr / 10, 'lrEnd', { min: 0 }, site),
      lrWarmupSteps: integer(options.lrWarmupSteps ?? d.lrWarmupSteps, 'lrWarmupSteps', { min: 0 }, site),
      lrDecaySteps,
      nRestartCycles: positiveInteger(options.nRestartCycles ?? d.nRestartCycles, 'nRestartCycles', site),
      deadFeatureWindow: integer(options.deadFeatureWindow ?? d.deadFeatureWindow, 'deadFeatureWindow', { min: 0 }, site),
      featureSamplingWindow: positiveInteger(options.featureSamplingWindow ?? d.featureSamplingWindow, 'featureSamplingWindow', site),
      normEstimateBatches:
        normalizeActivations === 'none' ? 0 : positiveInteger(options.normEstimateBatches ?? d.normEstimateBatches, 'normEstimateBatches', site),
      checkpointEvery: checkpoints?.every ?? 0,
      device: string(options.device ?? d.device, 'device', site),
    },
  };
}

function checkWeights(given: unknown, architecture: SaeTrainArchitecture, site: CallSite): SaeInitialWeights {
  const weights = requiredOptions(given as SaeInitialWeights, WEIGHT_KEYS, 'initialWeights', '{ W_enc, W_dec, b_enc, b_dec }', site);
  for (const key of WEIGHT_KEYS) {
    const value = weights[key as keyof SaeInitialWeights];
    if (value === undefined) {
      if (key !== 'threshold') throw failure('INVALID_ARGUMENT', `initialWeights needs W_enc, W_dec, b_enc and b_dec; ${key} is missing`, site);
      continue;
    }
    if (!(value instanceof Tensor)) throw failure('INVALID_ARGUMENT', `initialWeights.${key} must be a Tensor`, site);
    if (value.disposed) throw failure('DISPOSED', `initialWeights.${key} has been disposed`, site);
  }
  if (weights.threshold !== undefined && architecture !== 'jumprelu')
    throw failure('INVALID_ARGUMENT', `initialWeights.threshold is for jumprelu SAEs; this one is ${architecture}`, site);
  return weights;
}

function checkCheckpoints(given: unknown, site: CallSite): { every: number; dir: string } {
  const checkpoints = requiredOptions(given as { every: number; dir: string }, CHECKPOINT_KEYS, 'checkpoints', "{ every: 1000, dir: 'checkpoints' }", site);
  return { every: positiveInteger(checkpoints.every, 'checkpoints.every', site), dir: string(checkpoints.dir, 'checkpoints.dir', site) };
}

/** JSON-safe metadata; the SAELens versions are torch.sae.train's to set. */
function checkMetadata(given: unknown, site: CallSite): Record<string, unknown> {
  if (given === undefined) return {};
  if (!isRecord(given)) throw failure('INVALID_ARGUMENT', 'metadata must be an object (cfg.json metadata: hook_name, model_name, ...)', site);
  for (const key of ['sae_lens_version', 'sae_lens_training_version'])
    if (key in given) throw failure('INVALID_ARGUMENT', `metadata.${key} is set by torch.sae.train (${SAE_LENS_VERSION})`, site);
  let copy: Record<string, unknown>;
  try {
    copy = JSON.parse(JSON.stringify(given)) as Record<string, unknown>;
  } catch (e) {
    throw failure('INVALID_ARGUMENT', `metadata must be JSON: ${(e as Error).message}`, site);
  }
  return copy;
}
