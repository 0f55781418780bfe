// SAEs trained on a TransformerLens model processed with center_writing_weights (the
// gpt2-small-res-jb SAEs and others of that time), used on the raw Hugging Face model. There every
// residual write has zero mean over d_model, so TransformerLens's residual stream is the raw one
// minus its per-token mean. Against test/python/sae_centering_reference.py (GPT-2 processed by
// TransformerLens's definition, in Python): encoding the raw residual minus its per-token mean
// gives the processed model's features; an SAE folded by scripts/fetch_sae.py --center-input reads
// the raw stream directly, and spliced into the raw model (no error term) gives the logits the
// processed model gives with the SAE spliced, since every reader of GPT-2's residual stream is a
// LayerNorm. Without either, the features are wrong.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { asTensor, expectClose, maxAbsDiff, MODELS, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const REFERENCE = path.join(ROOT, 'test', 'python', 'sae_centering_reference.py');
const LAYER = 1;
const POINT = `transformer.h.${LAYER}:input`;
const IDS = [
  [1, 5, 9, 200, 17, 3, 44, 8],
  [0, 12, 250, 7, 7, 90, 31, 2],
];

interface Reference {
  residMinusMean: number;
  logitsProcessedVsRaw: number;
  features: number[];
  featuresShape: number[];
  splicedLogits: number[];
  logitsShape: number[];
}

let dir: string;
let ref: Reference;
let model: torch.Model;
let trained: torch.Sae;
let centered: torch.Sae;
let input: torch.Tensor;

const host = (data: number[], shape: number[]) => ({ data: Float32Array.from(data), shape, dtype: 'float32' as const });

/** x minus its mean over the last dimension. */
function minusTokenMean(x: torch.Tensor): torch.Tensor {
  const width = x.shape[x.shape.length - 1];
  const data = Float32Array.from(x.data() as Float32Array);
  for (let start = 0; start < data.length; start += width) {
    let mean = 0;
    for (let i = 0; i < width; i++) mean += data[start + i] / width;
    for (let i = 0; i < width; i++) data[start + i] -= mean;
  }
  return torch.tensor(data, x.shape, 'float32');
}

beforeAll(async () => {
  dir = scratchDir('sae-centering');
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out: dir, folder: path.join(MODELS, 'llm', 'gpt2'), layer: LAYER, ids: IDS }));
  await runPythonScript(REFERENCE, [request]);
  ref = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Reference;
  model = await torch.load(path.join(MODELS, 'llm', 'gpt2.pt'));
  trained = await torch.sae.load(path.join(dir, 'trained'), { model });
  centered = await torch.sae.load(path.join(dir, 'centered'), { model });
  input = torch.tensor(BigInt64Array.from(IDS.flat().map(BigInt)), [IDS.length, IDS[0].length]);
});

afterAll(() => {
  for (const item of [trained, centered, model, input]) item?.dispose();
  removeDir(dir);
});

test("TransformerLens's processed residual stream is the raw one minus its per-token mean (the reference's premise)", () => {
  expect(ref.residMinusMean).toBeLessThan(1e-5);
  expect(ref.logitsProcessedVsRaw).toBeLessThan(1e-4);
  expect(trained.hookPoint).toBe(POINT);
});

test("encoding the raw residual minus its per-token mean gives the processed model's features; the raw residual does not", async () => {
  const x = (await torch.activations(model, POINT, input)) as torch.Tensor;
  const xc = minusTokenMean(x);
  const features = await trained.encode(xc);
  const want = host(ref.features, ref.featuresShape);
  expectClose(features, want, 1e-5, 'encode(x - mean(x))');
  const uncentred = await trained.encode(x);
  const wrong = maxAbsDiff(uncentred.data() as Float32Array, want.data).max;
  console.log(`features: |encode(x) - TransformerLens's| up to ${wrong.toFixed(3)}; encode(x - mean(x)) matches`);
  expect(wrong).toBeGreaterThan(0.1);
  expectClose(await centered.encode(x), want, 1e-5, 'the folded SAE on the raw residual');
  for (const t of [x, xc, features, uncentred]) t.dispose();
});

test("the folded SAE spliced into the raw model gives the processed model's spliced logits; with the error term, the raw logits", async () => {
  const want = host(ref.splicedLogits, ref.logitsShape);
  using spliced = await torch.run(model, [input], { saes: [centered], capture: [`${POINT}:features`] });
  expectClose(asTensor(spliced.output), want, 1e-5, 'spliced logits');
  expectClose(asTensor(spliced.activations[`${POINT}:features`]), host(ref.features, ref.featuresShape), 1e-5, 'spliced features');
  using withError = await torch.run(model, [input], { saes: [centered], errorTerm: true });
  const plain = (await model.forward(input)) as torch.Tensor;
  expectClose(asTensor(withError.output), plain, 1e-5, 'logits with the error term');
  plain.dispose();
});
