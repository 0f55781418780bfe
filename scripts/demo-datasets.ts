// The datasets workflow end to end on the induction model (models/induction.pt): collect block 0's
// output over a dataset of repeated random sequences into an activation store, train an SAE on it
// natively from the store's shuffled batches, and write the feature dashboards of its most active
// features over the same store (one HTML page and Neuronpedia's JSON). `npm run demo -- datasets`.
import { promises as fs } from 'fs';
import * as path from 'path';

import * as torch from '../lib';

const LAYER = 'blocks.0';
const HALF = 16;
const VOCAB = 64;
const SEQUENCES = 2048;

/** Sequences of BOS, 16 random tokens, the same 16 again (what the induction model was trained on). */
function* sequences(count: number): Generator<number[]> {
  let seed = 2024;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < count; i++) {
    const half = Array.from({ length: HALF }, () => 1 + Math.floor(random() * (VOCAB - 1)));
    yield [0, ...half, ...half];
  }
}

export async function datasetsDemo(root: string): Promise<void> {
  const out = path.join(root, 'out', 'datasets');
  const storeDir = path.join(out, 'induction-store');
  await fs.rm(out, { recursive: true, force: true });
  await fs.mkdir(out, { recursive: true });
  const model = await torch.load(path.join(root, 'models', 'induction.pt'));

  let started = performance.now();
  const collected = await torch.collect(model, { layers: [LAYER], inputs: sequences(SEQUENCES), out: storeDir, batchSize: 64 });
  const collectSeconds = (performance.now() - started) / 1000;
  const store = await torch.openStore(storeDir);
  const [dIn] = store.columns[0].shape.slice(1);
  console.log(
    `\ndatasets: collected ${LAYER} over ${collected.rows} sequences (${collected.tokens} tokens) into ${path.relative(root, storeDir)} in ${collectSeconds.toFixed(1)} s ` +
      `(datasets.load_from_disk reads ${path.relative(root, path.join(storeDir, LAYER))})`,
  );

  // Ten passes over the store, each mixed with its own seed; BOS positions left out. The trainer
  // reads batches ahead of the steps it runs, so they are left to the garbage collector.
  async function* epochs(count: number): AsyncGenerator<torch.Tensor> {
    for (let epoch = 0; epoch < count; epoch++) yield* store.batches({ column: LAYER, batchTokens: 1024, seed: epoch, excludeTokens: [0] });
  }
  started = performance.now();
  const trained = await torch.sae.train({
    batches: epochs(10),
    architecture: 'topk',
    dSae: 256,
    k: 8,
    steps: 600,
    lr: 3e-3,
    seed: 0,
    metadata: { hook_name: LAYER, model_name: 'induction' },
    out: path.join(out, 'induction-sae'),
    progressEvery: 100,
  });
  const stats = trained.stats!;
  console.log(
    `  trained a TopK SAE (d_in ${dIn}, 256 latents, k 8) for ${trained.steps} steps from the store's shuffled batches in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
      `explained variance ${stats.explainedVariance.toFixed(3)}, L0 ${stats.l0.toFixed(1)}, dead latents ${stats.deadFeatures}`,
  );

  // The 48 latents that fire most often, their dashboards over the same store.
  started = performance.now();
  const all = await torch.dashboard.features(store.source(LAYER), { sae: trained.sae, k: 10, intervals: 5, intervalSize: 4 });
  const chosen = [...all]
    .sort((a, b) => b.density - a.density)
    .slice(0, 48)
    .map((d) => d.index)
    .sort((a, b) => a - b);
  const dashboards = await torch.dashboard.features(store.source(LAYER), { sae: trained.sae, features: chosen, logits: { model, layer: 'unembed' } });
  const tokenizer = { decode: (ids: number[]) => ids.map((id) => (id === 0 ? '<bos>' : ` t${id}`)).join('') };
  const page = path.join(out, 'features.html');
  await torch.plot.saveFeatureDashboard(dashboards, page, { tokenizer, title: `Induction model ${LAYER}: a TopK SAE trained on the store` });
  await fs.writeFile(path.join(out, 'neuronpedia.json'), JSON.stringify(torch.dashboard.toNeuronpedia(dashboards, { tokenizer })));
  const busiest = dashboards.reduce((a, b) => (b.density > a.density ? b : a));
  console.log(
    `  dashboards of all ${all.length} latents and of the 48 densest with logit effects in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `latent ${busiest.index} fires on ${(100 * busiest.density).toFixed(1)}% of tokens, max ${busiest.maxActivation.toFixed(2)}`,
  );
  console.log(`wrote ${path.relative(root, page)} and ${path.relative(root, path.join(out, 'neuronpedia.json'))}`);
  trained.sae.dispose();
  model.dispose();
}
