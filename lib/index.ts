// torchscope: `import * as torch from 'torchscope'`.
export { TorchscopeError, ErrorCode } from './core/errors';
export { Tensor, tensor, zeros, disposeValue as dispose, DType, Device, TypedArray, NestedArray } from './model/tensor';
export { Model, load, LoadOptions, CallOptions, ModuleInfo, ArgumentInfo, NodeInfo, Value, Input, Precision, NumericsOptions } from './model/model';
export type { ModelManifest, ManifestHookPoints, ManifestDecodeStep } from './model/manifest';
export { PRECISIONS } from './core/names';
export { activations, run, inspect, RunOptions, RunResult, ActivationRecord, CaptureRequest, Calls, InspectOptions, ProgramInfo } from './methods/activations';
export { PatchSpec } from './methods/patch';
export { cuda, info, Info } from './model/device';
export { image, toPng, saveImage, ImageOptions, PngOptions, IMAGENET_MEAN, IMAGENET_STD } from './io/image';
export { Objective, ObjectiveKind } from './methods/objective';
export { gradients, GradientsOptions, GradientsResult } from './methods/gradients';
export {
  attribute,
  tokenScores,
  AttributeOptions,
  AttributionResult,
  AttributionMethod,
  AttributionProgress,
  Integration,
  NoiseOptions,
  NoiseType,
  ATTRIBUTION_DEFAULTS,
} from './methods/attribution';
export { maximize, maximizeIter, MAXIMIZE_DEFAULTS, TransformSpec, MaximizeOptions, MaximizeProgress, MaximizeResult, MaximizeRun } from './methods/maximize';
export {
  BertTokenizer,
  BertTokenizerOptions,
  EncodeOptions,
  BatchEncodeOptions,
  DecodeOptions,
  EncodeInput,
  Encoding,
  BatchEncoding,
  Truncation,
} from './text/bert-tokenizer';
export * as plot from './plot';
export * as sae from './sae';
export * as dashboard from './dashboard';
export { Sae, SaeSplice } from './sae';
export * as probe from './probe';
export { Probe } from './probe';
export type { AttentionLike, Colormap, HeatmapOptions, GridOptions, HtmlOptions } from './plot';
export { attention, AttentionInput, AttentionOptions, AttentionResult, AttentionTokenizer, EncodedInput } from './methods/attention';
export { doctor, formatDoctor, DoctorReport } from './native/doctor';
export { logitLens, LogitLensOptions, LogitLensResult } from './methods/logit-lens';
export {
  collect,
  openStore,
  Store,
  COLLECT_DEFAULTS,
  STORE_READ_DEFAULTS,
  STORE_DTYPES,
  SHARD_INDEX_VARIABLES,
  SHARD_COUNT_VARIABLES,
  CollectOptions,
  CollectProgress,
  CollectResult,
  CollectInput,
  CollectTokenizer,
  SpecialToken,
  StoreColumnInfo,
  StoreSequences,
  SequencesOptions,
  TokenBatchesOptions,
  MatrixOptions,
  MatrixPosition,
  StoreMatrix,
  StoreDType,
  StoreWorker,
  StoreManifest,
  StoreColumn,
} from './store';
export { patchingSweep, lagScores, Metric, PatchingSweepOptions, PatchingSweepResult } from './methods/circuits';
export {
  Gpt2Tokenizer,
  Gpt2Encoding,
  Gpt2BatchEncoding,
  Gpt2EncodeOptions,
  Gpt2BatchOptions,
  Gpt2DecodeOptions,
  GPT2_END_OF_TEXT,
  GPT2_END_OF_TEXT_ID,
} from './text/gpt2-tokenizer';
export {
  Tokenizer,
  TokenizerOptions,
  TokenizerEncodeOptions,
  TokenizerBatchOptions,
  TokenizerDecodeOptions,
  TokenizerBatchEncoding,
  TokenizerTruncation,
} from './text/tokenizer';
export { ChatMessage, ChatTemplateOptions } from './text/chat-template';
export { RunProgress } from './native/planned';
export { generate, GenerateOptions, GenerateResult, GenerateRun, GeneratedToken, GenerateTokenizer } from './methods/generate';
