// A model with a real circuit (models/induction.pt, scripts/induction.py: a 2-layer
// attention-only transformer trained at set-up on random tokens repeated twice), and Olsson et
// al.'s (2022) findings reproduced on it with torchscope alone: the repeated half is predicted;
// induction heads in layer 1 and a previous-token head in layer 0, found by their attention;
// zero-ablating the induction heads sends the repeated half's loss back to chance; a patching
// sweep over heads shows where the effect lives.
import * as torch from '../lib';
import { modelPath } from './helpers';
import { ids, repeatLosses, repeatedSequences } from './helpers/induction';

const sequences = (count: number, seed: number) => repeatedSequences(count, seed, HALF, VOCAB);

const HALF = 16;
const VOCAB = 64;
const CHANCE = Math.log(VOCAB - 1);

/** Mean next-token loss over the first half and over the repeated half. */
function losses(logits: torch.Tensor, rows: number[][]): { first: number; repeated: number } {
  return repeatLosses(logits.data() as Float32Array, logits.shape[2], rows, HALF);
}

let model: torch.Model;
const rows = sequences(32, 11);
let induction: number[][];
let previous: number[][];

beforeAll(async () => {
  model = await torch.load(modelPath('induction.pt'));
  const patterns = (await torch.activations(model, ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern'], ids(rows))) as Record<string, torch.Tensor>;
  // From the second copy on: the token after this one's previous occurrence is HALF - 1 back.
  induction = [0, 1].map((l) => torch.lagScores(patterns[`blocks.${l}.attn.hook_pattern`], HALF - 1, HALF + 1));
  previous = [0, 1].map((l) => torch.lagScores(patterns[`blocks.${l}.attn.hook_pattern`], 1, HALF + 1));
  console.log(
    `induction scores by layer and head: ${JSON.stringify(induction.map((l) => l.map((v) => +v.toFixed(3))))}; ` +
      `previous-token scores: ${JSON.stringify(previous.map((l) => l.map((v) => +v.toFixed(3))))}`,
  );
});

afterAll(() => model?.dispose());

test('it has learned the task: the repeated half is predicted, the first half is at chance', async () => {
  const { first, repeated } = losses((await model.forward(ids(rows))) as torch.Tensor, rows);
  console.log(`loss: first half ${first.toFixed(3)} (chance ${CHANCE.toFixed(3)}), repeated half ${repeated.toFixed(3)}`);
  expect(Math.abs(first - CHANCE)).toBeLessThan(0.3);
  expect(repeated).toBeLessThan(0.5);
});

test('induction heads in layer 1, a previous-token head in layer 0 (K-composition)', () => {
  expect(Math.max(...induction[1])).toBeGreaterThan(0.5);
  expect(Math.max(...induction[0])).toBeLessThan(0.2);
  expect(Math.max(...previous[0])).toBeGreaterThan(0.5);
  expect(Math.max(...previous[1])).toBeLessThan(0.1);
});

test('zero-ablating the induction heads sends the repeated half back to chance; the previous-token head matters too', async () => {
  const inductionHeads = induction[1].flatMap((score, h) => (score > 0.5 ? [h] : []));
  const width = 64 / 4;
  const channels = (heads: number[]) => heads.flatMap((h) => Array.from({ length: width }, (_, i) => h * width + i));
  const ablated = await torch.run(model, [ids(rows)], { patch: { 'blocks.1.attn.hook_z': { zero: true, channels: channels(inductionHeads) } } });
  const { repeated } = losses(ablated.output as torch.Tensor, rows);
  const prevHead = previous[0].indexOf(Math.max(...previous[0]));
  const noPrevious = await torch.run(model, [ids(rows)], { patch: { 'blocks.0.attn.hook_z': { zero: true, channels: channels([prevHead]) } } });
  const withoutPrevious = losses(noPrevious.output as torch.Tensor, rows).repeated;
  console.log(
    `repeated-half loss: ${repeated.toFixed(3)} with induction heads [${inductionHeads}] of layer 1 zeroed, ` +
      `${withoutPrevious.toFixed(3)} with the previous-token head ${prevHead} of layer 0 zeroed (chance ${CHANCE.toFixed(3)})`,
  );
  expect(repeated).toBeGreaterThan(0.9 * CHANCE);
  expect(withoutPrevious).toBeGreaterThan(1);
});

test('a patching sweep over heads: restoring layer-1 heads restores the prediction of a corrupted first half', async () => {
  // Corrupted: the first copy changed, so the second copy's tokens no longer follow from it.
  const corrupted = rows.map((row, r) => row.map((t, i) => (i >= 1 && i <= HALF ? 1 + ((t + 7 + r) % (VOCAB - 1)) : t)));
  const last = rows.map((row) => row[row.length - 1]);
  // The metric: log-probability of the true last token, from the position before it.
  const sweep = await torch.patchingSweep(model, {
    clean: ids(rows.map((row) => row.slice(0, -1))),
    corrupted: ids(corrupted.map((row) => row.slice(0, -1))),
    layers: ['blocks.0.attn.hook_z', 'blocks.1.attn.hook_z'],
    heads: 4,
    metric: last.map((token) => ({ logProb: token })),
    normalize: true,
  });
  const effects = sweep.results.toArray() as number[][];
  console.log(
    `head sweep (normalised): layer 0 ${effects[0].map((v) => v.toFixed(2)).join(' ')}, layer 1 ${effects[1].map((v) => v.toFixed(2)).join(' ')}; ` +
      `clean ${sweep.clean.toFixed(2)}, corrupted ${sweep.corrupted.toFixed(2)}`,
  );
  expect(sweep.clean).toBeGreaterThan(sweep.corrupted + 2);
  expect(Math.max(...effects[1])).toBeGreaterThan(Math.max(...effects[0]));
});
