// The SAE trained at set-up on the induction model's residual stream (scripts/induction_sae.py:
// models/sae/induction-blocks.0, a standard SAE on block 0's output) measured again from
// torchscope's side: loaded with torch.sae.load as a user would, spliced into torch.run, its
// figures recomputed on fresh sequences (this file's generator, not set-up's) and compared with
// figures.json, which set-up measured in PyTorch: reconstruction, L0, dead features, the features
// that detect the current and the previous token, and the repeated half's loss with the SAE
// spliced and with features zeroed. Thresholds that show meaning are asserted on their own too.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { asTensor, expectClose, expectTorchscopeError, maxAbs, MODELS } from './helpers';
import { ids, repeatLosses, repeatedSequences } from './helpers/induction';

const sequences = (count: number, seed: number) => repeatedSequences(count, seed, HALF, VOCAB);

const SAE_DIR = path.join(MODELS, 'sae', 'induction-blocks.0');
const HOOK_POINT = 'blocks.0';
const HALF = 16;
const VOCAB = 64;
const D_MODEL = 64;
/** As many sequences as set-up's evaluation, in batches. */
const SEQUENCES = 512;
const BATCH = 128;
const SEED = 24;

interface Losses {
  first: number;
  repeated: number;
}

interface Detectors {
  tokens: number[];
  features: number[];
  precision: number[];
  recall: number[];
  correlation: number[];
}

/** figures.json, as scripts/induction_sae.py writes it (the fields this test reads). */
interface Figures {
  hookPoint: string;
  hookName: string;
  training: { dSae: number };
  evaluation: { sequences: number; half: number };
  reconstruction: { mse: number; fvu: number; l0: number; dead: number };
  currentToken: Detectors;
  previousToken: Detectors;
  controlFeatures: number[];
  loss: Record<'clean' | 'spliced' | 'splicedWithErrorTerm' | 'previousTokenZeroed' | 'currentTokenZeroed' | 'controlZeroed', Losses> & { chance: number };
}

const FIGURES = path.join(SAE_DIR, 'figures.json');
if (!fs.existsSync(FIGURES)) throw new Error(`${FIGURES} is missing: set-up trains it (npm install, or python scripts/induction_sae.py)`);
const figures = JSON.parse(fs.readFileSync(FIGURES, 'utf8')) as Figures;
const D_SAE = figures.training.dSae;

/** Mean next-token loss over the first half and over the repeated half (scripts/induction.py's losses). */
function losses(logits: Float32Array, rows: number[][]): Losses {
  return repeatLosses(logits, VOCAB, rows, HALF);
}

