// BERT (traced BertWithAttentions) against eager transformers with forward hooks.
// bert-tiny for most cases, bert.pt (bert-base architecture) for one full check.
// Inputs: int64 input_ids and an attention_mask whose second row is padded.
// Tolerance: 1e-5 absolute (float32); hidden states are LayerNorm outputs of magnitude ~1-5.
import * as torch from '../lib';
import {
  asArray,
  asTensor,
  expectClose,
  expectValueClose,
  HostTensor,
  hostRandn,
  maxAbsDiff,
  modelPath,
  randint,
  refCase,
  Reference,
  RefPatch,
  RefResult,
  refTensor,
  RefValue,
  removeDir,
  scratchDir,
  toHost,
  toTorch,
} from './helpers';

const TOL = 1e-5;
const TINY = 'bert-tiny.pt';
const BASE = 'bert.pt';
const B = 2;
const S = 12;
const PAD_FROM = 8; // row 1 is padded from here on

function ids(seed: number): HostTensor {
  return { data: randint(B * S, 30522, seed), shape: [B, S], dtype: 'int64' };
}
const mask: HostTensor = {
  data: BigInt64Array.from({ length: B * S }, (_, i) => (i >= S + PAD_FROM ? 0n : 1n)),
  shape: [B, S],
  dtype: 'int64',
};
const idsA = ids(31);
// Another sequence length and batch for the same programs: [1, 5], no padding.
const SHORT_IDS: HostTensor = { data: randint(5, 30522, 33), shape: [1, 5], dtype: 'int64' };
const SHORT_MASK: HostTensor = { data: new BigInt64Array(5).fill(1n), shape: [1, 5], dtype: 'int64' };
const idsB = ids(32);

const TINY_LAYERS = [
  'embeddings',
  'encoder.layer.1.attention.self', // (context [B,S,H], probs [B,heads,S,S]) in eager and traced
  'encoder.layer.0.attention', // (attention output, probs) in eager and traced
  'encoder.layer.1.output',
  'encoder.layer.0.intermediate.intermediate_act_fn',
  'encoder.layer.0', // eager: Tensor; traced: (hidden, probs), see below
  'pooler',
  'encoder', // eager: BaseModelOutput(last_hidden_state); traced: (hidden, probs layer 0, probs layer 1)
];
const BASE_LAYERS = ['embeddings', 'encoder.layer.3.attention.self', 'encoder.layer.11.output'];

interface PatchCase {
  name: string;
  patch: Record<string, RefPatch>;
  capture: string[];
}

let fromB: HostTensor | undefined; // encoder.layer.0.output for idsB, from torchscope

function patchCases(): PatchCase[] {
  return [
    {
      name: 'set encoder.layer.0.output from input B at positions [3, 9] ([B,S,H]: positions index dim 1)',
      patch: { 'encoder.layer.0.output': { mode: 'set', value: fromB!, positions: [3, 9] } },
      capture: ['encoder.layer.0.output', 'encoder.layer.1.attention.self', 'encoder.layer.1.output'],
    },
    {
      name: 'zero embeddings positions [0] channels [1, 5] ([B,S,H]: channels index dim 2)',
      patch: { embeddings: { mode: 'zero', positions: [0], channels: [1, 5] } },
      capture: ['embeddings', 'encoder.layer.0.output'],
    },
    {
      name: 'scale the context of encoder.layer.1.attention.self (a tuple: its first tensor) at position 2',
      patch: { 'encoder.layer.1.attention.self': { mode: 'scale', scale: 4, positions: [2] } },
      capture: ['encoder.layer.1.attention.self', 'encoder.layer.1.attention.output'],
    },
    {
      name: 'add a [1,1,H] vector to channel 4 of encoder.layer.0 (traced: a tuple; eager: a tensor)',
      patch: { 'encoder.layer.0': { mode: 'add', value: hostRandn([1, 1, 32], 41), channels: [4] } },
      capture: ['encoder.layer.1.output', 'pooler'],
    },
  ];
}
const PATCH_NAMES = [
  'set encoder.layer.0.output from input B at positions [3, 9] ([B,S,H]: positions index dim 1)',
  'zero embeddings positions [0] channels [1, 5] ([B,S,H]: channels index dim 2)',
  'scale the context of encoder.layer.1.attention.self (a tuple: its first tensor) at position 2',
  'add a [1,1,H] vector to channel 4 of encoder.layer.0 (traced: a tuple; eager: a tensor)',
];

