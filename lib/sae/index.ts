// torch.sae: sparse autoencoders and transcoders from the files researchers publish (SAELens
// folders, EleutherAI sparsify, Gemma Scope), computed natively and spliced into runs; and SAEs
// trained natively as SAELens trains them (train, trainIter).
export { load, Sae, SaeOptions } from './sae';
export { SaeSplice } from './splice';
export { train, trainIter, SaeTrainResult, SaeTrainRun } from './train';
export { SAE_TRAIN_DEFAULTS, SaeTrainOptions, SaeTrainProgress, SaeTrainStats, SaeInitialWeights } from './train-options';
export type { SaeTrainArchitecture, SaeTrainNormalization, LrScheduler, JumpReluSparsityLoss } from '../core/names';
export type { SaeConfig } from './config';
export type { SaeArchitecture, SaeFormat, SaeNormalization } from './names';
export {
  topFeatures,
  featureAttribution,
  directLogitEffects,
  FeaturePrompt,
  FeatureTokenizer,
  TopFeaturesOptions,
  FeatureActivations,
  FeatureAttributionOptions,
  FeatureAttribution,
  DirectLogitOptions,
  DirectLogitEffect,
} from './analysis';
