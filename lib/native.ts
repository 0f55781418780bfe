// The one place that knows the native binding's shape. Public classes wrap these handles;
// users never touch them. Every [async] method runs on the compute thread (native/bindings/async_work.h).
// The addon is loaded on first use, after the libtorch it was built for (lib/libtorch.ts).
import * as fs from 'fs';
import * as path from 'path';
import { isMainThread } from 'worker_threads';

import { TorchscopeError } from './errors';
import { addonLibtorchVersion, findLibtorch, LibtorchSearch, preloadLibtorch } from './libtorch';

export type NativeValue = NativeTensor | NativeValue[] | { [key: string]: NativeValue } | number | string | boolean | null;

export interface NativeTensor {
  shape(): number[];
  dtype(): string;
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
  fromData(data: ArrayBufferView, shape: number[], dtype: string): NativeTensor;
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
  precision?: 'fp32' | 'bf16' | 'fp16';
  upcast?: boolean;
}

export interface NativeRunRequest extends NativeNumerics {
  capture?: string[];
  patch?: NativePatch[];
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

/** What an instrumented program runs; torch.inspect's ProgramInfo. */
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
  /** forward argument indices whose gradient is wanted */
  inputs: number[];
  /** layers whose output's gradient is wanted */
  layers: string[];
  patch: NativePatch[];
}

/** What native/bindings/requests.cpp parseAttributionSpec reads; lib/attribution.ts fills every field. */
export interface NativeAttributionRequest extends NativeNumerics {
  method: string;
  objective: NativeObjectiveSpec;
  input: number;
  baseline?: NativeTensor;
  baselineValue: number;
  abs: boolean;
  multiplyByInputs: boolean;
  steps: number;
  integration: string;
  /** 0: decided natively (every step in one pass when it fits) */
  internalBatchSize: number;
  convergenceDelta: boolean;
  layer: string;
  relu: boolean;
  upsample: number[];
  upsampleMode: string;
  window: number[];
  strides: number[];
  featureMask?: NativeTensor;
  perturbationsPerEval: number;
  /** '' for none */
  noise: string;
  samples: number;
  /** 0: every sample in one pass */
  samplesBatchSize: number;
  stdev: number;
  seed: number;
}

/** A long native job as a plan of passes (native/methods/planned_run.h); `R` is what it resolves with. */
export interface NativePlannedRun<R> {
  /** [async] up to n more passes; fewer after abort(). */
  steps(n: number): Promise<{ done: number; total: number; aborted: boolean }>;
  abort(): void;
  /** [async] once every pass ran. */
  result(): Promise<R>;
  dispose(): void;
}

export interface NativeAttributionResult {
  attributions: NativeTensor;
  convergenceDelta?: number[];
  internalBatchSize: number;
}

/** What native/bindings/requests.cpp parseSweepSpec reads. */
export interface NativeSweepRequest extends NativeNumerics {
  layers: string[];
  /** [] for every position */
  positions: number[];
  /** 0: positions; > 0: heads */
  heads: number;
  metric: NativeObjectiveSpec;
  normalize: boolean;
  /** 0: decided natively */
  batchSize: number;
  method: 'activation' | 'attribution';
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
}

/** What native/bindings/requests.cpp parseMaximizeSpec reads. */
export interface NativeMaximizeRequest extends NativeNumerics {
  /** '' when every objective is a logit. */
  layer: string;
  objectives: NativeObjective[];
  image: {
    parameterization: 'fft' | 'pixel';
    range: 'sigmoid' | 'clamp' | 'none';
    decorrelate: boolean;
    channels: number;
    height: number;
    width: number;
    decayPower: number;
    init?: NativeTensor;
  };
  /** Absent: Lucid's standard set. */
  transforms?: { kind: 'pad' | 'jitter' | 'scale' | 'rotate'; values: number[] }[];
  regularizers: { l1?: number; l2?: number; tv?: number; blur?: number };
  normalize: boolean;
  lr: number;
  beta1: number;
  beta2: number;
  seed: number;
}

export interface NativeMaximizeSession {
  /** [async] up to n steps; fewer after abort(). */
  steps(n: number): Promise<{ objectives: number[]; aborted: boolean }>;
  abort(): void;
  /** [async] the current image, or the best so far. */
  result(best: boolean): Promise<{ image: NativeTensor; input: NativeTensor; bestStep: number }>;
  /** Frees the image and optimiser state once a chunk in flight finishes. */
  dispose(): void;
}

/** Handed to a call; cancel() makes it reject ABORTED if it has not started yet. */
export interface NativeCancelToken {
  cancel(): void;
}

export interface NativeLoadOptions {
  device: string;
  optimize: boolean;
  precision: string;
  upcast: boolean;
  trusted: boolean;
  maxInflatedBytes?: number;
}

