// torch.openStore: an activation store read back, as one dataset however many workers wrote it:
// in order (sequences, for dashboards and probes) or as shuffled token batches (for SAE training).
// Files are streamed a record batch at a time; memory stays at one batch (plus the mixing buffer).
import * as path from 'path';
import { callSite, CallSite, failure } from '../core/errors';
import { abortSignal, checkOptions, integer, integers, optionKeys, positiveInteger, string } from '../core/validate';
import type { ActivationSource } from '../dashboard/source';
import { disposeValue, Tensor, tensor } from '../model/tensor';
import { layerFolder } from './format';
import { readJournals, storeShards } from './journal';
import { readManifest, StoreManifest } from './manifest';
import { DatasetFolder, FileBatch, FolderColumn, READ_DTYPES, readDatasetFolder, readFileBatches, ReadValues } from './read';
import { matrixLayout, MatrixPosition, matrixRows } from './matrix';
import { MixingBuffer } from './shuffle';
import { storeCall } from './store-call';

export const STORE_READ_DEFAULTS = {
  /** Rows per batch of `sequences`. */
  batchSize: 32,
  /** Tokens per batch of `batches` (SAELens's train_batch_size_tokens). */
  batchTokens: 4096,
  /** The mixing buffer holds this many batches (SAELens: 20 x 32 prompts x 128 tokens = 20 batches of 4096). */
  bufferBatches: 20,
  seed: 0,
} as const;

export interface StoreColumnInfo extends FolderColumn {
  /** The model layer it was captured at (stores collected by torchscope). */
  layer: string | undefined;
}

/** Rows in order: token ids and each column's activations, [rows, ...shape]. */
export interface StoreSequences {
  /** Index of the first row in the store. */
  firstRow: number;
  rows: number;
  tokens: Tensor | undefined;
  activations: Record<string, Tensor>;
}

export interface SequencesOptions {
  /** Columns to read (default: all). */
  columns?: string | string[];
  batchSize?: number;
  signal?: AbortSignal;
}

export interface TokenBatchesOptions {
  /** The column (default: the only one). */
  column?: string;
  batchTokens?: number;
  /** Mixed through a seeded buffer (default true); false reads tokens in store order. */
  shuffle?: boolean;
  seed?: number;
  /** Tokens the mixing buffer holds (default bufferBatches x batchTokens). */
  bufferTokens?: number;
  /** Leave out positions holding these token ids (e.g. BOS), as SAELens's exclude_special_tokens. */
  excludeTokens?: number[];
  /** Drop a last batch with fewer than batchTokens tokens (default false). */
  dropLast?: boolean;
  signal?: AbortSignal;
}

export interface MatrixOptions {
  /** Which vectors of each row (required for rows of rank 2 or more; see MatrixPosition). */
  position?: MatrixPosition;
  /** Rows read at most. */
  limit?: number;
  signal?: AbortSignal;
}

export interface StoreMatrix {
  /** [examples, d] float32. */
  x: Tensor;
  /** The token id at each example's position (sequences read by index or 'all'). */
  tokens: Int32Array | undefined;
  /** Rows read. */
  rows: number;
}

const MATRIX_KEYS = optionKeys<MatrixOptions>({ position: true, limit: true, signal: true });
const SEQUENCES_KEYS = optionKeys<SequencesOptions>({ columns: true, batchSize: true, signal: true });
const BATCHES_KEYS = optionKeys<TokenBatchesOptions>({
  column: true,
  batchTokens: true,
  shuffle: true,
  seed: true,
  bufferTokens: true,
  excludeTokens: true,
  dropLast: true,
  signal: true,
});

// Concatenates row-major arrays of one type.
function concat<T extends ReadValues | Int32Array | Float32Array>(parts: readonly T[]): T {
  if (parts.length === 1) return parts[0];
  const out = new (parts[0].constructor as new (n: number) => T)(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p as never, at);
    at += p.length;
  }
  return out;
}

export class Store {
  private constructor(
    readonly dir: string,
    /** The activation columns, with the folder each lives in. */
    readonly columns: readonly StoreColumnInfo[],
    private readonly folders: ReadonlyMap<string, DatasetFolder>,
    /** Rows (sequences or examples), when the store records them (torchscope's stores do). */
    readonly rows: number | undefined,
    readonly manifest: StoreManifest | undefined,
  ) {}

