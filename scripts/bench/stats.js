// Shared by the benchmark scripts: timing here is noisy, so every figure is a median.
'use strict';

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Milliseconds of each of `repeats` awaited calls of fn, after `warmup` untimed ones. */
async function timeCalls(fn, warmup, repeats) {
  for (let i = 0; i < warmup; i++) await fn();
  const out = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return out;
}

/** Milliseconds of one awaited call; its result is handed to `release` (torch.dispose) after the clock stops. */
async function timed(call, release) {
  const start = process.hrtime.bigint();
  const result = await call();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  release(result);
  return ms;
}

module.exports = { median, timeCalls, timed };
