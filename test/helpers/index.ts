// Shared test helpers: deterministic inputs, the Python reference (test/python/reference.py),
// and comparisons that say where two tensors differ most.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as torch from '../../lib';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { pythonPath } = require('../../scripts/config.js') as { pythonPath(): string };

export const ROOT = path.resolve(__dirname, '..', '..');
export const MODELS = path.join(ROOT, 'models');
export const REFERENCE_SCRIPT = path.join(ROOT, 'test', 'python', 'reference.py');

/** Absolute path of a file in models/. */
export function modelPath(name: string): string {
  return path.join(MODELS, name);
}

export function python(): string {
  return pythonPath();
}

/** A fresh directory under the OS temp dir; remove it with removeDir. */
export function scratchDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `torchscope-${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- deterministic data

/** mulberry32: a small seeded PRNG giving uniform floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` standard-normal float32 values (Box-Muller), the same for the same seed. */
export function randn(n: number, seed: number): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(next(), 1e-12);
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Integers in [0, high) as int64. */
export function randint(n: number, high: number, seed: number): BigInt64Array {
  const next = rng(seed);
  return BigInt64Array.from({ length: n }, () => BigInt(Math.floor(next() * high)));
}

export type TypedArray = torch.TypedArray;

/** Tensor data held on the JS side: what we write for Python and build torch tensors from. */
export interface HostTensor {
  data: TypedArray;
  shape: number[];
  dtype: torch.DType;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function hostRandn(shape: number[], seed: number): HostTensor {
  return { data: randn(numel(shape), seed), shape, dtype: 'float32' };
}

export function minOf(values: ArrayLike<number>): number {
  let min = Infinity;
  for (let i = 0; i < values.length; i++) min = Math.min(min, values[i]);
  return min;
}

export function maxOf(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]);
  return max;
}

export function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]));
  return max;
}

/** A torch tensor holding a copy of `host`. */
export function toTorch(host: HostTensor): torch.Tensor {
  return torch.tensor(host.data, host.shape, host.dtype);
}

/** A JS-side copy of a torch tensor (independent of the tensor's lifetime). */
export function toHost(t: torch.Tensor): HostTensor {
  const data = t.data();
  return { data: data.slice() as TypedArray, shape: t.shape, dtype: t.dtype };
}

// ---------------------------------------------------------------- the Python reference

export type RefValue =
  | { type: 'tensor'; dtype: string; shape: number[]; data: TypedArray }
  | { type: 'tuple'; items: RefValue[] }
  | { type: 'dict'; items: Record<string, RefValue> }
  | { type: 'none' }
  | { type: 'scalar'; value: unknown }
  | { type: 'other'; repr: string };

export interface RefPatch {
  mode: 'set' | 'zero' | 'add' | 'scale';
  value?: HostTensor;
  scale?: number;
  channels?: number[];
  positions?: number[] | number[][];
}

export interface RefCase {
  id: string;
  /** eager: the architecture from scripts/torchscope_models.py with the file's weights, hooks
   *  for capture / patch. jit: torch.jit.load(file)(*inputs). */
  kind: 'eager' | 'jit';
  model: string;
  arch?: 'resnet18' | 'resnet-tiny' | 'bert-base' | 'bert-tiny';
  inputs: HostTensor[];
  capture?: string[];
  patch?: Record<string, RefPatch>;
  output?: boolean;
  /** eager: forward under torch.autocast('cpu', dtype), what load({ precision }) does. */
  autocast?: 'bf16' | 'fp16';
}

export type RefTask =
  | { kind: 'save_state_dict'; model: string; path: string }
  | { kind: 'save_eager_module'; arch: string; path: string }
  | { kind: 'script_unused'; path: string }
  | { kind: 'script_unhookable'; path: string }
  | { kind: 'script_raises'; path: string }
  | { kind: 'script_typed_raises'; path: string }
  | { kind: 'script_branches'; path: string }
  | { kind: 'script_expand'; path: string }
  | { kind: 'script_allocates'; path: string }
  | { kind: 'script_endless'; path: string }
  | { kind: 'script_prints'; path: string }
  | { kind: 'script_pools'; path: string };