  /** Opens a store: a torchscope store (one folder per layer), or one datasets folder (e.g. SAELens's cache). */
  static async open(dir: string): Promise<Store> {
    const site = callSite(Store.open);
    string(dir, 'dir', site);
    return storeCall(dir, site, async () => {
      const manifest = await readManifest(dir);
      if (manifest === undefined) {
        const folder = await readDatasetFolder(dir);
        const columns = folder.columns.map((c) => ({ ...c, layer: undefined }));
        return new Store(dir, columns, new Map(columns.map((c) => [c.name, folder])), undefined, undefined);
      }
      const shards = storeShards(await readJournals(dir));
      const folders = new Map<string, DatasetFolder>();
      const columns: StoreColumnInfo[] = [];
      for (const c of manifest.columns) {
        const folder: DatasetFolder = {
          dir: path.join(dir, layerFolder(c.column)),
          columns: [{ name: c.column, shape: c.shape, dtype: manifest.dtype }],
          tokenLength: manifest.tokens ? c.shape[0] : undefined,
          files: shards.map((s) => path.join(dir, layerFolder(c.column), s.name)),
        };
        folders.set(c.column, folder);
        columns.push({ ...folder.columns[0], layer: c.layer });
      }
      return new Store(
        dir,
        columns,
        folders,
        shards.reduce((n, s) => n + s.rows, 0),
        manifest,
      );
    });
  }

  /** Whether rows carry token ids. */
  get hasTokens(): boolean {
    return [...this.folders.values()].every((f) => f.tokenLength !== undefined);
  }

  /** @internal The column named (or the only one), or INVALID_ARGUMENT listing them. */
  column(name: string | undefined, site: CallSite): StoreColumnInfo {
    if (name === undefined && this.columns.length === 1) return this.columns[0];
    const found = this.columns.find((c) => c.name === name);
    if (found === undefined) {
      throw failure(
        'INVALID_ARGUMENT',
        `${name === undefined ? 'name a column' : `no column '${name}'`}: the store has ${this.columns.map((c) => `'${c.name}'`).join(', ')}`,
        site,
      );
    }
    return found;
  }

  /** The record batches of `columns`, reading their folders' files in lockstep. */
  private async *fileBatches(columns: readonly StoreColumnInfo[], site: CallSite): AsyncGenerator<FileBatch> {
    const folders = [...new Set(columns.map((c) => this.folders.get(c.name) as DatasetFolder))];
    const files = folders[0].files.length;
    for (let f = 0; f < files; f++) {
      const readers = folders.map((folder) =>
        readFileBatches(
          folder.files[f],
          folder.columns.filter((c) => columns.some((w) => w.name === c.name)),
          folder.tokenLength,
        ),
      );
      for (;;) {
        const parts = await storeCall(this.dir, site, () => Promise.all(readers.map((r) => r.next())));
        if (parts.every((p) => p.done)) break;
        if (parts.some((p) => p.done || p.value.rows !== (parts[0].value as FileBatch).rows)) {
          throw failure('RUNTIME', `activation store ${this.dir}: the layers' files ${path.basename(folders[0].files[f])} hold different rows`, site);
        }
        const batches = parts.map((p) => p.value as FileBatch);
        const values = new Map(batches.flatMap((b) => [...b.values]));
        yield { rows: batches[0].rows, values, tokens: batches[0].tokens };
      }
    }
  }

