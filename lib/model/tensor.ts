// The public Tensor: a handle to native memory with a zero-copy view for reading.
import { DType } from '../core/names';
import { callSite, CallSite, failure, guard, invalid, settle } from '../core/errors';
import { binding } from '../native/addon';
import { NativeTensor } from '../native/binding';

export type { DType } from '../core/names';
export type Device = 'cpu' | 'cuda' | `cuda:${number}` | 'auto';

export type TypedArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;

export type NestedArray = number | boolean | NestedArray[];

type ArrayKind = { new (length: number): TypedArray; from(values: Iterable<unknown>): TypedArray };

// The JS array type that holds each dtype's elements (float16/bfloat16 as raw 16-bit words).
const arrayKinds: Record<DType, ArrayKind> = {
  float32: Float32Array as unknown as ArrayKind,
  float64: Float64Array as unknown as ArrayKind,
  float16: Uint16Array as unknown as ArrayKind,
  bfloat16: Uint16Array as unknown as ArrayKind,
  int8: Int8Array as unknown as ArrayKind,
  uint8: Uint8Array as unknown as ArrayKind,
  int16: Int16Array as unknown as ArrayKind,
  int32: Int32Array as unknown as ArrayKind,
  int64: BigInt64Array as unknown as ArrayKind,
  bool: Uint8Array as unknown as ArrayKind,
};

// By tag, not instanceof: arrays from another realm (vm contexts, jest) are not instances
// of this realm's constructors.
const dtypeOfTag: Record<string, DType> = {
  '[object Float32Array]': 'float32',
  '[object Float64Array]': 'float64',
  '[object Int8Array]': 'int8',
  '[object Uint8Array]': 'uint8',
  '[object Int16Array]': 'int16',
  '[object Int32Array]': 'int32',
  '[object BigInt64Array]': 'int64',
};

function arrayTag(data: ArrayBufferView): string {
  return Object.prototype.toString.call(data);
}

function dtypeOfArray(data: TypedArray): DType {
  const dtype = dtypeOfTag[arrayTag(data)];
  if (dtype === undefined) throw invalid(`${arrayTag(data)} data needs an explicit dtype (Uint16Array: float16 or bfloat16)`);
  return dtype;
}

/** Nested arrays deeper than this are refused (far more dimensions than any model takes). */
const MAX_NESTED_DEPTH = 64;

function shapeOfNested(data: NestedArray): number[] {
  const shape: number[] = [];
  const seen = new Set<unknown>();
  let level: NestedArray = data;
  while (Array.isArray(level)) {
    // A cycle (an array inside itself) would otherwise be followed for ever.
    if (seen.has(level)) throw invalid('the nested array contains a cycle (an array inside itself)');
    if (shape.length === MAX_NESTED_DEPTH) throw invalid(`nested arrays deeper than ${MAX_NESTED_DEPTH} levels`);
    seen.add(level);
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  return shape;
}

function flatten(data: NestedArray, shape: number[], depth: number, out: (number | boolean)[]): void {
  if (depth === shape.length) {
    if (Array.isArray(data)) throw invalid('ragged nested array: every row must have the same length');
    if (typeof data !== 'number' && typeof data !== 'boolean' && typeof data !== 'bigint') {
      throw invalid(`nested arrays hold numbers, booleans or bigints; found ${data === null ? 'null' : typeof data} ${JSON.stringify(data)}`);
    }
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw invalid(`ragged nested array: expected ${shape[depth]} items at depth ${depth}`);
  }
  for (const item of data) flatten(item, shape, depth + 1, out);
}

function convert(values: ArrayLike<unknown>, dtype: DType): TypedArray {
  const kind = arrayKinds[dtype];
  if (dtype === 'int64') return BigInt64Array.from(Array.from(values, (v) => BigInt(typeof v === 'bigint' ? v : Math.trunc(Number(v)))));
  if (dtype === 'float16' || dtype === 'bfloat16') throw invalid(`${dtype} tensors are created from a Uint16Array of raw bits`);
  return kind.from(Array.from(values, (v) => (typeof v === 'bigint' ? Number(v) : Number(v))));
}

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal Tensors come from torch.tensor(), models and other tensors. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  get shape(): number[] {
    return guard(() => this.handle.shape());
  }

  get dtype(): DType {
    return guard(() => this.handle.dtype()) as DType;
  }

  get device(): string {
    return guard(() => this.handle.device());
  }

  get disposed(): boolean {
    return this.handle.isDisposed();
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * A typed-array view of the tensor's CPU memory, without copying. The view keeps the memory
   * alive while referenced, even after dispose(). int64 reads as BigInt64Array; float16 and
   * bfloat16 as raw Uint16Array words.
   */
  data(): TypedArray {
    return guard(() => this.handle.data(), callSite(this.data)) as TypedArray;
  }

  /** The values as nested JS arrays (int64 as numbers, bool as booleans). */
  toArray(): NestedArray {
    const site = callSite(this.toArray);
    const values = guard(() => this.handle.data(), site) as TypedArray;
    const shape = this.shape;
    const dtype = this.dtype;
    const read = (i: number): number | boolean =>
      dtype === 'bool' ? values[i] !== 0 : typeof values[i] === 'bigint' ? Number(values[i]) : (values[i] as number);
    if (shape.length === 0) return read(0);
    let index = 0;
    const build = (depth: number): NestedArray[] => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[depth]; i++) out.push(depth === shape.length - 1 ? read(index++) : build(depth + 1));
      return out;
    };
    return build(0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw invalid(`item() needs a tensor with one element; this one has shape [${this.shape}]`, callSite(this.item));
    return Number(this.data()[0]);
  }

  /** A copy on another device ('cpu', 'cuda', 'cuda:1', 'auto'). */
  async to(device: Device | string): Promise<Tensor> {
    const site = callSite(this.to);
    const handle = await settle(() => guard(() => this.handle.to(device)), site);
    return new Tensor(handle);
  }

  /** Frees the native memory now instead of at garbage collection. Idempotent. */
  dispose(): void {
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }
}

