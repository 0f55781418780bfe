// What the probe suites share: the data they fit on (the 8x8 digits from scikit-learn's wheel,
// the digits CNN's activations of them, GPT-2 fixture hidden states), the exchange with
// test/python/probe_reference.py, and the comparisons.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../../lib';
import { modelPath, randint, readValue, refTensor, ROOT, runPythonScript } from './index';

const REFERENCE = path.join(ROOT, 'test', 'python', 'probe_reference.py');
// GPT-2 fixture (models/llm/gpt2): batch, sequence, vocabulary, hidden size.
export const [BATCH, SEQ, VOCAB, HIDDEN] = [16, 12, 300, 32];

export type Spec = { file: string; dtype: string; shape: number[] };
export type Ref = Record<string, any>;

/** Files for the reference and its answers, under `dir`. */
export class Exchange {
  private files = 0;
  constructor(private readonly dir: string) {}

  /** Raw little-endian data (reference.py's read_tensor). */
  write(data: ArrayBufferView, shape: number[], dtype: string): Spec {
    const file = path.join(this.dir, `t${this.files++}.bin`);
    fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return { file, dtype, shape };
  }
  tensor(t: torch.Tensor): Spec {
    return this.write(t.data(), t.shape, t.dtype);
  }
  ints(values: ArrayLike<number>): Spec {
    return this.write(Int32Array.from(values), [values.length], 'int32');
  }
  floats(values: ArrayLike<number>): Spec {
    return this.write(Float64Array.from(values), [values.length], 'float64');
  }

  async python(request: object): Promise<Ref> {
    const out = path.join(this.dir, `out${this.files++}`);
    const file = path.join(this.dir, `request${this.files++}.json`);
    fs.writeFileSync(file, JSON.stringify({ out, ...request }));
    await runPythonScript(REFERENCE, [file]);
    return JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  }
}

/** A reference tensor's values. */
export const values = (v: any): Float64Array => Float64Array.from(refTensor(readValue(v)).data as ArrayLike<number>, Number);
export const numbers = (t: torch.Tensor): Float64Array => Float64Array.from(t.data() as ArrayLike<number | bigint>, Number);

/** max |actual - expected| / max |expected| (0 when both are zero). */
export function relative(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff === 0 ? 0 : diff / scale;
}

export function centered(v: ArrayLike<number>): Float64Array {
  const mean = Array.from(v).reduce((a, b) => a + b, 0) / v.length;
  return Float64Array.from(v, (x) => x - mean);
}

/** The rows [start, end) of a [n, d] tensor, as a new tensor. */
export function rowsOf(t: torch.Tensor, start: number, end: number): torch.Tensor {
  const d = t.shape[1];
  return torch.tensor((t.data() as Float32Array | Float64Array).slice(start * d, end * d), [end - start, d], t.dtype);
}

export interface ProbeData {
  /** The digits, float64 [1797, 64]: load_digits().data / 16, intensities in [0, 1]. */
  x: torch.Tensor;
  y: Int32Array;
  digits: torch.Model;
  /** The digits CNN's relu3 of x as images, float32 [1797, 64]. */
  acts: torch.Tensor;
  gpt2: torch.Model;
  /** [BATCH, SEQ] seeded token ids. */
  ids: torch.Tensor;
  tokens: Int32Array;
  /** transformer.h.0 at every position, [BATCH * SEQ, HIDDEN] (rows are [batch, position] flattened). */
  hidden: torch.Tensor;
  dispose(): void;
}

export async function probeData(exchange: Exchange): Promise<ProbeData> {
  const data = await exchange.python({ task: 'digits' });
  const x = torch.tensor(values(data.x), data.x.shape, 'float64');
  const y = Int32Array.from(values(data.y));
  const [digits, gpt2] = await Promise.all([torch.load(modelPath('digits-cnn.pt')), torch.load(modelPath('llm/gpt2.pt'))]);
  const images = torch.tensor(Float32Array.from(x.data() as Float64Array), [y.length, 1, 8, 8]);
  const acts = (await torch.activations(digits, 'relu3', images)) as torch.Tensor;
  images.dispose();
  const ids = torch.tensor(randint(BATCH * SEQ, VOCAB, 17), [BATCH, SEQ]);
  const h0 = (await torch.activations(gpt2, 'transformer.h.0', ids)) as torch.Tensor;
  const hidden = torch.tensor((h0.data() as Float32Array).slice(), [BATCH * SEQ, HIDDEN]);
  h0.dispose();
  return {
    x,
    y,
    digits,
    acts,
    gpt2,
    ids,
    tokens: Int32Array.from(ids.data() as BigInt64Array, Number),
    hidden,
    dispose() {
      for (const t of [x, acts, ids, hidden]) t.dispose();
      digits.dispose();
      gpt2.dispose();
    },
  };
}

/** Labels: even digits; digits from 5 (a binary split for massMean). */
export const parity = (y: Int32Array) => Int32Array.from(y, (v) => v % 2);
export const high = (y: Int32Array) => Int32Array.from(y, (v) => (v >= 5 ? 1 : 0));
/** The GPT-2 rows' position, by thirds (0..3, 4..7, 8..11): what its positional embeddings carry. */
export const thirds = (tokens: Int32Array) => Int32Array.from(tokens, (_, i) => Math.floor((i % SEQ) / 4));
