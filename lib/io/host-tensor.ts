// Floating tensors held in JS memory between a file and native code (an SAE's weights): dtype,
// shape and raw elements, and the casts between them made bit for bit as torch's `.to(dtype)`
// makes them on the CPU, so what reaches libtorch equals what PyTorch would have loaded.
import { DType } from '../core/names';

/** The floating dtypes weight files store (safetensors F32, F64, F16, BF16; npy <f4, <f8, <f2). */
export const FLOAT_DTYPES = ['float32', 'float64', 'float16', 'bfloat16'] as const satisfies readonly DType[];
/** @useDeclaredType */
export type FloatDType = (typeof FLOAT_DTYPES)[number];

/** Bytes per element. */
export const FLOAT_ITEM_BYTES: Readonly<Record<FloatDType, number>> = { float32: 4, float64: 8, float16: 2, bfloat16: 2 };

/** float16 and bfloat16 elements are their raw 16-bit words, as Tensor and TensorHandle.fromData take them. */
export type HostData = Float32Array | Float64Array | Uint16Array;

export interface HostTensor {
  dtype: FloatDType;
  shape: number[];
  /** Little-endian elements in C order. */
  data: HostData;
}

/**
 * A tensor over `buffer` (little-endian, as the files store them; every platform libtorch ships
 * for is little-endian): an ArrayBuffer, since one byte view holds at most 4 GB.
 */
export function hostTensor(buffer: ArrayBuffer, dtype: FloatDType, shape: number[]): HostTensor {
  const count = buffer.byteLength / FLOAT_ITEM_BYTES[dtype];
  const data =
    dtype === 'float32' ? new Float32Array(buffer, 0, count) : dtype === 'float64' ? new Float64Array(buffer, 0, count) : new Uint16Array(buffer, 0, count);
  return { dtype, shape, data };
}

/** `t` in `dtype`: itself when it already is, else a new tensor rounded as torch rounds. */
export function castHost(t: HostTensor, dtype: FloatDType): HostTensor {
  if (t.dtype === dtype) return t;
  if (dtype === 'float64') return { dtype, shape: t.shape, data: Float64Array.from(toFloat32Or64(t)) };
  const single = toFloat32(t);
  if (dtype === 'float32') return { dtype, shape: t.shape, data: single };
  const bits = new Uint32Array(single.buffer, single.byteOffset, single.length);
  const out = new Uint16Array(bits.length);
  const round = dtype === 'float16' ? float32BitsToFloat16 : float32BitsToBfloat16;
  for (let i = 0; i < bits.length; i++) out[i] = round(bits[i]);
  return { dtype, shape: t.shape, data: out };
}

function toFloat32Or64(t: HostTensor): Float32Array | Float64Array {
  return t.dtype === 'float64' ? (t.data as Float64Array) : toFloat32(t);
}

// float64 -> float16/bfloat16 goes through float32, as torch's does (c10::Half and BFloat16 are
// built from a float): rounding twice, which can differ from one rounding in the last bit.
function toFloat32(t: HostTensor): Float32Array {
  if (t.dtype === 'float32') return t.data as Float32Array;
  if (t.dtype === 'float64') return Float32Array.from(t.data as Float64Array); // round to nearest even, as a C cast
  const words = t.data as Uint16Array;
  const bits = new Uint32Array(words.length);
  const widen = t.dtype === 'float16' ? float16ToFloat32Bits : (w: number) => w << 16;
  for (let i = 0; i < words.length; i++) bits[i] = widen(words[i]);
  return new Float32Array(bits.buffer);
}

/** The float32 bit pattern of a float16 (exact: every float16 is a float32). */
export function float16ToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // A subnormal float16 is a normal float32: shift the mantissa up to its leading one.
  let e = 113;
  let m = mantissa;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/**
 * float32 bits to float16, rounding to nearest even with overflow to infinity, as c10::Half does
 * (fp16_ieee_from_fp32_value); a NaN becomes its quiet NaN 0x7E00 with the sign kept.
 */
export function float32BitsToFloat16(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const abs = w & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  // 65520 and above round to infinity (65504, the largest float16, has an odd mantissa).
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) {
    // Normal float16 (>= 2^-14): rebias the exponent by 127 - 15, then drop 13 mantissa bits, rounding to even.
    const rebiased = abs - 0x38000000;
    return sign | ((rebiased + 0xfff + ((rebiased >>> 13) & 1)) >>> 13);
  }
  // Below 2^-25 (half the smallest subnormal), or exactly it (a tie, to the even zero): zero.
  if (abs <= 0x33000000) return sign;
  // Subnormal float16: the value in units of 2^-24, rounded to even.
  const exponent = abs >>> 23;
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent;
  const quotient = mantissa >>> shift;
  const remainder = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (quotient + (remainder > half || (remainder === half && (quotient & 1) === 1) ? 1 : 0));
}

/** float32 bits to bfloat16 as c10::BFloat16 rounds: to nearest even; every NaN becomes 0x7FC0. */
export function float32BitsToBfloat16(w: number): number {
  if ((w & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A 2-D tensor transposed (a weight stored [out, in] read as [in, out]). */
export function transpose2d(t: HostTensor): HostTensor {
  const [rows, cols] = t.shape;
  const out = new (t.data.constructor as new (length: number) => HostData)(t.data.length);
  // In tiles, so both sides stay in cache (an encoder is up to billions of elements).
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const rEnd = Math.min(r0 + tile, rows);
      const cEnd = Math.min(c0 + tile, cols);
      for (let r = r0; r < rEnd; r++) for (let c = c0; c < cEnd; c++) out[c * rows + r] = t.data[r * cols + c];
    }
  }
  return { dtype: t.dtype, shape: [cols, rows], data: out };
}
