#!/usr/bin/env node
// Activation store throughput: GPT-2 small's block 7 output (SAELens's blocks.8.hook_resid_pre
// point) over BATCHES x BATCH sequences of CONTEXT tokens, written as an activation store, against
// a Python loop with a forward hook writing the same datasets layout
// (scripts/bench/collect_reference.py), as a hook user writes it (whole forward) and as SAELens
// does (stopping after the block). Tokens per second, medians of ROUNDS.
//
//   node scripts/bench-collect.js      (needs `npm run build:ts` for dist/)
//   BENCH_ROUNDS=3 BENCH_BATCHES=6 BENCH_BATCH=8 BENCH_CONTEXT=128
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median } = require('./bench/stats');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'gpt2.pt');
const LAYER = 'transformer.h.7';
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const BATCHES = Number(process.env.BENCH_BATCHES || 6);
const BATCH = Number(process.env.BENCH_BATCH || 8);
const CONTEXT = Number(process.env.BENCH_CONTEXT || 128);
const GOAL = 1.5; // collect throughput / the Python hook loop's, at least

function rows() {
  // The same ids as collect_reference.py.
  return Array.from({ length: BATCHES * BATCH }, (_, r) => Array.from({ length: CONTEXT }, (_, j) => (r * 7919 + j * 104729) % 50257));
}

async function main() {
  const started = performance.now();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-bench-collect-'));
  try {
    const script = path.join(root, 'scripts', 'bench', 'collect_reference.py');
    const args = [script, MODEL, path.join(folder, 'python'), LAYER, BATCHES, BATCH, CONTEXT, ROUNDS].map(String);
    const py = spawnSync(pythonPath(), args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status !== 0) throw new Error(`collect_reference.py failed: ${py.stderr}`);
    const python = JSON.parse(py.stdout);
    const model = await torch.load(MODEL);
    const inputs = rows();
    const out = path.join(folder, 'torchscope');
    const collect = (n) => torch.collect(model, { layers: { 'blocks.8.hook_resid_pre': LAYER }, inputs: inputs.slice(0, n), out, batchSize: BATCH });
    await collect(2 * BATCH); // untimed warm-up: TorchScript optimizes a graph on its second run
    const ours = [];
    for (let i = 0; i < ROUNDS; i++) {
      fs.rmSync(out, { recursive: true, force: true });
      const start = performance.now();
      await collect(inputs.length);
      ours.push((performance.now() - start) / 1000);
    }
    model.dispose();
    const tokens = BATCHES * BATCH * CONTEXT;
    const rate = (seconds) => tokens / median(seconds);
    console.log(
      `\nActivation store: GPT-2 small ${LAYER} over ${tokens} tokens (${BATCHES} batches of ${BATCH} x ${CONTEXT}); median of ${ROUNDS}; Python torch ${python.torch}, ${python.threads} threads\n`,
    );
    const row = (name, seconds) => console.log(`  ${name.padEnd(46)} ${rate(seconds).toFixed(0).padStart(7)} tokens/s`);
    row('torch.collect (store, token ids, stops at the block)', ours);
    row('Python forward hook, whole forward, save_to_disk', python.full);
    row('Python hook stopping after the block, save_to_disk', python.stopped);
    const ratio = median(python.full) / median(ours);
    const stoppedRatio = median(python.stopped) / median(ours);
    console.log(`\n  collect >= 1.5x the Python hook loop: ${ratio.toFixed(2)}x ${ratio >= GOAL ? 'met' : 'MISSED'}`);
    console.log(`  (against the loop that stops after the block as SAELens does: ${stoppedRatio.toFixed(2)}x)`);
    console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
