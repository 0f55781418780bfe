// torch.collect and torch.openStore on the traced GPT-2 of models/llm/: the store is SAELens's
// cached-activations layout, read in Python with datasets.load_from_disk and compared bit for bit
// with forward hooks on the Hugging Face model (test/python/store_reference.py); read back in
// torchscope it equals torch.activations on the same token ids.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectTorchscopeError, MODELS, python, removeDir, ROOT, rng, runPythonScript, scratchDir } from './helpers';
import { corpus } from './helpers/corpus';

const LLM = path.join(MODELS, 'llm');
const REFERENCE = path.join(ROOT, 'test', 'python', 'store_reference.py');
const CONTEXT = 16;
const BATCH = 4;
const COLUMNS = { 'blocks.0.hook_resid_post': 'transformer.h.0', 'blocks.1.hook_resid_post': 'transformer.h.1' };

// IEEE half precision, round to nearest even: an independent rounding for the float16 check.
function float16(v: number): number {
  const f = new Float32Array([v]);
  const bits = new Uint32Array(f.buffer)[0];
  const exp = ((bits >>> 23) & 0xff) - 127;
  if (exp < -24) return 0 * Math.sign(v);
  const ulp = 2 ** Math.max(exp - 10, -24);
  const q = v / ulp;
  const r = Math.round(q);
  const even = Math.abs(q - Math.trunc(q)) === 0.5 ? 2 * Math.round(q / 2) : r;
  return even * ulp;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

let dir: string;
let model: torch.Model;
let tokenizer: torch.Tokenizer;
const texts = corpus(60, 7);

beforeAll(async () => {
  dir = scratchDir('store');
  model = await torch.load(path.join(LLM, 'gpt2.pt'));
  tokenizer = await torch.Tokenizer.fromPretrained(path.join(LLM, 'gpt2'));
});

afterAll(() => {
  model?.dispose();
  removeDir(dir);
});

describe('collect: SAELens cached-activations layout', () => {
  let out: string;
  let result: torch.CollectResult;
  let python: {
    expected_rows: number;
    columns: Record<
      string,
      { features: Record<string, string>; shape: number[]; rows: number; bit_exact: boolean; max_abs_diff: number | null; tokens_equal: boolean }
    >;
  };

  beforeAll(async () => {
    out = path.join(dir, 'gpt2');
    const progress: torch.CollectProgress[] = [];
    // Small shards, so the store spans several files per layer.
    result = await torch.collect(model, {
      layers: COLUMNS,
      inputs: texts,
      tokenizer,
      contextSize: CONTEXT,
      batchSize: BATCH,
      shardBytes: 20_000,
      out,
      onProgress: (p) => progress.push(p),
    });
    expect(progress.length).toBeGreaterThan(1);
    const request = path.join(dir, 'request.json');
    fs.writeFileSync(
      request,
      JSON.stringify({
        out: path.join(dir, 'ref'),
        store: out,
        model: path.join(LLM, 'gpt2'),
        columns: COLUMNS,
        texts,
        context_size: CONTEXT,
        batch_size: BATCH,
        write_foreign: path.join(dir, 'foreign'),
      }),
    );
    await runPythonScript(REFERENCE, [request]);
    python = JSON.parse(fs.readFileSync(path.join(dir, 'ref', 'index.json'), 'utf8'));
  }, 300_000);

  test('datasets.load_from_disk reads every layer folder with Array2D activations and token_ids', () => {
    for (const column of Object.keys(COLUMNS)) {
      const c = python.columns[column];
      expect(c.features).toEqual({ [column]: 'Array2D', token_ids: 'List' });
      expect(c.rows).toBe(result.rows);
      expect(c.shape).toEqual([result.rows, CONTEXT, 32]);
    }
    expect(fs.readdirSync(path.join(out, 'blocks.0.hook_resid_post')).filter((f) => f.endsWith('.arrow')).length).toBeGreaterThan(2);
  });

  test('the stored activations equal Python forward hooks bit for bit', () => {
    for (const column of Object.keys(COLUMNS)) {
      expect({ column, diff: python.columns[column].max_abs_diff }).toEqual({ column, diff: 0 });
      expect(python.columns[column].bit_exact).toBe(true);
    }
  });

  test("token_ids are the texts cut as SAELens's concat_and_batch_sequences cuts them", () => {
    expect(result.rows).toBe(python.expected_rows);
    for (const column of Object.keys(COLUMNS)) expect(python.columns[column].tokens_equal).toBe(true);
    expect(result).toMatchObject({ complete: true, resumed: 0, written: result.rows, tokens: result.rows * CONTEXT, worker: { index: 0, count: 1 } });
  });

  test('openStore reads it back in order, equal to torch.activations on the stored ids', async () => {
    const store = await torch.openStore(out);
    expect(store.rows).toBe(result.rows);
    expect(store.columns.map((c) => [c.name, c.layer, c.shape, c.dtype])).toEqual(Object.entries(COLUMNS).map(([c, l]) => [c, l, [CONTEXT, 32], 'float32']));
    let rows = 0;
    for await (const batch of store.sequences({ batchSize: 5 })) {
      expect(batch.firstRow).toBe(rows);
      const ids = torch.tensor(
        BigInt64Array.from(batch.tokens!.data() as Int32Array, (v) => BigInt(v)),
        [batch.rows, CONTEXT],
        'int64',
      );
      const want = await torch.activations(model, Object.values(COLUMNS), ids);
      for (const [column, layer] of Object.entries(COLUMNS)) expect(batch.activations[column].data()).toEqual((want[layer] as torch.Tensor).data());
      rows += batch.rows;
      torch.dispose([ids, want, batch.activations, batch.tokens]);
    }
    expect(rows).toBe(result.rows);
  });

  test('token batches: every token once, shuffled reproducibly by seed, BOS left out on request', async () => {
    const store = await torch.openStore(out);
    const column = 'blocks.1.hook_resid_post';
    const read = async (options: torch.TokenBatchesOptions) => {
      const rows: string[] = [];
      for await (const t of store.batches({ column, batchTokens: 24, ...options })) {
        const d = t.data() as Float32Array;
        for (let i = 0; i < t.shape[0]; i++) rows.push(Array.from(d.subarray(i * 32, (i + 1) * 32)).join());
        t.dispose();
      }
      return rows;
    };
    const ordered = await read({ shuffle: false });
    expect(ordered.length).toBe(result.rows * CONTEXT);
    const a = await read({ seed: 1, bufferTokens: 200 });
    const b = await read({ seed: 1, bufferTokens: 200 });
    const c = await read({ seed: 2, bufferTokens: 200 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(ordered);
    expect([...a].sort()).toEqual([...ordered].sort());
    const withoutBos = await read({ shuffle: false, excludeTokens: [tokenizer.bosTokenId!] });
    expect(withoutBos.length).toBeLessThan(ordered.length);
    expect(withoutBos.length).toBeGreaterThanOrEqual(ordered.length - result.rows * 3);
  });

  test('a datasets folder written by Python (SAELens cache shards) opens and reads equal', async () => {
    const column = 'blocks.0.hook_resid_post';
    const ours = await torch.openStore(out);
    const theirs = await torch.openStore(path.join(dir, 'foreign'));
    expect(theirs.columns.map((c) => [c.name, c.shape, c.dtype, c.layer])).toEqual([[column, [CONTEXT, 32], 'float32', undefined]]);
    expect(theirs.hasTokens).toBe(true);
    const read = async (store: torch.Store) => {
      const all: number[][] = [[], []];
      for await (const b of store.sequences({ columns: column, batchSize: 9 })) {
        all[0].push(...(b.activations[column].data() as Float32Array));
        all[1].push(...(b.tokens!.data() as Int32Array));
        torch.dispose([b.tokens, b.activations]);
      }
      return all;
    };
    expect(await read(theirs)).toEqual(await read(ours));
  });

  test('source(column): the rows in order with tokens, the same on every pass (dashboards read it twice)', async () => {
    const store = await torch.openStore(out);
    const source = store.source('blocks.1.hook_resid_post', { batchSize: 6 });
    expect(source.contextSize).toBe(CONTEXT);
    const pass = async () => {
      const seen: number[] = [];
      for await (const b of source.batches()) {
        expect(b.activations.shape.slice(1)).toEqual([CONTEXT, 32]);
        seen.push(b.tokens!.shape[0], (b.activations.data() as Float32Array)[5], (b.tokens!.data() as Int32Array)[1]);
      }
      return seen;
    };
    const first = await pass();
    expect(first.length / 3).toBe(Math.ceil(result.rows / 6));
    expect(await pass()).toEqual(first);
  });

  test('matrix(): one position, the mean, or every token as [examples, d], with their token ids', async () => {
    const store = await torch.openStore(out);
    const column = 'blocks.0.hook_resid_post';
    const rowsSeen: { acts: Float32Array; ids: Int32Array }[] = [];
    for await (const b of store.sequences({ columns: column, batchSize: 1000 }))
      rowsSeen.push({ acts: b.activations[column].data() as Float32Array, ids: b.tokens!.data() as Int32Array });
    const [{ acts, ids }] = rowsSeen;
    const n = result.rows;
    const last = await store.matrix(column, { position: -1 });
    expect(last.x.shape).toEqual([n, 32]);
    expect(last.tokens).toEqual(Int32Array.from({ length: n }, (_, r) => ids[r * CONTEXT + CONTEXT - 1]));
    expect(Array.from(last.x.data() as Float32Array).slice(0, 32)).toEqual(Array.from(acts.subarray((CONTEXT - 1) * 32, CONTEXT * 32)));
    const all = await store.matrix(column, { position: 'all', limit: 3 });
    expect(all.x.shape).toEqual([3 * CONTEXT, 32]);
    expect(all.x.data()).toEqual(acts.subarray(0, 3 * CONTEXT * 32));
    expect(all.tokens).toEqual(ids.subarray(0, 3 * CONTEXT));
    const mean = await store.matrix(column, { position: 'mean', limit: 2 });
    const want = Array.from({ length: 64 }, (_, k) => {
      const [r, c] = [Math.floor(k / 32), k % 32];
      let sum = 0;
      for (let p = 0; p < CONTEXT; p++) sum += acts[(r * CONTEXT + p) * 32 + c];
      return Math.fround(sum / CONTEXT);
    });
    expect(Array.from(mean.x.data() as Float32Array)).toEqual(want);
    expect(mean.tokens).toBeUndefined();
    await expectTorchscopeError(() => store.matrix(column), 'INVALID_ARGUMENT', /say which vectors/);
    await expectTorchscopeError(() => store.matrix(column, { position: CONTEXT }), 'INVALID_ARGUMENT', /position/);
    torch.dispose([last.x, all.x, mean.x]);
  });

  test('float16 stores hold the float32 activations rounded to half precision', async () => {
    const half = path.join(dir, 'half');
    await torch.collect(model, { layers: { h0: 'transformer.h.0' }, inputs: texts.slice(0, 10), tokenizer, contextSize: CONTEXT, out: half, dtype: 'float16' });
    const a = await torch.openStore(half);
    expect(a.columns[0].dtype).toBe('float16');
    for await (const b of a.sequences()) {
      const ids = torch.tensor(
        BigInt64Array.from(b.tokens!.data() as Int32Array, (v) => BigInt(v)),
        [b.rows, CONTEXT],
        'int64',
      );
      const want = (await torch.activations(model, 'transformer.h.0', ids)) as torch.Tensor;
      const rounded = new Float32Array(new Float32Array(want.data() as Float32Array).map((v) => float16(v)));
      expect(Array.from(b.activations.h0.data() as Uint16Array, halfToFloat)).toEqual(Array.from(rounded));
      torch.dispose([ids, want, b.tokens, b.activations]);
    }
  });

  test('collect again on a complete store writes nothing', async () => {
    const again = await torch.collect(model, { layers: COLUMNS, inputs: texts, tokenizer, contextSize: CONTEXT, batchSize: BATCH, out });
    expect(again).toMatchObject({ complete: true, resumed: result.rows, written: 0 });
  });

  test('a store collected otherwise refuses to mix', async () => {
    await expectTorchscopeError(
      () => torch.collect(model, { layers: COLUMNS, inputs: texts, tokenizer, contextSize: 8, out, shard: { index: 0, count: 2 } }),
      'RUNTIME',
      /another collection/,
    );
  });
});

describe('collect: example tensors (a CNN on 8x8 digits)', () => {
  test('rows are examples: Array3D conv maps and fixed-length fc vectors, read back by datasets and openStore', async () => {
    const cnn = await torch.load(path.join(MODELS, 'digits-cnn.pt'));
    const out = path.join(dir, 'cnn');
    const next = rng(11);
    const images = Array.from({ length: 10 }, () =>
      torch.tensor(
        Float32Array.from({ length: 64 }, () => next()),
        [1, 8, 8],
      ),
    );
    const result = await torch.collect(cnn, { layers: ['relu2', 'fc1'], inputs: images, out, batchSize: 4 });
    expect(result).toMatchObject({ rows: 10, tokens: 0, complete: true });
    const store = await torch.openStore(out);
    expect(store.hasTokens).toBe(false);
    const shapes = Object.fromEntries(store.columns.map((c) => [c.name, c.shape]));
    // The reference runs the same batches of 4 (a GEMM's rounding depends on the batch size).
    const want: Record<string, number[]> = { relu2: [], fc1: [] };
    for (let at = 0; at < images.length; at += 4) {
      const part = images.slice(at, at + 4);
      const batch = torch.tensor(Float32Array.from(part.flatMap((t) => Array.from(t.data() as Float32Array))), [part.length, 1, 8, 8]);
      const acts = await torch.activations(cnn, ['relu2', 'fc1'], batch);
      for (const layer of ['relu2', 'fc1']) want[layer].push(...((acts[layer] as torch.Tensor).data() as Float32Array));
      if (at === 0) expect(shapes).toEqual({ relu2: (acts.relu2 as torch.Tensor).shape.slice(1), fc1: (acts.fc1 as torch.Tensor).shape.slice(1) });
      torch.dispose([batch, acts]);
    }
    for await (const b of store.sequences({ batchSize: 10 })) {
      expect(b.tokens).toBeUndefined();
      for (const layer of ['relu2', 'fc1']) expect(Array.from(b.activations[layer].data() as Float32Array)).toEqual(want[layer]);
    }
    const script = [
      'import datasets, sys, json',
      'out = {}',
      "for c in ('relu2', 'fc1'):",
      '    ds = datasets.load_from_disk(sys.argv[1] + "/" + c); ds.set_format("numpy")',
      '    out[c] = [type(ds.features[c]).__name__, list(ds[:][c].shape)]',
      'print(json.dumps(out))',
    ].join('\n');
    const py = spawnSync(python(), ['-c', script, out], { encoding: 'utf8' });
    expect(py.stderr).not.toMatch(/Error/);
    expect(JSON.parse(py.stdout)).toEqual({ relu2: ['Array3D', [10, ...shapes.relu2]], fc1: ['List', [10, ...shapes.fc1]] });
    torch.dispose(images);
    cnn.dispose();
  }, 60_000);
});
