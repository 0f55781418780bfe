// Dashboards over an activation store: torch.collect writes GPT-2's MLP outputs over a corpus,
// torch.dashboard.features reads the store (store.source) and must equal
// test/python/dashboard_reference.py computing SAEDashboard's definitions over the same store read
// with datasets.load_from_disk: top k, intervals and their samples, histograms, max and density.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { MODELS, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';
import { corpus } from './helpers/corpus';

const REFERENCE = path.join(ROOT, 'test', 'python', 'dashboard_reference.py');
const LAYER = 'transformer.h.1.mlp';
const NEURONS = Array.from({ length: 32 }, (_, i) => i);
const OPTIONS = { k: 7, buffer: [3, 2] as [number, number], intervals: 6, intervalSize: 4, histogramBins: 20, seed: 99 };

let dir: string;
let dashboards: torch.dashboard.FeatureDashboard[];
let want: { features: { max: number; active: number; top: unknown[]; histogram: unknown; intervals: unknown[] }[] };

beforeAll(async () => {
  dir = scratchDir('dashboard-store');
  const model = await torch.load(path.join(MODELS, 'llm', 'gpt2.pt'));
  const tokenizer = await torch.Tokenizer.fromPretrained(path.join(MODELS, 'llm', 'gpt2'));
  const out = path.join(dir, 'store');
  await torch.collect(model, { layers: [LAYER], inputs: corpus(80, 3), tokenizer, contextSize: 24, out, batchSize: 8, shardBytes: 40_000 });
  model.dispose();
  const store = await torch.openStore(out);
  dashboards = await torch.dashboard.features(store.source(LAYER, { batchSize: 5 }), { neurons: NEURONS, ...OPTIONS });
  const request = path.join(dir, 'request.json');
  const folder = path.join(out, encodeURIComponent(LAYER));
  const c = { id: 'store', store: { folder, column: LAYER }, features: NEURONS, k: OPTIONS.k, buffer: OPTIONS.buffer, intervals: OPTIONS.intervals };
  fs.writeFileSync(
    request,
    JSON.stringify({
      out: path.join(dir, 'ref'),
      cases: [{ ...c, intervalSize: OPTIONS.intervalSize, bins: OPTIONS.histogramBins, seed: OPTIONS.seed, logits: null }],
    }),
  );
  await runPythonScript(REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'ref', 'index.json'), 'utf8'));
  if (index.cases.store.error) throw new Error(index.cases.store.error);
  want = index.cases.store;
}, 180_000);

afterAll(() => removeDir(dir));

test('every neuron: top k, intervals with their samples, histogram, max and density equal the reference over the store', () => {
  expect(dashboards.map((d) => d.index)).toEqual(NEURONS);
  const mine = dashboards.map((d) => ({
    max: d.maxActivation,
    active: d.active,
    top: d.topExamples.map((e) => [e.row, e.position, e.value, e.start, e.tokens, e.values]),
    histogram: d.histogram,
    intervals: d.intervals.map((i) => ({
      lower: i.lower,
      upper: i.upper,
      count: i.count,
      examples: i.examples.map((e) => [e.row, e.position, e.value, e.start, e.tokens, e.values]),
    })),
  }));
  expect(mine).toEqual(want.features);
  // Something to compare: firing neurons, full top lists, sampled intervals.
  expect(dashboards.filter((d) => d.active > 0 && d.topExamples.length === OPTIONS.k && d.intervals.some((i) => i.examples.length > 0)).length).toBeGreaterThan(
    20,
  );
});