export interface RefResult {
  output?: RefValue;
  captures: Record<string, RefValue[]>;
}

const fileDtypes: Record<string, { new (buffer: ArrayBuffer): TypedArray }> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
};

function writeHost(dir: string, name: string, host: HostTensor): { file: string; dtype: string; shape: number[] } {
  const file = path.join(dir, name);
  const data = host.data;
  if (data.length !== numel(host.shape)) throw new Error(`${name}: ${data.length} values for shape [${host.shape}]`);
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return { file, dtype: host.dtype, shape: host.shape };
}

/** A reference VALUE from an index.json (tensor files read). */
export function readValue(raw: any): RefValue {
  switch (raw.type) {
    case 'tensor': {
      const bytes = fs.readFileSync(raw.file);
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      return { type: 'tensor', dtype: raw.dtype, shape: raw.shape, data: new fileDtypes[raw.dtype](buffer) };
    }
    case 'tuple':
      return { type: 'tuple', items: raw.items.map(readValue) };
    case 'dict':
      return { type: 'dict', items: Object.fromEntries(Object.entries(raw.items).map(([k, v]) => [k, readValue(v)])) };
    default:
      return raw as RefValue;
  }
}

/** bfloat16 or float16 words (as stored) decoded to float32 values. */
export function decodeReduced(words: Uint16Array, dtype: 'bfloat16' | 'float16'): Float32Array {
  if (dtype === 'bfloat16') return new Float32Array(Uint32Array.from(words, (w) => w << 16).buffer);
  return Float32Array.from(words, (w) => {
    const e = (w >> 10) & 0x1f;
    const f = w & 0x3ff;
    const s = w & 0x8000 ? -1 : 1;
    return e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
  });
}

/** A reference value with every bfloat16/float16 tensor as float32 (what upcast returns). */
export function widenRef(value: RefValue): RefValue {
  if (value.type === 'tensor') {
    if (value.dtype !== 'bfloat16' && value.dtype !== 'float16') return value;
    return { type: 'tensor', dtype: 'float32', shape: value.shape, data: decodeReduced(value.data as Uint16Array, value.dtype) };
  }
  if (value.type === 'tuple') return { type: 'tuple', items: value.items.map(widenRef) };
  if (value.type === 'dict') return { type: 'dict', items: Object.fromEntries(Object.entries(value.items).map(([k, v]) => [k, widenRef(v)])) };
  return value;
}

/** Runs a Python reference script (the set-up's Python, PYTHONHASHSEED=0); rejects with its stderr. */
export function runPythonScript(script: string, args: string[], timeoutMs = 600_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    execFile(
      python(),
      [script, ...args],
      { maxBuffer: 64 << 20, timeout: timeoutMs, env: { ...process.env, PYTHONHASHSEED: '0' } },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`${path.basename(script)} failed (${error.message}):\n${stderr}`));
        else resolve();
      },
    );
  });
}

/**
 * Collects cases, runs them in one Python process (importing torch costs seconds), and
 * returns the results. Every run gets its own directory under `dir`.
 */
export class Reference {
  private cases: RefCase[] = [];
  private tasks: RefTask[] = [];
  private runs = 0;

  constructor(private readonly dir: string) {}

  add(c: RefCase): this {
    if (this.cases.some((other) => other.id === c.id)) throw new Error(`duplicate reference case '${c.id}'`);
    this.cases.push(c);
    return this;
  }

  task(t: RefTask): this {
    this.tasks.push(t);
    return this;
  }