let dir: string;
let ref: Map<string, RefResult>;
let tiny: torch.Model;
let base: torch.Model;

beforeAll(async () => {
  dir = scratchDir('bert');
  [tiny, base] = await Promise.all([torch.load(modelPath(TINY)), torch.load(modelPath(BASE))]);
  fromB = toHost(asTensor(await torch.activations(tiny, 'encoder.layer.0.output', toTorch(idsB), toTorch(mask))));
  expect(patchCases().map((c) => c.name)).toEqual(PATCH_NAMES);
  const reference = new Reference(dir);
  reference.add({ id: 'tiny/eager', kind: 'eager', model: modelPath(TINY), inputs: [idsA, mask], capture: TINY_LAYERS });
  reference.add({ id: 'tiny/eagerB', kind: 'eager', model: modelPath(TINY), inputs: [idsB, mask], capture: ['encoder.layer.0.output'] });
  reference.add({ id: 'tiny/jit', kind: 'jit', model: modelPath(TINY), inputs: [idsA, mask] });
  reference.add({ id: 'tiny/eager/short', kind: 'eager', model: modelPath(TINY), inputs: [SHORT_IDS, SHORT_MASK], capture: ['encoder.layer.1.output'] });
  patchCases().forEach((c, i) =>
    reference.add({ id: `tiny/patch${i}`, kind: 'eager', model: modelPath(TINY), inputs: [idsA, mask], patch: c.patch, capture: c.capture }),
  );
  reference.add({ id: 'base/eager', kind: 'eager', model: modelPath(BASE), inputs: [idsA, mask], capture: BASE_LAYERS });
  reference.add({ id: 'base/jit', kind: 'jit', model: modelPath(BASE), inputs: [idsA, mask] });
  ref = await reference.run();
});

afterAll(() => {
  tiny?.dispose();
  base?.dispose();
  removeDir(dir);
});

function eager(id: string, layer: string): RefValue {
  const calls = refCase(ref, id).captures[layer];
  expect(calls).toHaveLength(1);
  return calls[0];
}

function tuple(value: RefValue): RefValue[] {
  if (value.type !== 'tuple') throw new Error(`expected a tuple, got ${value.type}`);
  return value.items;
}

