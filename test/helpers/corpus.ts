// Deterministic English-like texts of varied length, for datasets tests (stores, dashboards).
import { rng } from './index';

const WORDS = 'the a induction head copies tokens it saw before after attention layer residual stream feature sparse dictionary model'.split(' ');

/** `count` texts of 3 to 32 words, the same for the same seed. */
export function corpus(count: number, seed: number): string[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: 3 + Math.floor(next() * 30) }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' '));
}