  async run(): Promise<Map<string, RefResult>> {
    if (os.endianness() !== 'LE') throw new Error('the reference exchanges little-endian binaries');
    const runDir = path.join(this.dir, `ref${this.runs++}`);
    const inDir = path.join(runDir, 'in');
    fs.mkdirSync(inDir, { recursive: true });
    let count = 0;
    const cases = this.cases.map((c) => ({
      id: c.id,
      kind: c.kind,
      model: c.model,
      arch: c.arch,
      inputs: c.inputs.map((t) => writeHost(inDir, `x${count++}.bin`, t)),
      capture: c.capture,
      output: c.output ?? true,
      autocast: c.autocast,
      patch: c.patch
        ? Object.fromEntries(
            Object.entries(c.patch).map(([layer, p]) => [layer, { ...p, value: p.value ? writeHost(inDir, `p${count++}.bin`, p.value) : undefined }]),
          )
        : undefined,
    }));
    const requestFile = path.join(runDir, 'request.json');
    const outDir = path.join(runDir, 'out');
    fs.writeFileSync(requestFile, JSON.stringify({ out: outDir, cases, tasks: this.tasks }));
    this.cases = [];
    this.tasks = [];
    await runPythonScript(REFERENCE_SCRIPT, [requestFile]);
    const index = JSON.parse(fs.readFileSync(path.join(outDir, 'index.json'), 'utf8'));
    const results = new Map<string, RefResult>();
    for (const [id, raw] of Object.entries<any>(index.cases)) {
      if (raw.error) {
        results.set(
          id,
          new Proxy({} as RefResult, {
            get() {
              throw new Error(`reference case '${id}' failed in Python: ${raw.error}`);
            },
          }),
        );
        continue;
      }
      results.set(id, {
        output: raw.output ? readValue(raw.output) : undefined,
        captures: Object.fromEntries(Object.entries<any[]>(raw.captures).map(([k, v]) => [k, v.map(readValue)])),
      });
    }
    return results;
  }
}

/** The result of a case, failing clearly when it is missing. */
export function refCase(results: Map<string, RefResult> | undefined, id: string): RefResult {
  const result = results?.get(id);
  if (!result) throw new Error(`no reference result '${id}' (did the reference run in beforeAll fail?)`);
  return result;
}

/** The one tensor of a reference value. */
export function refTensor(value: RefValue | undefined, what = 'reference value'): Extract<RefValue, { type: 'tensor' }> {
  if (!value || value.type !== 'tensor') throw new Error(`${what} is not a tensor: ${JSON.stringify(value && value.type)}`);
  return value;
}

// ---------------------------------------------------------------- comparisons

type Comparable = torch.Tensor | HostTensor | Extract<RefValue, { type: 'tensor' }>;

