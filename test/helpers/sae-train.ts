// The data torch.sae.train's tests train on (test/sae-train*.test.ts): batches of activations of
// a seeded sparse-feature model, the same for the same seed.
import * as torch from '../../lib';
import { randn, rng } from './index';

export const D_IN = 32;
export const TOKENS = 64;

/**
 * Activations of a sparse-feature model: 48 unit directions, each token a few of them at random
 * magnitudes, plus an offset and a little noise; [batches * TOKENS, D_IN].
 */
export function activations(batches: number, seed: number): Float32Array {
  const features = 48;
  const directions = randn(features * D_IN, 1000 + seed);
  for (let f = 0; f < features; f++) {
    const row = directions.subarray(f * D_IN, (f + 1) * D_IN);
    const norm = Math.hypot(...row);
    for (let i = 0; i < D_IN; i++) row[i] /= norm;
  }
  const offset = randn(D_IN, 2000 + seed);
  const noise = randn(batches * TOKENS * D_IN, 3000 + seed);
  const next = rng(4000 + seed);
  const out = new Float32Array(batches * TOKENS * D_IN);
  for (let t = 0; t < batches * TOKENS; t++) {
    const x = out.subarray(t * D_IN, (t + 1) * D_IN);
    for (let i = 0; i < D_IN; i++) x[i] = 0.3 * offset[i] + 0.05 * noise[t * D_IN + i];
    for (let f = 0; f < features; f++) {
      if (next() >= 0.08) continue;
      const magnitude = 0.5 + 1.5 * next();
      for (let i = 0; i < D_IN; i++) x[i] += magnitude * directions[f * D_IN + i];
    }
  }
  return out;
}

/** `count` batches [TOKENS, D_IN] of `data`. */
export function batchTensors(data: Float32Array, count: number): torch.Tensor[] {
  return Array.from({ length: count }, (_, b) => torch.tensor(data.subarray(b * TOKENS * D_IN, (b + 1) * TOKENS * D_IN), [TOKENS, D_IN]));
}
