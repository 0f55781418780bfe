// Feature and neuron dashboards over a dataset (torch.dashboard.features) against
// test/python/dashboard_reference.py, which computes SAEDashboard's definitions over the whole
// activation array at once: the SAE trained on the induction model (models/sae/induction-blocks.0,
// every feature, straight from the model through modelSource) and the GPT-2 fixture's MLP neurons
// (an in-memory source, a buffer of (5, 5)). The reference gets the activations torchscope saw
// (the SAE's features from sae.encode, batch by batch as the dashboard encodes them, checked
// against the reference's own encoding) and must give the same top k (values, rows and positions,
// ties in dataset order), max, density, histograms, interval bounds, counts and samples, windows,
// and logit effects. Then: the native state stays k per feature (and the libtorch-ops path agrees
// with the fused CPU pass), the source is read twice. test/dashboard-export.test.ts: the
// Neuronpedia export and the errors.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { binding } from '../lib/native/addon';
import { expectTorchscopeError, MODELS, randn, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';
import { memorySource } from './helpers/dashboard';
import { repeatedSequences } from './helpers/induction';

type Example = torch.dashboard.DashboardExample;
type RefExample = [row: number, position: number, value: number, start: number, tokens: number[] | null, values: number[]];
interface RefFeature {
  max: number;
  active: number;
  top: RefExample[];
  histogram: torch.dashboard.DashboardHistogram | null;
  intervals: { lower: number; upper: number; count: number; examples: RefExample[] }[];
}
interface RefLogits {
  top: [number, number][];
  bottom: [number, number][];
  histogram: torch.dashboard.DashboardHistogram;
}
interface RefCase {
  features: RefFeature[];
  logits?: RefLogits[];
}

const REFERENCE = path.join(ROOT, 'test', 'python', 'dashboard_reference.py');
const SAE_DIR = path.join(MODELS, 'sae', 'induction-blocks.0');
const INDUCTION = path.join(MODELS, 'induction.pt');
const GPT2 = path.join(MODELS, 'llm', 'gpt2.pt');
const NEURON_LAYER = 'transformer.h.0.mlp.act';
// The induction data: 64 sequences of 33 tokens, 16 per forward.
const ROWS = 64;
const HALF = 16;
const VOCAB = 64;
const CTX = 1 + 2 * HALF;
const BATCH = 16;
// GPT-2's neurons: 40 rows of 24 tokens, 12 per batch (the last one short).
const GPT_ROWS = 40;
const GPT_CTX = 24;
const GPT_BATCH = 12;
const UNEMBED_VOCAB = 50;

// Values on the intervals' bounds (max 1, 4 intervals: 0.25, 0.5, 0.75 exactly), -0, a dead
// feature, a negative one, one whose activations above 0 are all equal; no tokens.
const SYN_ROWS = 6;
const SYN_CTX = 10;
const SYN_OPTIONS = { k: 9, intervals: 4, intervalSize: 3, histogramBins: 8, seed: 77 };

const SAE_OPTIONS = { seed: 1234 } as const;
const SUBSET = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 255];
const BUFFERED_OPTIONS = { features: SUBSET, buffer: [5, 5] as [number, number], k: 8, intervals: 4, intervalSize: 3, histogramBins: 17, seed: 99 };
const NEURON_OPTIONS = { buffer: [5, 5] as [number, number], k: 7, intervals: 6, intervalSize: 3, histogramBins: 20, seed: 2 ** 53 - 7 };

let dir: string;
let induction: torch.Model;
let gpt2: torch.Model;
let sae: torch.Sae;
let sequences: number[][];
let unembed: torch.Tensor;
/** GPT-2 neuron batches: int32 tokens and the layer's activations. */
let neuronBatches: { tokens: torch.Tensor; activations: torch.Tensor }[];
let syntheticBatches: { activations: torch.Tensor }[];
let reference: Record<string, RefCase>;
let encodeCheck: { maxAbsDiff: number; scale: number };
const dashboards: Record<string, torch.dashboard.FeatureDashboard[]> = {};

