// Which SAE features matter (lib/sae/analysis.ts), against test/python/sae_splice_reference.py's
// splice of the same SAE file into the eager Hugging Face GPT-2 of models/llm/gpt2 (tied head):
// the features at each token, gradient x activation at ':features' for a logit, the exact
// effect of ablating each of the top features at every position (one Python forward per
// feature), and each feature's decoder row through the final norm and the head. 1e-5 of the
// values' scale.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectClose, expectTorchscopeError, MODELS, randint, readValue, refTensor, RefValue, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const REFERENCE = path.join(ROOT, 'test', 'python', 'sae_splice_reference.py');
const FOLDER = path.join(MODELS, 'llm', 'gpt2');
const SEQ = 9;
const D_SAE = 48;
const TOKEN = 11;
const TOP = 5;
const TOL = 1e-5;
const READ = 'transformer.h.1:input';
const HEAD = ['transformer.ln_f', 'lm_head'];

type RefTensor = ReturnType<typeof refTensor>;
interface Answer {
  output: RefValue;
  captures: Record<string, RefValue>;
}

let dir: string;
let model: torch.Model;
let sae: torch.Sae;
let ids: number[];
let answers: Record<string, Answer | { top: number[][]; bottom: number[][] } | { error: string }>;

function answer<T>(id: string): T {
  const value = answers[id];
  if (!value || 'error' in value) throw new Error(`reference ${id}: ${value ? (value as { error: string }).error : 'missing'}`);
  return value as T;
}

// [seq, d_sae] of the reference's [1, seq, d_sae].
const capture = (id: string, name: string): RefTensor => ({ ...refTensor(readValue(answer<Answer>(id).captures[name]), `${id} ${name}`), shape: [SEQ, D_SAE] });
const logit = (id: string): number => {
  const logits = refTensor(readValue(answer<Answer>(id).output), id);
  const vocab = logits.shape[2];
  return (logits.data as Float32Array)[(SEQ - 1) * vocab + TOKEN];
};
const scaled = (t: RefTensor) => TOL * Math.max(1, ...Array.from(t.data as Float32Array, Math.abs));

beforeAll(async () => {
  dir = scratchDir('sae-analysis');
  model = await torch.load(path.join(MODELS, 'llm', 'gpt2.pt'));
  const hidden = model.manifest!.hiddenSize!;
  ids = Array.from(randint(SEQ, model.manifest!.vocabSize!, 5), Number);
  const idsFile = path.join(dir, 'ids.bin');
  fs.writeFileSync(idsFile, Buffer.from(BigInt64Array.from(ids, BigInt).buffer));
  const input = { file: idsFile, dtype: 'int64', shape: [1, SEQ] };
  const splice = (edit: unknown = null) => ({ sae: 'std', read: READ, write: READ, errorTerm: true, heads: null, residMid: null, edit });
  const cases: object[] = [
    { id: 'grad', folder: FOLDER, ids: input, splices: [splice()], capture: [`${READ}:features`, `${READ}:features.grad`], gradient: { token: TOKEN } },
    // Every feature ablated at every position: the test compares the ones torchscope ranks first.
    ...Array.from({ length: D_SAE }, (_, f) => ({ id: `ablate/${f}`, folder: FOLDER, ids: input, splices: [splice({ mode: 'zero', channels: [f] })] })),
    { id: 'direct', folder: FOLDER, sae: 'std', direct: { head: HEAD, features: Array.from({ length: D_SAE }, (_, f) => f), k: 3 } },
  ];
  const saes = { std: { arch: 'standard', hook_name: 'blocks.1.hook_resid_pre', hook_name_out: null, d_in: hidden, d_out: null, seed: 21, fields: {} } };
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out: dir, saes, cases }));
  await runPythonScript(REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  answers = index.cases;
  sae = await torch.sae.load(index.saes.std, { model });
  expect(sae.hookPoint).toBe(READ);
  expect(sae.dSae).toBe(D_SAE);
}, 600_000);

afterAll(() => {
  sae?.dispose();
  model?.dispose();
  removeDir(dir);
});

test('topFeatures: the features at each token equal the splice, and each position lists its largest', async () => {
  const result = await torch.sae.topFeatures(model, sae, ids, { k: 4 });
  const expected = capture('grad', `${READ}:features`);
  expectClose(result.features, expected, scaled(expected), 'features');
  const data = expected.data as Float32Array;
  result.top.forEach(({ position, features }) => {
    const row = Array.from(data.subarray(position * D_SAE, (position + 1) * D_SAE));
    const order = row
      .map((v, i) => [v, i])
      .filter(([v]) => v > 0)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 4)
      .map(([, i]) => i);
    expect(features.map((f) => f.index)).toEqual(order);
  });
  expect(result.tokens).toEqual(ids.map(String));
  result.dispose();
});

