#!/usr/bin/env node
// Patching-sweep speed: torch.patchingSweep against the Python loop a TransformerLens user runs
// (scripts/bench/circuits_reference.py: one patched forward per cell), on the GPT-2-small-shaped
// model (models/gpt2.pt): the residual stream entering each of its 12 blocks x 20 positions,
// logit difference at the last position. Python runs in its own process; medians.
//
//   node scripts/bench-circuits.js            (needs `npm run build:ts` for dist/)
//   BENCH_ROUNDS=3 BENCH_LENGTH=20
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median, timeCalls } = require('./bench/stats');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'gpt2.pt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const LENGTH = Number(process.env.BENCH_LENGTH || 20);
const GOAL = 3;

function seededIds() {
  // The same ids as the Python baseline: torch.randint with seed 0, computed there and printed.
  const code = `import torch; print(torch.randint(0, 50257, (1, ${LENGTH}), generator=torch.Generator().manual_seed(0)).tolist()[0])`;
  const result = spawnSync(pythonPath(), ['-c', code], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

async function main() {
  const started = performance.now();
  const script = path.join(root, 'scripts', 'bench', 'circuits_reference.py');
  const py = spawnSync(pythonPath(), [script, MODEL, String(LENGTH), String(ROUNDS)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (py.status !== 0) throw new Error(`circuits_reference.py failed: ${py.stderr}`);
  const python = JSON.parse(py.stdout);
  const ids = seededIds();
  const corruptedIds = [...ids];
  corruptedIds[2] = (corruptedIds[2] + 1) % 50257;
  const model = await torch.load(MODEL);
  const tensor = (values) => torch.tensor(BigInt64Array.from(values.map(BigInt)), [1, LENGTH]);
  const layers = Array.from({ length: 12 }, (_, i) => `transformer.h.${i}:input`);
  let batchSize = 0;
  const ours = await timeCalls(
    async () => {
      const result = await torch.patchingSweep(model, { clean: tensor(ids), corrupted: tensor(corruptedIds), layers, metric: { logitDiff: [2603, 3290] } });
      batchSize = result.batchSize;
      result.dispose();
    },
    1,
    ROUNDS,
  );
  model.dispose();
  const t = median(ours);
  const p = median(python.sweep);
  console.log(
    `\nPatching sweep, GPT-2 small's shape, residual stream x ${LENGTH} positions (${python.cells} cells); median of ${ROUNDS} after one untimed; Python torch ${python.torch}, ${python.threads} threads\n`,
  );
  console.log(
    `  torchscope ${(t / 1000).toFixed(2)} s (${batchSize} cells per forward, from the patched block on)   Python loop ${(p / 1000).toFixed(2)} s   speed ${(p / t).toFixed(2)}x`,
  );
  console.log(`\n  torchscope >= ${GOAL}x the Python loop's speed: ${(p / t).toFixed(2)}x ${p / t >= GOAL ? 'met' : 'MISSED'}`);
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
