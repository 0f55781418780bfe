#!/usr/bin/env node
// `npm run bench` part: a torch.export program (.pt2, run node by node through the dispatcher)
// against the same weights as a TorchScript trace in exact mode, in one process: ResNet-18 at
// 224x224 (models/resnet18.pt2 vs resnet18.pt) and GPT-2 small on 128 tokens (gpt2.pt2 vs
// gpt2.pt), forward and a run with captures. The two files' calls alternate, and the ratio
// of each pair is kept: medians of the ratios. Goal: the .pt2 forward within 1.1x.
//
//   BENCH_CALLS=15 node scripts/bench-pt2.js
'use strict';
const os = require('os');
const path = require('path');
const { root } = require('./config');
const { median, timed } = require('./bench/stats');
const torch = require('../dist/lib');

const CALLS = Number(process.env.BENCH_CALLS || 15);
const WARMUP = 2;
const GOAL = 1.1;

// Alternates the TorchScript call and the .pt2 call: each pair sees the same machine state.
async function compare(traced, exported) {
  for (let i = 0; i < WARMUP; i++) {
    await timed(traced, torch.dispose);
    await timed(exported, torch.dispose);
  }
  const ts = [];
  const pt2 = [];
  for (let i = 0; i < CALLS; i++) {
    // Which goes first alternates too.
    if (i % 2 === 0) {
      ts.push(await timed(traced, torch.dispose));
      pt2.push(await timed(exported, torch.dispose));
    } else {
      pt2.push(await timed(exported, torch.dispose));
      ts.push(await timed(traced, torch.dispose));
    }
  }
  return { ts: median(ts), pt2: median(pt2), ratio: median(pt2.map((t, i) => t / ts[i])) };
}

async function main() {
  const info = torch.info();
  console.log(`torch.export (.pt2) against TorchScript exact; ${info.threads} threads, CPU ${info.cpu.capability} (${os.cpus()[0].model})`);
  console.log(`medians of ${CALLS} alternating calls\n`);
  const rows = [];
  const image = torch.tensor(
    Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.37)),
    [1, 3, 224, 224],
  );
  const ids = torch.tensor(
    BigInt64Array.from({ length: 128 }, (_, i) => BigInt((i * 7919) % 50257)),
    [1, 128],
  );
  const cases = [
    { name: 'ResNet-18 224x224', file: 'resnet18', input: image, capture: ['layer1', 'layer2', 'layer3', 'layer4'] },
    { name: 'GPT-2 small, 128 tokens', file: 'gpt2', input: ids, capture: Array.from({ length: 12 }, (_, i) => `transformer.h.${i}`) },
  ];
  for (const c of cases) {
    const traced = await torch.load(path.join(root, 'models', `${c.file}.pt`));
    const exported = await torch.load(path.join(root, 'models', `${c.file}.pt2`));
    const forward = await compare(
      () => traced.forward(c.input),
      () => exported.forward(c.input),
    );
    rows.push({
      model: c.name,
      call: 'forward',
      'TorchScript ms': forward.ts.toFixed(1),
      '.pt2 ms': forward.pt2.toFixed(1),
      '.pt2 / TorchScript': forward.ratio.toFixed(3),
    });
    const capture = await compare(
      () => torch.run(traced, [c.input], { capture: c.capture }),
      () => torch.run(exported, [c.input], { capture: c.capture }),
    );
    rows.push({
      model: c.name,
      call: `run, ${c.capture.length} captures`,
      'TorchScript ms': capture.ts.toFixed(1),
      '.pt2 ms': capture.pt2.toFixed(1),
      '.pt2 / TorchScript': capture.ratio.toFixed(3),
    });
    traced.dispose();
    exported.dispose();
  }
  console.table(rows);
  for (const row of rows.filter((r) => r.call === 'forward')) {
    const ratio = Number(row['.pt2 / TorchScript']);
    console.log(`goal: ${row.model} .pt2 forward <= ${GOAL}x TorchScript exact: ${ratio.toFixed(3)}x ${ratio <= GOAL ? 'met' : 'MISSED'}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
