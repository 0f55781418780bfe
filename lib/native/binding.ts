// The one place that knows the native binding's shape. Public classes wrap these handles;
// users never touch them. Every [async] method runs on the compute thread (native/bindings/async_work.h).
// lib/native/addon.ts loads the addon that has this shape.
import {
  AttributionMethod,
  DType,
  ImageRange,
  Integration,
  NoiseType,
  Parameterization,
  Precision,
  SweepMethod,
  TransformKind,
  UpsampleMode,
} from '../core/names';
import type { NativeSaeSplice } from '../sae/splice';

export type NativeValue = NativeTensor | NativeValue[] | { [key: string]: NativeValue } | number | string | boolean | null;

export interface NativeTensor {
  shape(): number[];
  dtype(): DType;
  device(): string;
  /** Zero-copy view of CPU memory; the view keeps the memory alive. */
  data(): ArrayBufferView;
  /** [async] */
  to(device: string): Promise<NativeTensor>;
  dispose(): void;
  isDisposed(): boolean;
}

export interface NativeTensorClass {
  /** Copies `data` into a new tensor. */
  fromData(data: ArrayBufferView, shape: number[], dtype: DType): NativeTensor;
}

export interface NativePatch {
  layer: string;
  mode: number;
  value?: NativeTensor;
  scale?: number;
  channels?: number[];
  positions?: number[];
}

/** A call's optional precision / upcast (native/program/precision.h NumericsOverride). */
export interface NativeNumerics {
  precision?: Precision;
  upcast?: boolean;
}

export interface NativeRunRequest extends NativeNumerics {
  capture?: string[];
  patch?: NativePatch[];
  /** SAEs spliced in (lib/sae/splice.ts). */
  saes?: NativeSaeSplice[];
  output: boolean;
  /** inspect only: the layers a gradients program taps */
  gradient?: string[];
}

export interface NativeRunResult {
  output: NativeValue;
  captures: Record<string, NativeValue[]>;
  /** How many times each captured or patched layer's hooks ran. */
  calls: Record<string, number>;
}

/**
 * What an instrumented program runs; torch.inspect's ProgramInfo.
 * @inline
 */
export interface NativeProgramSummary {
  /** Module paths the program still calls (not inlined); 'path:method' for other methods. */
  calledModules: string[];
  /** Op counts of the fully inlined program. */
  opCounts: Record<string, number>;
  /** The program's TorchScript graph. */
  graph: string;
  /** 'exact'; with load({ optimize: true }): 'optimized', or 'frozen' for bfloat16/float16 models and reduced precisions (frozen, autocast weights cast once: the same values as exact). */
  numerics: 'exact' | 'optimized' | 'frozen';
  /** What its matmul-like ops compute in: load()'s precision. */
  precision: 'fp32' | 'bf16' | 'fp16';
  /**
   * How image inputs (4-D floating tensors) reach it: 'channels_last' on the CPU when the
   * program convolves and never views, at a reduced precision or optimized in float32 (oneDNN's
   * fast layout there), else 'contiguous'. A layout changes no value of its own (optimized
   * float32's prepacked kernels round within optimize's 1e-4).
   */
  memoryFormat: 'channels_last' | 'contiguous';
  /** Milliseconds it took to build this program; paid once per (model, layer set), then cached. */
  buildMs: number;
  /** Programs this model has built so far. */
  programsCached: number;
}

export type NativeObjective =
  | { channel: number }
  | { neuron: { channel: number; y?: number; x?: number } }
  | { direction: NativeTensor }
  | { logit: number; position?: number }
  | { logitDiff: [number, number]; position?: number }
  | { logProb: number; position?: number }
  | { target: number }
  | { sum: { weight: number; objective: NativeObjective }[] };

/** Objectives (one, or one per batch element) and the layer they read ('' for the model's output). */
export interface NativeObjectiveSpec {
  layer: string;
  objectives: NativeObjective[];
}

/** What native/bindings/requests.cpp parseGradientSpec reads. */
export interface NativeGradientsRequest extends NativeNumerics {
  objective: NativeObjectiveSpec;
  saes?: NativeSaeSplice[];
  /** forward argument indices whose gradient is wanted */
  inputs: number[];
  /** layers whose output's gradient is wanted */
  layers: string[];
  patch: NativePatch[];
}

