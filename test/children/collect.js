// Child process for test/store-workers.test.ts: node collect.js REQUEST.json
// The request: { model, out, layers, rows: [[ids...]...] | { count, length, vocab, seed }, batchSize,
// shardBytes, killAfter?, report? }. It collects with the shard taken from the environment (the
// scheduler's variables the test sets), so this is what one array-job task runs. With killAfter it
// SIGKILLs itself after that many batches are durable (a crashed worker); with report it writes
// progress and the resident set size after every batch to that file.
'use strict';
const fs = require('fs');
const torch = require('../../dist/lib');

// Token rows, generated lazily: the dataset never exists in memory at once.
function* generated({ count, length, vocab, seed }) {
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    const row = new Int32Array(length);
    for (let j = 0; j < length; j++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      row[j] = state % vocab;
    }
    yield row;
  }
}

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const model = await torch.load(request.model);
  const samples = [];
  let batches = 0;
  const result = await torch.collect(model, {
    layers: request.layers,
    inputs: Array.isArray(request.rows) ? request.rows : generated(request.rows),
    out: request.out,
    batchSize: request.batchSize,
    shardBytes: request.shardBytes,
    onProgress: (p) => {
      batches++;
      // After a full collection (the parent passes --expose-gc): what is retained, not how far a
      // CPU-starved garbage collector has fallen behind.
      if (request.report) {
        global.gc?.();
        samples.push({ rows: p.rows, rss: process.memoryUsage().rss });
      }
      if (request.killAfter !== undefined && batches === request.killAfter) process.kill(process.pid, 'SIGKILL');
    },
  });
  if (request.report) fs.writeFileSync(request.report, JSON.stringify({ result, samples }));
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  process.stderr.write(`${error.code ?? ''} ${error.stack}\n`);
  process.exit(1);
});
