#!/usr/bin/env node
// SAE training speed: torch.sae.train against the plain PyTorch loop written to SAELens 6.18's
// definitions (scripts/bench/sae_train_reference.py runs test/python/sae_train_reference.py's
// Trainer.step), steps per second at d_in 768, d_sae 8192 and 4,096 tokens per batch (SAELens's
// train_batch_size_tokens), on random batches. Rounds alternate between the two sides (Python in
// its own process each round), so a load that changes while it runs reaches both; each round's
// rate leaves out its first step (the warm-up), and the figures are medians.
//
//   node scripts/bench-sae-train.js            (needs `npm run build:ts` for dist/)
//   BENCH_ARCHITECTURES=standard,topk BENCH_ROUNDS=3 BENCH_STEPS=4 BENCH_D_SAE=8192 BENCH_TOKENS=4096 BENCH_K=64
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median } = require('./bench/stats');
const torch = require('../dist/lib');

const ARCHITECTURES = (process.env.BENCH_ARCHITECTURES || 'standard,topk').split(',');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const STEPS = Number(process.env.BENCH_STEPS || 4);
const D_IN = 768;
const D_SAE = Number(process.env.BENCH_D_SAE || 8192);
const TOKENS = Number(process.env.BENCH_TOKENS || 4096);
const K = Number(process.env.BENCH_K || 64);
const SPEED_GOAL = 1; // at least Python's steps per second

/** Standard-normal float32 values from a seeded generator (Box-Muller over a 32-bit LCG). */
function randn(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 1) / 4294967297;
  };
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = r * Math.sin(angle);
  }
  return out;
}

function pythonRate(architecture) {
  const script = path.join(root, 'scripts', 'bench', 'sae_train_reference.py');
  const args = [script, architecture, D_IN, D_SAE, TOKENS, K, STEPS, 1].map(String);
  const py = spawnSync(pythonPath(), args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (py.status !== 0) throw new Error(`sae_train_reference.py failed: ${py.stderr}`);
  return JSON.parse(py.stdout);
}

async function torchscopeRate(architecture, batches) {
  const times = [];
  const result = await torch.sae.train({
    batches: Array.from({ length: STEPS }, (_, i) => batches[i % batches.length]),
    architecture,
    dSae: D_SAE,
    steps: STEPS,
    ...(architecture === 'topk' || architecture === 'batchtopk' ? { k: K } : {}),
    progressEvery: 1,
    onProgress: () => times.push(performance.now()),
  });
  result.sae.dispose();
  for (const t of Object.values(result.parameters)) t.dispose();
  return ((STEPS - 1) * 1000) / (times[STEPS - 1] - times[0]);
}

async function main() {
  const started = performance.now();
  const batches = Array.from({ length: 4 }, (_, i) => torch.tensor(randn(TOKENS * D_IN, i + 1), [TOKENS, D_IN]));
  const rates = Object.fromEntries(ARCHITECTURES.map((a) => [a, { torchscope: [], python: [] }]));
  let python;
  for (let round = 0; round < ROUNDS; round++) {
    for (const architecture of ARCHITECTURES) {
      python = pythonRate(architecture);
      rates[architecture].python.push(python.rates[0]);
      rates[architecture].torchscope.push(await torchscopeRate(architecture, batches));
    }
  }
  for (const b of batches) b.dispose();
  console.log(
    `\nSAE training, d_in ${D_IN}, d_sae ${D_SAE}, ${TOKENS} tokens per batch${ARCHITECTURES.some((a) => a.includes('topk')) ? `, k ${K}` : ''}: ` +
      `steps/s over steps 2-${STEPS}, median of ${ROUNDS} alternating rounds; Python torch ${python.torch}, ${python.threads} threads, torchscope ${torch.info().threads} threads\n`,
  );
  const goals = [];
  for (const architecture of ARCHITECTURES) {
    const ours = median(rates[architecture].torchscope);
    const theirs = median(rates[architecture].python);
    console.log(
      `  ${architecture.padEnd(10)} torchscope ${ours.toFixed(3).padStart(7)} steps/s   Python ${theirs.toFixed(3).padStart(7)} steps/s   speed ${(ours / theirs).toFixed(2)}x`,
    );
    const rounds = (values) => values.map((v) => v.toFixed(3)).join(', ');
    console.log(`  ${''.padEnd(10)} rounds: torchscope ${rounds(rates[architecture].torchscope)}; Python ${rounds(rates[architecture].python)}`);
    goals.push([`${architecture} >= Python`, ours / theirs]);
  }
  console.log('');
  for (const [name, value] of goals) console.log(`  ${name}: ${value.toFixed(2)}x ${value >= SPEED_GOAL ? 'met' : 'MISSED'}`);
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
