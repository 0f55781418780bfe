// torch.dashboard.toNeuronpedia (SAEDashboard's batch JSON: its field names and how its converter
// fills them, from dashboards of GPT-2's MLP neurons and of the induction model's SAE with its
// logits) and the errors of torch.dashboard.features and modelSource, each with its code.
import * as path from 'path';

import * as torch from '../lib';
import { expectTorchscopeError, MODELS } from './helpers';
import { memorySource } from './helpers/dashboard';
import { repeatedSequences } from './helpers/induction';

const GPT_ROWS = 24;
const GPT_CTX = 24;
const CTX = 33;
const NEURON_OPTIONS = { buffer: [5, 5] as [number, number], k: 7, intervals: 6, intervalSize: 3, seed: 3 };

let induction: torch.Model;
let gpt2: torch.Model;
let sae: torch.Sae;
let unembed: torch.Tensor;
let sequences: number[][];
/** GPT-2's MLP neurons, 12 rows a batch: int32 tokens and the layer's activations. */
let neuronBatches: { tokens: torch.Tensor; activations: torch.Tensor }[];
const dashboards: Record<string, torch.dashboard.FeatureDashboard[]> = {};

beforeAll(async () => {
  induction = await torch.load(path.join(MODELS, 'induction.pt'));
  gpt2 = await torch.load(path.join(MODELS, 'llm', 'gpt2.pt'));
  sae = await torch.sae.load(path.join(MODELS, 'sae', 'induction-blocks.0'));
  unembed = torch.zeros([sae.dOut, 5]);
  sequences = repeatedSequences(16, 4, 16, 64);
  const vocab = gpt2.manifest!.vocabSize!;
  neuronBatches = [];
  for (let start = 0; start < GPT_ROWS; start += 12) {
    const ids = Int32Array.from({ length: 12 * GPT_CTX }, (_, i) => ((start * GPT_CTX + i) * 7919) % vocab);
    const input = torch.tensor(BigInt64Array.from(ids, BigInt), [12, GPT_CTX]);
    const activations = (await torch.activations(gpt2, 'transformer.h.0.mlp.act', input)) as torch.Tensor;
    input.dispose();
    neuronBatches.push({ tokens: torch.tensor(ids, [12, GPT_CTX], 'int32'), activations });
  }
  dashboards.neurons = await torch.dashboard.features(memorySource(neuronBatches, GPT_CTX), NEURON_OPTIONS);
  const source = torch.dashboard.modelSource(induction, 'blocks.0', sequences, { batchSize: 8 });
  dashboards.sae = await torch.dashboard.features(source, { sae, features: [0, 1, 2], logits: { model: induction, layer: 'unembed' } });
}, 120_000);

afterAll(() => {
  for (const b of neuronBatches ?? []) torch.dispose([b.tokens, b.activations]);
  unembed?.dispose();
  sae?.dispose();
  induction?.dispose();
  gpt2?.dispose();
});

