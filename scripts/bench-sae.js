#!/usr/bin/env node
// SAE speed: a 24,576-feature SAE (SAELens's standard architecture) on GPT-2 small's residual
// stream entering block 6 (models/gpt2.pt), against the same math in PyTorch eager
// (scripts/bench/sae_reference.py, which writes the SAE both sides load): encode and
// reconstruction of x [1, LENGTH, 768], and the forward with the SAE spliced in (error term on)
// against each side's plain forward. Python runs in its own process; medians.
//
//   node scripts/bench-sae.js            (needs `npm run build:ts` for dist/)
//   BENCH_ROUNDS=5 BENCH_LENGTH=128
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median, timeCalls } = require('./bench/stats');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'gpt2.pt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const LENGTH = Number(process.env.BENCH_LENGTH || 128);
const SPEED_GOAL = 1; // at least Python's speed
const SPLICE_GOAL = 1.3; // spliced forward (error term) / plain forward, at most

async function main() {
  const started = performance.now();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-bench-sae-'));
  try {
    const script = path.join(root, 'scripts', 'bench', 'sae_reference.py');
    const py = spawnSync(pythonPath(), [script, MODEL, folder, String(LENGTH), String(ROUNDS)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status !== 0) throw new Error(`sae_reference.py failed: ${py.stderr}`);
    const python = JSON.parse(py.stdout);
    const model = await torch.load(MODEL);
    const sae = await torch.sae.load(folder, { model });
    const x = torch.tensor(
      Float32Array.from({ length: LENGTH * 768 }, (_, i) => Math.sin(i * 12.9898) * 0.5),
      [1, LENGTH, 768],
    );
    const ids = torch.tensor(
      BigInt64Array.from({ length: LENGTH }, (_, i) => BigInt((i * 7919) % 50257)),
      [1, LENGTH],
    );
    const timed = (fn) => timeCalls(async () => disposeAll(await fn()), 1, ROUNDS);
    const encode = median(await timed(() => sae.encode(x)));
    const forward = median(await timed(() => sae.forward(x)));
    const plain = median(await timed(() => model.forward(ids)));
    const spliced = median(await timed(() => torch.run(model, [ids], { saes: [sae], errorTerm: true })));
    sae.dispose();
    model.dispose();
    const row = (name, ours, theirs) =>
      console.log(
        `  ${name.padEnd(34)} torchscope ${ours.toFixed(1).padStart(7)} ms   Python ${theirs.toFixed(1).padStart(7)} ms   speed ${(theirs / ours).toFixed(2)}x`,
      );
    console.log(
      `\nSAE, ${sae.dSae} features on GPT-2 small's ${sae.hookPoint} (${LENGTH} tokens); median of ${ROUNDS} after one untimed; Python torch ${python.torch}, ${python.threads} threads\n`,
    );
    row('encode', encode, median(python.encode));
    row('reconstruction', forward, median(python.forward));
    row('forward with the SAE spliced', spliced, median(python.spliced));
    row('plain forward', plain, median(python.plain));
    const goals = [
      ['encode >= Python eager', median(python.encode) / encode, SPEED_GOAL, true],
      ['reconstruction >= Python eager', median(python.forward) / forward, SPEED_GOAL, true],
      ['spliced forward >= Python eager (hooked)', median(python.spliced) / spliced, SPEED_GOAL, true],
      ['spliced / plain forward <= 1.3', spliced / plain, SPLICE_GOAL, false],
    ];
    console.log('');
    for (const [name, value, goal, atLeast] of goals) {
      const met = atLeast ? value >= goal : value <= goal;
      console.log(`  ${name}: ${value.toFixed(2)}x ${met ? 'met' : 'MISSED'}`);
    }
    console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

function disposeAll(value) {
  if (typeof value?.dispose === 'function') value.dispose();
  else torch.dispose(value);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
