#!/usr/bin/env node
// `npm run bench:runtimes` (part of `npm run bench`): ResNet-18 at 224x224 on the same weights in
// onnxruntime-node (default options; layer4 read as an extra graph output), PyTorch eager
// (layer4 by a forward hook) and torchscope exact / optimize / optimize + bf16, each runtime in its own
// process (two runtimes' spinning thread pools in one process slow each other), rotated over
// rounds; medians. Every time is also printed as a share of this machine's measured arithmetic
// peak (scripts/bench/peak.cpp), comparable across machines. On a CPU above AVX2, PyTorch and
// torchscope exact / optimize run again with their kernel libraries limited to AVX2
// (scripts/cpu-limits.js), in the same rounds. Then activation maximization at layer4 in float32
// and bf16.
//
// What it needs beyond set-up, fetched once into build/bench-runtimes: onnxruntime-node from
// npm (--ignore-scripts: its install script would download CUDA libraries from NuGet) and the
// ONNX files, exported by the set-up Python with torch.onnx (pip installs `onnx` from the
// configured index when missing).
//
//   BENCH_ROUNDS=5 BENCH_CALLS=7 node scripts/bench-runtimes.js   (BENCH_MAXIMIZE_STEPS=0: no maximization)
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median } = require('./bench/stats');
const { benchTool } = require('./bench/native-tools');
const { AVX2_LIMITS } = require('./cpu-limits');
const torch = require('../dist/lib');