describe('Neuronpedia export', () => {
  test("SAEDashboard's field names, the top group then the intervals highest first, tokens as text", async () => {
    const tokenizer = await torch.Tokenizer.fromPretrained(path.join(MODELS, 'llm', 'gpt2'));
    const d = dashboards.neurons;
    const batch = torch.dashboard.toNeuronpedia(d, { tokenizer, modelId: 'gpt2-fixture', layer: 0, saeSet: 'mlp-neurons', dataset: 'ids' });
    expect(Object.keys(batch)).toEqual(['model_id', 'layer', 'sae_set', 'features']);
    expect([batch.model_id, batch.layer, batch.sae_set]).toEqual(['gpt2-fixture', 0, 'mlp-neurons']);
    // neuronpedia_dashboard.py NeuronpediaDashboardFeature.to_dict's keys, in its order.
    expect(Object.keys(batch.features[0])).toEqual([
      'feature_index',
      'neuron_alignment_indices',
      'neuron_alignment_values',
      'neuron_alignment_l1',
      'correlated_neurons_indices',
      'correlated_neurons_l1',
      'correlated_neurons_pearson',
      'correlated_features_indices',
      'correlated_features_l1',
      'correlated_features_pearson',
      'neg_str',
      'neg_values',
      'pos_str',
      'pos_values',
      'frac_nonzero',
      'freq_hist_data_bar_values',
      'freq_hist_data_bar_heights',
      'logits_hist_data_bar_heights',
      'logits_hist_data_bar_values',
      'n_prompts_total',
      'n_tokens_in_prompt',
      'dataset',
      'decoder_weights_dist',
      'activations',
    ]);
    batch.features.forEach((f, i) => {
      const dash = d[i];
      expect([f.feature_index, f.frac_nonzero, f.n_prompts_total, f.n_tokens_in_prompt, f.dataset]).toEqual([
        dash.index,
        dash.density,
        GPT_ROWS,
        GPT_CTX,
        'ids',
      ]);
      expect(f.freq_hist_data_bar_heights).toEqual(dash.histogram?.counts ?? []);
      const intervals = [...dash.intervals].reverse();
      const groups = [
        ...dash.topExamples.map((e) => [e, -1, Number(dash.maxActivation.toFixed(3)), -1] as const),
        ...intervals.flatMap((g) => g.examples.map((e) => [e, Number(g.lower.toFixed(3)), Number(g.upper.toFixed(3)), Number(g.fraction.toFixed(5))] as const)),
      ];
      expect(f.activations.length).toBe(groups.length);
      f.activations.forEach((a, j) => {
        const [e, binMin, binMax, contains] = groups[j];
        expect(Object.keys(a)).toEqual(['bin_min', 'bin_max', 'bin_contains', 'tokens', 'values', 'qualifying_token_index']);
        expect([a.bin_min, a.bin_max, a.bin_contains]).toEqual([binMin, binMax, contains]);
        expect(a.tokens).toEqual(e.tokens!.map((id) => tokenizer.decode([id])));
        expect(a.values).toEqual(e.values.map((v) => Number(v.toFixed(3))));
        expect(a.qualifying_token_index).toBe(5);
      });
    });
    // SAE features carry their logit tables: pos_str/pos_values are the top, neg the bottom.
    const sae = torch.dashboard.toNeuronpedia(dashboards.sae).features;
    sae.forEach((f, i) => {
      const logits = dashboards.sae[i].logits!;
      expect(f.pos_str).toEqual(logits.top.map((t) => String(t.id)));
      expect(f.neg_values).toEqual(logits.bottom.map((t) => Number(t.logit.toFixed(3))));
      expect(f.logits_hist_data_bar_heights).toEqual(logits.histogram.counts);
      expect(f.logits_hist_data_bar_values.length).toBe(50);
    });
  });
});

