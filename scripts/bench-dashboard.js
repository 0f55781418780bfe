#!/usr/bin/env node
// Dashboard throughput: torch.dashboard.features over GPT-2 small-sized activations ([rows, 128,
// 768], an in-memory source of BATCHES batches of 32 sequences) with a 16,384-latent standard SAE,
// every latent, both passes; and the same for the 3,072 neurons of an MLP-sized layer without an
// SAE. Each with SAEDashboard's windows (buffer [5, 5]) and with whole rows as windows (the
// default, Neuronpedia's), whose time is mostly the windows themselves (70 examples of 128 values
// for every feature). Tokens per second, medians of ROUNDS. There is no Python runner to compare with here
// (SAEDashboard is not installable offline); the figures are absolute.
//
//   node scripts/bench-dashboard.js      (needs `npm run build:ts` for dist/)
//   BENCH_ROUNDS=2 BENCH_BATCHES=4
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { median } = require('./bench/stats');
const torch = require('../dist/lib');

const ROUNDS = Number(process.env.BENCH_ROUNDS || 2);
const BATCHES = Number(process.env.BENCH_BATCHES || 4);
const ROWS = 32;
const CONTEXT = 128;
const D_IN = 768;
const D_SAE = 16384;
const NEURONS = 3072;

function values(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2;
  }
  return out;
}

function source(width) {
  const tokens = torch.tensor(
    Int32Array.from({ length: ROWS * CONTEXT }, (_, i) => (i * 7919) % 50257),
    [ROWS, CONTEXT],
    'int32',
  );
  const acts = [0, 1].map((seed) => torch.tensor(values(ROWS * CONTEXT * width, seed + 1), [ROWS, CONTEXT, width]));
  return {
    contextSize: CONTEXT,
    async *batches() {
      for (let b = 0; b < BATCHES; b++) yield { tokens, activations: acts[b % 2] };
    },
  };
}

async function main() {
  const started = performance.now();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-bench-dashboard-'));
  try {
    const scale = 1 / Math.sqrt(D_IN);
    const host = (data, shape) => ({ data, dtype: 'float32', shape });
    const tensors = {
      W_enc: host(
        values(D_IN * D_SAE, 3).map((v) => v * scale),
        [D_IN, D_SAE],
      ),
      b_enc: host(new Float32Array(D_SAE).fill(-0.2), [D_SAE]),
      W_dec: host(
        values(D_SAE * D_IN, 4).map((v) => v * scale),
        [D_SAE, D_IN],
      ),
      b_dec: host(new Float32Array(D_IN), [D_IN]),
    };
    const { writeSafetensors } = require('../dist/lib/io/safetensors');
    await writeSafetensors(path.join(folder, 'sae_weights.safetensors'), tensors);
    const cfg = {
      architecture: 'standard',
      d_in: D_IN,
      d_sae: D_SAE,
      dtype: 'float32',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      metadata: { hook_name: 'blocks.6.hook_resid_pre', sae_lens_version: '6.18.0' },
    };
    fs.writeFileSync(path.join(folder, 'cfg.json'), JSON.stringify(cfg));
    const sae = await torch.sae.load(folder, { hookPoint: 'blocks.6' });
    const tokens = BATCHES * ROWS * CONTEXT;
    const time = async (run) => {
      const seconds = [];
      for (let i = 0; i < ROUNDS; i++) {
        const t = performance.now();
        await run();
        seconds.push((performance.now() - t) / 1000);
      }
      return median(seconds);
    };
    const saeSource = source(D_IN);
    const neuronSource = source(NEURONS);
    const all = Array.from({ length: NEURONS }, (_, i) => i);
    console.log(
      `\nFeature dashboards over ${tokens} tokens (${BATCHES} batches of ${ROWS} x ${CONTEXT}), two passes, every feature; median of ${ROUNDS}; ${torch.info().threads} threads\n`,
    );
    for (const buffer of [[5, 5], null]) {
      const withSae = await time(() => torch.dashboard.features(saeSource, { sae, buffer }));
      const neurons = await time(() => torch.dashboard.features(neuronSource, { neurons: all, buffer }));
      const windows = buffer ? 'windows of 11 (buffer [5, 5])' : 'whole rows as windows';
      console.log(`  SAE ${D_IN} -> ${D_SAE} latents, ${windows.padEnd(30)} ${(tokens / withSae).toFixed(0).padStart(7)} tokens/s  (${withSae.toFixed(1)} s)`);
      console.log(
        `  ${NEURONS} neurons, no SAE, ${windows.padEnd(30)}        ${(tokens / neurons).toFixed(0).padStart(7)} tokens/s  (${neurons.toFixed(1)} s)`,
      );
    }
    console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
    sae.dispose();
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