/** Precision and recall of feature > 0 as a detector of labels == token, and Pearson r of its activation. */
function detectors(features: Float32Array, labels: Int32Array, tokens: number[], chosen: number[]): Omit<Detectors, 'tokens' | 'features'> {
  const n = labels.length;
  const out = { precision: [] as number[], recall: [] as number[], correlation: [] as number[] };
  tokens.forEach((token, i) => {
    const f = chosen[i];
    let fires = 0;
    let positives = 0;
    let hits = 0;
    let sa = 0;
    let saa = 0;
    let sat = 0;
    for (let r = 0; r < n; r++) {
      const a = features[r * D_SAE + f];
      const t = labels[r] === token ? 1 : 0;
      fires += a > 0 ? 1 : 0;
      positives += t;
      hits += a > 0 && t ? 1 : 0;
      sa += a;
      saa += a * a;
      sat += a * t;
    }
    out.precision.push(hits / Math.max(fires, 1));
    out.recall.push(hits / Math.max(positives, 1));
    const cov = sat - (sa * positives) / n;
    out.correlation.push(cov / Math.max(Math.sqrt((saa - (sa * sa) / n) * (positives - (positives * positives) / n)), 1e-12));
  });
  return out;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
/** |actual - expected| within `relative` of expected, or within `absolute`: sampling noise between two sets of sequences. */
function expectNear(actual: number, expected: number, relative: number, absolute: number, what: string): void {
  const bound = Math.max(relative * Math.abs(expected), absolute);
  if (!(Math.abs(actual - expected) <= bound)) throw new Error(`${what}: ${actual} here, ${expected} at set-up (allowed ±${bound.toPrecision(3)})`);
}

/**
 * Each token's figures against set-up's: a token occurs about 260 times in either set of
 * sequences, so one precision differs by up to ~0.1 between them (3 sigma); their medians agree closer.
 */
function compareDetectors(got: Omit<Detectors, 'tokens' | 'features'>, want: Detectors, what: string): void {
  for (const key of ['precision', 'recall', 'correlation'] as const) {
    got[key].forEach((value, i) => expectNear(value, want[key][i], 0, 0.15, `${what} ${want.tokens[i]}: ${key}`));
    expectNear(median(got[key]), median(want[key]), 0, 0.03, `${what}: median ${key}`);
  }
}

let model: torch.Model;
let sae: torch.Sae;
const rows = sequences(SEQUENCES, SEED);
const batches = Array.from({ length: SEQUENCES / BATCH }, (_, b) => rows.slice(b * BATCH, (b + 1) * BATCH));
const tokens = rows.length * rows[0].length;
/** Block 0's output of every token, [tokens, D_MODEL], from plain runs. */
let x: Float32Array;
/** From runs with the SAE spliced (error term on): features [tokens, D_SAE], reconstruction [tokens, D_MODEL]. */
let features: Float32Array;
let reconstruction: Float32Array;
let current: Int32Array;
let previous: Int32Array;
const measured: Partial<Record<keyof Figures['loss'], Losses>> = {};

/** The logits of every batch with these options (plain forwards without), and the captures asked. */
async function runAll(options: torch.RunOptions | null, capture: string[] = []): Promise<{ logits: Float32Array; captures: Float32Array[] }> {
  const logits = new Float32Array(tokens * VOCAB);
  const captures = capture.map(() => new Float32Array(0));
  const parts: Float32Array[][] = capture.map(() => []);
  let offset = 0;
  for (const batch of batches) {
    const input = ids(batch);
    const result = await torch.run(model, [input], { ...(options ?? {}), capture: [...(options?.capture ?? []), ...capture] });
    const out = asTensor(result.output, 'logits');
    logits.set(out.data() as Float32Array, offset);
    offset += out.data().length;
    capture.forEach((layer, i) => parts[i].push((asTensor(result.activations[layer], layer).data() as Float32Array).slice()));
    result.dispose();
    input.dispose();
  }
  parts.forEach((chunks, i) => {
    const joined = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      joined.set(c, at);
      at += c.length;
    }
    captures[i] = joined;
  });
  return { logits, captures };
}

const zeroed = (features: number[]): torch.RunOptions => ({
  saes: [sae],
  errorTerm: true,
  patch: { [`${HOOK_POINT}:features`]: { zero: true, channels: [...new Set(features)] } },
});

beforeAll(async () => {
  model = await torch.load(path.join(MODELS, 'induction.pt'));
  sae = await torch.sae.load(SAE_DIR, { model, hookPoint: HOOK_POINT });
  current = Int32Array.from(rows.flat());
  previous = Int32Array.from(rows.flatMap((row) => row.map((_, i) => (i === 0 ? -1 : row[i - 1]))));
  const clean = await runAll(null, [HOOK_POINT]);
  x = clean.captures[0];
  measured.clean = losses(clean.logits, rows);
  const spliced = await runAll({ saes: [sae], errorTerm: true }, [`${HOOK_POINT}:features`, `${HOOK_POINT}:reconstruction`]);
  [features, reconstruction] = spliced.captures;
  measured.splicedWithErrorTerm = losses(spliced.logits, rows);
  // The error term gives back the model's own logits: 1e-5 of their scale (the rounding of x - r + r).
  expectClose(
    { data: spliced.logits, shape: [spliced.logits.length], dtype: 'float32' },
    { data: clean.logits, shape: [clean.logits.length], dtype: 'float32' },
    1e-5 * Math.max(1, maxAbs(clean.logits)),
    'logits with the error term',
  );
  measured.spliced = losses((await runAll({ saes: [sae] })).logits, rows);
  measured.previousTokenZeroed = losses((await runAll(zeroed(figures.previousToken.features))).logits, rows);
  measured.currentTokenZeroed = losses((await runAll(zeroed(figures.currentToken.features))).logits, rows);
  measured.controlZeroed = losses((await runAll(zeroed(figures.controlFeatures))).logits, rows);
  const summary = Object.entries(measured).map(([k, v]) => `${k} ${v.first.toFixed(3)}/${v.repeated.toFixed(3)}`);
  console.log(`first/repeated-half loss on ${SEQUENCES} fresh sequences: ${summary.join(', ')} (set-up: ${JSON.stringify(figures.loss)})`);
});

