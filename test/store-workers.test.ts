// Activation stores at scale: several processes fill one store, each from the array-job variables
// of Kubernetes indexed Jobs or Slurm (as the README's manifests set them), and it reads as one;
// a killed or aborted collect loses nothing written and a second collect completes the store with
// each sequence once; memory stays bounded while a store several times larger is written. Child
// processes run test/children/collect.js; the reference is a single in-process collect.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectTorchscopeError, MODELS, removeDir, ROOT, scratchDir } from './helpers';

const CHILD = path.join(__dirname, 'children', 'collect.js');
const MODEL = path.join(MODELS, 'llm', 'gpt2.pt');
const LAYERS = { 'blocks.0.hook_resid_post': 'transformer.h.0', 'blocks.1.hook_mlp_out': 'transformer.h.1.mlp' };
const LENGTH = 12;
const ROWS = 90;
const SHARD_BYTES = 30_000;

let dir: string;
let model: torch.Model;
let rows: number[][];
let reference: Map<string, Record<string, Float32Array>>;

function child(request: object, env: Record<string, string> = {}): Promise<{ status: number | null; signal: NodeJS.Signals | null; output: string }> {
  const file = path.join(dir, `request-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(request));
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--expose-gc', CHILD, file], { env: { ...process.env, ...env } });
    let output = '';
    proc.stdout.on('data', (d) => (output += d));
    proc.stderr.on('data', (d) => (output += d));
    proc.on('close', (status, signal) => resolve({ status, signal, output }));
  });
}

/** Every row of a store: its token ids (as a key) and each column's values, checked once each. */
async function readAll(out: string): Promise<Map<string, Record<string, Float32Array>>> {
  const store = await torch.openStore(out);
  const all = new Map<string, Record<string, Float32Array>>();
  for await (const batch of store.sequences({ batchSize: 7 })) {
    const ids = batch.tokens!.data() as Int32Array;
    for (let r = 0; r < batch.rows; r++) {
      const key = Array.from(ids.subarray(r * LENGTH, (r + 1) * LENGTH)).join();
      expect(all.has(key)).toBe(false);
      const values: Record<string, Float32Array> = {};
      for (const column of Object.keys(LAYERS)) {
        const d = batch.activations[column].data() as Float32Array;
        const width = d.length / batch.rows;
        values[column] = d.slice(r * width, (r + 1) * width);
      }
      all.set(key, values);
    }
    torch.dispose([batch.tokens, batch.activations]);
  }
  expect(all.size).toBe(store.rows);
  return all;
}

function expectSameRows(got: Map<string, Record<string, Float32Array>>): void {
  expect([...got.keys()].sort()).toEqual([...reference.keys()].sort());
  for (const [key, values] of got) for (const column of Object.keys(LAYERS)) expect(values[column]).toEqual(reference.get(key)![column]);
}

beforeAll(async () => {
  dir = scratchDir('store-workers');
  model = await torch.load(MODEL);
  // Distinct rows (a row's ids identify it when the order differs).
  rows = Array.from({ length: ROWS }, (_, i) => Array.from({ length: LENGTH }, (_, j) => (i * 31 + j * 7 + ((i * j) % 5)) % 300));
  const out = path.join(dir, 'reference');
  await torch.collect(model, { layers: LAYERS, inputs: rows, out, batchSize: 8 });
  reference = await readAll(out);
  expect(reference.size).toBe(ROWS);
}, 120_000);

afterAll(() => {
  model?.dispose();
  removeDir(dir);
});

describe('two processes fill one store', () => {
  const schedulers: [string, (index: number) => Record<string, string>][] = [
    ['a Kubernetes indexed Job (JOB_COMPLETION_INDEX, TORCHSCOPE_SHARD_COUNT)', (i) => ({ JOB_COMPLETION_INDEX: String(i), TORCHSCOPE_SHARD_COUNT: '2' })],
    [
      'a Slurm job array --array=3-5:2 (SLURM_ARRAY_TASK_ID, _COUNT, _MIN, _STEP)',
      (i) => ({ SLURM_ARRAY_TASK_ID: String(3 + 2 * i), SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '3', SLURM_ARRAY_TASK_STEP: '2' }),
    ],
  ];
  test.each(schedulers)(
    '%s: each sequence once, equal to one process',
    async (_name, env) => {
      const out = path.join(dir, `workers-${_name.slice(2, 8)}`);
      const request = { model: MODEL, out, layers: LAYERS, rows, batchSize: 4, shardBytes: SHARD_BYTES };
      const results = await Promise.all([child(request, env(0)), child(request, env(1))]);
      for (const r of results) expect(r).toMatchObject({ status: 0, signal: null });
      const parsed = results.map((r) => JSON.parse(r.output) as torch.CollectResult);
      expect(parsed.map((p) => [p.worker.index, p.worker.count, p.rows])).toEqual([
        [0, 2, ROWS / 2],
        [1, 2, ROWS / 2],
      ]);
      expectSameRows(await readAll(out));
      // Each worker's rows are its own: index mod 2.
      const store = await torch.openStore(out);
      expect(store.manifest?.workers).toBe(2);
    },
    120_000,
  );

  test('the README ships a Kubernetes indexed Job and a Slurm array script that set these variables', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const job = /```yaml\n([\s\S]*?completionMode: Indexed[\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const completions = /completions: (\d+)/.exec(job)?.[1];
    expect(completions).toBeDefined();
    expect(job).toMatch(new RegExp(`name: TORCHSCOPE_SHARD_COUNT\\s+value: "${completions}"`));
    const slurm = /```bash\n(#!\/bin\/bash\n#SBATCH[\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(slurm).toMatch(/#SBATCH --array=0-\d+/);
  });

  test('a worker count that disagrees with the store is refused', async () => {
    const out = path.join(dir, 'disagree');
    await torch.collect(model, { layers: LAYERS, inputs: rows.slice(0, 8), out, shard: { index: 0, count: 2 } });
    await expectTorchscopeError(
      () => torch.collect(model, { layers: LAYERS, inputs: rows.slice(0, 8), out, shard: { index: 0, count: 3 } }),
      'RUNTIME',
      /another collection/,
    );
    await expectTorchscopeError(
      () => torch.collect(model, { layers: LAYERS, inputs: rows, out, shard: { index: 2, count: 2 } }),
      'INVALID_ARGUMENT',
      /shard index/,
    );
  });
});

describe('nothing written is lost', () => {
  test('a killed process: its open shard is recovered up to the last durable batch, and a second collect completes the store', async () => {
    const out = path.join(dir, 'killed');
    // Shards of several batches, so the kill lands inside an open shard.
    const killed = await child({ model: MODEL, out, layers: LAYERS, rows, batchSize: 4, shardBytes: 60_000, killAfter: 7 });
    expect(killed.signal).toBe('SIGKILL');
    const journal = JSON.parse(fs.readFileSync(path.join(out, '.torchscope', 'worker-0-of-1.json'), 'utf8'));
    expect(journal.rows).toBe(28);
    expect(journal.open).not.toBeNull();
    // A torn write after the last durable batch: bytes the journal never recorded.
    const partial = path.join(out, 'blocks.0.hook_resid_post', `${journal.open.name}.partial`);
    fs.appendFileSync(partial, Buffer.alloc(1000, 7));
    const resumed = await torch.collect(model, { layers: LAYERS, inputs: rows, out, batchSize: 4, shardBytes: 60_000 });
    expect(resumed).toMatchObject({ resumed: 28, written: ROWS - 28, rows: ROWS, complete: true });
    expectSameRows(await readAll(out));
    // Store order is collection order for one worker.
    const store = await torch.openStore(out);
    let at = 0;
    for await (const b of store.sequences({ batchSize: 16 })) {
      const ids = Array.from(b.tokens!.data() as Int32Array);
      expect(ids).toEqual(rows.slice(at, at + b.rows).flat());
      at += b.rows;
      torch.dispose([b.tokens, b.activations]);
    }
  }, 120_000);

  test('an abort commits what was written; collecting again finishes', async () => {
    const out = path.join(dir, 'aborted');
    const controller = new AbortController();
    let batches = 0;
    const onProgress = () => {
      if (++batches === 3) controller.abort();
    };
    await expectTorchscopeError(
      () => torch.collect(model, { layers: LAYERS, inputs: rows, out, batchSize: 5, signal: controller.signal, onProgress }),
      'ABORTED',
      /collect again to resume/,
    );
    const partial = await torch.openStore(out);
    expect(partial.rows).toBe(15);
    const finished = await torch.collect(model, { layers: LAYERS, inputs: rows, out, batchSize: 5 });
    expect(finished).toMatchObject({ resumed: 15, rows: ROWS, complete: true });
    expectSameRows(await readAll(out));
  }, 60_000);

  test('a limit stops early without closing the store; a larger limit continues it', async () => {
    const out = path.join(dir, 'limited');
    await torch.collect(model, { layers: LAYERS, inputs: rows, out, limit: 20 });
    expect((await torch.openStore(out)).rows).toBe(20);
    const more = await torch.collect(model, { layers: LAYERS, inputs: rows, out });
    expect(more).toMatchObject({ resumed: 20, rows: ROWS, complete: true });
    expectSameRows(await readAll(out));
  }, 60_000);
});

describe('bounded memory', () => {
  test('the resident set grows by a bounded amount while a store several times that bound is written', async () => {
    const out = path.join(dir, 'large');
    const report = path.join(dir, 'rss.json');
    const layers = Object.fromEntries(
      ['transformer.h.0', 'transformer.h.1', 'transformer.h.0.mlp', 'transformer.h.1.mlp', 'transformer.h.1.attn'].map((l) => [l, l]),
    );
    // 5 columns x 128 x 32 float32 = 80 KiB a row: 12000 rows are about 1 GB on disk.
    const r = await child({ model: MODEL, out, layers, rows: { count: 12000, length: 128, vocab: 300, seed: 3 }, batchSize: 50, shardBytes: 64 << 20, report });
    expect(r).toMatchObject({ status: 0, signal: null });
    const { samples } = JSON.parse(fs.readFileSync(report, 'utf8')) as { samples: { rows: number; rss: number }[] };
    const written = fs
      .readdirSync(out)
      .filter((f) => !f.startsWith('.') && !f.endsWith('.json'))
      .flatMap((f) => fs.readdirSync(path.join(out, f)).map((g) => fs.statSync(path.join(out, f, g)).size))
      .reduce((a, b) => a + b, 0);
    // Growth after the first 5% (allocator pools, libtorch's first-call set-up, V8's heap sizing) is
    // bounded, and there is no trend: the second half peaks where the first did.
    const rss = samples.map((s) => s.rss);
    const warm = rss[Math.floor(rss.length / 20)];
    const peak = Math.max(...rss);
    const half = Math.floor(rss.length / 2);
    const BOUND = 192 << 20;
    expect(written).toBeGreaterThan(1e9);
    expect(written).toBeGreaterThan(5 * BOUND);
    expect(peak - warm).toBeLessThan(BOUND);
    expect(Math.max(...rss.slice(half)) - Math.max(...rss.slice(0, half))).toBeLessThan(64 << 20);
    removeDir(out);
  }, 300_000);
});
