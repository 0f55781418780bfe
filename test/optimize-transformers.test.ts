// load({ optimize: true }) on transformers: linears prepacked for oneDNN with their activation
// fused, Hugging Face's written-out GELU recognized, eager attention fused into
// scaled_dot_product_attention, RMSNorm's formula replaced by aten::rms_norm
// (native/torchscript/linear_prepack.h, written_out_ops.h, attention_fusion.h). The contract is optimize's: outputs and every hooked value within 1e-4
// relative of exact mode, and a value a hook reads is never fused away. On GPT-2 (this
// repository's, and the Hugging Face fixture), Llama, Mistral, Pythia, Gemma 2 (soft-capped
// attention, left unfused) and BERT with padding; a fixture with 3-D attention and 1-D linear
// inputs takes the ops' fallback paths.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectClose, HostTensor, MODELS, randint, randn, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const REL = 1e-4;

interface Case {
  name: string;
  file: string;
  inputs: () => torch.Tensor[];
  /** Layers captured in both modes. */
  capture: string[];
  /** Fused ops expected with no hook: attention, linears, RMSNorms. */
  fused: { attention: number; linears: number; norms: number };
}

const ids = (batch: number, seq: number, vocab: number, seed: number) => torch.tensor(randint(batch * seq, vocab, seed), [batch, seq]);
const llm = (family: string, blocks: string, mlp: string, attention: number, linears: number, norms = 0): Case => ({
  name: family,
  file: path.join('llm', `${family}.pt`),
  inputs: () => [ids(2, 9, 200, 4)],
  capture: [`${blocks}.0`, `${blocks}.1`, `${blocks}.0.${mlp}`, `${blocks}.1.${mlp}`],
  fused: { attention, linears, norms },
});

const CASES: Case[] = [
  {
    name: 'gpt2 (GPT-2 small)',
    file: 'gpt2.pt',
    inputs: () => [ids(2, 33, 50257, 1)],
    capture: ['transformer.h.0', 'transformer.h.5.mlp', 'transformer.h.11.attn', 'transformer.ln_f'],
    fused: { attention: 12, linears: 49, norms: 0 },
  },
  {
    name: 'gpt2-tiny',
    file: 'gpt2-tiny.pt',
    inputs: () => [ids(2, 17, 50257, 2)],
    capture: ['transformer.h.0', 'transformer.h.1.mlp', 'transformer.h.3'],
    fused: { attention: 4, linears: 17, norms: 0 },
  },
  llm('llama', 'model.layers', 'mlp', 2, 15, 5),
  llm('mistral', 'model.layers', 'mlp', 2, 15, 5),
  llm('pythia', 'gpt_neox.layers', 'mlp', 2, 9),
  llm('gpt2', 'transformer.h', 'mlp', 2, 9),
  // Gemma 2 soft-caps its scores: its attention stays as it is.
  llm('gemma2', 'model.layers', 'mlp', 0, 15, 9),
  {
    name: 'bert-tiny-noattn (padding mask)',
    file: 'bert-tiny-noattn.pt',
    inputs: () => [ids(2, 9, 1000, 3), torch.tensor(BigInt64Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0].map(BigInt)), [2, 9])],
    capture: ['encoder.layer.0', 'encoder.layer.1.attention.self', 'encoder.layer.1.intermediate'],
    fused: { attention: 2, linears: 13, norms: 0 },
  },
];

/** Asserts `actual` within REL of `expected`'s largest magnitude (optimize's documented bar). */
function expectRelative(actual: torch.Tensor, expected: torch.Tensor, label: string): void {
  const data = expected.data() as Float32Array;
  let scale = 0;
  for (const v of data) scale = Math.max(scale, Math.abs(v));
  expectClose(actual, expected, REL * Math.max(scale, 1e-6), label);
}

function tensorsOf(value: torch.Value | undefined): torch.Tensor[] {
  if (value instanceof torch.Tensor) return [value];
  if (Array.isArray(value)) return value.flatMap((v) => tensorsOf(v as torch.Value));
  return [];
}

