#!/usr/bin/env node
// Attribution speed: torch.attribute against the same algorithms in Python PyTorch eager,
// batched the same way (scripts/bench/attribution_reference.py), ResNet-18 at 224x224, batch
// 1, in one run: integrated gradients with 50 Gauss-Legendre steps in one pass, and occlusion
// with 16x16 windows at stride 8 (all channels), 16 windows per forward; occlusion again on the
// model loaded with optimize: true (perturbation passes run its frozen, folded program; values
// within 1e-4). Python runs in its own process (two runtimes' thread pools must not share the
// cores); every figure is a median.
//
//   node scripts/bench-attribution.js        (needs `npm run build:ts` for dist/)
//   BENCH_ROUNDS=3 BENCH_STEPS=50 BENCH_SIZE=224 (about four minutes on 2 cores)
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median, timeCalls } = require('./bench/stats');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'resnet18.pt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const STEPS = Number(process.env.BENCH_STEPS || 50);
const SIZE = Number(process.env.BENCH_SIZE || 224);
const TARGET = 281;
const WINDOW = 16;
const STRIDE = 8;
const PER_EVAL = 16;
const GOAL = 1.2;

function python() {
  const script = path.join(root, 'scripts', 'bench', 'attribution_reference.py');
  const args = [script, MODEL, SIZE, TARGET, ROUNDS, STEPS, WINDOW, STRIDE, PER_EVAL].map(String);
  const result = spawnSync(pythonPath(), args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`attribution_reference.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

function seededImage() {
  let seed = 7;
  const data = new Float32Array(3 * SIZE * SIZE).map(() => (seed = (seed * 16807) % 2147483647) / 2147483647);
  return torch.tensor(data, [1, 3, SIZE, SIZE]);
}

const fmt = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

async function main() {
  const started = performance.now();
  const py = python();
  const [model, optimized] = await Promise.all([torch.load(MODEL), torch.load(MODEL, { optimize: true })]);
  const x = seededImage();
  const occlusion = (m) => () =>
    torch.attribute(m, x, { method: 'occlusion', target: TARGET, window: [3, WINDOW, WINDOW], strides: [3, STRIDE, STRIDE], perturbationsPerEval: PER_EVAL });
  const runs = {
    integrated_gradients: () => torch.attribute(model, x, { method: 'integratedGradients', target: TARGET, steps: STEPS, internalBatchSize: STEPS }),
    occlusion: occlusion(model),
    occlusion_optimized: occlusion(optimized),
  };
  const ours = {};
  for (const [name, run] of Object.entries(runs)) ours[name] = await timeCalls(async () => (await run()).dispose(), 1, ROUNDS);
  model.dispose();
  optimized.dispose();

  console.log(
    `\nAttribution, ResNet-18 ${SIZE}x${SIZE} batch 1, target ${TARGET}; median of ${ROUNDS} runs after one untimed; Python torch ${py.torch}, ${py.threads} threads\n`,
  );
  const rows = [
    ['integratedGradients', 'integrated_gradients', `${STEPS} Gauss-Legendre steps, one pass`],
    ['occlusion', 'occlusion', `windows 3x${WINDOW}x${WINDOW}, stride ${STRIDE}, ${PER_EVAL} per pass`],
    ['occlusion (optimize)', 'occlusion_optimized', 'the same, model loaded with optimize: true'],
  ].map(([method, key, what]) => {
    const t = median(ours[key]);
    const p = median(py[key === 'occlusion_optimized' ? 'occlusion' : key]);
    return { method, what, t, p, speedup: p / t };
  });
  for (const r of rows)
    console.log(`  ${r.method.padEnd(20)} ${r.what.padEnd(44)} torchscope ${fmt(r.t / 1000)} s  Python ${fmt(r.p / 1000)} s  speed ${fmt(r.speedup)}x`);
  console.log('');
  for (const r of rows) console.log(`  torchscope >= ${GOAL}x Python's speed, ${r.method}: ${fmt(r.speedup)}x ${r.speedup >= GOAL ? 'met' : 'MISSED'}`);
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