describe('bert-tiny', () => {
  test.each(TINY_LAYERS.filter((l) => l !== 'encoder.layer.0' && l !== 'encoder'))('activations(%s) equal the eager forward hook', async (layer) => {
    const got = await torch.activations(tiny, layer, toTorch(idsA), toTorch(mask));
    expectValueClose(got, eager('tiny/eager', layer), TOL, layer);
  });

  test('a tuple-returning module (attention.self) comes back as an array of tensors', async () => {
    const got = asArray(await torch.activations(tiny, 'encoder.layer.1.attention.self', toTorch(idsA), toTorch(mask)));
    expect(got).toHaveLength(2);
    expect(asTensor(got[0]).shape).toEqual([B, S, 32]);
    expect(asTensor(got[1]).shape).toEqual([B, 2, S, S]);
    // Padding is honoured: row 1 gives its padded keys no attention at all.
    const probs = asTensor(got[1]).data() as Float32Array;
    for (let h = 0; h < 2; h++) {
      for (let q = 0; q < S; q++) {
        for (let k = PAD_FROM; k < S; k++) expect(probs[((1 * 2 + h) * S + q) * S + k]).toBe(0);
      }
    }
  });

  // Output structure differs here: eager BertLayer.forward returns the hidden state (a Tensor);
  // the trace made BertLayer return (hidden, attention probs) because the probabilities leave
  // the module (BertWithAttentions stacks them). The semantic that must hold: the first element
  // is eager's hidden state, the second that layer's attention probabilities.
  test('encoder.layer.0: traced (hidden, probs) vs eager Tensor; the hidden state equals eager', async () => {
    const got = await torch.activations(tiny, 'encoder.layer.0', toTorch(idsA), toTorch(mask));
    const expected = eager('tiny/eager', 'encoder.layer.0');
    expect(expected.type).toBe('tensor');
    const hidden = Array.isArray(got) ? got[0] : got;
    expectClose(asTensor(hidden, 'hidden'), refTensor(expected), TOL, 'encoder.layer.0 hidden');
    if (Array.isArray(got)) {
      expect(got).toHaveLength(2);
      const probs = tuple(eager('tiny/eager', 'encoder.layer.0.attention'))[1];
      expectClose(asTensor(got[1], 'probs'), refTensor(probs), TOL, 'encoder.layer.0 probs');
    }
  });

  test('encoder: traced (hidden, probs 0, probs 1) vs eager BaseModelOutput; the hidden state equals eager', async () => {
    const got = await torch.activations(tiny, 'encoder', toTorch(idsA), toTorch(mask));
    const expected = tuple(eager('tiny/eager', 'encoder')); // ModelOutput.to_tuple(): (last_hidden_state,)
    expect(expected).toHaveLength(1);
    const hidden = Array.isArray(got) ? got[0] : got;
    expectClose(asTensor(hidden, 'hidden'), refTensor(expected[0]), TOL, 'encoder last_hidden_state');
  });

  test('forward gives [last_hidden_state, pooler_output, attentions] equal to torch.jit and eager', async () => {
    const out = asArray(await tiny.forward(toTorch(idsA), toTorch(mask)));
    expect(out.map((t) => asTensor(t).shape)).toEqual([
      [B, S, 32],
      [B, 32],
      [B, 2, 2, S, S],
    ]);
    expectValueClose(out, refCase(ref, 'tiny/jit').output, TOL, 'vs jit');
    expectValueClose(out, refCase(ref, 'tiny/eager').output, TOL, 'vs eager');
  });

  test("ids from plain JS numbers via torch.tensor(nested, undefined, 'int64') give the same output", async () => {
    const rows = [0, 1].map((b) => Array.from((idsA.data as BigInt64Array).slice(b * S, (b + 1) * S), Number));
    const maskRows = [0, 1].map((b) => Array.from((mask.data as BigInt64Array).slice(b * S, (b + 1) * S), Number));
    const inputIds = torch.tensor(rows, undefined, 'int64');
    expect(inputIds.dtype).toBe('int64');
    expect(inputIds.shape).toEqual([B, S]);
    const out = asArray(await tiny.forward(inputIds, torch.tensor(maskRows, undefined, 'int64')));
    expectValueClose(out, refCase(ref, 'tiny/eager').output, TOL, 'output from nested int64 ids');
  });

  test('several layers in one call equal the eager hooks and the forward output', async () => {
    const result = await torch.run(tiny, [toTorch(idsA), toTorch(mask)], { capture: ['embeddings', 'encoder.layer.1.output', 'pooler'] });
    for (const layer of ['embeddings', 'encoder.layer.1.output', 'pooler']) {
      expectValueClose(result.activations[layer], eager('tiny/eager', layer), TOL, layer);
    }
    const [hidden, pooled] = asArray(result.output);
    // The last layer's output is last_hidden_state; the pooler's is pooler_output.
    expectClose(asTensor(hidden), asTensor(result.activations['encoder.layer.1.output']), 0, 'last_hidden_state');
    expectClose(asTensor(pooled), asTensor(result.activations.pooler), 0, 'pooler_output');
  });

  test('the same programs at another batch and sequence length ([1, 5]), then back at [2, 12], equal eager', async () => {
    for (const [inputs, id] of [
      [[SHORT_IDS, SHORT_MASK], 'tiny/eager/short'],
      [[idsA, mask], 'tiny/eager'],
      [[SHORT_IDS, SHORT_MASK], 'tiny/eager/short'],
    ] as [HostTensor[], string][]) {
      const result = await torch.run(tiny, inputs.map(toTorch), { capture: ['encoder.layer.1.output'] });
      expectValueClose(result.activations['encoder.layer.1.output'], eager(id, 'encoder.layer.1.output'), TOL, `${id} layer 1 output`);
      expectValueClose(result.output, refCase(ref, id).output, TOL, `${id} output`);
    }
  });

  test('the patch source (input B) equals eager', () => {
    expectClose(fromB!, refTensor(eager('tiny/eagerB', 'encoder.layer.0.output')), TOL, 'layer0 output for B');
  });

  test.each(PATCH_NAMES)('%s: output and captures equal the hook-patched eager model', async (name) => {
    const cases = patchCases();
    const index = cases.findIndex((c) => c.name === name);
    const c = cases[index];
    const expected = refCase(ref, `tiny/patch${index}`);
    const patch: Record<string, torch.PatchSpec> = {};
    for (const [layer, p] of Object.entries(c.patch)) {
      const spec: torch.PatchSpec = {};
      if (p.mode === 'zero') spec.zero = true;
      if (p.mode === 'scale') spec.scale = p.scale;
      if (p.mode === 'set') spec.set = toTorch(p.value!);
      if (p.mode === 'add') spec.add = toTorch(p.value!);
      if (p.channels) spec.channels = p.channels;
      if (p.positions) spec.positions = p.positions as number[];
      patch[layer] = spec;
    }
    const result = await torch.run(tiny, [toTorch(idsA), toTorch(mask)], { patch, capture: c.capture });
    expectValueClose(result.output, expected.output, TOL, `${name}: output`);
    for (const layer of c.capture) {
      expectValueClose(result.activations[layer], expected.captures[layer][0], TOL, `${name}: ${layer}`);
    }
    const plain = asArray(await tiny.forward(toTorch(idsA), toTorch(mask)));
    expect(maxAbsDiff(asTensor(plain[0]).data(), asTensor(asArray(result.output)[0]).data()).max).toBeGreaterThan(1e-4);
  });

  test('positions on [B,S,H] select sequence positions: only those rows of the patched layer change', async () => {
    const x = [toTorch(idsA), toTorch(mask)];
    const before = asTensor(await torch.activations(tiny, 'encoder.layer.1.output', ...x)).data() as Float32Array;
    const { activations } = await torch.run(tiny, x, {
      patch: { 'encoder.layer.1.output': { zero: true, positions: [3, 9] } },
      capture: ['encoder.layer.1.output'],
    });
    const after = asTensor(activations['encoder.layer.1.output']).data() as Float32Array;
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        for (let h = 0; h < 32; h++) {
          const i = (b * S + s) * 32 + h;
          expect(after[i]).toBe(s === 3 || s === 9 ? 0 : before[i]);
        }
      }
    }
  });
});

