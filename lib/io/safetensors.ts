// Reading and writing a safetensors file (https://huggingface.co/docs/safetensors): an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
// then the data.
// The file is untrusted: the header is bounded and every entry is checked against the file and
// against the others before any tensor is read, and nothing is read past the file. The rules are
// the reference library's (Metadata::validate): ranges in order, without gaps or overlaps,
// covering the data exactly.
import { promises as fs } from 'fs';

import { CallSite, failure } from '../core/errors';
import { MAX_SAFETENSORS_HEADER_BYTES, MAX_SAE_TENSOR_BYTES } from '../core/limits';
import { isRecord } from '../core/validate';
import { FLOAT_ITEM_BYTES, FloatDType, HostTensor, hostTensor } from './host-tensor';

/** The dtypes torchscope reads, by the names safetensors gives them. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, FloatDType>> = { F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16' };

/** The names safetensors gives the dtypes torchscope writes. */
const SAFETENSORS_NAMES = Object.fromEntries(Object.entries(SAFETENSORS_DTYPES).map(([name, dtype]) => [dtype, name])) as Record<FloatDType, string>;

/** The header's key for free-form string metadata. */
const METADATA_KEY = '__metadata__';

/** A read larger than this goes in pieces (one read() call moves at most 2 GB). */
const READ_CHUNK_BYTES = 256 * 1024 * 1024;

export interface SafetensorsEntry {
  name: string;
  dtype: FloatDType;
  shape: number[];
  /** Byte range in the data section (after the header). */
  begin: number;
  end: number;
}

/** An open, checked file: its entries, and each tensor's data on demand. */
export interface SafetensorsReader {
  file: string;
  /** In the header's order. */
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string> | null;
  read(name: string): Promise<HostTensor>;
}

/** Opens `file`, checks its header, runs `use` and closes the file whatever happens. */
export async function withSafetensors<T>(file: string, site: CallSite | undefined, use: (reader: SafetensorsReader) => Promise<T>): Promise<T> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    throw failure('MODEL_LOAD', `safetensors file '${file}': ${(e as Error).message}`, site);
  }
  try {
    const { size } = await handle.stat();
    const { entries, metadata, dataStart } = await readHeader(handle, file, size, site);
    const read = async (name: string): Promise<HostTensor> => {
      const entry = entries.get(name);
      if (!entry) throw failure('MODEL_LOAD', `safetensors file '${file}' has no tensor '${name}'`, site);
      const buffer = await readRange(handle, dataStart + entry.begin, entry.end - entry.begin, file, name, site);
      return hostTensor(buffer, entry.dtype, entry.shape);
    };
    return await use({ file, entries, metadata, read });
  } finally {
    await handle.close();
  }
}

/**
 * Writes `tensors` (little-endian, C order) as a safetensors file, each right after the one before
 * in the order given, the header padded with spaces to a multiple of 8 bytes as the reference
 * library pads it. Written beside `file` first, then renamed over it: a reader never sees half a file.
 */
export async function writeSafetensors(file: string, tensors: Record<string, HostTensor>): Promise<void> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: SAFETENSORS_NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, ' ');
  json.copy(padded);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));
  const data = Object.values(tensors).map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  const partial = `${file}.partial`;
  await fs.writeFile(partial, [prefix, padded, ...data]);
  await fs.rename(partial, file);
}

