// The induction model's data and figure of merit (scripts/induction.py's): sequences of random
// tokens repeated twice, and the mean next-token loss over each half.
import * as torch from '../../lib';
import { rng } from './index';

/** [count, 1 + 2 * half]: BOS (0), `half` random tokens from 1..vocab-1, the same tokens again. */
export function repeatedSequences(count: number, seed: number, half: number, vocab: number): number[][] {
  const next = rng(seed);
  return Array.from({ length: count }, () => {
    const tokens = Array.from({ length: half }, () => 1 + Math.floor(next() * (vocab - 1)));
    return [0, ...tokens, ...tokens];
  });
}

/** The rows as an int64 tensor [rows, seq]. */
export const ids = (rows: number[][]) => torch.tensor(BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

export function repeatLosses(logits: Float32Array, vocab: number, rows: number[][], half: number): { first: number; repeated: number } {
  const seq = rows[0].length;
  let first = 0;
  let repeated = 0;
  rows.forEach((row, b) => {
    for (let i = 0; i < seq - 1; i++) {
      const offset = (b * seq + i) * vocab;
      let top = -Infinity;
      for (let v = 0; v < vocab; v++) top = Math.max(top, logits[offset + v]);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - top);
      const loss = top + Math.log(sum) - logits[offset + row[i + 1]];
      if (i < half) first += loss;
      else repeated += loss;
    }
  });
  return { first: first / (rows.length * half), repeated: repeated / (rows.length * half) };
}