const ORT_VERSION = '1.30.0';
const MODEL = path.join(root, 'models', 'resnet18.pt');
const WORK = path.join(root, 'build', 'bench-runtimes');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const CALLS = Number(process.env.BENCH_CALLS || 7);
const WARMUP = 2;
const BATCHES = [1, 8];
const MAXIMIZE_STEPS = Number(process.env.BENCH_MAXIMIZE_STEPS || 24);
const MAXIMIZE_ROUNDS = Number(process.env.BENCH_MAXIMIZE_ROUNDS || 3);
// ResNet-18 at 224x224: 1.82 G multiply-adds per image (layer4's capture needs all but the fc).
const GFLOP_PER_IMAGE = 3.63;

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}):\n${result.stderr}`);
  return result.stdout;
}

function ensureOnnxruntime() {
  const installed = path.join(WORK, 'node_modules', 'onnxruntime-node', 'package.json');
  if (fs.existsSync(installed) && JSON.parse(fs.readFileSync(installed, 'utf8')).version === ORT_VERSION) return;
  fs.mkdirSync(WORK, { recursive: true });
  if (!fs.existsSync(path.join(WORK, 'package.json'))) fs.writeFileSync(path.join(WORK, 'package.json'), '{"private": true}\n');
  console.log(`installing onnxruntime-node@${ORT_VERSION} into ${path.relative(root, WORK)} (once)`);
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-save', `onnxruntime-node@${ORT_VERSION}`], {
    cwd: WORK,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

function ensureOnnxFiles(python) {
  const files = ['resnet18.onnx', 'resnet18-layer4.onnx'].map((f) => path.join(WORK, f));
  const fresh = files.every((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > fs.statSync(MODEL).mtimeMs);
  if (fresh) return;
  if (spawnSync(python, ['-c', 'import onnx'], { stdio: 'ignore' }).status !== 0) {
    run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--timeout', '20', '--retries', '1', 'onnx'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  fs.mkdirSync(WORK, { recursive: true });
  run(python, [path.join(root, 'scripts', 'bench', 'export_onnx.py'), MODEL, WORK]);
}

function main() {
  const python = pythonPath();
  ensureOnnxruntime();
  ensureOnnxFiles(python);
  const info = torch.info();
  const peak = JSON.parse(run(benchTool('peak'), [String(info.threads), '1000']));
  const nativeBf16 = info.cpu.bf16;
  const worker = path.join(root, 'scripts', 'bench', 'runtime_worker.js');
  const list = BATCHES.join(',');
  // bf16 where the CPU emulates it is tens of times slower: timed at batch 1 only, to show it.
  const bf16Batches = nativeBf16 ? list : '1';
  const bf16Calls = nativeBf16 ? CALLS : 2;
  const runtimes = [
    { name: 'onnxruntime-node', command: process.execPath, args: [worker, 'onnxruntime', WORK, WORK, list, CALLS, WARMUP] },
    { name: 'PyTorch eager', command: python, args: [path.join(root, 'scripts', 'bench', 'runtime_reference.py'), MODEL, list, CALLS, WARMUP] },
    { name: 'torchscope exact', command: process.execPath, args: [worker, 'torchscope', MODEL, 'exact', list, CALLS, WARMUP] },
    { name: 'torchscope optimize', command: process.execPath, args: [worker, 'torchscope', MODEL, 'optimize', list, CALLS, WARMUP] },
    { name: 'torchscope optimize bf16', command: process.execPath, args: [worker, 'torchscope', MODEL, 'bf16', bf16Batches, bf16Calls, 1], once: !nativeBf16 },
  ];
  // A CPU above AVX2 also shows the AVX2 path (laptops have only that): PyTorch and torchscope
  // again with their kernel libraries limited to AVX2, in the same rounds. onnxruntime has its
  // own dispatch, which these variables do not limit.
  const avx2Pass = os.arch() === 'x64' && !['SSE41', 'AVX', 'AVX2'].includes(info.cpu.onednn);
  if (avx2Pass) {
    for (const name of ['PyTorch eager', 'torchscope exact', 'torchscope optimize']) {
      runtimes.push({ ...runtimes.find((r) => r.name === name), name: `${name} (AVX2)`, env: AVX2_LIMITS });
    }
  }
  const samples = {};
  const logits = {};
  for (let round = 0; round < ROUNDS; round++) {
    const order = runtimes.map((_, i) => runtimes[(i + round) % runtimes.length]);
    for (const runtime of order) {
      if (runtime.once && round > 0) continue;
      const result = JSON.parse(run(runtime.command, runtime.args.map(String), { env: { ...process.env, ...runtime.env } }));
      logits[runtime.name] = result.logits;
      for (const batch of BATCHES) {
        for (const what of ['forward', 'layer4']) {
          if (!result[batch]) continue;
          const key = `${runtime.name}|${batch}|${what}`;
          samples[key] = (samples[key] || []).concat(result[batch][what]);
        }
      }
    }
    console.log(`round ${round + 1}/${ROUNDS} done`);
  }
  const ms = (name, batch, what) => (samples[`${name}|${batch}|${what}`] ? median(samples[`${name}|${batch}|${what}`]) : undefined);
  const ort = (batch, what) => ms('onnxruntime-node', batch, what);
  const share = (t, batch, gflops) => (t === undefined ? '' : `${((100 * batch * GFLOP_PER_IMAGE) / (t / 1000) / gflops).toFixed(0)}%`);

  console.log(
    `\nResNet-18 224x224, ${path.relative(root, MODEL)}; ${info.threads} threads, CPU ${info.cpu.capability}, bf16 instructions: ${nativeBf16 ? 'yes' : 'no'} (${os.cpus()[0].model})`,
  );
  console.log(
    `measured peak: fp32 ${peak.fp32} GFLOP/s${peak.bf16 ? `, bf16 ${peak.bf16} GFLOP/s (${peak.bf16Unit})` : ', bf16: no native instructions'}; medians of ${ROUNDS} rounds x ${CALLS} calls, each runtime in its own process\n`,
  );
  const rows = [];
  for (const { name } of runtimes) {
    for (const batch of BATCHES) {
      for (const what of ['forward', 'layer4']) {
        const t = ms(name, batch, what);
        if (t === undefined) continue;
        const peakOf = name.endsWith('bf16') && peak.bf16 ? peak.bf16 : peak.fp32;
        // The AVX2 rows are not against onnxruntime's or this CPU's full peak.
        const limited = name.endsWith('(AVX2)');
        rows.push({
          runtime: name,
          batch,
          call: what === 'forward' ? 'forward' : 'capture layer4',
          ms: t.toFixed(1),
          'x ORT time': limited ? '' : (t / ort(batch, what)).toFixed(2),
          'of peak': limited ? '' : share(t, batch, peakOf),
        });
      }
    }
  }
  console.table(rows);
  const reference = logits['PyTorch eager'];
  for (const [name, values] of Object.entries(logits)) {
    const worst = Math.max(...values.map((v, i) => Math.abs(v - reference[i])));
    console.log(`  ${name}: logits[0, :10] within ${worst.toExponential(2)} of PyTorch eager`);
  }

  // Maximization at layer4 with the standard transforms, float32 (exact) against bf16 (optimize:
  // weights cast once), each in its own process, alternating over rounds; medians.
  const rates = { exact: [], bf16: [] };
  // BENCH_MAXIMIZE_STEPS=0 leaves maximization out.
  for (let round = 0; round < (MAXIMIZE_STEPS > 0 ? MAXIMIZE_ROUNDS : 0); round++) {
    for (const mode of round % 2 ? ['bf16', 'exact'] : ['exact', 'bf16']) {
      const steps = mode === 'bf16' && !nativeBf16 ? Math.min(8, MAXIMIZE_STEPS) : MAXIMIZE_STEPS;
      if (steps !== MAXIMIZE_STEPS && round > 0) continue;
      const result = JSON.parse(run(process.execPath, [worker, 'torchscope', MODEL, mode, '1', '0', '0', String(steps)]));
      rates[mode].push(result.maximize.itPerSecond);
    }
  }
  const maximize = { exact: median(rates.exact), bf16: median(rates.bf16), rounds: rates };
  if (MAXIMIZE_STEPS > 0)
    console.log(
      `\nmaximize layer4 (224x224, batch 1, standard transforms; ${MAXIMIZE_STEPS} steps after 8, median of ${MAXIMIZE_ROUNDS}): float32 ${maximize.exact.toFixed(2)} it/s, bf16 ${maximize.bf16.toFixed(2)} it/s (${(maximize.bf16 / maximize.exact).toFixed(2)}x)`,
    );

  const goals = [];
  // Faster never slower: optimize against exact on every CPU this run shows.
  for (const suffix of avx2Pass ? ['', ' (AVX2)'] : ['']) {
    for (const batch of BATCHES) {
      for (const what of ['forward', 'layer4']) {
        const ratio = ms(`torchscope optimize${suffix}`, batch, what) / ms(`torchscope exact${suffix}`, batch, what);
        goals.push([`optimize <= exact's time${suffix || ` (${info.cpu.onednn})`}, batch ${batch} ${what}`, ratio, (r) => r <= 1.0, (r) => `${r.toFixed(2)}x`]);
      }
    }
  }
  for (const batch of BATCHES) {
    for (const what of ['forward', 'layer4']) {
      goals.push([
        `optimize <= 1.0x onnxruntime-node's time, batch ${batch} ${what}`,
        ms('torchscope optimize', batch, what) / ort(batch, what),
        (r) => r <= 1.0,
        (r) => `${r.toFixed(2)}x`,
      ]);
    }
  }
  const bf16Batch = nativeBf16 ? 8 : 1;
  const bf16Speedup = ms('torchscope optimize', bf16Batch, 'forward') / ms('torchscope optimize bf16', bf16Batch, 'forward');
  goals.push([
    `bf16 >= 1.8x faster than fp32 optimize at batch 8${nativeBf16 ? '' : ' (this CPU emulates bf16: batch 1 shown)'}`,
    bf16Speedup,
    (r) => r >= 1.8,
    (r) => `${r.toFixed(2)}x`,
  ]);
  const exactShare = (8 * GFLOP_PER_IMAGE) / (ms('torchscope exact', 8, 'forward') / 1000) / peak.fp32;
  goals.push(['exact >= 80% of the measured fp32 peak at batch 8', exactShare, (r) => r >= 0.8, (r) => `${(100 * r).toFixed(0)}%`]);
  if (MAXIMIZE_STEPS > 0)
    goals.push(['maximize in bf16 >= 1.5x float32 it/s at layer4', maximize.bf16 / maximize.exact, (r) => r >= 1.5, (r) => `${r.toFixed(2)}x`]);
  console.log('\ngoals');
  for (const [label, value, met, show] of goals) console.log(`  ${met(value) ? 'met   ' : 'MISSED'}  ${label}: ${show(value)}`);
  fs.mkdirSync(path.join(root, 'out'), { recursive: true });
  fs.writeFileSync(path.join(root, 'out', 'bench-runtimes.json'), JSON.stringify({ peak, samples, maximize, logits }, null, 1));
}

main();