afterAll(() => {
  sae?.dispose();
  model?.dispose();
});

test('the files load as a user loads them: the point named, since this model is no family torchscope maps hook names on', async () => {
  expect(sae.format).toBe('saelens');
  expect(sae.architecture).toBe('standard');
  expect([sae.dIn, sae.dSae]).toEqual([D_MODEL, D_SAE]);
  expect(sae.hookName).toBe(figures.hookName);
  expect(sae.hookPoint).toBe(figures.hookPoint);
  expect(sae.sparsity?.shape).toEqual([D_SAE]);
  // log10 firing frequencies on the training activations: every feature fired there (SAELens's floor, log10(1e-10), is -10).
  const sparsity = sae.sparsity!.data() as Float32Array;
  expect(Math.max(...sparsity)).toBeLessThanOrEqual(0);
  expect(Math.min(...sparsity)).toBeGreaterThan(-9);
  await expectTorchscopeError(() => torch.sae.load(SAE_DIR, { model }), 'INVALID_ARGUMENT', /blocks\.0\.hook_resid_post.*pass \{ hookPoint \}/s);
});

test("the spliced run's features are the SAE's encoding of block 0's output; SAELens's cache name is an alias", async () => {
  const input = ids(batches[0].slice(0, 4));
  const result = await torch.run(model, [input], { saes: [sae], capture: [`${HOOK_POINT}:features`, `${figures.hookName}.hook_sae_acts_post`, HOOK_POINT] });
  const f = asTensor(result.activations[`${HOOK_POINT}:features`]);
  expect(f.shape).toEqual([4, 1 + 2 * HALF, D_SAE]);
  const n = f.data().length;
  const head = { data: features.subarray(0, n), shape: f.shape, dtype: 'float32' as const };
  expectClose(f, head, 1e-5, 'features of the same sequences');
  expectClose(asTensor(result.activations[`${figures.hookName}.hook_sae_acts_post`]), f, 0, 'hook_sae_acts_post');
  const plain = (await torch.activations(model, HOOK_POINT, input)) as torch.Tensor;
  const encoded = await sae.encode(plain);
  expectClose(encoded, f, 1e-5, 'sae.encode(x)');
  for (const t of [plain, encoded, input]) t.dispose();
  result.dispose();
});

test('reconstruction, L0 and dead features as set-up measured them, and sparse', () => {
  let squared = 0;
  const mean = new Float64Array(D_MODEL);
  for (let i = 0; i < x.length; i++) {
    squared += (reconstruction[i] - x[i]) ** 2;
    mean[i % D_MODEL] += x[i] / tokens;
  }
  let variance = 0;
  for (let i = 0; i < x.length; i++) variance += (x[i] - mean[i % D_MODEL]) ** 2;
  let active = 0;
  const fired = new Uint8Array(D_SAE);
  for (let i = 0; i < features.length; i++) {
    if (features[i] > 0) {
      active++;
      fired[i % D_SAE] = 1;
    }
  }
  const got = { mse: squared / x.length, fvu: squared / variance, l0: active / tokens, dead: D_SAE - fired.reduce((a, b) => a + b, 0) };
  console.log(`reconstruction on fresh sequences: ${JSON.stringify(got)}; set-up: ${JSON.stringify(figures.reconstruction)}`);
  expectNear(got.mse, figures.reconstruction.mse, 0.05, 0, 'MSE');
  expectNear(got.fvu, figures.reconstruction.fvu, 0.05, 0, 'FVU');
  expectNear(got.l0, figures.reconstruction.l0, 0.05, 0, 'L0');
  expectNear(got.dead, figures.reconstruction.dead, 0, 3, 'dead features');
  expect(got.fvu).toBeLessThan(0.2);
  expect(got.l0).toBeLessThan(10);
  expect(got.dead).toBeLessThan(D_SAE / 20);
});