/**
 * Creates a tensor from a typed array (with a shape, default 1-D) or a nested JS array
 * (shape inferred). The data is copied. Default dtype: the typed array's, or float32.
 */
export function tensor(data: TypedArray | NestedArray, shape?: readonly number[], dtype?: DType): Tensor {
  const site = callSite(tensor);
  if (dtype !== undefined && !(dtype in arrayKinds)) throw invalid(`unknown dtype '${dtype}'`, site);
  let values: TypedArray;
  let resolvedShape: number[];
  if (ArrayBuffer.isView(data)) {
    const typed = data as TypedArray;
    const kind = dtype ?? dtypeOfArray(typed);
    const sameKind = arrayTag(typed) === `[object ${arrayKinds[kind].name}]`;
    values = sameKind ? typed : convert(typed, kind);
    resolvedShape = shape ? [...shape] : [typed.length];
    dtype = kind;
  } else {
    resolvedShape = shapeOfNested(data);
    const flat: (number | boolean)[] = [];
    flatten(data, resolvedShape, 0, flat);
    dtype = dtype ?? 'float32';
    values = convert(flat, dtype);
    if (shape) resolvedShape = [...shape];
  }
  const numel = checkedNumel(resolvedShape, site);
  if (numel !== values.length) {
    throw failure('SHAPE', `shape [${resolvedShape}] needs ${numel} values but ${values.length} were given`, site);
  }
  return new Tensor(guard(() => binding().TensorHandle.fromData(values, resolvedShape, dtype as DType), site));
}

/** The element count of a shape: sizes must be non-negative safe integers, the count too. */
function checkedNumel(shape: readonly number[], site: CallSite): number {
  if (!Array.isArray(shape)) throw invalid('a shape is an array of sizes', site);
  for (const size of shape) {
    if (!Number.isSafeInteger(size) || size < 0) throw invalid(`invalid shape [${shape}]: sizes are non-negative integers below 2^53`, site);
  }
  const numel = shape.reduce((a, b) => a * BigInt(b), 1n);
  if (numel > BigInt(Number.MAX_SAFE_INTEGER)) throw failure('SHAPE', `shape [${shape}] has ${numel} elements, more than a tensor can hold`, site);
  return Number(numel);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const site = callSite(zeros);
  if (!(dtype in arrayKinds)) throw invalid(`unknown dtype '${dtype}'`, site);
  const numel = checkedNumel(shape, site);
  let data: TypedArray;
  try {
    data = new arrayKinds[dtype](numel);
  } catch (error) {
    if (error instanceof RangeError) throw failure('OUT_OF_MEMORY', `cannot allocate ${numel} ${dtype} values: ${error.message}`, site);
    throw error;
  }
  return tensor(data, shape, dtype);
}

/** Wraps whatever native handles a value holds in Tensors, recursively. */
export function wrapValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(wrapValue);
  if (value instanceof (binding().TensorHandle as unknown as abstract new () => NativeTensor)) return new Tensor(value);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = wrapValue(item);
  return out;
}

/**
 * Frees every Tensor in a value (arrays, objects, nested), now, except `keep` (a model output's
 * other parts go while the one kept stays usable). Returns nothing; idempotent.
 */
export function disposeValue(value: unknown, keep?: Tensor): void {
  if (value instanceof Tensor) {
    if (value !== keep) value.dispose();
  } else if (Array.isArray(value)) {
    for (const item of value) disposeValue(item, keep);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) disposeValue(item, keep);
  }
}

/** Replaces Tensors by their native handles, recursively, for passing to native code. */
export function unwrapValue(value: unknown, within: Set<object> = new Set()): unknown {
  if (value instanceof Tensor) return value.handle;
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (within.has(value)) throw invalid('the input contains a cycle (an array or object inside itself)');
  within.add(value);
  let out: unknown;
  if (Array.isArray(value)) {
    out = value.map((item) => unwrapValue(item, within));
  } else {
    const entries: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) entries[key] = unwrapValue(item, within);
    out = entries;
  }
  within.delete(value);
  return out;
}