describe('errors', () => {
  const source = () => memorySource(neuronBatches, GPT_CTX);

  test('options are checked before the source is read', async () => {
    const s = source();
    await expectTorchscopeError(
      () => torch.dashboard.features(s, { neurons: [0], intervalSzie: 3 } as never),
      'INVALID_ARGUMENT',
      /did you mean 'intervalSize'/,
    );
    await expectTorchscopeError(() => torch.dashboard.features(s, { features: [0] }), 'INVALID_ARGUMENT', /give sae/);
    await expectTorchscopeError(() => torch.dashboard.features(s, { sae, neurons: [0] }), 'INVALID_ARGUMENT', /name its features/);
    await expectTorchscopeError(() => torch.dashboard.features(s, { sae, features: [256] }), 'INVALID_ARGUMENT', /features/);
    await expectTorchscopeError(() => torch.dashboard.features(s, { neurons: [1, 1] }), 'INVALID_ARGUMENT', /distinct/);
    await expectTorchscopeError(() => torch.dashboard.features(s, { buffer: [12, 12] }), 'INVALID_ARGUMENT', /leaves no position/);
    await expectTorchscopeError(() => torch.dashboard.features(s, { k: 0 }), 'INVALID_ARGUMENT', /k must be/);
    await expectTorchscopeError(() => torch.dashboard.features(s, { logits: unembed }), 'INVALID_ARGUMENT', /give sae/);
    await expectTorchscopeError(() => torch.dashboard.features({ batches: s.batches } as never), 'INVALID_ARGUMENT', /contextSize/);
    expect(s.reads).toBe(0);
  });

  test('batches that do not fit reject with codes', async () => {
    const [b] = neuronBatches;
    await expectTorchscopeError(() => torch.dashboard.features(memorySource([b], GPT_CTX + 1), { neurons: [0] }), 'SHAPE', /activations must be \[rows, 25/);
    await expectTorchscopeError(() => torch.dashboard.features(source(), { neurons: [64] }), 'INVALID_ARGUMENT', /neuron 64 is out of range/);
    const floatTokens = torch.zeros([b.tokens.shape[0], GPT_CTX]);
    await expectTorchscopeError(
      () => torch.dashboard.features(memorySource([{ ...b, tokens: floatTokens }], GPT_CTX)),
      'DTYPE',
      /tokens must be int32 or int64/,
    );
    const mixed = memorySource([b, { activations: neuronBatches[1].activations }], GPT_CTX);
    await expectTorchscopeError(() => torch.dashboard.features(mixed), 'INVALID_ARGUMENT', /every batch gives tokens, or none does/);
    await expectTorchscopeError(() => torch.dashboard.features(memorySource([], GPT_CTX)), 'INVALID_ARGUMENT', /no rows/);
    const ints = torch.zeros([2, GPT_CTX, 3], 'int32');
    await expectTorchscopeError(() => torch.dashboard.features(memorySource([{ activations: ints }], GPT_CTX)), 'DTYPE', /floating point/);
    await expectTorchscopeError(() => torch.dashboard.features(memorySource([{ activations: floatTokens }], GPT_CTX)), 'SHAPE', /channels/);
    torch.dispose([ints, floatTokens]);
    const nan = torch.tensor(new Float32Array(2 * GPT_CTX * 3).fill(NaN), [2, GPT_CTX, 3]);
    await expectTorchscopeError(() => torch.dashboard.features(memorySource([{ activations: nan }], GPT_CTX)), 'INVALID_ARGUMENT', /feature 0 .*NaN/);
    nan.dispose();
    const wrongUnembed = torch.zeros([sae.dOut + 1, 4]);
    const s = torch.dashboard.modelSource(induction, 'blocks.0', sequences.slice(0, 4));
    await expectTorchscopeError(() => torch.dashboard.features(s, { sae, features: [0], logits: wrongUnembed }), 'SHAPE', /unembedding must be \[64, vocab\]/);
    wrongUnembed.dispose();
  });

  test('an aborted signal stops between batches; modelSource checks its sequences', async () => {
    const controller = new AbortController();
    const run = torch.dashboard.features(source(), {
      neurons: [0],
      signal: controller.signal,
      onProgress: (p) => {
        if (p.batches === 2) controller.abort();
      },
    });
    await expectTorchscopeError(() => run, 'ABORTED');
    await expectTorchscopeError(
      () =>
        torch.dashboard.modelSource(induction, 'blocks.0', [
          [1, 2, 3],
          [1, 2],
        ]),
      'SHAPE',
      /sequence 1 must be an array of 3/,
    );
    await expectTorchscopeError(() => torch.dashboard.modelSource(induction, 'blocks.0', (async function* () {})()), 'INVALID_ARGUMENT', /give contextSize/);
    const ids = Array.from({ length: CTX }, () => 1);
    await expectTorchscopeError(
      () => torch.dashboard.features(torch.dashboard.modelSource(induction, 'blocks.0.attn.qkv.nope', [ids]), { neurons: [0] }),
      'UNKNOWN_LAYER',
    );
  });
});
