// Reading a store's files: the datasets features of a folder and its Arrow stream files, batch by
// batch, as flat row-major arrays. Files are untrusted (a store may come from anywhere): the
// features must be fixed-shape arrays, every offset must be the regular one the shape implies,
// and nothing may be null, before a value is used.
import * as A from 'apache-arrow';
import { createReadStream, promises as fs } from 'fs';
import * as path from 'path';
import { MAX_SAE_CONFIG_BYTES } from '../core/limits';
import { TOKEN_COLUMN } from './format';

/** The dtypes a store column may hold when read (datasets writes what its user chose). */
export const READ_DTYPES = { float32: Float32Array, float16: Uint16Array, float64: Float64Array } as const;
export type ReadDType = keyof typeof READ_DTYPES;
export type ReadValues = Float32Array | Uint16Array | Float64Array;

export interface FolderColumn {
  name: string;
  shape: number[];
  dtype: ReadDType;
}

export interface DatasetFolder {
  dir: string;
  columns: FolderColumn[];
  /** Length of the token_ids column, when there is one. */
  tokenLength: number | undefined;
  files: string[];
}

async function readJson(file: string): Promise<unknown> {
  const stat = await fs.stat(file);
  if (stat.size > MAX_SAE_CONFIG_BYTES) throw new Error(`${file} is ${stat.size} bytes, too large for a datasets metadata file`);
  return JSON.parse(await fs.readFile(file, 'utf8'));
}

const ARRAY_TYPES = new Set(['Array2D', 'Array3D', 'Array4D', 'Array5D']);

/** A feature's shape and dtype if it is a fixed-shape float array (ArrayND, or a fixed-length list of floats). */
function arrayFeature(feature: Record<string, unknown>): { shape: number[]; dtype: ReadDType } | undefined {
  const dims = (shape: unknown) => (Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d > 0) ? (shape as number[]) : undefined);
  if (ARRAY_TYPES.has(feature._type as string) && (feature.dtype as string) in READ_DTYPES) {
    const shape = dims(feature.shape);
    if (shape && shape.length === Number((feature._type as string)[5])) return { shape, dtype: feature.dtype as ReadDType };
  }
  const inner = feature.feature as Record<string, unknown> | undefined;
  if ((feature._type === 'List' || feature._type === 'Sequence') && inner?._type === 'Value' && (inner.dtype as string) in READ_DTYPES) {
    const shape = dims([feature.length]);
    if (shape) return { shape, dtype: inner.dtype as ReadDType };
  }
  return undefined;
}

/** A datasets folder (state.json, dataset_info.json): its array columns, token_ids and files, checked. */
export async function readDatasetFolder(dir: string): Promise<DatasetFolder> {
  const info = (await readJson(path.join(dir, 'dataset_info.json'))) as { features?: Record<string, Record<string, unknown>> };
  const state = (await readJson(path.join(dir, 'state.json'))) as { _data_files?: { filename?: unknown }[] };
  if (typeof info?.features !== 'object' || info.features === null) throw new Error(`${dir}/dataset_info.json has no features`);
  if (!Array.isArray(state?._data_files)) throw new Error(`${dir}/state.json lists no data files`);
  const files = state._data_files.map((f) => {
    const name = f?.filename;
    // A data file is a plain name inside the folder: never a path elsewhere.
    if (typeof name !== 'string' || name !== path.basename(name) || name.startsWith('.') || !name.endsWith('.arrow')) {
      throw new Error(`${dir}/state.json names a data file ${JSON.stringify(name)} that is not an .arrow file in the folder`);
    }
    return path.join(dir, name);
  });
  const columns: FolderColumn[] = [];
  let tokenLength: number | undefined;
  for (const [name, feature] of Object.entries(info.features)) {
    if (name === TOKEN_COLUMN) {
      const inner = feature.feature as Record<string, unknown> | undefined;
      if (!Number.isInteger(feature.length) || !['int32', 'int64'].includes(inner?.dtype as string)) {
        throw new Error(`${dir}: token_ids is not a fixed-length list of int32 or int64`);
      }
      tokenLength = feature.length as number;
      continue;
    }
    const array = arrayFeature(feature);
    if (array) columns.push({ name, ...array });
  }
  if (columns.length === 0) throw new Error(`${dir} has no fixed-shape float column (datasets Array2D..5D or a fixed-length list)`);
  return { dir, columns, tokenLength, files };
}

/** One record batch: its rows, each requested column's values, and token ids. */
export interface FileBatch {
  rows: number;
  values: Map<string, ReadValues>;
  tokens: Int32Array | undefined;
}

/** The flat values of `rows` rows of `shape` in a nested-list or fixed-size-list column, offsets checked. */
function flatValues(data: A.Data, shape: readonly number[], what: string): ArrayBufferView {
  let level: A.Data = data;
  let start = data.offset;
  let count = data.length;
  for (const dim of shape) {
    if (level.nullCount > 0) throw new Error(`${what} has null entries`);
    if (level.type instanceof A.List) {
      const offsets = level.valueOffsets as Int32Array;
      const base = offsets[start];
      for (let i = 0; i <= count; i++) if (offsets[start + i] !== base + i * dim) throw new Error(`${what} is not a regular array of shape [${shape}]`);
      start = base;
    } else if (level.type instanceof A.FixedSizeList) {
      if (level.type.listSize !== dim) throw new Error(`${what} has lists of ${level.type.listSize}, not ${dim}`);
      start *= dim;
    } else {
      throw new Error(`${what} has ${String(level.type)} where a list of ${dim} belongs`);
    }
    count *= dim;
    level = level.children[0];
    start += level.offset;
  }
  if (level.nullCount > 0) throw new Error(`${what} has null values`);
  const values = level.values as ArrayBufferView & { subarray(a: number, b: number): ArrayBufferView; length: number };
  if (start + count > values.length) throw new Error(`${what} is shorter than its offsets say`);
  return values.subarray(start, start + count);
}

/** The record batches of one Arrow stream file, with `columns` (and token ids) as flat arrays. */
export async function* readFileBatches(file: string, columns: readonly FolderColumn[], tokenLength: number | undefined): AsyncGenerator<FileBatch> {
  const reader = await A.RecordBatchReader.from(createReadStream(file));
  for await (const batch of reader) {
    const index = (name: string) => batch.schema.fields.findIndex((f) => f.name === name);
    const values = new Map<string, ReadValues>();
    for (const column of columns) {
      const at = index(column.name);
      if (at < 0) throw new Error(`${file} has no column '${column.name}'`);
      const flat = flatValues(batch.data.children[at], column.shape, `${file} column '${column.name}'`);
      if (!(flat instanceof READ_DTYPES[column.dtype])) throw new Error(`${file} column '${column.name}' is not ${column.dtype}`);
      values.set(column.name, flat as ReadValues);
    }
    let tokens: Int32Array | undefined;
    const at = index(TOKEN_COLUMN);
    if (tokenLength !== undefined && at >= 0) {
      const flat = flatValues(batch.data.children[at], [tokenLength], `${file} column '${TOKEN_COLUMN}'`);
      tokens = flat instanceof Int32Array ? flat : Int32Array.from(flat as BigInt64Array, Number);
    }
    yield { rows: batch.numRows, values, tokens };
  }
}