export interface NativeModel {
  /** [path, type, static call sites of its forward, why it cannot be hooked ('' when it can)] */
  modules(): [string, string, number, string][];
  device(): string;
  /** [name, type] of forward's arguments after self */
  forwardArguments(): [string, string][];
  /** [async] */
  run(inputs: NativeValue[], request: NativeRunRequest, cancel?: NativeCancelToken): Promise<NativeRunResult>;
  /** [async] a submodule's forward on `inputs` */
  call(path: string, inputs: NativeValue[], cancel?: NativeCancelToken): Promise<NativeValue>;
  /** [async] */
  inspect(request: NativeRunRequest): Promise<NativeProgramSummary>;
  /** [async] */
  gradients(inputs: NativeValue[], request: NativeGradientsRequest, cancel?: NativeCancelToken): Promise<NativeGradientsResult>;
  /** [async] */
  logitLens(inputs: NativeValue[], request: { layers: string[]; head: string[]; topK: number } & NativeNumerics, cancel?: NativeCancelToken): Promise<{ logits: NativeTensor; indices?: NativeTensor }>;
  /** [async] plans the run: its clean and corrupted forwards */
  patchingSweep(clean: NativeValue[], corrupted: NativeValue[], request: NativeSweepRequest): Promise<NativePlannedRun<NativeSweepResult>>;
  /** [async] plans the run */
  attribute(inputs: NativeValue[], request: NativeAttributionRequest): Promise<NativePlannedRun<NativeAttributionResult>>;
  /** [async] */
  maximize(request: NativeMaximizeRequest): Promise<NativeMaximizeSession>;
  dispose(): void;
}

export interface NativeModelClass {
  /** [async] checks the file (native/model/model_file.h), then loads it. */
  load(file: string, options: NativeLoadOptions, cancel?: NativeCancelToken): Promise<NativeModel>;
}

/** The constants native code and lib/ share (test/constants.test.ts compares them). */
export interface NativeConstants {
  errorCodes: string[];
  patchModes: Record<'set' | 'zero' | 'add' | 'scale', number>;
  napiVersion: number;
  /** A layer name's suffix for the module's input. */
  inputSuffix: string;
  /** load()'s precision names. */
  precisions: string[];
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

// The package root holds package.json: one level up from lib/ (sources, as jest runs them),
// two from dist/lib/ (compiled).
function findPackageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`torchscope: no package.json above ${__dirname}`);
  }
}

export const packageRoot = findPackageRoot();

/** The command that builds the addon from source against the libtorch found (lib/cli.ts). */
export const rebuildCommand = 'npx torchscope build';

// node-gyp-build finds build/Release (source builds) or prebuilds/<platform>-<arch>.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = require('node-gyp-build');

/** What loading the addon needs: its file, the libtorch it was built for, the libtorch found. */
export interface AddonPlan {
  /** The addon binary, or undefined when there is neither a build nor a prebuild for this platform. */
  file?: string;
  kind?: 'build' | 'prebuild';
  /** The libtorch version the addon was compiled against. */
  builtFor?: string;
  search?: LibtorchSearch;
  /** Why it cannot load, as the error binding() throws. */
  error?: TorchscopeError;
}

function describeSearch(search: LibtorchSearch): string {
  return search.probes.map((probe) => `  - ${probe.route}: ${probe.found ? `libtorch ${probe.found.version} at ${probe.found.dir}` : probe.problem}`).join('\n');
}

/** Finds the addon and a libtorch for it without loading either (doctor reports this). */
export function planAddon(): AddonPlan {
  let file: string;
  try {
    file = nodeGypBuild.resolve(packageRoot);
  } catch {
    return {
      error: new TorchscopeError(
        'ADDON_LOAD',
        `torchscope has no addon for ${process.platform}-${process.arch}: neither a prebuild in prebuilds/ nor a build in build/Release. Build it from source (needs cmake and a C++ compiler): ${rebuildCommand}`,
      ),
    };
  }
  const kind = file.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'build';
  const builtFor = addonLibtorchVersion(file);
  if (!builtFor) {
    return { file, kind, error: new TorchscopeError('ADDON_LOAD', `${file} carries no libtorch version stamp: it is not a torchscope addon of this release; rebuild it: ${rebuildCommand}`) };
  }
  const search = findLibtorch(packageRoot, builtFor);
  if (search.match) return { file, kind, builtFor, search };
  const other = search.probes.find((probe) => probe.found)?.found;
  const install = `pip install torch==${builtFor} (into a Python on PATH or a venv at ./.venv), or set TORCHSCOPE_LIBTORCH to a libtorch ${builtFor} directory`;
  const error = other
    ? new TorchscopeError(
        'LIBTORCH_MISMATCH',
        `torchscope's ${kind} (${file}) was built for libtorch ${builtFor}, but the libtorch found is ${other.version} (${other.dir}, via ${other.route}). ` +
          `Rebuild the addon from source against libtorch ${other.version} (needs cmake and a C++ compiler): ${rebuildCommand}\n` +
          `or make libtorch ${builtFor} findable: ${install}. Looked at:\n${describeSearch(search)}`,
      )
    : new TorchscopeError(
        'LIBTORCH_NOT_FOUND',
        `torchscope needs libtorch ${builtFor} and found none. Install it: ${install}. Looked at:\n${describeSearch(search)}`,
      );
  return { file, kind, builtFor, search, error };
}

let loaded: NativeBinding | undefined;

/** The addon, loaded on first use after libtorch (lib/libtorch.ts); throws a TorchscopeError when it cannot be. */
export function binding(): NativeBinding {
  if (loaded) return loaded;
  const plan = planAddon();
  if (plan.error) throw plan.error;
  try {
    preloadLibtorch(plan.search!.match!);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(plan.file!) as NativeBinding;
    // exit() would run libtorch's static destructors under a call in flight (native/bindings/async_work.h).
    const binding = loaded;
    if (isMainThread) process.once('exit', (code) => binding.stopComputeThread(code));
  } catch (error) {
    throw new TorchscopeError('ADDON_LOAD', `could not load ${plan.file} with libtorch ${plan.builtFor} at ${plan.search!.match!.dir}: ${(error as Error).message}`);
  }
  return loaded;
}
