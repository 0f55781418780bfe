// The one place that knows the native binding's shape. Public classes wrap these handles;
// users never touch them. Every [async] method runs on the libuv pool (native/async_work.h).
import * as fs from 'fs';
import * as path from 'path';

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

export interface NativeRunRequest {
  capture?: string[];
  patch?: NativePatch[];
  output: boolean;
}

export interface NativeRunResult {
  output: NativeValue;
  captures: Record<string, NativeValue[]>;
}

export interface NativeProgramSummary {
  calledModules: string[];
  opCounts: Record<string, number>;
  graph: string;
}

export interface NativeMaximizeSession {
  /** [async] up to n steps; fewer after abort(). */
  steps(n: number): Promise<{ objectives: number[]; aborted: boolean }>;
  abort(): void;
  /** [async] the current image, or the best so far. */
  result(best: boolean): Promise<{ image: NativeTensor; input: NativeTensor; bestStep: number }>;
}

export interface NativeModel {
  modules(): [string, string][];
  device(): string;
  /** [async] */
  run(inputs: NativeValue[], request: NativeRunRequest): Promise<NativeRunResult>;
  /** [async] */
  inspect(request: NativeRunRequest): Promise<NativeProgramSummary>;
  /** [async] */
  maximize(spec: Record<string, unknown>): Promise<NativeMaximizeSession>;
  dispose(): void;
}

export interface NativeModelClass {
  /** [async] */
  load(file: string, device: string, optimize: boolean): Promise<NativeModel>;
}

export interface NativeBuildInfo {
  libtorchVersion: string;
  cudaBuild: boolean;
  cudaAvailable: boolean;
  gpuCount: number;
  threads: number;
  parallelInfo: string;
}

export interface NativeBinding {
  TensorHandle: NativeTensorClass;
  ModelHandle: NativeModelClass;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  buildInfo(): NativeBuildInfo;
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

// node-gyp-build finds build/Release (source builds) or prebuilds/<platform>-<arch>.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = require('node-gyp-build');

/** The addon file in use. */
export const addonPath: string = nodeGypBuild.resolve(packageRoot);
export const native: NativeBinding = require(addonPath);
