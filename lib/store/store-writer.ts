// One worker's writer: shard files for every column in lockstep (a shard holds the same rows in
// each layer's folder), journaled after every batch, published to the datasets folders whenever a
// shard completes.
import * as A from 'apache-arrow';
import { promises as fs } from 'fs';
import * as path from 'path';
import { ColumnFeature, JOURNAL_DIR, TOKEN_COLUMN, activationFeature, layerSchema, sequenceFeature, writeDatasetFolder } from './format';
import { Journal, StoreWorker, emptyJournal, journalFile, readJournals, storeShards, withStoreLock, writeJournal } from './journal';
import { StoreManifest, manifestDifference, readManifest, writeManifest } from './manifest';
import { ColumnValues, recordBatch } from './record-batch';
import { ShardFile, recoverShard } from './shard-file';

function shardName(worker: StoreWorker, ordinal: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `data-w${pad(worker.index)}-of-${pad(worker.count)}-s${pad(ordinal)}.arrow`;
}

/** Each folder's dataset columns: the activations, then token ids when the rows are sequences. */
export function folderColumns(manifest: StoreManifest): ColumnFeature[][] {
  return manifest.columns.map((c) => [
    activationFeature(c.column, c.shape, manifest.dtype),
    ...(manifest.tokens ? [sequenceFeature(TOKEN_COLUMN, c.shape[0], 'int32')] : []),
  ]);
}

/** Rebuilds every folder's state.json and dataset_info.json from all journals (holding the lock). */
async function publish(dir: string, manifest: StoreManifest): Promise<void> {
  await withStoreLock(dir, async () => {
    const names = storeShards(await readJournals(dir)).map((s) => s.name);
    if (names.length === 0) return;
    const columns = folderColumns(manifest);
    await Promise.all(manifest.columns.map((c, i) => writeDatasetFolder(path.join(dir, c.folder), columns[i], names)));
  });
}

/** This worker's journal, after recovering a shard a killed process left open. */
export async function recoverJournal(dir: string, worker: StoreWorker): Promise<Journal> {
  const text = await fs.readFile(journalFile(dir, worker), 'utf8').catch(() => undefined);
  if (text === undefined) return emptyJournal(worker);
  const journal = (await readJournals(dir)).find((j) => j.worker.index === worker.index && j.worker.count === worker.count) as Journal;
  if (journal.open === null) return journal;
  const manifest = await readManifest(dir);
  if (manifest === undefined) throw new Error(`the store at ${dir} has a journal but no manifest`);
  const open = journal.open;
  if (open.rows > 0) {
    for (const c of manifest.columns) await recoverShard(path.join(dir, c.folder, open.name), open.bytes[c.folder] ?? 0);
    journal.shards.push({ name: open.name, rows: open.rows });
  } else {
    for (const c of manifest.columns) await fs.rm(path.join(dir, c.folder, `${open.name}.partial`), { force: true });
  }
  journal.open = null;
  await writeJournal(dir, journal);
  await publish(dir, manifest);
  return journal;
}

export class StoreWriter {
  private files: ShardFile[] | null = null;
  private readonly schemas: A.Schema[];

  private constructor(
    private readonly dir: string,
    private readonly manifest: StoreManifest,
    readonly journal: Journal,
    private readonly shardBytes: number,
  ) {
    this.schemas = folderColumns(manifest).map(layerSchema);
  }

  /** Starts writing: the store's manifest must agree with this collect's (written if absent). */
  static async start(dir: string, manifest: StoreManifest, journal: Journal, shardBytes: number): Promise<StoreWriter> {
    await fs.mkdir(path.join(dir, JOURNAL_DIR), { recursive: true });
    await withStoreLock(dir, async () => {
      const have = await readManifest(dir);
      if (have === undefined) await writeManifest(dir, manifest);
      else {
        const difference = manifestDifference(have, manifest);
        if (difference) throw new Error(`${dir} holds another collection: ${difference}`);
      }
      for (const c of manifest.columns) await fs.mkdir(path.join(dir, c.folder), { recursive: true });
    });
    return new StoreWriter(dir, manifest, journal, shardBytes);
  }

  /** Appends `rows` rows (one array per column, plus token ids when the store keeps them); durable on return. */
  async append(columns: readonly ColumnValues[], tokens: Int32Array | undefined, rows: number): Promise<void> {
    if (this.files === null) {
      const name = shardName(this.journal.worker, this.journal.shards.length);
      this.files = await Promise.all(this.manifest.columns.map((c, i) => ShardFile.create(path.join(this.dir, c.folder, name), this.schemas[i])));
      this.journal.open = { name, rows: 0, bytes: {} };
    }
    const files = this.files;
    for (const [i, c] of this.manifest.columns.entries()) {
      const values = tokens ? [columns[i], tokens] : [columns[i]];
      const shapes = tokens ? [c.shape, [c.shape[0]]] : [c.shape];
      await files[i].append(recordBatch(this.schemas[i], values, shapes, rows));
    }
    const open = this.journal.open as NonNullable<Journal['open']>;
    open.rows += rows;
    open.bytes = Object.fromEntries(this.manifest.columns.map((c, i) => [c.folder, files[i].bytes]));
    this.journal.rows += rows;
    await writeJournal(this.dir, this.journal);
    if (Math.max(...files.map((f) => f.bytes)) >= this.shardBytes) await this.commitShard();
  }

  /** Completes the open shard (if it has rows) and publishes it. */
  async commitShard(): Promise<void> {
    const files = this.files;
    const open = this.journal.open;
    if (files === null || open === null) return;
    this.files = null;
    if (open.rows > 0) {
      for (const file of files) await file.commit();
      this.journal.shards.push({ name: open.name, rows: open.rows });
    } else {
      for (const file of files) await file.discard();
    }
    this.journal.open = null;
    await writeJournal(this.dir, this.journal);
    await publish(this.dir, this.manifest);
  }

  /** Commits what is open; `complete` records that this worker's inputs are all written. */
  async finish(complete: boolean): Promise<void> {
    await this.commitShard();
    if (complete) {
      this.journal.complete = true;
      await writeJournal(this.dir, this.journal);
    }
  }
}
