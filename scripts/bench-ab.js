#!/usr/bin/env node
// Before and after, in one run: the same calls (scripts/bench/overhead_worker.js) on two
// checkouts, each set up (npm install, or its addon built and dist/ compiled), alternating in
// their own processes over rounds; medians, and after/before per call. For a refactor that
// must not slow anything down:
//   git worktree add /tmp/before <commit>   (then set it up)
//   node scripts/bench-ab.js /tmp/before .   [ROUNDS, default 5]
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { median } = require('./bench/stats');

const [before, after] = process.argv.slice(2, 4).map((dir) => path.resolve(dir));
const rounds = Number(process.argv[4] || 5);
if (!before || !after) {
  console.error('usage: node scripts/bench-ab.js BEFORE_CHECKOUT AFTER_CHECKOUT [ROUNDS]');
  process.exit(2);
}
const worker = path.join(__dirname, 'bench', 'overhead_worker.js');
const samples = { before: {}, after: {} };
for (let round = 0; round < rounds; round++) {
  for (const [name, checkout] of round % 2
    ? [
        ['after', after],
        ['before', before],
      ]
    : [
        ['before', before],
        ['after', after],
      ]) {
    const run = spawnSync(process.execPath, [worker, checkout], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (run.status !== 0) throw new Error(`${checkout}: ${run.stderr}`);
    for (const [call, ms] of Object.entries(JSON.parse(run.stdout))) (samples[name][call] ??= []).push(ms);
  }
  console.error(`round ${round + 1}/${rounds} done`);
}
const rows = Object.keys(samples.before).map((call) => {
  const [b, a] = [median(samples.before[call]), median(samples.after[call])];
  return { call, 'before CPU ms': b.toFixed(3), 'after CPU ms': a.toFixed(3), 'after / before': (a / b).toFixed(2) };
});
console.log(`CPU time per call, one intra-op thread, medians of ${rounds} alternating rounds; before ${before}, after ${after}`);
console.table(rows);
