// The .npy header (numpy.lib.format): the magic "\x93NUMPY", a version, a header length, then a
// Python dict literal { 'descr': '<f4', 'fortran_order': False, 'shape': (2304, 16384), }. It is
// parsed here, never evaluated: three keys, a string, a boolean and a tuple of integers; only
// little-endian floats in C order are read, and the header is bounded as numpy bounds it.
import { MAX_NPY_HEADER_BYTES } from '../core/limits';
import { FLOAT_ITEM_BYTES, FloatDType } from './host-tensor';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** The descr strings read: little-endian float32, float64, float16. */
export const NPY_DTYPES: Readonly<Record<string, FloatDType>> = { '<f4': 'float32', '<f8': 'float64', '<f2': 'float16' };

export interface NpyHeader {
  dtype: FloatDType;
  shape: number[];
  /** Where the data starts: the header's whole length. */
  dataOffset: number;
  /** What the shape and dtype make: the data's exact length. */
  dataBytes: number;
}

/**
 * The header's whole length (magic, version, length field and dict), from the first bytes of the
 * file; undefined while fewer than 12 have arrived. `bad` throws the caller's error.
 */
export function npyHeaderLength(prefix: Uint8Array, bad: (what: string) => never): number | undefined {
  if (prefix.length < 12) return undefined;
  if (!MAGIC.every((b, i) => prefix[i] === b)) bad('it is not a .npy array (no \\x93NUMPY magic)');
  const major = prefix[6];
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  // Version 1 has a 2-byte length; versions 2 and 3 (UTF-8 header) a 4-byte one.
  const [fieldBytes, length] = major === 1 ? [2, view.getUint16(8, true)] : major === 2 || major === 3 ? [4, view.getUint32(8, true)] : [0, -1];
  if (length < 0) bad(`.npy format version ${major}.${prefix[7]} is not one torchscope reads (1, 2, 3)`);
  if (length > MAX_NPY_HEADER_BYTES) bad(`its .npy header claims ${length} bytes, more than the ${MAX_NPY_HEADER_BYTES} numpy itself reads`);
  return 8 + fieldBytes + length;
}

/** Parses a whole header (`bytes` holds at least npyHeaderLength of them). */
export function parseNpyHeader(bytes: Uint8Array, bad: (what: string) => never): NpyHeader {
  const dataOffset = npyHeaderLength(bytes, bad)!;
  const fieldBytes = bytes[6] === 1 ? 2 : 4;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8 + fieldBytes, dataOffset));
  } catch {
    return bad('its .npy header is not UTF-8 text');
  }
  const dict = parseDict(text, bad);
  const keys = Object.keys(dict).sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') bad(`its .npy header has keys ${keys || 'none'}; expected descr, fortran_order, shape`);
  const { descr, fortran_order: fortranOrder, shape } = dict;
  if (typeof descr !== 'string' || !Object.hasOwn(NPY_DTYPES, descr)) {
    bad(`its dtype is ${JSON.stringify(descr)}; torchscope reads little-endian floats (${Object.keys(NPY_DTYPES).join(', ')})`);
  }
  if (fortranOrder !== false) bad('it is stored in Fortran order; torchscope reads C order (numpy.ascontiguousarray before saving)');
  if (!Array.isArray(shape)) return bad('its shape is not a tuple of integers');
  const dtype = NPY_DTYPES[descr as string];
  const bytesTotal = shape.reduce((n, d) => n * BigInt(d), 1n) * BigInt(FLOAT_ITEM_BYTES[dtype]);
  if (bytesTotal > BigInt(Number.MAX_SAFE_INTEGER)) bad(`its shape (${shape.join(', ')}) is ${bytesTotal} bytes`);
  return { dtype, shape, dataOffset, dataBytes: Number(bytesTotal) };
}

type NpyValue = string | boolean | number[];

/** { 'key': value, ... } with string, True/False and integer-tuple values; anything else refused. */
function parseDict(text: string, bad: (what: string) => never): Record<string, NpyValue> {
  let at = 0;
  const space = () => {
    while (at < text.length && /\s/.test(text[at])) at++;
  };
  const expect = (c: string) => {
    space();
    if (text[at] !== c) bad(`its .npy header is not a dict literal (expected '${c}' at character ${at})`);
    at++;
  };
  const quoted = (): string => {
    space();
    const quote = text[at];
    if (quote !== "'" && quote !== '"') bad(`its .npy header is not a dict literal (expected a string at character ${at})`);
    const close = text.indexOf(quote, at + 1);
    if (close < 0) bad('its .npy header has an unterminated string');
    const value = text.slice(at + 1, close);
    at = close + 1;
    return value;
  };
  const value = (): NpyValue => {
    space();
    if (text.startsWith('True', at) || text.startsWith('False', at)) {
      const result = text.startsWith('True', at);
      at += result ? 4 : 5;
      return result;
    }
    if (text[at] === '(') return tuple();
    return quoted();
  };
  const tuple = (): number[] => {
    const close = text.indexOf(')', at);
    if (close < 0) bad('its .npy header has an unterminated shape tuple');
    const inner = text.slice(at + 1, close).trim();
    at = close + 1;
    if (inner === '') return [];
    // (3,) and (3, 4): integers separated by commas, a trailing comma allowed.
    const parts = inner.replace(/,\s*$/, '').split(',');
    return parts.map((part) => {
      const digits = part.trim();
      if (!/^\d+$/.test(digits) || !Number.isSafeInteger(Number(digits))) bad(`its shape (${inner}) is not a tuple of non-negative integers`);
      return Number(digits);
    });
  };
  const dict: Record<string, NpyValue> = {};
  expect('{');
  for (space(); text[at] !== '}'; space()) {
    const key = quoted();
    expect(':');
    if (Object.hasOwn(dict, key)) bad(`its .npy header repeats '${key}'`);
    dict[key] = value();
    space();
    if (text[at] === ',') at++;
    else if (text[at] !== '}') bad(`its .npy header is not a dict literal (expected ',' or '}' at character ${at})`);
  }
  at++;
  space();
  if (at !== text.length) bad('its .npy header has text after the dict');
  return dict;
}
