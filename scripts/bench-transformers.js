#!/usr/bin/env node
// Transformer workloads against Hugging Face in PyTorch eager, same weights, same machine
// (scripts/bench/transformers_reference.py in its own process): GPT-2 small (models/gpt2.pt) with
// its 12 blocks' outputs cached, at 1 x 512 and 8 x 128 tokens (torch.run exact and optimize,
// torch.activations), and greedy generation of NEW_TOKENS tokens after a 128-token prompt, plain
// and steered (a vector added to block 6's output), against `generate` with its KV cache. Times
// are medians; each run is also a share of this machine's measured fp32 peak
// (scripts/bench/peak.cpp). Goals (issue 27): run with optimize <= 0.8x Python's time, exact no
// slower; generation tokens/s >= Hugging Face's.
//
//   BENCH_ROUNDS=3 BENCH_NEW_TOKENS=64 node scripts/bench-transformers.js
'use strict';
const { spawnSync } = require('child_process');
const os = require('os');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median, timeCalls } = require('./bench/stats');
const { benchTool } = require('./bench/native-tools');
const torch = require('../dist/lib');

const MODEL = path.join(root, 'models', 'gpt2.pt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const NEW_TOKENS = Number(process.env.BENCH_NEW_TOKENS || 64);
const SHAPES = { '1x512': [1, 512], '8x128': [8, 128] };
const BLOCKS = Array.from({ length: 12 }, (_, i) => `transformer.h.${i}`);
const STEER_LAYER = 'transformer.h.6';
// GPT-2 small: 85.0M parameters in its blocks, 38.6M in the untied head.
const BLOCK_PARAMETERS = 84_953_088;
const HEAD_PARAMETERS = 768 * 50257;

// Multiply-adds x 2 of a forward over [batch, seq]: every weight once per token, and each layer's
// two attention products (scores and the weighted sum) over all seq x seq pairs.
function gflops([batch, seq]) {
  return (batch * (2 * seq * (BLOCK_PARAMETERS + HEAD_PARAMETERS) + 12 * 4 * seq * seq * 768)) / 1e9;
}

// The same seeded ids as the Python side (torch.randint), computed there.
function seededIds(shape, seed) {
  const code = `import torch; print(torch.randint(0, 50257, (${shape.join(', ')}), generator=torch.Generator().manual_seed(${seed})).flatten().tolist())`;
  const result = spawnSync(pythonPath(), ['-c', code], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return torch.tensor(BigInt64Array.from(JSON.parse(result.stdout).map(BigInt)), shape);
}

async function tokensPerSecond(model, prompt, options) {
  const rates = [];
  let ids = [];
  for (let round = 0; round < Math.max(1, ROUNDS - 1); round++) {
    const start = performance.now();
    const result = await torch.generate(model, prompt, { maxNewTokens: NEW_TOKENS, ...options }).result;
    rates.push(NEW_TOKENS / ((performance.now() - start) / 1000));
    ids = result.newIds;
  }
  return { rate: median(rates), ids };
}

async function main() {
  const script = path.join(root, 'scripts', 'bench', 'transformers_reference.py');
  const py = spawnSync(pythonPath(), [script, MODEL, String(ROUNDS), String(NEW_TOKENS)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (py.status !== 0) throw new Error(`transformers_reference.py failed: ${py.stderr}`);
  const reference = JSON.parse(py.stdout);
  const info = torch.info();
  const peak = JSON.parse(spawnSync(benchTool('peak'), [String(info.threads), '1000'], { encoding: 'utf8' }).stdout);
  const share = (ms, shape) => `${((100 * gflops(shape)) / (ms / 1000) / peak.fp32).toFixed(0)}%`;

  const exact = await torch.load(MODEL);
  const optimized = await torch.load(MODEL, { optimize: true });
  const rows = [];
  const times = {};
  for (const [name, shape] of Object.entries(SHAPES)) {
    const ids = seededIds(shape, 0);
    const pythonMs = median(reference.run[name]);
    const cases = [
      ['run, 12 blocks cached (exact)', () => torch.run(exact, [ids], { capture: BLOCKS })],
      ['run, 12 blocks cached (optimize)', () => torch.run(optimized, [ids], { capture: BLOCKS })],
      ['activations of 12 blocks (stops after the last)', () => torch.activations(exact, BLOCKS, ids)],
    ];
    rows.push({ shape: name, call: 'Python eager + 12 hooks, logits', ms: pythonMs.toFixed(0), 'x Python': '1.00', 'of peak': share(pythonMs, shape) });
    for (const [call, fn] of cases) {
      const t = median(await timeCalls(async () => torch.dispose(await fn()), 1, ROUNDS));
      times[`${name}|${call}`] = t / pythonMs;
      rows.push({ shape: name, call, ms: t.toFixed(0), 'x Python': (t / pythonMs).toFixed(2), 'of peak': share(t, shape) });
    }
  }
  optimized.dispose();

  const prompt = reference.prompt;
  const steer = torch.tensor(Float32Array.from(reference.steer), [768]);
  const plain = await tokensPerSecond(exact, prompt, {});
  const steered = await tokensPerSecond(exact, prompt, { patch: { [STEER_LAYER]: { add: steer } } });
  exact.dispose();
  const generation = [
    ['plain', plain, median(reference.generate.plain)],
    ['steered', steered, median(reference.generate.steered)],
  ];

  console.log(
    `\nGPT-2 small (${path.relative(root, MODEL)}) against Hugging Face eager (transformers ${reference.transformers}, torch ${reference.torch}); ${info.threads} threads, ${os.cpus()[0].model}, CPU ${info.cpu.capability}; measured fp32 peak ${peak.fp32} GFLOP/s; medians of ${ROUNDS}\n`,
  );
  console.table(rows);
  console.log(`\ngreedy generation, ${NEW_TOKENS} tokens after a ${prompt.length}-token prompt:`);
  for (const [mode, ours, hf] of generation) {
    const same = JSON.stringify(ours.ids) === JSON.stringify(reference.tokens[mode]);
    console.log(
      `  ${mode.padEnd(8)} torchscope ${ours.rate.toFixed(1)} tokens/s   Hugging Face generate (KV cache) ${hf.toFixed(1)} tokens/s   ${(ours.rate / hf).toFixed(2)}x   same tokens: ${same ? 'yes' : 'NO'}`,
    );
  }
  console.log('\ngoals (issue 27):');
  for (const name of Object.keys(SHAPES)) {
    const optimize = times[`${name}|run, 12 blocks cached (optimize)`];
    const exactRatio = times[`${name}|run, 12 blocks cached (exact)`];
    console.log(`  run ${name}, optimize <= 0.8x Python: ${optimize.toFixed(2)}x ${optimize <= 0.8 ? 'met' : 'MISSED'}`);
    console.log(`  run ${name}, exact <= 1.0x Python: ${exactRatio.toFixed(2)}x ${exactRatio <= 1.0 ? 'met' : 'MISSED'}`);
  }
  for (const [mode, ours, hf] of generation) {
    console.log(`  generation ${mode} >= Hugging Face's tokens/s: ${(ours.rate / hf).toFixed(2)}x ${ours.rate >= hf ? 'met' : 'MISSED'}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