/** What native/bindings/requests.cpp parseAttributionSpec reads; lib/methods/attribution.ts fills every field. */
export interface NativeAttributionRequest extends NativeNumerics {
  method: AttributionMethod;
  objective: NativeObjectiveSpec;
  input: number;
  baseline?: NativeTensor;
  baselineValue: number;
  abs: boolean;
  multiplyByInputs: boolean;
  steps: number;
  integration: Integration;
  /** 0: decided natively (every step in one pass when it fits) */
  internalBatchSize: number;
  convergenceDelta: boolean;
  layer: string;
  relu: boolean;
  upsample: number[];
  upsampleMode: UpsampleMode;
  window: number[];
  strides: number[];
  featureMask?: NativeTensor;
  perturbationsPerEval: number;
  /** '' for none */
  noise: NoiseType | '';
  samples: number;
  /** 0: every sample in one pass */
  samplesBatchSize: number;
  stdev: number;
  seed: number;
}

/**
 * A native session (native/bindings/session_handle.h): a long job run a chunk of steps at a
 * time. `P` is a chunk's progress, `R` the result; a planned run (attribution, sweep) has
 * { done, total } progress and one pass per step; maximization { objectives } and one
 * optimiser step per step.
 */
export interface NativeSession<P, R> {
  /** [async] up to n more steps; fewer after abort(). `inputs`: what the steps take (SAE training's batches). */
  steps(n: number, inputs?: NativeTensor[]): Promise<P & { aborted: boolean }>;
  abort(): void;
  /** [async] the result; a planned run's once every pass ran. */
  result(argument?: boolean): Promise<R>;
  /** Frees the job once a chunk in flight finishes. */
  dispose(): void;
}

export type NativePlannedRun<R> = NativeSession<{ done: number; total: number }, R>;

export interface NativeAttributionResult {
  attributions: NativeTensor;
  convergenceDelta?: number[];
  internalBatchSize: number;
}

/** What native/bindings/requests.cpp parseSweepSpec reads. */
export interface NativeSweepRequest extends NativeNumerics {
  layers: string[];
  saes?: NativeSaeSplice[];
  /** [] for every position */
  positions: number[];
  /** 0: positions; > 0: heads */
  heads: number;
  metric: NativeObjectiveSpec;
  normalize: boolean;
  /** 0: decided natively */
  batchSize: number;
  method: SweepMethod;
}

export interface NativeSweepResult {
  results: NativeTensor;
  clean: number;
  corrupted: number;
  batchSize: number;
}

export interface NativeGradientsResult {
  /** The objective's value per batch element. */
  objective: number[];
  /** Per requested input. */
  inputs: NativeTensor[];
  /** Per requested layer, one per call. */
  layers: Record<string, NativeTensor[]>;
  /** Per requested layer, the values the gradients are of, one per call. */
  values: Record<string, NativeTensor[]>;
}

/** What native/bindings/requests.cpp parseMaximizeSpec reads. */
export interface NativeMaximizeRequest extends NativeNumerics {
  /** '' when every objective is a logit. */
  layer: string;
  objectives: NativeObjective[];
  image: {
    parameterization: Parameterization;
    range: ImageRange;
    decorrelate: boolean;
    channels: number;
    height: number;
    width: number;
    decayPower: number;
    init?: NativeTensor;
  };
  /** Absent: Lucid's standard set. */
  transforms?: { kind: TransformKind; values: number[] }[];
  regularizers: { l1?: number; l2?: number; tv?: number; blur?: number };
  normalize: boolean;
  lr: number;
  beta1: number;
  beta2: number;
  seed: number;
}

/** `result(best)`: the current image, or with `best` the one that scored highest so far. */
export type NativeMaximizeSession = NativeSession<{ objectives: number[] }, { image: NativeTensor; input: NativeTensor; bestStep: number }>;

/** Handed to a call; cancel() makes it reject ABORTED if it has not started yet. */
export interface NativeCancelToken {
  cancel(): void;
}

export interface NativeLoadOptions {
  device: string;
  optimize: boolean;
  precision: Precision;
  upcast: boolean;
  trusted: boolean;
  maxInflatedBytes?: number;
  /** A model whose tensors the loaded one adopts where names match (a decoding step beside its model). */
  sharesTensorsOf?: NativeModel;
}