/** The value of an IEEE half-precision word. */
function halfToNumber(word: number): number {
  const sign = word & 0x8000 ? -1 : 1;
  const exponent = (word >> 10) & 0x1f;
  const fraction = word & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** float16 / bfloat16 raw words as numbers; other data as it is. */
function numbersOf(data: ArrayLike<number | bigint>, dtype: string): ArrayLike<number | bigint> {
  if (dtype === 'bfloat16') return new Float32Array(Uint32Array.from(data as Uint16Array, (w) => w << 16).buffer);
  if (dtype === 'float16') return Float64Array.from(data as Uint16Array, halfToNumber);
  return data;
}

function unpack(value: Comparable): { data: ArrayLike<number | bigint>; shape: number[]; dtype: string } {
  if (value instanceof torch.Tensor) return { data: numbersOf(value.data(), value.dtype), shape: value.shape, dtype: value.dtype };
  return { data: numbersOf(value.data, value.dtype), shape: value.shape, dtype: value.dtype };
}

function unravel(index: number, shape: number[]): number[] {
  const out: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    out.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return out;
}

export interface Diff {
  max: number;
  index: number;
  actual: number;
  expected: number;
}

/** Max |a - b| over all elements (NaN anywhere but in both counts as Infinity). */
export function maxAbsDiff(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): Diff {
  let worst: Diff = { max: 0, index: -1, actual: NaN, expected: NaN };
  for (let i = 0; i < a.length; i++) {
    const x = Number(a[i]);
    const y = Number(b[i]);
    let d = Math.abs(x - y);
    if (Number.isNaN(d)) d = Number.isNaN(x) && Number.isNaN(y) ? 0 : Infinity;
    if (d > worst.max || worst.index < 0) worst = { max: d, index: i, actual: x, expected: y };
  }
  return worst;
}

/**
 * Asserts same shape and dtype, and max |actual - expected| <= tol; the failure names the worst
 * element (multi-index, both values) and the magnitude of the expected tensor.
 */
export function expectClose(actual: Comparable, expected: Comparable, tol: number, label = 'tensor'): Diff {
  const a = unpack(actual);
  const e = unpack(expected);
  if (a.shape.length !== e.shape.length || a.shape.some((s, i) => s !== e.shape[i])) {
    throw new Error(`${label}: shape [${a.shape}] but expected [${e.shape}]`);
  }
  if (a.dtype !== e.dtype) throw new Error(`${label}: dtype ${a.dtype} but expected ${e.dtype}`);
  if (a.data.length !== e.data.length) throw new Error(`${label}: ${a.data.length} values but expected ${e.data.length}`);
  const diff = maxAbsDiff(a.data, e.data);
  if (!(diff.max <= tol)) {
    let scale = 0;
    for (let i = 0; i < e.data.length; i++) scale = Math.max(scale, Math.abs(Number(e.data[i])));
    throw new Error(
      `${label}: max |actual - expected| = ${diff.max.toExponential(3)} > ${tol} at [${unravel(diff.index, a.shape)}] ` +
        `(flat ${diff.index}): actual ${diff.actual}, expected ${diff.expected}; shape [${a.shape}], max |expected| ${scale.toPrecision(4)}`,
    );
  }
  return diff;
}

/** Asserts the values are exactly equal (e.g. the same computation done twice). */
export function expectEqual(actual: Comparable, expected: Comparable, label = 'tensor'): void {
  expectClose(actual, expected, 0, label);
}

/** A tolerance, or one computed from the expected tensor (relative bars). */
export type Tolerance = number | ((expected: Extract<RefValue, { type: 'tensor' }>) => number);

/** max |expected| x `factor`, at least `factor`: a relative bar for one tensor. */
export function relativeTolerance(factor: number): Tolerance {
  return (expected) => factor * Math.max(1, maxAbs(numbersOf(expected.data, expected.dtype) as ArrayLike<number>));
}

/** The tensors of a reference value, in order (tuples and dicts flattened). */
export function refTensorsOf(value: RefValue): Extract<RefValue, { type: 'tensor' }>[] {
  if (value.type === 'tensor') return [value];
  if (value.type === 'tuple') return value.items.flatMap(refTensorsOf);
  if (value.type === 'dict') return Object.values(value.items).flatMap(refTensorsOf);
  return [];
}

/** The tensors of a value torchscope returned, in order (arrays and objects flattened). */
export function valueTensorsOf(value: torch.Value): torch.Tensor[] {
  if (value instanceof torch.Tensor) return [value];
  if (Array.isArray(value)) return value.flatMap(valueTensorsOf);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(valueTensorsOf);
  return [];
}
/** Structural comparison: a Tensor against a reference tensor, arrays against tuples, objects against dicts. */
export function expectValueClose(actual: torch.Value | undefined, expected: RefValue | undefined, tol: Tolerance, label = 'value'): void {
  if (expected === undefined) throw new Error(`${label}: no expected value`);
  if (expected.type === 'tensor') {
    if (!(actual instanceof torch.Tensor)) throw new Error(`${label}: expected a Tensor, got ${describeValue(actual)}`);
    expectClose(actual, expected, typeof tol === 'number' ? tol : tol(expected), label);
    return;
  }
  if (expected.type === 'dict') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual) || actual instanceof torch.Tensor) {
      throw new Error(`${label}: expected an object with keys ${Object.keys(expected.items)}, got ${describeValue(actual)}`);
    }
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected.items).sort());
    for (const [key, item] of Object.entries(expected.items)) expectValueClose(actual[key], item, tol, `${label}.${key}`);
    return;
  }
  if (expected.type === 'tuple') {
    if (!Array.isArray(actual)) throw new Error(`${label}: expected an array of ${expected.items.length}, got ${describeValue(actual)}`);
    if (actual.length !== expected.items.length) {
      throw new Error(`${label}: ${actual.length} items but expected ${expected.items.length} (${describeValue(actual)})`);
    }
    expected.items.forEach((item, i) => expectValueClose(actual[i], item, tol, `${label}[${i}]`));
    return;
  }
  if (expected.type === 'none') {
    if (actual !== null) throw new Error(`${label}: expected null, got ${describeValue(actual)}`);
    return;
  }
  if (expected.type === 'scalar') {
    expect(actual).toEqual(expected.value);
    return;
  }
  throw new Error(`${label}: cannot compare with ${JSON.stringify(expected)}`);
}