test('featureAttribution: gradient x activation equals autograd through the Python splice; the top ablations equal Python ablating them', async () => {
  const result = await torch.sae.featureAttribution(model, sae, ids, { metric: { logit: TOKEN, position: -1 }, top: TOP });
  const features = capture('grad', `${READ}:features`);
  const grad = capture('grad', `${READ}:features.grad`);
  const product = Float32Array.from(grad.data as Float32Array, (g, i) => g * (features.data as Float32Array)[i]);
  const expected = { ...grad, data: product };
  expectClose(result.attribution, expected, scaled(expected), 'attribution');
  expect(result.clean).toBeCloseTo(logit('grad'), 4);
  expect(result.ablations).toHaveLength(TOP);
  const total = result.total.data() as Float32Array;
  const ranked = Array.from(total.keys()).sort((a, b) => Math.abs(total[b]) - Math.abs(total[a]));
  expect(result.ablations.map((a) => a.feature)).toEqual(ranked.slice(0, TOP));
  for (const { feature, effect } of result.ablations) {
    expect(Math.abs(effect - (logit(`ablate/${feature}`) - logit('grad')))).toBeLessThan(1e-4);
  }
  // The estimate tracks the exact effect: the comparison is not of numbers that are all 0.
  expect(Math.max(...result.ablations.map((a) => Math.abs(a.effect)))).toBeGreaterThan(1e-3);
  result.dispose();
});

test('directLogitEffects: each decoder row through the final norm and the tied head, its top and bottom tokens', async () => {
  const effects = await torch.sae.directLogitEffects(model, sae, { head: HEAD, k: 3 });
  const want = answer<{ top: number[][]; bottom: number[][] }>('direct');
  expect(effects).toHaveLength(D_SAE);
  effects.forEach((e, f) => {
    expect(e.feature).toBe(f);
    expect(e.top.map((t) => t.id)).toEqual(want.top[f]);
    expect(e.bottom.map((t) => t.id)).toEqual(want.bottom[f]);
  });
});

test('bad arguments', async () => {
  await expectTorchscopeError(() => torch.sae.topFeatures({} as never, sae, ids), 'INVALID_ARGUMENT', /torch\.load/);
  await expectTorchscopeError(() => torch.sae.featureAttribution(model, sae, ids, {} as never), 'INVALID_ARGUMENT', /metric/);
  await expectTorchscopeError(() => torch.sae.directLogitEffects(model, sae, { head: [] }), 'INVALID_ARGUMENT', /head/);
  await expectTorchscopeError(() => torch.sae.topFeatures(model, sae, [], {}), 'INVALID_ARGUMENT', /prompt must be a non-empty array/);
});

test("patchingSweep with the SAE spliced, sweeping its ':features', equals one patched run per cell", async () => {
  const layer = `${READ}:features`;
  const corruptedIds = ids.map((id, i) => (i === 2 ? (id + 1) % model.manifest!.vocabSize! : id));
  const clean = torch.tensor(BigInt64Array.from(ids, BigInt), [1, SEQ]);
  const corrupted = torch.tensor(BigInt64Array.from(corruptedIds, BigInt), [1, SEQ]);
  const metric = { logit: TOKEN, position: -1 };
  const sweep = await torch.patchingSweep(model, { clean, corrupted, layers: [layer], metric, saes: [sae] });
  const cleanFeatures = (await torch.activations(model, { layers: layer, saes: [sae] }, clean)) as torch.Tensor;
  const data = cleanFeatures.data() as Float32Array;
  const results = sweep.results.data() as Float32Array;
  let moved = 0;
  for (let p = 0; p < SEQ; p++) {
    // The corrupted run with position p's features set to the clean run's.
    const value = torch.tensor(data.slice(), [1, SEQ, D_SAE]);
    const run = await torch.run(model, [corrupted], { saes: [sae], patch: { [layer]: { set: value, positions: [p] } } });
    const logits = run.output as torch.Tensor;
    const vocab = logits.shape[2];
    const expected = (logits.data() as Float32Array)[(SEQ - 1) * vocab + TOKEN];
    expect(Math.abs(results[p] - expected)).toBeLessThan(1e-4);
    moved = Math.max(moved, Math.abs(results[p] - sweep.corrupted));
    run.dispose();
    value.dispose();
  }
  // Patching the clean features in moves the metric: the cells are not all the corrupted run.
  expect(moved).toBeGreaterThan(1e-3);
  sweep.dispose();
  cleanFeatures.dispose();
});
