// torch.collect: a layer's activations over a dataset, written as an activation store that
// SAELens and `datasets` read. One forward per batch that stops after the last layer needed;
// memory stays at one batch however large the dataset; durable after every batch; resumable.
import { callSite, CallSite, failure } from '../core/errors';
import { abortSignal, callback, isRecord, oneOf, optionKeys, positiveInteger, requiredOptions, string } from '../core/validate';
import { castHost, FLOAT_DTYPES, FloatDType } from '../io/host-tensor';
import { activations, CaptureRequest } from '../methods/activations';
import { Model, Value } from '../model/model';
import { Tensor, tensor, TypedArray } from '../model/tensor';
import { layerFolder, STORE_DTYPES, STORE_FORMAT_VERSION, StoreDType } from './format';
import { StoreWorker } from './journal';
import { STORE_FORMAT_NAME, StoreManifest } from './manifest';
import { ColumnValues } from './record-batch';
import { CollectInput, rowsOf, Row, SequenceOptions } from './sequences';
import { storeCall } from './store-call';
import { recoverJournal, StoreWriter } from './store-writer';
import { resolveWorker } from './workers';

export const COLLECT_DEFAULTS = {
  batchSize: 8,
  dtype: 'float32' as StoreDType,
  // datasets warns about shards over 2 GB (SAELens's buffer_size_gb); smaller ones commit sooner.
  shardBytes: 256 * 1024 * 1024,
} as const;

export interface CollectProgress {
  /** Rows (sequences or examples) of this worker on disk, including those from earlier runs. */
  rows: number;
  /** Rows this call wrote. */
  written: number;
  /** Tokens this call wrote (rows x contextSize for sequences). */
  tokens: number;
  /** Committed shards of this worker. */
  shards: number;
  elapsedMs: number;
}

export interface CollectOptions extends Pick<CaptureRequest, 'saes' | 'errorTerm' | 'precision'> {
  /** Layers to store: names (each its own column and folder), or { column: layer } (e.g. SAELens hook names as columns). */
  layers: string | readonly string[] | Readonly<Record<string, string>>;
  /** Texts (with tokenizer and contextSize), token id arrays or example tensors; iterated once, in order. */
  inputs: Iterable<CollectInput> | AsyncIterable<CollectInput>;
  /** The store's folder (created if absent; resumed if this worker wrote to it before). */
  out: string;
  /** Rows per forward. */
  batchSize?: number;
  /** Cut texts and id arrays into sequences of this many tokens (SAELens's context_size). */
  contextSize?: number;
  tokenizer?: SequenceOptions['tokenizer'];
  beginBatch?: SequenceOptions['beginBatch'];
  separator?: SequenceOptions['separator'];
  beginSequence?: SequenceOptions['beginSequence'];
  dtype?: StoreDType;
  /** A shard is committed when its largest file reaches this size. */
  shardBytes?: number;
  /** This process's part of the dataset; from the scheduler's environment when absent (lib/store/workers.ts). */
  shard?: StoreWorker;
  /** Stop after this many rows of the whole dataset (over all workers). */
  limit?: number;
  signal?: AbortSignal;
  onProgress?: (progress: CollectProgress) => void;
}

export interface CollectResult extends CollectProgress {
  out: string;
  worker: StoreWorker & { source: string };
  /** Rows that were already on disk when this call started. */
  resumed: number;
  /** Whether this worker's part of the inputs is all written. */
  complete: boolean;
}

const COLLECT_KEYS = optionKeys<CollectOptions>({
  layers: true,
  inputs: true,
  out: true,
  batchSize: true,
  contextSize: true,
  tokenizer: true,
  beginBatch: true,
  separator: true,
  beginSequence: true,
  dtype: true,
  shardBytes: true,
  shard: true,
  limit: true,
  signal: true,
  onProgress: true,
  saes: true,
  errorTerm: true,
  precision: true,
});

