#!/usr/bin/env node
// BERT-base attention extraction: torch.attention (tokenization included) against Python
// transformers (eager, output_attentions=True, no_grad, fast tokenizer included) on the same
// weights (models/bert.pt), in one run, interleaved per round; medians. Goal: torchscope at
// most 0.9x Python's time. Plus tokenizer throughput (lib/text/bert-tokenizer.ts encode vs the Rust
// `tokenizers` encode Python's fast tokenizer runs) and load({ optimize: true }).
//   BENCH_ROUNDS (default 2), BENCH_REPEATS (default 5).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { root, pythonPath } = require('./config');
const { median, timeCalls } = require('./bench/stats');

const torch = require('../dist/lib');
const { attention } = torch;

const MODEL = path.join(root, 'models', 'bert.pt');
const VOCAB = path.join(root, 'models', 'bert-vocab.txt');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 2);
const REPEATS = Number(process.env.BENCH_REPEATS || 5);
// TorchScript's profiling executor specialises a program over its first calls per input shape.
const WARMUP = 3;
const GOAL = 0.9;
const TOKENIZER_COUNT = 2000;

const WORDS = 'the quick brown fox jumps over a lazy dog while seven small cats sat on warm mats near old red barns'.split(' ');
// 126 single-token words + [CLS] + [SEP] = 128 tokens; `shift` varies the text per batch item.
function sentence(shift) {
  return Array.from({ length: 126 }, (_, i) => WORDS[(i * 7 + shift) % WORDS.length]).join(' ');
}

function time(fn) {
  return timeCalls(fn, WARMUP, REPEATS);
}

function maxRelDiff(a, b) {
  const x = a.data();
  const y = b.data();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(Math.abs(y[i]), 1e-3));
  return worst;
}

async function main() {
  const started = Date.now();
  const tokenizer = await torch.BertTokenizer.fromVocab(VOCAB);
  const texts = { single: [sentence(0)], batch8: Array.from({ length: 8 }, (_, i) => sentence(i)) };
  const seq = tokenizer.encode(texts.single[0]).ids.length;
  if (seq !== 128) throw new Error(`the benchmark sentence is ${seq} tokens, not 128`);

  const exact = await torch.load(MODEL);
  const optimized = await torch.load(MODEL, { optimize: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-bench-bert-'));
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(
    request,
    JSON.stringify({ model: MODEL, vocab: VOCAB, texts, warmup: WARMUP, repeats: REPEATS, tokenizerText: texts.single[0], tokenizerCount: TOKENIZER_COUNT }),
  );

  const samples = {};
  const add = (key, values) => (samples[key] = (samples[key] || []).concat(values));
  let pyTokenizer = [];
  let pyThreads;
  for (let round = 0; round < ROUNDS; round++) {
    const py = spawnSync(pythonPath(), [path.join(root, 'scripts', 'bench', 'bert_reference.py'), request], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status !== 0) throw new Error(`bert_reference.py failed: ${py.stderr}`);
    const result = JSON.parse(py.stdout);
    for (const [name, values] of Object.entries(result.times)) add(`python_${name}`, values);
    pyTokenizer.push(result.tokenizer);
    pyThreads = result.threads;
    for (const [name, input] of Object.entries(texts)) {
      for (const [mode, model] of [
        ['exact', exact],
        ['optimized', optimized],
      ]) {
        add(`torchscope_${mode}_${name}`, await time(async () => (await attention(model, input, { tokenizer })).attentions.dispose()));
      }
    }
  }

  // Tokenizer throughput: one 128-token sentence, encode only.
  for (let i = 0; i < 50; i++) tokenizer.encode(texts.single[0]);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < TOKENIZER_COUNT; i++) tokenizer.encode(texts.single[0]);
  const jsTokenizer = TOKENIZER_COUNT / (Number(process.hrtime.bigint() - t0) / 1e9);
  const pyTok = median(pyTokenizer);

  // optimize: true parity against the exact program (1e-4 relative, probabilities >= 1e-3 scale).
  const a = await attention(exact, texts.batch8, { tokenizer });
  const b = await attention(optimized, texts.batch8, { tokenizer });
  const optRel = maxRelDiff(b.attentions, a.attentions);

  console.log(
    `BERT-base attention extraction (models/bert.pt, [B, 12, 12, 128, 128]), medians of ${ROUNDS}x${REPEATS} runs; libtorch threads ${torch.info ? torch.info().threads : '?'}, Python torch threads ${pyThreads}`,
  );
  const rows = [];
  for (const name of Object.keys(texts)) {
    const py = median(samples[`python_${name}`]);
    for (const mode of ['exact', 'optimized']) {
      const ts = median(samples[`torchscope_${mode}_${name}`]);
      const ratio = ts / py;
      rows.push({
        case: `${name} ${mode}`,
        torchscope_ms: ts.toFixed(1),
        python_ms: py.toFixed(1),
        ratio: ratio.toFixed(2) + 'x',
        goal: `<= ${GOAL}x ${ratio <= GOAL ? 'met' : 'MISSED'}`,
      });
    }
  }
  console.table(rows);
  console.log(
    `tokenizer, one 128-token sentence: lib/text/bert-tokenizer.ts ${jsTokenizer.toFixed(0)} sentences/s, Python tokenizers (Rust) ${pyTok.toFixed(0)} sentences/s, ratio ${(jsTokenizer / pyTok).toFixed(2)}x`,
  );
  console.log(`optimize: true vs exact, batch 8: max relative difference ${optRel.toExponential(2)} (${optRel <= 1e-4 ? 'within' : 'OUTSIDE'} 1e-4)`);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  fs.rmSync(dir, { recursive: true, force: true });
  exact.dispose();
  optimized.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
