#!/usr/bin/env node
// Activation maximization speed: torch.maximize against the same loop in Python PyTorch eager
// (scripts/bench/maximize_reference.py), ResNet-18 at 224x224, batch 1, in one run; and the
// event loop lag while torchscope optimises. The loop compared is the one both can run:
// parameterization 'pixel', no transforms, no normalization, Adam lr 0.05, clamp to [0, 1].
// Every figure is a median over BENCH_ROUNDS rounds, Python and torchscope interleaved.
//
//   node scripts/bench-maximize.js            (needs `npm run build:ts` for dist/)
//   BENCH_ROUNDS=5 BENCH_STEPS=20 BENCH_WARMUP=3 BENCH_SIZE=224 (about a minute on 2 cores)
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { monitorEventLoopDelay } = require('perf_hooks');
const { root, pythonPath } = require('./config');
const { median } = require('./bench/stats');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'resnet18.pt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const WARMUP = Number(process.env.BENCH_WARMUP || 3);
const STEPS = Number(process.env.BENCH_STEPS || 20);
const SIZE = Number(process.env.BENCH_SIZE || 224);
const TARGETS = [
  { layer: 'layer4', channel: 5, goal: 1.5 },
  { layer: 'layer2', channel: 7, goal: 2 },
];
const LAG_GOAL_MS = 5;

function python() {
  const script = path.join(root, 'scripts', 'bench', 'maximize_reference.py');
  const args = [script, MODEL, SIZE, WARMUP, STEPS, ...TARGETS.map((t) => `${t.layer}:${t.channel}`)];
  const result = spawnSync(pythonPath(), args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`maximize_reference.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

// Steps per second after WARMUP steps: the progress timestamps bracket whole chunks, so the
// first chunk (WARMUP steps) is the warm-up and the rest are timed.
async function torchscope(model, target) {
  const stamps = [];
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const result = await torch.maximize(model, target.layer, {
    channel: target.channel,
    size: SIZE,
    steps: WARMUP + STEPS,
    progressEvery: WARMUP,
    parameterization: 'pixel',
    transforms: [],
    normalize: false,
    onProgress: (p) => stamps.push([p.step, performance.now()]),
  });
  lag.disable();
  if (result.steps !== WARMUP + STEPS) throw new Error(`ran ${result.steps} steps`);
  const [firstStep, firstTime] = stamps[0];
  const [lastStep, lastTime] = stamps[stamps.length - 1];
  return {
    itPerS: ((lastStep - firstStep) * 1000) / (lastTime - firstTime),
    lagP50: lag.percentile(50) / 1e6,
    lagP99: lag.percentile(99) / 1e6,
    lagMax: lag.max / 1e6,
  };
}

function idleLag() {
  return new Promise((resolve) => {
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    setTimeout(() => {
      lag.disable();
      resolve({ p50: lag.percentile(50) / 1e6, p99: lag.percentile(99) / 1e6 });
    }, 1000);
  });
}

const fmt = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

async function main() {
  const started = performance.now();
  const model = await torch.load(MODEL);
  // Builds the programs and lets the TorchScript executor profile them.
  for (const target of TARGETS) {
    await torch.maximize(model, target.layer, { channel: target.channel, size: SIZE, steps: 3, parameterization: 'pixel', transforms: [], normalize: false });
  }
  const idle = await idleLag();
  const samples = {};
  const add = (key, value) => (samples[key] = samples[key] || []).push(value);
  let threads = '?';
  for (let round = 0; round < ROUNDS; round++) {
    const py = python();
    threads = py.threads;
    for (const target of TARGETS) {
      add(`${target.layer}.py_truncated`, 1000 / median(py.results[target.layer].truncated));
      add(`${target.layer}.py_full_hook`, 1000 / median(py.results[target.layer].full_hook));
      const ours = await torchscope(model, target);
      add(`${target.layer}.ts`, ours.itPerS);
      add('lagP50', ours.lagP50);
      add('lagP99', ours.lagP99);
      add('lagMax', ours.lagMax);
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  model.dispose();

  const rows = [];
  const verdicts = [];
  for (const target of TARGETS) {
    const ts = median(samples[`${target.layer}.ts`]);
    const truncated = median(samples[`${target.layer}.py_truncated`]);
    const fullHook = median(samples[`${target.layer}.py_full_hook`]);
    rows.push([`${target.layer} ch ${target.channel}`, fmt(ts), fmt(truncated), fmt(fullHook), `${fmt(ts / truncated)}x`, `${fmt(ts / fullHook)}x`]);
    for (const [name, python] of [
      ['truncated eager', truncated],
      ['full model + hook (Example 2)', fullHook],
    ]) {
      const ratio = ts / python;
      verdicts.push(`torchscope >= ${target.goal}x Python's it/s at ${target.layer}, vs ${name}: ${fmt(ratio)}x ${ratio >= target.goal ? 'met' : 'MISSED'}`);
    }
  }
  const lagP99 = median(samples.lagP99);
  verdicts.push(`event loop lag p99 < ${LAG_GOAL_MS} ms during a torchscope run: ${fmt(lagP99)} ms ${lagP99 < LAG_GOAL_MS ? 'met' : 'MISSED'}`);

  console.log(`\nActivation maximization, ResNet-18 ${SIZE}x${SIZE} batch 1, pixel / no transforms / no normalization, Adam lr 0.05`);
  console.log(`median of ${ROUNDS} rounds, ${STEPS} timed steps after ${WARMUP} warm-up steps each; Python torch ${threads} threads\n`);
  const header = ['target', 'torchscope it/s', 'py truncated it/s', 'py full+hook it/s', 'vs truncated', 'vs full+hook'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  rows.forEach((r) => console.log(line(r)));
  console.log(
    `\nevent loop lag during torchscope runs (monitorEventLoopDelay, 1 ms resolution): ` +
      `p50 ${fmt(median(samples.lagP50))} ms, p99 ${fmt(lagP99)} ms, max ${fmt(Math.max(...samples.lagMax))} ms ` +
      `(idle, same probe: p50 ${fmt(idle.p50)} ms, p99 ${fmt(idle.p99)} ms; the figures include the 1 ms timer interval)\n`,
  );
  verdicts.forEach((v) => console.log(`  ${v}`));
  console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