async function readHeader(
  handle: fs.FileHandle,
  file: string,
  size: number,
  site?: CallSite,
): Promise<{ entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> | null; dataStart: number }> {
  const bad = (what: string): never => {
    throw failure('MODEL_LOAD', `safetensors file '${file}': ${what}`, site);
  };
  if (size < 8) bad(`${size} bytes is too short for a safetensors file (an 8-byte header length comes first)`);
  const prefix = new ArrayBuffer(8);
  await readExactly(handle, prefix, 0, () => bad('it shrank while it was read'));
  const claimed = new DataView(prefix).getBigUint64(0, true);
  if (claimed > BigInt(MAX_SAFETENSORS_HEADER_BYTES))
    bad(`its header claims ${claimed} bytes, more than the ${MAX_SAFETENSORS_HEADER_BYTES} a header may have`);
  const headerBytes = Number(claimed);
  if (8 + headerBytes > size) bad(`its header claims ${headerBytes} bytes, past the end of the ${size}-byte file`);
  const text = new ArrayBuffer(headerBytes);
  await readExactly(handle, text, 8, () => bad('it shrank while it was read'));
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch (e) {
    return bad(`its header is not UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isRecord(raw)) return bad('its header is not a JSON object');
  const dataStart = 8 + headerBytes;
  const dataBytes = size - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, info] of Object.entries(raw)) {
    if (name === METADATA_KEY) {
      if (!isRecord(info) || !Object.values(info).every((v) => typeof v === 'string')) bad(`${METADATA_KEY} must map strings to strings`);
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    entries.set(name, checkEntry(name, info, dataBytes, bad));
  }
  checkLayout([...entries.values()], dataBytes, bad);
  return { entries, metadata, dataStart };
}

function checkEntry(name: string, info: unknown, dataBytes: number, bad: (what: string) => never): SafetensorsEntry {
  const tensor = `tensor '${name}'`;
  if (!isRecord(info)) return bad(`${tensor}: its entry must be an object { dtype, shape, data_offsets }`);
  const dtype = typeof info.dtype === 'string' && Object.hasOwn(SAFETENSORS_DTYPES, info.dtype) ? SAFETENSORS_DTYPES[info.dtype] : undefined;
  if (dtype === undefined) {
    return bad(`${tensor} has dtype ${JSON.stringify(info.dtype)}; torchscope reads ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`);
  }
  const count = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
  if (!Array.isArray(info.shape) || !info.shape.every(count))
    return bad(`${tensor}: shape must be an array of non-negative integers, got ${JSON.stringify(info.shape)}`);
  const offsets = info.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(count) || offsets[0] > offsets[1]) {
    return bad(`${tensor}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
  }
  const shape = info.shape as number[];
  const [begin, end] = offsets as number[];
  // The element count in BigInt: a hostile shape's product can pass 2^53 and round to a match.
  const bytes = shape.reduce((n, d) => n * BigInt(d), 1n) * BigInt(FLOAT_ITEM_BYTES[dtype]);
  if (bytes !== BigInt(end - begin)) {
    return bad(`${tensor}: shape [${shape.join(', ')}] of ${info.dtype} is ${bytes} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  if (end > dataBytes) {
    return bad(`${tensor} ends at byte ${end} of the data, past the data section's ${dataBytes} bytes (the file is truncated or the header is wrong)`);
  }
  return { name, dtype, shape: [...shape], begin, end };
}

/** Ranges in order must tile the data section: a gap or an overlap is a malformed (or crafted) file. */
function checkLayout(entries: SafetensorsEntry[], dataBytes: number, bad: (what: string) => never): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: SafetensorsEntry | undefined;
  for (const entry of sorted) {
    if (entry.begin < covered) {
      bad(`tensors '${previous!.name}' [${previous!.begin}, ${previous!.end}] and '${entry.name}' [${entry.begin}, ${entry.end}] overlap`);
    }
    if (entry.begin > covered) bad(`bytes [${covered}, ${entry.begin}) of the data belong to no tensor (before '${entry.name}')`);
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataBytes) bad(`the data section has ${dataBytes} bytes but its tensors cover ${covered}`);
}

/** Exactly `length` bytes at `position`, into fresh (aligned) memory. */
async function readRange(handle: fs.FileHandle, position: number, length: number, file: string, name: string, site?: CallSite): Promise<ArrayBuffer> {
  if (length > MAX_SAE_TENSOR_BYTES) {
    throw failure(
      'MODEL_LOAD',
      `safetensors file '${file}': tensor '${name}' is ${length} bytes, more than the ${MAX_SAE_TENSOR_BYTES} torchscope reads`,
      site,
    );
  }
  const buffer = new ArrayBuffer(length);
  await readExactly(handle, buffer, position, () => {
    throw failure('MODEL_LOAD', `safetensors file '${file}': tensor '${name}' ends early (the file shrank while it was read)`, site);
  });
  return buffer;
}

/** Fills `buffer` from `position`, a chunk at a time (one byte view holds at most 4 GB); `short` when the file ends first. */
async function readExactly(handle: fs.FileHandle, buffer: ArrayBuffer, position: number, short: () => never): Promise<void> {
  for (let done = 0; done < buffer.byteLength;) {
    const chunk = new Uint8Array(buffer, done, Math.min(READ_CHUNK_BYTES, buffer.byteLength - done));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position + done);
    if (bytesRead === 0) short();
    done += bytesRead;
  }
}