function write(file: string, data: Float32Array | Int32Array | BigInt64Array, shape: number[]): { file: string; dtype: string; shape: number[] } {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  // By tag: a tensor's view comes from the addon's realm, not jest's.
  const dtype = { '[object Float32Array]': 'float32', '[object Int32Array]': 'int32', '[object BigInt64Array]': 'int64' }[
    Object.prototype.toString.call(data)
  ]!;
  return { file, dtype, shape };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

beforeAll(async () => {
  dir = scratchDir('dashboard');
  induction = await torch.load(INDUCTION);
  gpt2 = await torch.load(GPT2);
  sae = await torch.sae.load(SAE_DIR);
  sequences = repeatedSequences(ROWS, 31, HALF, VOCAB);
  unembed = torch.tensor(randn(sae.dOut * UNEMBED_VOCAB, 17), [sae.dOut, UNEMBED_VOCAB]);

  // What the dashboard will see: block 0's output per batch and the SAE's features of it.
  const acts: Float32Array[] = [];
  const feats: Float32Array[] = [];
  for (let start = 0; start < ROWS; start += BATCH) {
    const rows = sequences.slice(start, start + BATCH);
    const ids = torch.tensor(BigInt64Array.from(rows.flat(), BigInt), [rows.length, CTX]);
    const x = (await torch.activations(induction, 'blocks.0', ids)) as torch.Tensor;
    const f = await sae.encode(x);
    acts.push(Float32Array.from(x.data() as Float32Array));
    feats.push(Float32Array.from(f.data() as Float32Array));
    torch.dispose([ids, x, f]);
  }
  const tokens = BigInt64Array.from(sequences.flat(), BigInt);

  // GPT-2's MLP neurons on random ids, int32 tokens.
  const vocab = gpt2.manifest!.vocabSize!;
  neuronBatches = [];
  const neurons: Float32Array[] = [];
  const gptTokens = Int32Array.from({ length: GPT_ROWS * GPT_CTX }, (_, i) => (i * 7919 + ((i * i) % 97)) % vocab);
  for (let start = 0; start < GPT_ROWS; start += GPT_BATCH) {
    const rows = Math.min(GPT_BATCH, GPT_ROWS - start);
    const ids = gptTokens.subarray(start * GPT_CTX, (start + rows) * GPT_CTX);
    const input = torch.tensor(BigInt64Array.from(ids, BigInt), [rows, GPT_CTX]);
    const a = (await torch.activations(gpt2, NEURON_LAYER, input)) as torch.Tensor;
    input.dispose();
    neurons.push(Float32Array.from(a.data() as Float32Array));
    neuronBatches.push({ tokens: torch.tensor(Int32Array.from(ids), [rows, GPT_CTX], 'int32'), activations: a });
  }
  const width = neuronBatches[0].activations.shape[2];

  const steps = [0, 0.25, 0.5, 0.75, 1, -0, 0.3];
  const synthetic = new Float32Array(SYN_ROWS * SYN_CTX * 4);
  for (let t = 0; t < SYN_ROWS * SYN_CTX; t++) {
    synthetic[t * 4] = t === 17 ? 1 : steps[(t * 5 + (t >> 2)) % 6];
    synthetic[t * 4 + 2] = -0.5 - (t % 3);
    synthetic[t * 4 + 3] = t % 7 === 0 ? 0.5 : 0;
  }
  syntheticBatches = [0, 4].map((row) => {
    const rows = Math.min(4, SYN_ROWS - row);
    const data = synthetic.subarray(row * SYN_CTX * 4, (row + rows) * SYN_CTX * 4);
    return { activations: torch.tensor(Float32Array.from(data), [rows, SYN_CTX, 4]) };
  });

  const saeValues = write(path.join(dir, 'sae-features.bin'), concat(feats), [ROWS, CTX, sae.dSae]);
  const saeTokens = write(path.join(dir, 'sae-tokens.bin'), tokens, [ROWS, CTX]);
  const all = Array.from({ length: sae.dSae }, (_, i) => i);
  const request = {
    out: path.join(dir, 'out'),
    encode: { sae: SAE_DIR, activations: write(path.join(dir, 'acts.bin'), concat(acts), [ROWS, CTX, sae.dIn]), features: saeValues },
    cases: [
      {
        id: 'sae',
        values: saeValues,
        tokens: saeTokens,
        features: all,
        k: 20,
        buffer: null,
        intervals: 10,
        intervalSize: 5,
        bins: 50,
        seed: SAE_OPTIONS.seed,
        logits: { sae: SAE_DIR, model: INDUCTION, module: 'unembed' },
      },
      {
        id: 'sae-buffer',
        values: saeValues,
        tokens: saeTokens,
        features: SUBSET,
        k: BUFFERED_OPTIONS.k,
        buffer: BUFFERED_OPTIONS.buffer,
        intervals: BUFFERED_OPTIONS.intervals,
        intervalSize: BUFFERED_OPTIONS.intervalSize,
        bins: BUFFERED_OPTIONS.histogramBins,
        seed: BUFFERED_OPTIONS.seed,
        logits: { sae: SAE_DIR, unembed: write(path.join(dir, 'unembed.bin'), unembed.data() as Float32Array, unembed.shape) },
      },
      {
        id: 'neurons',
        values: write(path.join(dir, 'neurons.bin'), concat(neurons), [GPT_ROWS, GPT_CTX, width]),
        tokens: write(path.join(dir, 'neuron-tokens.bin'), gptTokens, [GPT_ROWS, GPT_CTX]),
        features: Array.from({ length: width }, (_, i) => i),
        k: NEURON_OPTIONS.k,
        buffer: NEURON_OPTIONS.buffer,
        intervals: NEURON_OPTIONS.intervals,
        intervalSize: NEURON_OPTIONS.intervalSize,
        bins: NEURON_OPTIONS.histogramBins,
        seed: NEURON_OPTIONS.seed,
        logits: null,
      },
      {
        id: 'synthetic',
        values: write(path.join(dir, 'synthetic.bin'), synthetic, [SYN_ROWS, SYN_CTX, 4]),
        tokens: null,
        features: [0, 1, 2, 3],
        k: SYN_OPTIONS.k,
        buffer: null,
        intervals: SYN_OPTIONS.intervals,
        intervalSize: SYN_OPTIONS.intervalSize,
        bins: SYN_OPTIONS.histogramBins,
        seed: SYN_OPTIONS.seed,
        logits: null,
      },
    ],
  };
  const requestFile = path.join(dir, 'request.json');
  fs.writeFileSync(requestFile, JSON.stringify(request));
  const ran = runPythonScript(REFERENCE, [requestFile]);

  const source = torch.dashboard.modelSource(induction, 'blocks.0', sequences, { batchSize: BATCH });
  dashboards.sae = await torch.dashboard.features(source, { sae, ...SAE_OPTIONS, logits: { model: induction, layer: 'unembed' } });
  dashboards['sae-buffer'] = await torch.dashboard.features(source, { sae, ...BUFFERED_OPTIONS, logits: unembed });
  dashboards.neurons = await torch.dashboard.features(memorySource(neuronBatches, GPT_CTX), NEURON_OPTIONS);
  dashboards.synthetic = await torch.dashboard.features(memorySource(syntheticBatches, SYN_CTX), SYN_OPTIONS);

  await ran;
  const index = JSON.parse(fs.readFileSync(path.join(request.out, 'index.json'), 'utf8'));
  for (const [id, value] of Object.entries<any>(index.cases)) if (value.error) throw new Error(`reference case ${id}: ${value.error}`);
  reference = index.cases;
  encodeCheck = index.encode;
}, 300_000);

afterAll(() => {
  for (const b of neuronBatches ?? []) torch.dispose([b.tokens, b.activations]);
  for (const b of syntheticBatches ?? []) b.activations.dispose();
  unembed?.dispose();
  sae?.dispose();
  induction?.dispose();
  gpt2?.dispose();
  removeDir(dir);
});

const asRef = (e: Example): RefExample => [e.row, e.position, e.value, e.start, e.tokens, e.values];

/** A dashboard in the reference's shape (JSON-equal when they agree). */
function comparable(d: torch.dashboard.FeatureDashboard): RefFeature {
  return {
    max: d.maxActivation,
    active: d.active,
    top: d.topExamples.map(asRef),
    histogram: d.histogram,
    intervals: d.intervals.map((i) => ({ lower: i.lower, upper: i.upper, count: i.count, examples: i.examples.map(asRef) })),
  };
}

function expectSameFeatures(id: string, indices: number[]): void {
  const got = dashboards[id];
  const want = reference[id].features;
  expect(got.map((d) => d.index)).toEqual(indices);
  let compared = 0;
  got.forEach((d, i) => {
    const mine = comparable(d);
    // JSON first (fast), the structural diff of the first feature that differs.
    if (JSON.stringify(mine) !== JSON.stringify(want[i])) expect({ feature: d.index, ...mine }).toEqual({ feature: d.index, ...want[i] });
    expect(d.density).toBe(want[i].active / (d.rows * d.contextSize));
    d.intervals.forEach((interval, j) => expect(interval.fraction).toBe(want[i].intervals[j].count / (d.rows * d.contextSize)));
    compared++;
  });
  expect(compared).toBe(indices.length);
}

function expectSameLogits(id: string): void {
  const got = dashboards[id];
  const want = reference[id].logits!;
  got.forEach((d, i) => {
    const logits = d.logits!;
    const w = want[i];
    const scale = Math.max(...w.top.map(([, v]) => Math.abs(v)), ...w.bottom.map(([, v]) => Math.abs(v)));
    expect(logits.top.map((t) => t.id)).toEqual(w.top.map(([t]) => t));
    expect(logits.bottom.map((t) => t.id)).toEqual(w.bottom.map(([t]) => t));
    [...logits.top, ...logits.bottom].forEach((t, j) => expect(Math.abs(t.logit - [...w.top, ...w.bottom][j][1])).toBeLessThanOrEqual(1e-5 * scale));
    expect(logits.histogram.counts).toEqual(w.histogram.counts);
    expect(Math.abs(logits.histogram.min - w.histogram.min)).toBeLessThanOrEqual(1e-5 * scale);
    expect(Math.abs(logits.histogram.max - w.histogram.max)).toBeLessThanOrEqual(1e-5 * scale);
  });
}

describe('against the reference', () => {
  test("the features the reference was given are the SAE's own (its encoding, within 1e-5)", () => {
    expect(encodeCheck.maxAbsDiff).toBeLessThanOrEqual(1e-5 * Math.max(1, encodeCheck.scale));
  });

  test('SAE, every feature, no buffer: top k, max, density, histogram, intervals and their samples, windows', () => {
    const d = dashboards.sae;
    expectSameFeatures(
      'sae',
      Array.from({ length: sae.dSae }, (_, i) => i),
    );
    // What the comparison covered: dead features (no histogram, no intervals), ties in the top k
    // (sequences repeat their first half), full-row windows, 20 examples, 10 intervals.
    expect(d.filter((f) => f.histogram === null && f.intervals.length === 0).length).toBeGreaterThan(0);
    const live = d.filter((f) => f.maxActivation > 0);
    expect(live.every((f) => f.topExamples.length === 20 && f.intervals.length === 10)).toBe(true);
    expect(live.some((f) => f.topExamples.some((e, i) => i > 0 && e.value === f.topExamples[i - 1].value))).toBe(true);
    expect(live.every((f) => f.topExamples.every((e) => e.start === 0 && e.values.length === CTX && e.tokens!.length === CTX))).toBe(true);
    expect(live.every((f) => f.intervals[0].lower === 0 && f.intervals[9].upper === f.maxActivation)).toBe(true);
    // The lowest interval holds the zeros; every interval shows up to 5.
    expect(live.every((f) => f.intervals[0].count >= f.rows * CTX - f.active)).toBe(true);
    expect(live.every((f) => f.intervals.every((i) => i.examples.length === Math.min(5, i.count)))).toBe(true);
  });

  test('SAE with a (5, 5) buffer: no top or sampled token within 5 of a row end, windows of 11', () => {
    expectSameFeatures('sae-buffer', SUBSET);
    for (const d of dashboards['sae-buffer']) {
      const examples = [...d.topExamples, ...d.intervals.flatMap((i) => i.examples)];
      for (const e of examples) {
        expect(e.position).toBeGreaterThanOrEqual(5);
        expect(e.position).toBeLessThan(CTX - 5);
        expect([e.start, e.values.length, e.tokens!.length]).toEqual([e.position - 5, 11, 11]);
      }
    }
  });

  test('neurons (no SAE): negative activations, int32 tokens, an uneven last batch, a 53-bit seed', () => {
    const width = neuronBatches[0].activations.shape[2];
    expectSameFeatures(
      'neurons',
      Array.from({ length: width }, (_, i) => i),
    );
    const d = dashboards.neurons;
    expect(d.some((f) => f.topExamples.some((e) => e.values.some((v) => v < 0)))).toBe(true);
    expect(d.every((f) => f.logits === null && f.rows === GPT_ROWS)).toBe(true);
  });

  test('values on inner bounds count (and are sampled) in both intervals; -0 is 0; dead, negative and one-valued features', () => {
    expectSameFeatures('synthetic', [0, 1, 2, 3]);
    const [steps, dead, negative, flat] = dashboards.synthetic;
    expect(steps.intervals.map((i) => [i.lower, i.upper])).toEqual([
      [0, 0.25],
      [0.25, 0.5],
      [0.5, 0.75],
      [0.75, 1],
    ]);
    const total = steps.intervals.reduce((n, i) => n + i.count, 0);
    expect(total).toBeGreaterThan(SYN_ROWS * SYN_CTX); // the tokens on 0.25, 0.5 and 0.75, twice
    expect(steps.intervals[1].examples.some((e) => e.value === 0.25) && steps.intervals[0].examples.some((e) => e.value === 0.25)).toBe(true);
    expect(steps.topExamples.map((e) => e.tokens)).toEqual(Array(9).fill(null));
    expect([dead.histogram, dead.intervals, dead.maxActivation, dead.density]).toEqual([null, [], 0, 0]);
    expect([negative.histogram, negative.intervals.length, negative.maxActivation]).toEqual([null, 0, -0.5]);
    expect(flat.histogram).toEqual({ min: -0.5, max: 1.5, counts: [0, 0, 0, 0, flat.active, 0, 0, 0] });
  });

  test("logit effects: a model's unembedding module (its bias in), and W_U given as a tensor", async () => {
    expectSameLogits('sae');
    expectSameLogits('sae-buffer');
    // The same decoder rows through the same module as torch.sae.directLogitEffects.
    const direct = await torch.sae.directLogitEffects(induction, sae, { head: ['unembed'], k: 10 });
    dashboards.sae.forEach((d, i) => {
      expect(d.logits!.top).toEqual(direct[i].top.map(({ id, logit }) => ({ id, logit })));
      expect(d.logits!.bottom).toEqual(direct[i].bottom.map(({ id, logit }) => ({ id, logit })));
    });
  });
});

describe('streaming', () => {
  test('the native state stays k candidates (and I x s samples) per feature whatever the rows; the state stops growing', async () => {
    const width = neuronBatches[0].activations.shape[2];
    const { k, intervals, intervalSize } = NEURON_OPTIONS;
    const stats = new (binding().FeatureStatsHandle)({
      features: Array.from({ length: width }, (_, i) => i),
      contextSize: GPT_CTX,
      k,
      buffered: true,
      before: 5,
      after: 5,
      intervals,
      intervalSize,
      bins: 20,
      seed: 3,
    });
    try {
      const bytes: number[] = [];
      for (const pass of [1, 2] as const) {
        for (const b of neuronBatches) {
          await stats.add(pass, b.activations.handle, b.tokens.handle);
          const sizes = await stats.stateSizes();
          expect([sizes.topValue, sizes.topIndex]).toEqual([
            [width, k],
            [width, k],
          ]);
          if (pass === 2) {
            expect(sizes.sampleIndex).toEqual([width * intervals, intervalSize]);
            expect(sizes.sampleWindow).toEqual([width * intervals, intervalSize, 11]);
            expect(sizes.topWindow).toEqual([width, k, 11]);
          }
          bytes.push(sizes.bytes);
        }
      }
      const perPass = neuronBatches.length;
      expect(new Set(bytes.slice(0, perPass)).size).toBe(1);
      expect(new Set(bytes.slice(perPass)).size).toBe(1);
    } finally {
      stats.dispose();
    }
  });

  test('the libtorch-ops path (what runs off the CPU) gives what the fused CPU pass gives, tensor for tensor', async () => {
    const cases = [
      { batches: neuronBatches, ctx: GPT_CTX, k: 7, buffer: [5, 5], intervals: 6, size: 3, bins: 20, seed: NEURON_OPTIONS.seed },
      { batches: syntheticBatches, ctx: SYN_CTX, k: 9, buffer: null, intervals: 4, size: 3, bins: 8, seed: 77 },
    ];
    for (const c of cases) {
      const width = c.batches[0].activations.shape[2];
      const results = [];
      for (const tensorOps of [false, true]) {
        const stats = new (binding().FeatureStatsHandle)({
          features: Array.from({ length: width }, (_, i) => i),
          contextSize: c.ctx,
          k: c.k,
          buffered: c.buffer !== null,
          before: c.buffer?.[0] ?? 0,
          after: c.buffer?.[1] ?? 0,
          intervals: c.intervals,
          intervalSize: c.size,
          bins: c.bins,
          seed: c.seed,
          tensorOps,
        });
        for (const pass of [1, 2] as const)
          for (const b of c.batches) await stats.add(pass, b.activations.handle, (b as { tokens?: torch.Tensor }).tokens?.handle);
        const raw = await stats.result();
        results.push(
          Object.fromEntries(
            Object.entries(raw).map(([key, v]) => [key, typeof v === 'number' ? v : Array.from(v.data() as ArrayLike<number | bigint>, Number)]),
          ),
        );
        stats.dispose();
      }
      expect(Object.keys(results[1]).sort()).toEqual(Object.keys(results[0]).sort());
      for (const key of Object.keys(results[0])) expect([key, results[1][key]]).toEqual([key, results[0][key]]);
    }
  });

  test('the source is read exactly twice; the result is the same for the same seed, and other samples for another', async () => {
    const source = memorySource(neuronBatches, GPT_CTX);
    const progress: torch.dashboard.DashboardProgress[] = [];
    const again = await torch.dashboard.features(source, { ...NEURON_OPTIONS, onProgress: (p) => progress.push(p) });
    expect(source.reads).toBe(2);
    expect(progress.map((p) => [p.pass, p.batches, p.rows])).toEqual([
      [1, 1, 12],
      [1, 2, 24],
      [1, 3, 36],
      [1, 4, 40],
      [2, 1, 12],
      [2, 2, 24],
      [2, 3, 36],
      [2, 4, 40],
    ]);
    expect(JSON.stringify(again)).toBe(JSON.stringify(dashboards.neurons));
    const other = await torch.dashboard.features(memorySource(neuronBatches, GPT_CTX), { ...NEURON_OPTIONS, seed: 5 });
    expect(other.map((d) => d.topExamples)).toEqual(dashboards.neurons.map((d) => d.topExamples));
    expect(JSON.stringify(other.map((d) => d.intervals))).not.toBe(JSON.stringify(dashboards.neurons.map((d) => d.intervals)));
  });

  test('a generator is read once: the second pass sees no rows and the call says why', async () => {
    const once = (async function* () {
      for (const b of neuronBatches) yield b;
    })();
    await expectTorchscopeError(
      () => torch.dashboard.features({ contextSize: GPT_CTX, batches: () => once }, { neurons: [0] }),
      'INVALID_ARGUMENT',
      /gave 40 rows, then 0.*generator is read once/,
    );
  });

  test("modelSource reads an async iterable of sequences each pass; its tokens are the model's ids", async () => {
    const rows = sequences.slice(0, 20);
    const iterable = {
      async *[Symbol.asyncIterator]() {
        for (const r of rows) yield r;
      },
    };
    const source = torch.dashboard.modelSource(induction, 'blocks.0', iterable, { batchSize: 6, contextSize: CTX });
    const d = await torch.dashboard.features(source, { sae, features: [SUBSET[1]], k: 3 });
    for (const e of d[0].topExamples) expect(e.tokens).toEqual(rows[e.row]);
  });
});