  /** The rows in store order, `batchSize` at a time (the last batch may be smaller). */
  async *sequences(options?: SequencesOptions): AsyncGenerator<StoreSequences> {
    const site = callSite(this.sequences);
    const o = checkOptions(options, SEQUENCES_KEYS, 'sequences', site);
    const names = o.columns === undefined ? this.columns.map((c) => c.name) : typeof o.columns === 'string' ? [o.columns] : o.columns;
    const columns = names.map((n) => this.column(n, site));
    const batchSize = positiveInteger(o.batchSize ?? STORE_READ_DEFAULTS.batchSize, 'batchSize', site);
    const signal = abortSignal(o.signal, site);
    let pending: FileBatch[] = [];
    let held = 0;
    let firstRow = 0;
    const emit = (rows: number): StoreSequences => {
      const take = (get: (b: FileBatch) => ReadValues | Int32Array | undefined, width: number) =>
        concat(pending.map((b) => get(b) as ReadValues)).subarray(0, rows * width) as ReadValues;
      const activations: Record<string, Tensor> = {};
      for (const c of columns) {
        const width = c.shape.reduce((a, b) => a * b, 1);
        activations[c.name] = tensor(
          take((b) => b.values.get(c.name), width),
          [rows, ...c.shape],
          c.dtype,
        );
      }
      const tokenLength = columns[0].shape[0];
      const tokens = pending[0].tokens ? tensor(take((b) => b.tokens, tokenLength) as unknown as Int32Array, [rows, tokenLength], 'int32') : undefined;
      const out = { firstRow, rows, tokens, activations };
      firstRow += rows;
      return out;
    };
    for await (const batch of this.fileBatches(columns, site)) {
      if (signal?.aborted) throw failure('ABORTED', `reading ${this.dir} was aborted at row ${firstRow + held}`, site);
      pending.push(batch);
      held += batch.rows;
      while (held >= batchSize) {
        const out = emit(batchSize);
        // What is left of the batches just used stays for the next one.
        pending = remainder(pending, batchSize, columns);
        held -= batchSize;
        yield out;
      }
    }
    if (held > 0) yield emit(held);
  }

  /**
   * One column as a dashboard's activation source (torch.dashboard.features): its rows in order
   * with their token ids, read again for each pass; a batch is freed when the next is asked for.
   */
  source(column?: string, options?: Omit<SequencesOptions, 'columns'>): ActivationSource {
    const site = callSite(this.source);
    const { name, shape } = this.column(column, site);
    if (shape.length !== 2) throw failure('SHAPE', `a dashboard source reads [contextSize, d] rows; '${name}' rows are [${shape}]`, site);
    const read = (o?: SequencesOptions) => this.sequences(o);
    return {
      contextSize: shape[0],
      async *batches() {
        let previous: StoreSequences | undefined;
        try {
          for await (const batch of read({ ...options, columns: [name] })) {
            if (previous) disposeValue([previous.tokens, previous.activations]);
            previous = batch;
            yield { tokens: batch.tokens, activations: batch.activations[name] };
          }
        } finally {
          if (previous) disposeValue([previous.tokens, previous.activations]);
        }
      },
    };
  }

  /**
   * One column as an [examples, d] float32 matrix (a probe's x), with the token id at each
   * vector's position when the rows are sequences (position index or 'all'): the natural types of
   * a control task. `limit` caps the rows read.
   */
  async matrix(column?: string, options?: MatrixOptions): Promise<StoreMatrix> {
    const site = callSite(this.matrix);
    const o = checkOptions(options, MATRIX_KEYS, 'matrix', site);
    const { name, shape, dtype } = this.column(column, site);
    const layout = matrixLayout(shape, o.position, site);
    const limit = o.limit === undefined ? Infinity : positiveInteger(o.limit, 'limit', site);
    const parts: Float32Array[] = [];
    const tokenParts: Int32Array[] = [];
    let rows = 0;
    const tokenAt = typeof o.position === 'number' ? (o.position < 0 ? shape[0] + o.position : o.position) : undefined;
    for await (const batch of this.sequences({ columns: name, signal: o.signal })) {
      const take = Math.min(batch.rows, limit - rows);
      parts.push(matrixRows(batch.activations[name].data() as ReadValues, dtype, take, shape, o.position));
      const ids = batch.tokens?.data() as Int32Array | undefined;
      if (ids && (o.position === 'all' || tokenAt !== undefined)) {
        tokenParts.push(
          o.position === 'all' ? ids.slice(0, take * shape[0]) : Int32Array.from({ length: take }, (_, r) => ids[r * shape[0] + (tokenAt as number)]),
        );
      }
      disposeValue([batch.tokens, batch.activations]);
      rows += take;
      if (rows >= limit) break;
    }
    const x = concat(parts);
    return { x: tensor(x, [x.length / layout.width, layout.width], 'float32'), tokens: tokenParts.length ? concat(tokenParts) : undefined, rows };
  }