export function describeValue(value: unknown): string {
  if (value instanceof torch.Tensor) return `Tensor[${value.shape}] ${value.dtype}`;
  if (Array.isArray(value)) return `[${value.map(describeValue).join(', ')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  return `{${Object.entries(value)
    .map(([k, v]) => `${k}: ${describeValue(v)}`)
    .join(', ')}}`;
}

/** A reference value as a model input: tensors copied into torch Tensors, tuples as arrays, dicts as objects. */
export function refInput(value: RefValue): torch.Input {
  switch (value.type) {
    case 'tensor':
      return torch.tensor(value.data, value.shape, value.dtype as torch.DType);
    case 'tuple':
      return value.items.map(refInput);
    case 'dict':
      return Object.fromEntries(Object.entries(value.items).map(([k, v]) => [k, refInput(v)]));
    case 'none':
      return null;
    case 'scalar':
      return value.value as torch.Input;
    default:
      throw new Error(`cannot make an input of ${JSON.stringify(value)}`);
  }
}

/** Narrows a model Value to a Tensor, failing clearly otherwise. */
export function asTensor(value: torch.Value | undefined, what = 'value'): torch.Tensor {
  if (!(value instanceof torch.Tensor)) throw new Error(`${what} is not a Tensor: ${describeValue(value)}`);
  return value;
}

export function asArray(value: torch.Value | undefined, what = 'value'): torch.Value[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not an array: ${describeValue(value)}`);
  return value;
}

// ---------------------------------------------------------------- errors

const BACKTRACE = /Exception raised from|frame #\d+|^\s*#\d+\s+0x[0-9a-f]+|\(no backtrace available\)/m;

/**
 * Runs `action` (sync or async) and checks the error: a TorchscopeError with `code`, a message
 * without a C++ backtrace or internal tags, and a stack that points at the calling test file.
 */
export async function expectTorchscopeError(action: () => unknown, code: torch.ErrorCode, message?: RegExp): Promise<torch.TorchscopeError> {
  const testFile = path.basename(expect.getState().testPath ?? '');
  let error: unknown;
  try {
    await action();
  } catch (e) {
    error = e;
  }
  if (error === undefined) throw new Error(`expected a TorchscopeError with code ${code}, but the call succeeded`);
  if (!(error instanceof torch.TorchscopeError)) {
    throw new Error(`expected a TorchscopeError with code ${code}, got ${String(error)} (${(error as Error)?.constructor?.name})`);
  }
  const summary = `[${error.code}] ${error.message}`;
  expect({ code: error.code, message: error.message }).toEqual({ code, message: error.message });
  if (message) expect(error.message).toMatch(message);
  if (BACKTRACE.test(error.message)) throw new Error(`message carries a C++ backtrace: ${summary}`);
  if (/torchscope:[A-Z_]+:/.test(error.message)) throw new Error(`message carries an internal code tag: ${summary}`);
  expect(error.name).toBe('TorchscopeError');
  if (!error.stack?.includes(testFile)) throw new Error(`stack does not point at ${testFile}:\n${error.stack}`);
  return error;
}