function expectValuesRelative(actual: torch.Value | undefined, expected: torch.Value | undefined, label: string): void {
  const got = tensorsOf(actual);
  const want = tensorsOf(expected);
  expect(got.length).toBe(want.length);
  expect(want.length).toBeGreaterThan(0);
  got.forEach((t, i) => expectRelative(t, want[i], `${label}[${i}]`));
}

async function opCounts(model: torch.Model, options: torch.InspectOptions = {}): Promise<Record<string, number>> {
  return (await torch.inspect(model, { output: true, ...options })).opCounts;
}

describe.each(CASES)('$name', (c) => {
  let exact: torch.Model;
  let optimized: torch.Model;
  beforeAll(async () => {
    exact = await torch.load(path.join(MODELS, c.file), { decodeStep: false });
    optimized = await torch.load(path.join(MODELS, c.file), { optimize: true, decodeStep: false });
  }, 120_000);
  afterAll(() => {
    exact.dispose();
    optimized.dispose();
  });

  test('outputs and captures within 1e-4 relative of exact mode', async () => {
    const want = await torch.run(exact, c.inputs(), { capture: c.capture });
    const got = await torch.run(optimized, c.inputs(), { capture: c.capture });
    expectValuesRelative(got.output, want.output, `${c.name} output`);
    for (const layer of c.capture) expectValuesRelative(got.activations[layer], want.activations[layer], `${c.name} ${layer}`);
    want.dispose();
    got.dispose();
  });

  test('its linears are prepacked and its attention fused', async () => {
    const counts = await opCounts(optimized);
    expect({
      attention: counts['torchscope::attention'] ?? 0,
      linears: counts['torchscope::prepacked_linear'] ?? 0,
      norms: counts['aten::rms_norm'] ?? 0,
    }).toEqual(c.fused);
    // RMSNorm's formula is gone wherever it was recognized.
    if (c.fused.norms > 0) expect(counts['aten::rsqrt']).toBeUndefined();
    // Every activation after a linear is fused into it (GELU, SiLU): none is left as an op.
    expect([counts['aten::gelu'] ?? 0, counts['aten::silu'] ?? 0, c.name.startsWith('gpt2') ? (counts['aten::tanh'] ?? 0) : 0]).toEqual([0, 0, 0]);
    expect((await torch.inspect(exact, { output: true })).opCounts['torchscope::prepacked_linear']).toBeUndefined();
  });
});