describe('bert.pt (bert-base architecture)', () => {
  test('embeddings, encoder.layer.3.attention.self, encoder.layer.11.output and the output equal eager / torch.jit', async () => {
    const result = await torch.run(base, [toTorch(idsA), toTorch(mask)], { capture: BASE_LAYERS });
    const self3 = asArray(result.activations['encoder.layer.3.attention.self']);
    expect(asTensor(self3[0]).shape).toEqual([B, S, 768]);
    expect(asTensor(self3[1]).shape).toEqual([B, 12, S, S]);
    for (const layer of BASE_LAYERS) {
      expectValueClose(result.activations[layer], eager('base/eager', layer), TOL, `base ${layer}`);
    }
    const out = asArray(result.output);
    expect(out.map((t) => asTensor(t).shape)).toEqual([
      [B, S, 768],
      [B, 768],
      [B, 12, 12, S, S],
    ]);
    expectValueClose(out, refCase(ref, 'base/jit').output, TOL, 'base output vs jit');
    expectValueClose(out, refCase(ref, 'base/eager').output, TOL, 'base output vs eager');
  });

  test('a capture of encoder.layer.11.output alone equals the one taken with the output', async () => {
    const alone = asTensor(await torch.activations(base, 'encoder.layer.11.output', toTorch(idsA), toTorch(mask)));
    expectClose(alone, refTensor(eager('base/eager', 'encoder.layer.11.output')), TOL, 'base layer 11');
  });
});