export interface NativeModel {
  /** Every submodule, root ('') first: static call sites of its forward, and why it cannot be hooked ('' when it can). */
  modules(): { path: string; type: string; callSites: number; unhookable: string }[];
  device(): string;
  /** forward's arguments after self */
  forwardArguments(): { name: string; type: string }[];
  /** [async] */
  run(inputs: NativeValue[], request: NativeRunRequest, cancel?: NativeCancelToken): Promise<NativeRunResult>;
  /** [async] a submodule's forward on `inputs` */
  call(path: string, inputs: NativeValue[], cancel?: NativeCancelToken): Promise<NativeValue>;
  /** [async] */
  inspect(request: NativeRunRequest): Promise<NativeProgramSummary>;
  /** [async] a submodule's forward's arguments after self */
  signature(path: string): Promise<{ name: string; type: string; supplied: boolean; hasDefault: boolean; source: string }[]>;
  /** [async] the operations of a submodule's forward that can be hooked */
  nodes(path: string): Promise<{ name: string; op: string; pattern: boolean; shape?: number[] }[]>;
  /** [async] */
  gradients(inputs: NativeValue[], request: NativeGradientsRequest, cancel?: NativeCancelToken): Promise<NativeGradientsResult>;
  /** [async] plans the run: its clean and corrupted forwards */
  patchingSweep(clean: NativeValue[], corrupted: NativeValue[], request: NativeSweepRequest): Promise<NativePlannedRun<NativeSweepResult>>;
  /** [async] plans the run */
  attribute(inputs: NativeValue[], request: NativeAttributionRequest): Promise<NativePlannedRun<NativeAttributionResult>>;
  /** [async] */
  maximize(request: NativeMaximizeRequest): Promise<NativeMaximizeSession>;
  dispose(): void;
}

export interface NativeModelClass {
  /** [async] checks the file (native/torchscript/model_file.h), then loads it. */
  load(file: string, options: NativeLoadOptions, cancel?: NativeCancelToken): Promise<NativeModel>;
}

/** The constants native code and lib/ share (test/constants.test.ts compares them). */
export interface NativeConstants {
  errorCodes: string[];
  patchModes: Record<'set' | 'zero' | 'add' | 'scale' | 'project', number>;
  napiVersion: number;
  /** A layer name's suffix for the module's input. */
  inputSuffix: string;
  /** A layer name's suffix for an attention module's pattern. */
  patternSuffix: string;
  /** Between a module path and the name of an operation of its forward. */
  nodeSeparator: string;
  /** The suffixes of a spliced SAE's values. */
  saeStages: string[];
  /** Every enumeration whose names cross the boundary (native/core/names.h). */
  precisions: string[];
  dtypes: string[];
  attributionMethods: string[];
  integrations: string[];
  noiseTypes: string[];
  upsampleModes: string[];
  parameterizations: string[];
  imageRanges: string[];
  transformKinds: string[];
  sweepMethods: string[];
  objectiveKinds: string[];
  saeArchitectures: string[];
  saeNormalizations: string[];
  saeTrainArchitectures: string[];
  lrSchedulers: string[];
  jumpReluSparsityLosses: string[];
  probeKinds: string[];
  probeMulticlass: string[];
}

export interface NativeBuildInfo {
  libtorchVersion: string;
  cudaBuild: boolean;
  cudaAvailable: boolean;
  gpuCount: number;
  threads: number;
  parallelInfo: string;
  /** ATen's kernel level in force (ATEN_CPU_CAPABILITY limits it): 'DEFAULT', 'AVX2', 'AVX512'... */
  cpuCapability: string;
  /** oneDNN's instruction set in force (ONEDNN_MAX_CPU_ISA limits it): 'AVX2', 'AVX512_CORE_BF16'...; '' off x86-64. */
  cpuOnednn: string;
  /** Whether oneDNN computes bfloat16 / float16 natively here (AVX-512 or AMX instructions for it, not limited away). */
  cpuBf16: boolean;
  cpuFp16: boolean;
}

export interface NativeBinding {
  TensorHandle: NativeTensorClass;
  ModelHandle: NativeModelClass;
  CancelToken: new () => NativeCancelToken;
  constants(): NativeConstants;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  buildInfo(): NativeBuildInfo;
  /** At process exit: drops queued calls and waits for the one in flight (10 s at most, then exits with `code`). */
  stopComputeThread(code: number): void;
}
