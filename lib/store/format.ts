// The on-disk layout of an activation store: one Hugging Face `datasets` folder per layer (Arrow
// IPC stream files listed in state.json, features in dataset_info.json), the layout SAELens's
// cache_activations_runner writes and `datasets.load_from_disk` / `cached_activations_path` read.
import * as A from 'apache-arrow';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';

/** The dtypes a store holds activations in (Arrow and `datasets` both have them). */
export const STORE_DTYPES = ['float32', 'float16'] as const;
export type StoreDType = (typeof STORE_DTYPES)[number];

/** The column of token ids beside the activations (SAELens's name). */
export const TOKEN_COLUMN = 'token_ids';
/** The store's own manifest at its root: layers, columns, shapes, how it was collected. */
export const STORE_MANIFEST = 'torchscope-store.json';
/** Per-worker journals (committed shards, the shard being written). */
export const JOURNAL_DIR = '.torchscope';
export const STORE_FORMAT_VERSION = 1;

// datasets' extension types for fixed-shape arrays: Array2D .. Array5D
// (datasets/features/features.py, _ArrayXDExtensionType; storage is nested variable lists).
const MIN_ARRAY_RANK = 2;
const MAX_ARRAY_RANK = 5;
const EXTENSION_PREFIX = 'datasets.features.features.Array';

/** The `datasets` feature of one column: its JSON (dataset_info.json) and Arrow field. */
export interface ColumnFeature {
  json: Record<string, unknown>;
  field: A.Field;
}

function arrowValueType(dtype: StoreDType | 'int32'): A.DataType {
  return dtype === 'float32' ? new A.Float32() : dtype === 'float16' ? new A.Float16() : new A.Int32();
}

/** A per-row feature of `shape`: a fixed-length list for rank 1, datasets' ArrayND for 2..5. */
export function activationFeature(name: string, shape: readonly number[], dtype: StoreDType): ColumnFeature {
  if (shape.length === 1) return sequenceFeature(name, shape[0], dtype);
  if (shape.length < MIN_ARRAY_RANK || shape.length > MAX_ARRAY_RANK) {
    throw new Error(`a store column holds per-row arrays of rank 1 to ${MAX_ARRAY_RANK}; '${name}' has shape [${shape.join(', ')}]`);
  }
  let type: A.DataType = arrowValueType(dtype);
  for (let i = 0; i < shape.length; i++) type = new A.List(new A.Field('item', type, true));
  const metadata = new Map([
    ['ARROW:extension:name', `${EXTENSION_PREFIX}${shape.length}DExtensionType`],
    ['ARROW:extension:metadata', JSON.stringify([shape, dtype])],
  ]);
  return { json: { shape: [...shape], dtype, _type: `Array${shape.length}D` }, field: new A.Field(name, type, true, metadata) };
}

/** A fixed-length list column (datasets' `List(Value(dtype), length)`, formerly `Sequence`). */
export function sequenceFeature(name: string, length: number, dtype: StoreDType | 'int32'): ColumnFeature {
  const type = new A.FixedSizeList(length, new A.Field('item', arrowValueType(dtype), true));
  return { json: { feature: { dtype, _type: 'Value' }, length, _type: 'List' }, field: new A.Field(name, type, true) };
}

/** The Arrow schema of a layer's files, with datasets' features in its metadata as save_to_disk writes them. */
export function layerSchema(columns: readonly ColumnFeature[]): A.Schema {
  const features = Object.fromEntries(columns.map((c) => [c.field.name, c.json]));
  return new A.Schema(
    columns.map((c) => c.field),
    new Map([['huggingface', JSON.stringify({ info: { features } })]]),
  );
}

/** Writes `file` whole or not at all: a reader sees the old file or the new one. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

/**
 * state.json and dataset_info.json of one layer's folder, listing `files` in order. The
 * fingerprint changes whenever the file list does, so datasets' caches never mix versions.
 */
export async function writeDatasetFolder(dir: string, columns: readonly ColumnFeature[], files: readonly string[]): Promise<void> {
  const features = Object.fromEntries(columns.map((c) => [c.field.name, c.json]));
  const info = { citation: '', description: '', features, homepage: '', license: '' };
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([features, files]))
    .digest('hex')
    .slice(0, 16);
  const state = {
    _data_files: files.map((filename) => ({ filename })),
    _fingerprint: fingerprint,
    _format_columns: null,
    _format_kwargs: {},
    _format_type: null,
    _output_all_columns: false,
    _split: null,
  };
  await writeFileAtomic(path.join(dir, 'dataset_info.json'), JSON.stringify(info, null, 2));
  await writeFileAtomic(path.join(dir, 'state.json'), JSON.stringify(state, null, 2));
}

/** The folder of a layer's dataset: its column name, made safe as one path segment. */
export function layerFolder(column: string): string {
  return encodeURIComponent(column);
}