/** Column name -> layer, in the order given. */
function columnsOf(layers: CollectOptions['layers'], site: CallSite): [string, string][] {
  const entries: [string, string][] =
    typeof layers === 'string'
      ? [[layers, layers]]
      : Array.isArray(layers)
        ? layers.map((l) => [l, l] as [string, string])
        : isRecord(layers)
          ? Object.entries(layers).map(([c, l]) => [c, l as string] as [string, string])
          : [];
  if (entries.length === 0) throw failure('INVALID_ARGUMENT', "layers names at least one layer: 'transformer.h.5', an array, or { column: layer }", site);
  for (const [column, layer] of entries) {
    string(layer, `layers['${column}']`, site);
    if (column.length === 0 || column === '.' || column === '..') throw failure('INVALID_ARGUMENT', `'${column}' cannot name a column`, site);
  }
  if (new Set(entries.map(([c]) => c)).size !== entries.length) throw failure('INVALID_ARGUMENT', 'two layers have one column name', site);
  return entries;
}

/** The model's input for a batch of rows: int64 ids [rows, ctx], or the examples stacked. */
function batchInput(rows: readonly Row[], site: CallSite): Tensor {
  if (rows[0].ids) {
    const ctx = rows[0].ids.length;
    const ids = new BigInt64Array(rows.length * ctx);
    rows.forEach((r, i) => (r.ids as Int32Array).forEach((id, j) => (ids[i * ctx + j] = BigInt(id))));
    return tensor(ids, [rows.length, ctx], 'int64');
  }
  const first = rows[0].example as Tensor;
  const shape = first.shape;
  const parts = rows.map((r) => {
    const t = r.example as Tensor;
    if (t.dtype !== first.dtype || t.shape.join() !== shape.join()) {
      throw failure('SHAPE', `example tensors must share one shape and dtype: [${shape}] ${first.dtype} and [${t.shape}] ${t.dtype}`, site);
    }
    return t.data();
  });
  const out = new (parts[0].constructor as new (n: number) => TypedArray)(parts.length * first.size);
  parts.forEach((p, i) => out.set(p as never, i * first.size));
  return tensor(out, [rows.length, ...shape], first.dtype);
}

/** A captured layer as the store's dtype, checked to be [rows, ...]. */
function columnValues(value: Value | undefined, layer: string, rows: number, dtype: StoreDType, site: CallSite): { values: ColumnValues; shape: number[] } {
  if (!(value instanceof Tensor))
    throw failure(
      'INVALID_ARGUMENT',
      `layer '${layer}' returned ${Array.isArray(value) ? 'a tuple' : 'no tensor'}; name a layer (or node) whose output is one tensor`,
      site,
    );
  if (!(FLOAT_DTYPES as readonly string[]).includes(value.dtype))
    throw failure('DTYPE', `layer '${layer}' is ${value.dtype}; a store holds float activations`, site);
  if (value.shape[0] !== rows || value.shape.length < 2)
    throw failure('SHAPE', `layer '${layer}' has shape [${value.shape}], not [${rows}, ...] for ${rows} rows`, site);
  const host = { data: value.data() as Float32Array | Float64Array | Uint16Array, dtype: value.dtype as FloatDType, shape: value.shape };
  const cast = host.dtype === dtype ? host : castHost(host, dtype);
  return { values: cast.data as ColumnValues, shape: value.shape.slice(1) };
}

