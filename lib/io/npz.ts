// Reading an .npz (numpy.savez / savez_compressed: a zip of .npy arrays) without loading the whole
// archive: yauzl reads the zip's central directory and streams each entry from the file (stored or
// deflated), checking every entry's size as it goes; each .npy header (lib/io/npy.ts) is parsed
// before its data is allocated. The archive is untrusted: entries are counted, named and bounded,
// and a deflated entry may not claim more than deflate can expand to.
import { Readable } from 'stream';
import * as yauzl from 'yauzl';

import { CallSite, failure, TorchscopeError } from '../core/errors';
import { MAX_NPZ_ENTRIES, MAX_NPY_HEADER_BYTES, MAX_SAE_TENSOR_BYTES } from '../core/limits';
import { HostTensor, hostTensor } from './host-tensor';
import { npyHeaderLength, parseNpyHeader } from './npy';

const NPY_SUFFIX = '.npy';
/** Zip's compression methods yauzl decodes: stored and deflated. */
const STORED = 0;
const DEFLATED = 8;
/** Deflate expands at most 1032:1 (258-byte matches in about 2 bits each); a claim past that is a lie. */
const DEFLATE_MAX_RATIO = 1032;

/** Every array in `file`, by its name without '.npy' (what numpy.load's keys are). */
export async function readNpz(file: string, site?: CallSite): Promise<Map<string, HostTensor>> {
  const bad = (what: string): never => {
    throw failure('MODEL_LOAD', `npz file '${file}': ${what}`, site);
  };
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { strictFileNames: true, validateEntrySizes: true, decodeStrings: true });
  } catch (e) {
    return bad(`it is not a readable zip archive (${(e as Error).message})`);
  }
  const arrays = new Map<string, HostTensor>();
  try {
    if (zip.entryCount > MAX_NPZ_ENTRIES) bad(`it holds ${zip.entryCount} entries, more than the ${MAX_NPZ_ENTRIES} an SAE's arrays make`);
    for await (const entry of zip.eachEntry()) {
      const name = entry.fileName;
      if (!name.endsWith(NPY_SUFFIX) || name.includes('/') || name.length === NPY_SUFFIX.length) {
        bad(`entry '${name}' is not an array (numpy.savez writes '<name>.npy' entries only)`);
      }
      const key = name.slice(0, -NPY_SUFFIX.length);
      if (arrays.has(key)) bad(`it holds '${name}' twice`);
      if (entry.isEncrypted()) bad(`entry '${name}' is encrypted`);
      if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) {
        bad(`entry '${name}' uses zip compression method ${entry.compressionMethod}; numpy writes stored (0) or deflated (8) entries`);
      }
      const limit = MAX_SAE_TENSOR_BYTES + MAX_NPY_HEADER_BYTES + 16;
      if (entry.uncompressedSize > limit) bad(`entry '${name}' is ${entry.uncompressedSize} bytes, more than the ${limit} torchscope reads`);
      if (entry.compressionMethod === DEFLATED && entry.uncompressedSize > entry.compressedSize * DEFLATE_MAX_RATIO + 1024) {
        bad(`entry '${name}' claims ${entry.uncompressedSize} bytes from ${entry.compressedSize} deflated ones, more than deflate can make`);
      }
      let stream: Readable;
      try {
        stream = await zip.openReadStreamPromise(entry);
      } catch (e) {
        return bad(`entry '${name}' cannot be read (${(e as Error).message})`);
      }
      arrays.set(key, await readNpy(stream, entry.uncompressedSize, (what) => bad(`entry '${name}': ${what}`)));
    }
  } catch (e) {
    if (e instanceof TorchscopeError) throw e;
    return bad(`it is not a readable zip archive (${(e as Error).message})`);
  } finally {
    zip.close();
  }
  return arrays;
}

/**
 * One .npy from its entry's stream: the header first, then the data straight into memory of the
 * size the header gives, which must be the entry's size exactly.
 */
async function readNpy(stream: Readable, entryBytes: number, bad: (what: string) => never): Promise<HostTensor> {
  let head: Uint8Array = new Uint8Array(0);
  let headerLength: number | undefined;
  let data: ArrayBuffer | undefined;
  let filled = 0;
  let dtype: HostTensor['dtype'] = 'float32';
  let shape: number[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let rest: Uint8Array = chunk;
      if (data === undefined) {
        head = concat(head, rest);
        headerLength ??= npyHeaderLength(head, bad);
        if (headerLength === undefined || head.length < headerLength) continue;
        const header = parseNpyHeader(head.subarray(0, headerLength), bad);
        if (header.dataOffset + header.dataBytes !== entryBytes) {
          bad(
            `its header makes ${header.dataOffset + header.dataBytes} bytes (shape (${header.shape.join(', ')}) of ${header.dtype}), but the entry has ${entryBytes}`,
          );
        }
        ({ dtype, shape } = header);
        data = new ArrayBuffer(header.dataBytes);
        rest = head.subarray(headerLength);
      }
      if (filled + rest.length > data.byteLength) bad('it holds more data than its header says');
      // A view per chunk: one byte view of the whole holds at most 4 GB.
      new Uint8Array(data, filled, rest.length).set(rest);
      filled += rest.length;
    }
  } catch (e) {
    if (e instanceof TorchscopeError) throw e;
    return bad(`it cannot be read (${(e as Error).message})`);
  } finally {
    stream.destroy();
  }
  if (data === undefined) return bad('it ends inside its .npy header');
  if (filled !== data.byteLength) bad(`it holds ${filled} bytes of data; its header says ${data.byteLength}`);
  return hostTensor(data, dtype, shape);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
