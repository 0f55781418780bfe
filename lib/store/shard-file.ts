// One shard file being written: an Arrow IPC stream (datasets' own file format) appended a record
// batch at a time, durable after each batch, renamed into place when complete. A process killed
// mid-shard leaves a `.partial` file whose length after the last durable batch is in the journal:
// `recoverShard` cuts it there and closes the stream, so no written batch is lost.
import * as A from 'apache-arrow';
import { promises as fs } from 'fs';

export const PARTIAL_SUFFIX = '.partial';

// The stream's end-of-stream marker: continuation indicator, then a zero-length message.
const END_OF_STREAM = new Uint8Array(new Int32Array([-1, 0]).buffer);

// Collects the writer's bytes so they are written to the file asynchronously, then released:
// the writer's default queue keeps every byte it ever wrote.
class ChunkSink extends A.AsyncByteQueue {
  chunks: Uint8Array[] = [];
  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.chunks.push(value);
  }
}

export class ShardFile {
  /** Bytes durable on disk: the file may be cut here and still be a valid stream. */
  bytes = 0;
  rows = 0;
  private readonly sink = new ChunkSink();
  private readonly writer = new A.RecordBatchStreamWriter({ autoDestroy: false });

  private constructor(
    readonly file: string,
    private readonly handle: fs.FileHandle,
  ) {}

  /** Starts `file + .partial` with the schema message. */
  static async create(file: string, schema: A.Schema): Promise<ShardFile> {
    const handle = await fs.open(file + PARTIAL_SUFFIX, 'w');
    const shard = new ShardFile(file, handle);
    shard.writer.reset(shard.sink, schema);
    await shard.flush();
    return shard;
  }

  /** Appends a batch and makes it durable. */
  async append(batch: A.RecordBatch): Promise<void> {
    this.writer.write(batch);
    await this.flush();
    await this.handle.sync();
    this.rows += batch.numRows;
  }

  /** Ends the stream and renames the file into place. */
  async commit(): Promise<void> {
    this.writer.reset(this.sink); // writes the end-of-stream marker
    await this.flush();
    await this.handle.sync();
    await this.handle.close();
    await fs.rename(this.file + PARTIAL_SUFFIX, this.file);
  }

  /** Closes and deletes the file (a shard with no rows). */
  async discard(): Promise<void> {
    await this.handle.close();
    await fs.rm(this.file + PARTIAL_SUFFIX, { force: true });
  }

  private async flush(): Promise<void> {
    const chunks = this.sink.chunks;
    this.sink.chunks = [];
    for (const chunk of chunks) {
      await this.handle.write(chunk);
      this.bytes += chunk.byteLength;
    }
  }
}

/**
 * After a crash: keeps the first `bytes` of `file.partial` (whole batches, as journaled), ends
 * the stream and renames it into place. A file shorter than the journal says is not trusted.
 */
export async function recoverShard(file: string, bytes: number): Promise<void> {
  const partial = file + PARTIAL_SUFFIX;
  const stat = await fs.stat(partial).catch(() => undefined);
  // Killed between renaming the shard's files: this one is already complete.
  if (stat === undefined && (await fs.stat(file).catch(() => undefined))) return;
  if (stat === undefined) throw new Error(`${partial} is missing, but its journal records ${bytes} bytes written`);
  if (stat.size < bytes) throw new Error(`${partial} has ${stat.size} bytes, but its journal records ${bytes} written`);
  const handle = await fs.open(partial, 'r+');
  try {
    await handle.truncate(bytes);
    await handle.write(END_OF_STREAM, 0, END_OF_STREAM.byteLength, bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(partial, file);
}