/** Collects `layers` over `inputs` into the store at `out` (see CollectOptions). */
export async function collect(model: Model, options: CollectOptions): Promise<CollectResult> {
  const site = callSite(collect);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'collect(model, options): model must come from torch.load()', site);
  const o = requiredOptions(options, COLLECT_KEYS, 'collect', "{ layers: 'transformer.h.5', inputs: texts, out: 'store' }", site);
  for (const key of ['layers', 'inputs', 'out'] as const) if (o[key] === undefined) throw failure('INVALID_ARGUMENT', `collect needs ${key}`, site);
  const columns = columnsOf(o.layers, site);
  const out = string(o.out, 'out', site);
  const batchSize = positiveInteger(o.batchSize ?? COLLECT_DEFAULTS.batchSize, 'batchSize', site);
  const dtype = oneOf(o.dtype ?? COLLECT_DEFAULTS.dtype, 'dtype', STORE_DTYPES, site);
  const shardBytes = positiveInteger(o.shardBytes ?? COLLECT_DEFAULTS.shardBytes, 'shardBytes', site);
  const limit = o.limit === undefined ? Infinity : positiveInteger(o.limit, 'limit', site);
  const signal = abortSignal(o.signal, site);
  if (o.onProgress !== undefined) callback(o.onProgress, 'onProgress', site);
  const onProgress = o.onProgress;
  if (o.inputs === null || typeof o.inputs !== 'object' || !(Symbol.iterator in o.inputs || Symbol.asyncIterator in o.inputs)) {
    throw failure('INVALID_ARGUMENT', 'inputs must be an iterable or async iterable of texts, token id arrays or tensors', site);
  }
  const sequences: SequenceOptions | undefined =
    o.contextSize === undefined
      ? undefined
      : {
          contextSize: positiveInteger(o.contextSize, 'contextSize', site),
          tokenizer: o.tokenizer,
          beginBatch: o.beginBatch,
          separator: o.separator,
          beginSequence: o.beginSequence,
        };
  if (o.tokenizer !== undefined && typeof (o.tokenizer as { encode?: unknown }).encode !== 'function')
    throw failure('INVALID_ARGUMENT', 'tokenizer must have encode(text)', site);
  const worker = resolveWorker(o.shard, process.env, site);
  const started = Date.now();

  const journal = await storeCall(out, site, () => recoverJournal(out, worker));
  // Token rows count their tokens; example tensors count none.
  let tokensPerRow = sequences?.contextSize ?? 0;
  const resumed = journal.rows;
  const progress = (): CollectProgress => ({
    rows: journal.rows,
    written: journal.rows - resumed,
    tokens: (journal.rows - resumed) * tokensPerRow,
    shards: journal.shards.length,
    elapsedMs: Date.now() - started,
  });
  const result = (complete: boolean): CollectResult => ({ ...progress(), out, worker, resumed, complete });
  if (journal.complete) return result(true);

  const request: CaptureRequest & { layers: string[] } = {
    layers: [...new Set(columns.map(([, l]) => l))],
    saes: o.saes,
    errorTerm: o.errorTerm,
    precision: o.precision,
    signal,
  };
  let writer: StoreWriter | undefined;
  let pending: Row[] = [];
  let index = -1; // the row's index in the whole dataset
  let mine = 0; // rows of this worker seen, written or not
  const flush = async () => {
    const rows = pending;
    pending = [];
    const input = batchInput(rows, site);
    let captured: Record<string, Value>;
    try {
      captured = await activations(model, request, input);
    } finally {
      input.dispose();
    }
    try {
      const values = columns.map(([column, layer]) => ({ column, layer, ...columnValues(captured[layer], layer, rows.length, dtype, site) }));
      const tokens = rows[0].ids ? Int32Array.from(rows.flatMap((r) => Array.from(r.ids as Int32Array))) : undefined;
      if (rows[0].ids) tokensPerRow = rows[0].ids.length;
      if (writer === undefined) {
        const manifest: StoreManifest = {
          format: STORE_FORMAT_NAME,
          version: STORE_FORMAT_VERSION,
          columns: values.map((v) => ({ column: v.column, layer: v.layer, folder: layerFolder(v.column), shape: v.shape })),
          dtype,
          tokens: tokens !== undefined,
          workers: worker.count,
        };
        writer = await storeCall(out, site, () => StoreWriter.start(out, manifest, journal, shardBytes));
      }
      const w = writer;
      await storeCall(out, site, () =>
        w.append(
          values.map((v) => v.values),
          tokens,
          rows.length,
        ),
      );
    } finally {
      for (const value of Object.values(captured)) if (value instanceof Tensor) value.dispose();
    }
    onProgress?.(progress());
  };

  let exhausted = false;
  try {
    for await (const row of rowsOf(o.inputs, sequences, site)) {
      index++;
      if (index >= limit) break;
      if (index % worker.count !== worker.index) continue;
      // Rows of this worker already on disk (an earlier run) are skipped, in order.
      if (mine++ < resumed) continue;
      if (signal?.aborted) throw failure('ABORTED', `collect was aborted after ${journal.rows} rows; collect again to resume`, site);
      pending.push(row);
      if (pending.length === batchSize) await flush();
    }
    if (pending.length > 0) await flush();
    exhausted = index < limit;
  } finally {
    // Whatever happened, what was written stays: the open shard is committed and published.
    // Only inputs that ran out mark the worker complete: a larger limit may continue it later.
    const w = writer;
    if (w !== undefined) await storeCall(out, site, () => w.finish(exhausted));
  }
  return result(true);
}
