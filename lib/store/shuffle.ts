// A seeded mixing buffer, as SAELens's mixing_buffer: rows accumulate to a capacity, are
// permuted, half is served in batches and the other half stays to mix with what comes next.
// The same seed over the same store gives the same batches.

/** xoshiro128**: a small, fast, seeded PRNG (uniform 32-bit integers). */
export function seededRandom(seed: number): () => number {
  // splitmix32 spreads the seed over the four words of state.
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const st = [split(), split(), split(), split()];
  return () => {
    const result = Math.imul(((Math.imul(st[1], 5) << 7) | (Math.imul(st[1], 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = (st[1] << 9) >>> 0;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = ((st[3] << 11) | (st[3] >>> 21)) >>> 0;
    return result;
  };
}

/** An unbiased integer in [0, n) (rejection sampling over 32-bit draws). */
function below(random: () => number, n: number): number {
  const limit = 0x100000000 - (0x100000000 % n);
  for (;;) {
    const x = random();
    if (x < limit) return x % n;
  }
}

/** Rows of `width` values, mixed: push rows in, take shuffled batches out. */
export class MixingBuffer<T extends Float32Array | Float64Array | Uint16Array> {
  private rows = 0;
  private readonly data: T;
  private readonly random: () => number;

  constructor(
    private readonly make: (n: number) => T,
    private readonly width: number,
    private readonly capacity: number,
    seed: number,
  ) {
    this.data = make(capacity * width);
    this.random = seededRandom(seed);
  }

  get full(): boolean {
    return this.rows === this.capacity;
  }

  /** Copies up to the free room of `source`'s rows from row `from`; returns how many were taken. */
  push(source: T, from: number, count: number): number {
    const n = Math.min(count, this.capacity - this.rows);
    this.data.set(source.subarray(from * this.width, (from + n) * this.width) as never, this.rows * this.width);
    this.rows += n;
    return n;
  }

  /** Permutes the rows held, then removes and returns the first `n` (Fisher-Yates, seeded). */
  take(n: number): T {
    const w = this.width;
    const tmp = this.make(w);
    for (let i = this.rows - 1; i > 0; i--) {
      const j = below(this.random, i + 1);
      if (j === i) continue;
      tmp.set(this.data.subarray(i * w, (i + 1) * w) as never);
      this.data.copyWithin(i * w, j * w, (j + 1) * w);
      this.data.set(tmp as never, j * w);
    }
    const count = Math.min(n, this.rows);
    const out = this.data.slice(0, count * w) as T;
    this.data.copyWithin(0, count * w, this.rows * w);
    this.rows -= count;
    return out;
  }

  get size(): number {
    return this.rows;
  }
}
