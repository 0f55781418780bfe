// A model that has learned something: the small CNN trained at set-up on scikit-learn's 8x8
// digits (scripts/digits.py; models/digits-samples.json holds 20 digits it never saw), and its
// twin with the top layers (fc2, fc1) re-initialised. Attribution is judged where it can be:
// completeness of integrated gradients, the randomization sanity check of Adebayo et al.
// (2018), where the attribution mass lies, and feature visualization of a digit's logit.
import * as fs from 'fs';

import * as torch from '../lib';
import { spearman } from './helpers/attribution';
import { modelPath } from './helpers';

interface Samples {
  images: number[][];
  labels: number[];
}

const samples = JSON.parse(fs.readFileSync(modelPath('digits-samples.json'), 'utf8')) as Samples;
const count = samples.labels.length;
const digits = () => torch.tensor(Float32Array.from(samples.images.flat()), [count, 1, 8, 8]);
const INK = 0.25; // a pixel is ink above this intensity (0..1)

let trained: torch.Model;
let scripted: torch.Model;
let randomized: torch.Model;

beforeAll(async () => {
  [trained, scripted, randomized] = await Promise.all(
    ['digits-cnn.pt', 'digits-cnn-scripted.pt', 'digits-cnn-randomized.pt'].map((file) => torch.load(modelPath(file))),
  );
});

afterAll(() => [trained, scripted, randomized].forEach((m) => m?.dispose()));

function rows(t: torch.Tensor): number[][] {
  const data = t.data() as Float32Array;
  const width = data.length / t.shape[0];
  return Array.from({ length: t.shape[0] }, (_, i) => Array.from(data.subarray(i * width, (i + 1) * width)));
}

async function maps(model: torch.Model, method: torch.AttributionMethod, options: Partial<torch.AttributeOptions> = {}): Promise<number[][]> {
  const result = await torch.attribute(model, digits(), { method, target: samples.labels, ...options });
  return rows(result.attributions);
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

test('it has learned: the held-out digits are classified right, traced and scripted alike', async () => {
  for (const model of [trained, scripted]) {
    const logits = rows((await model.forward(digits())) as torch.Tensor);
    const correct = logits.filter((row, i) => row.indexOf(Math.max(...row)) === samples.labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(19);
  }
});

test('integrated gradients are complete: Σ attributions = f(x) - f(0) within 1e-2 relative at 50 steps', async () => {
  const result = await torch.attribute(trained, digits(), { method: 'integratedGradients', target: samples.labels, convergenceDelta: true });
  const atInput = rows((await trained.forward(digits())) as torch.Tensor);
  const atBaseline = rows((await trained.forward(torch.zeros([count, 1, 8, 8]))) as torch.Tensor);
  const relative = result.convergenceDelta!.map((d, i) => Math.abs(d) / Math.abs(atInput[i][samples.labels[i]] - atBaseline[i][samples.labels[i]]));
  console.log(`IG completeness on ${count} held-out digits: max |delta| / |f(x) - f(0)| = ${Math.max(...relative).toExponential(2)}`);
  expect(Math.max(...relative)).toBeLessThan(1e-2);
});

describe('the randomization sanity check (Adebayo et al. 2018): re-initialising fc1 and fc2 changes the maps', () => {
  async function rankCorrelation(method: torch.AttributionMethod, absolute: boolean): Promise<number> {
    // Saliency is |gradient| by default; its signed maps are the gradient itself.
    const options = method === 'saliency' ? { abs: absolute } : {};
    const [a, b] = await Promise.all([maps(trained, method, options), maps(randomized, method, options)]);
    const prepare = (row: number[]) => (absolute ? row.map(Math.abs) : row);
    return mean(a.map((row, i) => spearman(prepare(row), prepare(b[i]))));
  }

  test('saliency: mean Spearman rank correlation below 0.5, with and without absolute values', async () => {
    const [absolute, signed] = [await rankCorrelation('saliency', true), await rankCorrelation('saliency', false)];
    console.log(`saliency vs top-randomized model: Spearman ${absolute.toFixed(3)} (|maps|), ${signed.toFixed(3)} (signed)`);
    expect(absolute).toBeLessThan(0.5);
    expect(signed).toBeLessThan(0.5);
  });

  test('integrated gradients: signed maps below 0.5 (|maps| stay alike: both are zero wherever the input is)', async () => {
    const [signed, absolute] = [await rankCorrelation('integratedGradients', false), await rankCorrelation('integratedGradients', true)];
    // With a zero baseline IG is (x - 0) x mean gradient: every background pixel is 0 in both
    // models, so the ranks of |maps| share that structure whatever the weights (the paper's
    // observation for input-multiplied methods). The signed maps carry the model.
    console.log(`IG vs top-randomized model: Spearman ${signed.toFixed(3)} (signed), ${absolute.toFixed(3)} (|maps|, shared zeros)`);
    expect(signed).toBeLessThan(0.5);
  });
});

test('where the mass lies: IG puts most of it on the strokes; saliency more than its share', async () => {
  const ink = samples.images.map((image) => image.map((v) => v > INK));
  const share = (map: number[][]) =>
    mean(
      map.map((row, i) => {
        const total = row.reduce((s, v) => s + Math.abs(v), 0);
        return row.reduce((s, v, j) => s + (ink[i][j] ? Math.abs(v) : 0), 0) / total;
      }),
    );
  const inkPixels = mean(ink.map((row) => row.filter(Boolean).length / row.length));
  const ig = share(await maps(trained, 'integratedGradients'));
  const saliency = share(await maps(trained, 'saliency'));
  console.log(`attribution mass on ink (${(100 * inkPixels).toFixed(1)}% of pixels): IG ${(100 * ig).toFixed(1)}%, saliency ${(100 * saliency).toFixed(1)}%`);
  expect(ig).toBeGreaterThan(0.5);
  expect(saliency).toBeGreaterThan(inkPixels);
});

test("feature visualization of a digit's logit rises far above what the top-randomized model reaches", async () => {
  const climb = async (model: torch.Model) => {
    const run = await torch.maximize(model, null, { objective: { logit: 3 }, inputShape: [1, 1, 8, 8], parameterization: 'pixel', transforms: [], steps: 100 });
    const logits = rows((await model.forward(run.image)) as torch.Tensor)[0];
    const exp = logits.map(Math.exp);
    return { from: run.objective[0], to: run.objective[run.objective.length - 1], probability: exp[3] / exp.reduce((a, b) => a + b, 0) };
  };
  const [own, random] = [await climb(trained), await climb(randomized)];
  console.log(
    `maximize logit 3 (100 pixel steps): trained ${own.from.toFixed(2)} -> ${own.to.toFixed(2)} (p = ${own.probability.toFixed(4)}), ` +
      `top-randomized ${random.from.toFixed(2)} -> ${random.to.toFixed(2)} (p = ${random.probability.toFixed(4)})`,
  );
  expect(own.to - own.from).toBeGreaterThan(10 * (random.to - random.from));
  expect(own.probability).toBeGreaterThan(0.99);
});