  /** Token-level batches [batchTokens, d] of one sequence column, shuffled by default (SAE training). */
  async *batches(options?: TokenBatchesOptions): AsyncGenerator<Tensor> {
    const site = callSite(this.batches);
    const o = checkOptions(options, BATCHES_KEYS, 'batches', site);
    const column = this.column(o.column, site);
    if (column.shape.length !== 2) throw failure('SHAPE', `token batches read [contextSize, d] rows; '${column.name}' rows are [${column.shape}]`, site);
    const width = column.shape[1];
    const batchTokens = positiveInteger(o.batchTokens ?? STORE_READ_DEFAULTS.batchTokens, 'batchTokens', site);
    const shuffle = o.shuffle ?? true;
    const capacity = shuffle ? positiveInteger(o.bufferTokens ?? STORE_READ_DEFAULTS.bufferBatches * batchTokens, 'bufferTokens', site) : batchTokens;
    if (capacity < batchTokens) throw failure('INVALID_ARGUMENT', `bufferTokens (${capacity}) must hold at least one batch (${batchTokens})`, site);
    const exclude = new Set(o.excludeTokens === undefined ? [] : integers(o.excludeTokens, 'excludeTokens', { min: 0 }, site));
    if (exclude.size > 0 && !this.hasTokens) throw failure('INVALID_ARGUMENT', 'excludeTokens needs a store with token_ids', site);
    const signal = abortSignal(o.signal, site);
    const Kind = READ_DTYPES[column.dtype];
    const buffer = new MixingBuffer((n) => new Kind(n) as ReadValues, width, capacity, integer(o.seed ?? STORE_READ_DEFAULTS.seed, 'seed', { min: 0 }, site));
    // Served per fill: half of a full mixing buffer (SAELens), all of a sequential one.
    const serve = shuffle ? Math.max(batchTokens, Math.floor(capacity / 2 / batchTokens) * batchTokens) : batchTokens;
    const asTensor = (values: ReadValues) => tensor(values, [values.length / width, width], column.dtype);
    const drain = function* (all: boolean): Generator<Tensor> {
      while (buffer.size >= (all ? 1 : capacity)) {
        const taken = buffer.take(all ? buffer.size : serve);
        for (let at = 0; at < taken.length; at += batchTokens * width) {
          const part = taken.subarray(at, at + batchTokens * width) as ReadValues;
          if (part.length === batchTokens * width || !o.dropLast) yield asTensor(part);
        }
      }
    };
    for await (const batch of this.fileBatches([column], site)) {
      if (signal?.aborted) throw failure('ABORTED', `reading ${this.dir} was aborted`, site);
      let values = batch.values.get(column.name) as ReadValues;
      if (exclude.size > 0) values = keepTokens(values, batch.tokens as Int32Array, exclude, width);
      const rows = values.length / width;
      for (let from = 0; from < rows;) {
        from += buffer.push(values, from, rows - from);
        if (buffer.full) yield* drain(false);
      }
    }
    yield* drain(true);
  }
}

/** The batches after the first `rows` rows of `pending` were used. */
function remainder(pending: FileBatch[], rows: number, columns: readonly StoreColumnInfo[]): FileBatch[] {
  let skip = rows;
  const out: FileBatch[] = [];
  for (const b of pending) {
    if (skip >= b.rows) {
      skip -= b.rows;
      continue;
    }
    const values = new Map(
      columns.map((c) => {
        const width = c.shape.reduce((x, y) => x * y, 1);
        return [c.name, (b.values.get(c.name) as ReadValues).subarray(skip * width) as ReadValues];
      }),
    );
    const tokenLength = columns[0].shape[0];
    out.push({ rows: b.rows - skip, values, tokens: b.tokens?.subarray(skip * tokenLength) });
    skip = 0;
  }
  return out;
}

/** The token rows of `values` whose token id is not in `exclude`. */
function keepTokens(values: ReadValues, tokens: Int32Array, exclude: ReadonlySet<number>, width: number): ReadValues {
  const keep: number[] = [];
  tokens.forEach((t, i) => exclude.has(t) || keep.push(i));
  const out = new (values.constructor as new (n: number) => ReadValues)(keep.length * width);
  keep.forEach((row, i) => out.set(values.subarray(row * width, (row + 1) * width) as never, i * width));
  return out;
}

/** Opens the activation store at `dir` (see Store.open). */
export function openStore(dir: string): Promise<Store> {
  return Store.open(dir);
}
