#!/usr/bin/env node
// `npm run bench`: torchscope against Python PyTorch and a plain C++ libtorch forward, on the
// same TorchScript weights, in one run. Timing here is noisy, so every figure is a median
// over several rounds, and the baselines run interleaved with torchscope in each round.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { root, pythonPath } = require('./config');
const { benchTool } = require('./bench/native-tools');
const { median, timeCalls } = require('./bench/stats');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'resnet18.pt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const WARMUP = 3;
const REPEATS = Number(process.env.BENCH_REPEATS || 10);
const BATCHES = [1, 8];

function runProcess(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  return result.stdout;
}

function time(fn) {
  return timeCalls(fn, WARMUP, REPEATS);
}

function randomInput(batch) {
  let seed = 1;
  const data = new Float32Array(batch * 3 * 224 * 224).map(() => (seed = (seed * 16807) % 2147483647) / 2147483647);
  return torch.tensor(data, [batch, 3, 224, 224]);
}

async function main() {
  const plainForward = benchTool('plain_forward');
  const python = pythonPath();
  const reference = path.join(root, 'scripts', 'bench', 'reference.py');
  const exact = await torch.load(MODEL);
  const optimized = await torch.load(MODEL, { optimize: true });
  const samples = {};
  const add = (key, values) => (samples[key] = (samples[key] || []).concat(values));

  for (let round = 0; round < ROUNDS; round++) {
    for (const batch of BATCHES) {
      const py = JSON.parse(runProcess(python, [reference, MODEL, batch, WARMUP, REPEATS]));
      add(`python_eager_hook_${batch}`, py.eager_hook);
      add(`python_jit_forward_${batch}`, py.jit_forward);
      add(`cpp_forward_${batch}`, runProcess(plainForward, [MODEL, batch, WARMUP, REPEATS]).trim().split('\n').map(Number));
      const x = randomInput(batch);
      for (const [mode, model] of [
        ['exact', exact],
        ['optimized', optimized],
      ]) {
        add(`layer4_${mode}_${batch}`, await time(() => torch.activations(model, 'layer4', x)));
        add(`layer2_${mode}_${batch}`, await time(() => torch.activations(model, 'layer2', x)));
        add(`forward_${mode}_${batch}`, await time(() => model.forward(x)));
      }
      x.dispose();
    }
  }

  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const info = torch.info();
  console.log(
    `torchscope bench: ResNet-18 (${path.relative(root, MODEL)}), libtorch ${info.libtorchVersion}, ${info.threads} threads, ` +
      `medians of ${ROUNDS} rounds x ${REPEATS} runs (ms)\n`,
  );
  const rows = [];
  const goals = [];
  for (const batch of BATCHES) {
    const py = m[`python_eager_hook_${batch}`];
    const cpp = m[`cpp_forward_${batch}`];
    for (const mode of ['exact', 'optimized']) {
      const l4 = m[`layer4_${mode}_${batch}`];
      const l2 = m[`layer2_${mode}_${batch}`];
      const full = m[`forward_${mode}_${batch}`];
      rows.push({
        batch,
        mode,
        'layer4 torchscope': l4.toFixed(2),
        'python eager+hook': py.toFixed(2),
        'c++ forward': cpp.toFixed(2),
        'vs python': (l4 / py).toFixed(3),
        'vs c++': (l4 / cpp).toFixed(3),
        layer2: l2.toFixed(2),
        'full forward': full.toFixed(2),
        'layer2/forward': (l2 / full).toFixed(3),
        'layer2/c++ fwd': (l2 / cpp).toFixed(3),
      });
      goals.push([`batch ${batch} ${mode}: layer4 <= 0.8x Python eager+hook`, l4 / py, 0.8]);
      goals.push([`batch ${batch} ${mode}: layer4 <= 1.02x plain C++ forward`, l4 / cpp, 1.02]);
      goals.push([`batch ${batch} ${mode}: layer2 capture <= 0.45x full forward (same mode)`, l2 / full, 0.45]);
      goals.push([`batch ${batch} ${mode}: layer2 capture <= 0.45x plain C++ full forward`, l2 / cpp, 0.45]);
    }
    rows.push({ batch, mode: 'python jit', 'layer4 torchscope': '', 'python eager+hook': m[`python_jit_forward_${batch}`].toFixed(2) });
  }
  console.table(rows);
  console.log('\ngoals (exact: parity 1e-5 absolute; optimized: within 1e-4 relative)');
  for (const [label, ratio, goal] of goals) console.log(`  ${ratio <= goal ? 'met   ' : 'MISSED'}  ${label}: ${ratio.toFixed(3)}`);
  fs.mkdirSync(path.join(root, 'out'), { recursive: true });
  fs.writeFileSync(path.join(root, 'out', 'bench.json'), JSON.stringify({ medians: m, samples }, null, 1));
  exact.dispose();
  optimized.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