test('one feature per token fires exactly where that token is (precision > 0.9, recall 1)', () => {
  const { tokens: values, features: chosen } = figures.currentToken;
  const got = detectors(features, current, values, chosen);
  console.log(
    `current-token features: precision min ${Math.min(...got.precision).toFixed(3)} median ${median(got.precision).toFixed(3)}, ` +
      `recall min ${Math.min(...got.recall).toFixed(3)}, r median ${median(got.correlation).toFixed(3)}`,
  );
  compareDetectors(got, figures.currentToken, 'current token');
  expect(new Set(chosen).size).toBe(values.length);
  expect(got.precision.filter((p) => p > 0.9).length).toBeGreaterThanOrEqual(values.length - 4);
  expect(Math.min(...got.recall)).toBeGreaterThan(0.99);
  expect(Math.min(...got.correlation)).toBeGreaterThan(0.95);
});

test('one feature per token reads "the previous token was t": the previous-token head\'s output, found by the SAE', () => {
  const { tokens: values, features: chosen } = figures.previousToken;
  const got = detectors(features, previous, values, chosen);
  console.log(
    `previous-token features: precision min ${Math.min(...got.precision).toFixed(3)} median ${median(got.precision).toFixed(3)}, ` +
      `recall min ${Math.min(...got.recall).toFixed(3)}, r min ${Math.min(...got.correlation).toFixed(3)} median ${median(got.correlation).toFixed(3)}`,
  );
  compareDetectors(got, figures.previousToken, 'previous token');
  expect(new Set(chosen).size).toBeGreaterThanOrEqual(values.length - 2);
  expect(median(got.recall)).toBeGreaterThan(0.95);
  expect(median(got.correlation)).toBeGreaterThan(0.9);
  expect(got.correlation.filter((r) => r > 0.8).length).toBeGreaterThanOrEqual(values.length - 3);
  // Features of current and previous tokens are distinct.
  expect(chosen.filter((f) => figures.currentToken.features.includes(f))).toEqual([]);
});

test('spliced without the error term the loss rises by what set-up measured; with it, not at all', () => {
  for (const key of Object.keys(measured) as (keyof Figures['loss'])[]) {
    const got = measured[key]!;
    const want = figures.loss[key] as Losses;
    expectNear(got.first, want.first, 0.03, 0, `${key}: first-half loss`);
    expectNear(got.repeated, want.repeated, 0.15, 0.03, `${key}: repeated-half loss`);
  }
  expect(measured.splicedWithErrorTerm!.repeated).toBeCloseTo(measured.clean!.repeated, 5);
  expect(measured.spliced!.repeated - measured.clean!.repeated).toBeGreaterThan(0.03);
  expect(measured.spliced!.repeated).toBeLessThan(2 * measured.clean!.repeated + 0.1);
});

test('zeroing the previous-token features breaks induction; zeroing as many other features barely does', () => {
  const { clean, previousTokenZeroed, controlZeroed } = measured as Record<string, Losses>;
  expect(previousTokenZeroed.repeated).toBeGreaterThan(clean.repeated + 1);
  expect(controlZeroed.repeated).toBeLessThan(clean.repeated + 0.5);
  expect(Math.abs(previousTokenZeroed.first - clean.first)).toBeLessThan(0.2);
});
