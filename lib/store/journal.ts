// What each worker has written to a store: its committed shards and the one it is writing. A
// journal is rewritten atomically after every durable batch, so after a crash it says exactly how
// many sequences are on disk and where the open shard may be cut. The datasets folders' file
// lists are rebuilt from all journals under a lock, so concurrent workers never drop each other's shards.
import { promises as fs } from 'fs';
import * as path from 'path';
import { JOURNAL_DIR, writeFileAtomic } from './format';

export interface StoreWorker {
  index: number;
  count: number;
}

export interface ShardRecord {
  /** File name, the same in every layer's folder. */
  name: string;
  rows: number;
}

export interface Journal {
  worker: StoreWorker;
  /** Sequences of this worker committed or durable in the open shard. */
  rows: number;
  shards: ShardRecord[];
  /** The shard being written: its rows and durable bytes per layer folder. */
  open: (ShardRecord & { bytes: Record<string, number> }) | null;
  /** The worker's part of the inputs is all written. */
  complete: boolean;
}

const LOCK_RETRY_MS = 25;
const LOCK_STALE_MS = 60_000;
const LOCK_TIMEOUT_MS = 120_000;

export function journalFile(dir: string, worker: StoreWorker): string {
  return path.join(dir, JOURNAL_DIR, `worker-${worker.index}-of-${worker.count}.json`);
}

export function emptyJournal(worker: StoreWorker): Journal {
  return { worker, rows: 0, shards: [], open: null, complete: false };
}

export async function writeJournal(dir: string, journal: Journal): Promise<void> {
  await writeFileAtomic(journalFile(dir, journal.worker), JSON.stringify(journal));
}

function isJournal(value: unknown): value is Journal {
  const j = value as Journal;
  return (
    typeof j === 'object' &&
    j !== null &&
    Number.isInteger(j.worker?.index) &&
    Number.isInteger(j.worker?.count) &&
    Number.isInteger(j.rows) &&
    Array.isArray(j.shards) &&
    j.shards.every((s) => typeof s?.name === 'string' && /^[\w.-]+$/.test(s.name) && Number.isInteger(s.rows) && s.rows > 0) &&
    typeof j.complete === 'boolean'
  );
}

/** Every worker's journal, by worker index. A journal that does not parse is an error, not skipped. */
export async function readJournals(dir: string): Promise<Journal[]> {
  const folder = path.join(dir, JOURNAL_DIR);
  const names = (await fs.readdir(folder).catch(() => [] as string[])).filter((n) => /^worker-\d+-of-\d+\.json$/.test(n));
  const journals: Journal[] = [];
  for (const name of names) {
    const parsed: unknown = JSON.parse(await fs.readFile(path.join(folder, name), 'utf8'));
    if (!isJournal(parsed)) throw new Error(`${path.join(folder, name)} is not a store journal`);
    journals.push(parsed);
  }
  return journals.sort((a, b) => a.worker.index - b.worker.index);
}

/** Runs `work` holding the store's lock (a directory: created atomically, also on shared file systems). */
export async function withStoreLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, JOURNAL_DIR, 'lock');
  const started = Date.now();
  for (;;) {
    try {
      await fs.mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stat = await fs.stat(lock).catch(() => undefined);
      // A holder that died leaves the lock behind; nobody holds it this long.
      if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS) await fs.rm(lock, { recursive: true, force: true });
      if (Date.now() - started > LOCK_TIMEOUT_MS) throw new Error(`could not take the store lock ${lock} in ${LOCK_TIMEOUT_MS / 1000} s`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    }
  }
  try {
    return await work();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

/** The committed shards of all workers in store order: worker by worker, each in its collection order. */
export function storeShards(journals: readonly Journal[]): ShardRecord[] {
  return journals.flatMap((j) => j.shards);
}
