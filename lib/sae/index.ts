// torch.sae: sparse autoencoders and transcoders from the files researchers publish (SAELens
// folders, EleutherAI sparsify, Gemma Scope), computed natively and spliced into runs.
export { load, Sae, SaeOptions } from './sae';
export { SaeSplice } from './splice';
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
