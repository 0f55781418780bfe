// torchscope: `import * as torch from 'torchscope'`.
export { TorchscopeError, ErrorCode } from './errors';
export { Tensor, tensor, zeros, disposeValue as dispose, DType, Device, TypedArray, NestedArray } from './tensor';
export { Model, load, LoadOptions, CallOptions, ModuleInfo, Value, Input } from './model';
export { activations, run, inspect, PatchSpec, RunOptions, RunResult, ActivationRecord, CaptureRequest, Calls, ProgramInfo } from './activations';
export { cuda, info, Info } from './device';
export { image, toPng, saveImage, ImageOptions, PngOptions, IMAGENET_MEAN, IMAGENET_STD } from './image';
export { Objective, ObjectiveKind } from './objective';
export { gradients, GradientsOptions, GradientsResult } from './gradients';
export { attribute, tokenScores, AttributeOptions, AttributionResult, AttributionMethod, AttributionProgress, Integration, NoiseOptions, NoiseType, ATTRIBUTION_DEFAULTS } from './attribution';
export { maximize, maximizeIter, TransformSpec, MaximizeOptions, MaximizeProgress, MaximizeResult, MaximizeRun } from './maximize';
export { BertTokenizer, BertTokenizerOptions, EncodeOptions, BatchEncodeOptions, DecodeOptions, EncodeInput, Encoding, BatchEncoding, Truncation } from './tokenizer';
export * as plot from './plot';
export type { AttentionLike, Colormap, HeatmapOptions, GridOptions, HtmlOptions } from './plot';
export { attention, AttentionInput, AttentionOptions, AttentionResult } from './attention';
export { doctor, formatDoctor, DoctorReport } from './doctor';