describe('a value a hook reads is not fused away', () => {
  let exact: torch.Model;
  let optimized: torch.Model;
  const input = () => [ids(2, 12, 50257, 5)];
  beforeAll(async () => {
    exact = await torch.load(path.join(MODELS, 'gpt2-tiny.pt'));
    optimized = await torch.load(path.join(MODELS, 'gpt2-tiny.pt'), { optimize: true });
  });
  afterAll(() => {
    exact.dispose();
    optimized.dispose();
  });

  test("a capture of an MLP's first linear keeps its GELU apart, and sees exact mode's value", async () => {
    const capture = ['transformer.h.1.mlp.c_fc'];
    const counts = await opCounts(optimized, { capture });
    expect([counts['aten::gelu'], counts['torchscope::prepacked_linear']]).toEqual([1, 17]);
    const got = await torch.run(optimized, input(), { capture });
    const want = await torch.run(exact, input(), { capture });
    expectValuesRelative(got.activations[capture[0]], want.activations[capture[0]], 'c_fc');
    expectValuesRelative(got.output, want.output, 'logits');
  });

  test("a node hook inside Llama's RMSNorm keeps that norm's formula, and sees exact mode's value", async () => {
    const llama = path.join(MODELS, 'llm', 'llama.pt');
    const [e, o] = [await torch.load(llama), await torch.load(llama, { optimize: true })];
    const node = (await e.nodes('model.layers.1.input_layernorm')).find((n) => n.op === 'aten::rsqrt')!.name;
    const counts = await opCounts(o, { capture: [node] });
    expect([counts['aten::rms_norm'], counts['aten::rsqrt']]).toEqual([4, 1]);
    const llamaInput = () => [ids(2, 9, 200, 6)];
    const got = await torch.run(o, llamaInput(), { capture: [node] });
    const want = await torch.run(e, llamaInput(), { capture: [node] });
    expectValuesRelative(got.activations[node], want.activations[node], 'rsqrt');
    expectValuesRelative(got.output, want.output, 'logits');
    e.dispose();
    o.dispose();
  });

  test("a pattern hook keeps that layer's attention unfused: captured and patched as in exact mode", async () => {
    const pattern = 'transformer.h.2.attn:pattern';
    const counts = await opCounts(optimized, { capture: [pattern] });
    expect([counts['torchscope::attention'], counts['aten::softmax']]).toEqual([3, 1]);
    const got = await torch.run(optimized, input(), { capture: [pattern] });
    const want = await torch.run(exact, input(), { capture: [pattern] });
    expectValuesRelative(got.activations[pattern], want.activations[pattern], 'pattern');
    const patch = { [pattern]: { zero: true as const, channels: [0, 2] } };
    expectValuesRelative(
      (await torch.run(optimized, input(), { patch })).output,
      (await torch.run(exact, input(), { patch })).output,
      'pattern-ablated logits',
    );
  });

  test('patches (a steering add on a fused GELU, a scale) and gradients agree with exact mode', async () => {
    const vector = torch.tensor(randn(256, 9), [256]);
    const patch = { 'transformer.h.0.mlp.act': { add: vector }, 'transformer.h.2': { scale: 0.5 } };
    expectValuesRelative((await torch.run(optimized, input(), { patch })).output, (await torch.run(exact, input(), { patch })).output, 'patched logits');
    // Gradients run differentiable programs, which optimize builds exact (no rewrites there).
    const options = { objective: { logit: 262, position: -1 }, wrt: ['transformer.h.1'] };
    const [g1, g2] = await Promise.all([torch.gradients(optimized, input(), options), torch.gradients(exact, input(), options)]);
    expectValuesRelative(g1.gradients['transformer.h.1'], g2.gradients['transformer.h.1'], 'gradient');
  });
});

describe('the fused ops take ATen’s recorded path where their kernel does not apply', () => {
  let dir: string;
  beforeAll(async () => {
    dir = scratchDir('optimize-transformers');
    await runPythonScript(path.join(ROOT, 'test', 'python', 'optimize_fixtures.py'), [dir]);
  }, 120_000);
  afterAll(() => removeDir(dir));

  test('3-D attention, a mask added on the left, division, an exact GELU, a 1-D linear input', async () => {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, 'attention3d.json'), 'utf8')) as { x: number[]; xShape: number[]; mask: number[]; vector: number[] };
    const host: HostTensor[] = [
      { data: Float32Array.from(raw.x), shape: raw.xShape, dtype: 'float32' },
      { data: Float32Array.from(raw.mask), shape: [raw.xShape[0], raw.xShape[1], raw.xShape[1]], dtype: 'float32' },
      { data: Float32Array.from(raw.vector), shape: [raw.vector.length], dtype: 'float32' },
    ];
    const inputs = () => host.map((h) => torch.tensor(h.data, h.shape));
    const file = path.join(dir, 'attention3d.pt');
    const exact = await torch.load(file);
    const optimized = await torch.load(file, { optimize: true });
    const counts = await opCounts(optimized);
    expect([counts['torchscope::attention'], counts['torchscope::prepacked_linear'], counts['aten::gelu'] ?? 0]).toEqual([1, 3, 0]);
    expectValuesRelative(await optimized.forward(...inputs()), await exact.forward(...inputs()), 'attention3d');
    exact.dispose();
    optimized.dispose();
  });
});
