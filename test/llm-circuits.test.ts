// Transformer circuits on today's open LLMs: the causal LMs of seven families and GPT-2 with its
// tied head (models/llm/, scripts/llm_fixtures.py; RoPE, grouped-query attention, soft-capping,
// sliding windows, tied embeddings), against transformers' eager models loaded from the same
// save_pretrained folders by test/python/llm_circuits_reference.py: attention maps of every layer
// from each attention module's ':pattern' (equal to output_attentions=True), pattern ablation
// (equal to a Python hook editing the pattern), the logit lens through tied heads, a tied head
// called alone, and what model.signature / model.nodes say. 1e-5 (x the values' scale for logits).
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  expectClose,
  expectTorchscopeError,
  HostTensor,
  MODELS,
  randint,
  readValue,
  refTensor,
  RefValue,
  removeDir,
  ROOT,
  runPythonScript,
  scratchDir,
  toTorch,
} from './helpers';

const LLM = path.join(MODELS, 'llm');
const REFERENCE = path.join(ROOT, 'test', 'python', 'llm_circuits_reference.py');
const FAMILIES = ['llama', 'qwen2', 'gemma2', 'gemma3', 'mistral', 'pythia', 'phi3', 'gpt2'];
const TIED = new Set(['qwen2', 'gemma2', 'gemma3', 'gpt2']);
// Longer than the sliding windows (4); two rows.
const SHAPE = [2, 10];
const TOL = 1e-5;
// The pattern ablation: attention layer 1, heads 0 and 2.
const ABLATED_LAYER = 1;
const ABLATED_HEADS = [0, 2];
// The pattern's gradient: of the logit of this token at the last position.
const TOKEN = 7;
// A tied family traced by hand, as a user would.
const BY_HAND = 'qwen2';

interface Family {
  name: string;
  model: torch.Model;
  ids: HostTensor;
  points: { blocks: string[]; attention: string[]; finalNorm: string; unembed: string };
}

let dir: string;
const idsFile = (name: string) => path.join(dir, `${name}-ids.bin`);
const idsSpec = (name: string) => ({ file: idsFile(name), dtype: 'int64', shape: SHAPE });
let ref: Record<string, RefValue | { error: string }>;
const families: Family[] = [];

type RefTensor = ReturnType<typeof refTensor>;

/** 1e-5 of the values' scale (logits). */
function scaled(expected: RefTensor): number {
  return TOL * Math.max(1, ...Array.from(expected.data as Float32Array, Math.abs));
}

function reference(id: string): RefTensor {
  const value = ref[id];
  if (value && 'error' in value) throw new Error(`reference ${id}: ${value.error}`);
  return refTensor(value as RefValue, id);
}

beforeAll(async () => {
  dir = scratchDir('llm-circuits');
  const cases: object[] = [];
  for (const [f, name] of FAMILIES.entries()) {
    const model = await torch.load(path.join(LLM, `${name}.pt`));
    const manifest = model.manifest!;
    const ids: HostTensor = { data: randint(SHAPE[0] * SHAPE[1], manifest.vocabSize!, 7 + f), shape: SHAPE, dtype: 'int64' };
    const file = idsFile(name);
    fs.writeFileSync(file, Buffer.from(ids.data.buffer));
    const points = manifest.hookPoints as Family['points'];
    families.push({ name, model, ids, points });
    const common = { folder: path.join(LLM, name), ids: { file, dtype: 'int64', shape: SHAPE } };
    cases.push({ id: `${name}/maps`, kind: 'attentions', ...common });
    cases.push({ id: `${name}/ablate`, kind: 'pattern_patch', layer: ABLATED_LAYER, heads: ABLATED_HEADS, ...common });
    cases.push({ id: `${name}/lens`, kind: 'lens', blocks: points.blocks, finalNorm: points.finalNorm, unembed: points.unembed, ...common });
    cases.push({ id: `${name}/unembed`, kind: 'unembed', finalNorm: points.finalNorm, unembed: points.unembed, ...common });
  }
  const llama = families.find((f) => f.name === 'llama')!;
  cases.push({ id: 'llama/pattern-grad', kind: 'pattern_grad', folder: path.join(LLM, 'llama'), ids: idsSpec('llama'), layer: 0, token: TOKEN });
  // Traced by hand (no `torchscope export`, no manifest), on a batch of another length.
  const handIds: HostTensor = { data: randint(2 * 8, llama.model.manifest!.vocabSize!, 99), shape: [2, 8], dtype: 'int64' };
  const handFile = path.join(dir, 'hand-ids.bin');
  fs.writeFileSync(handFile, Buffer.from(handIds.data.buffer));
  const traces = [{ folder: path.join(LLM, BY_HAND), out: path.join(dir, `${BY_HAND}-by-hand.pt`), ids: { file: handFile, dtype: 'int64', shape: [2, 8] } }];
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out: dir, cases, traces }));
  await runPythonScript(REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  ref = Object.fromEntries(Object.entries(index.cases).map(([id, v]) => [id, (v as { error?: string }).error ? (v as { error: string }) : readValue(v)]));
}, 600_000);

afterAll(() => {
  for (const f of families) f.model.dispose();
  removeDir(dir);
});

const family = (name: string) => families.find((f) => f.name === name)!;

describe.each(FAMILIES)('%s', (name) => {
  test("attention maps of every layer from ':pattern' equal output_attentions=True", async () => {
    const { model, ids, points } = family(name);
    const result = await torch.attention(model, toTorch(ids));
    expect(result.source).toBe('pattern');
    expect(result.modules).toEqual(points.attention);
    expect(result.tokens[0]).toHaveLength(SHAPE[1]);
    const expected = reference(`${name}/maps`);
    expect(result.attentions.shape).toEqual(expected.shape);
    expectClose(result.attentions, expected, TOL, 'attentions');
    result.attentions.dispose();
  });

  test('pattern ablation (zeroed heads of one layer) equals a Python hook editing the pattern', async () => {
    const { model, ids, points } = family(name);
    const layer = `${points.attention[ABLATED_LAYER]}:pattern`;
    const result = await torch.run(model, [toTorch(ids)], { patch: { [layer]: { zero: true, channels: ABLATED_HEADS } } });
    const logits = result.output as torch.Tensor;
    const expected = reference(`${name}/ablate`);
    expectClose(logits, expected, scaled(expected), 'patched logits');
    // The edit changes the output: the comparison is not of two clean runs.
    const clean = await torch.run(model, [toTorch(ids)]);
    const cleanLogits = clean.output as torch.Tensor;
    const want = expected.data as Float32Array;
    const moved = Math.max(...Array.from(cleanLogits.data() as Float32Array, (x, i) => Math.abs(x - want[i])));
    expect(moved).toBeGreaterThan(100 * scaled(expected));
    result.dispose();
    clean.dispose();
  });

  test('the logit lens through the final norm and the (tied) head', async () => {
    const { model, ids, points } = family(name);
    const lens = await torch.logitLens(model, toTorch(ids), { layers: points.blocks, head: [points.finalNorm, points.unembed] });
    const expected = reference(`${name}/lens`);
    expect(lens.logits.shape.slice(0, 3)).toEqual([points.blocks.length, ...SHAPE]);
    expectClose(lens.logits, expected, scaled(expected), 'lens logits');
    lens.dispose();
  });

  test('the head called alone: model.call and model.signature', async () => {
    const { model, ids, points } = family(name);
    const signature = await model.signature(points.unembed);
    const given = signature.filter((a) => !a.supplied);
    expect(given).toHaveLength(1);
    if (TIED.has(name)) {
      // The trace passes the tied weight in from the parent; the model supplies it.
      const weight = signature.find((a) => a.supplied)!;
      expect(weight.source).toMatch(/embed_tokens\.weight$|wte\.weight$/);
    } else {
      expect(signature).toHaveLength(1);
    }
    const x = (await torch.activations(model, points.finalNorm, toTorch(ids))) as torch.Tensor;
    const logits = (await model.call(points.unembed, x)) as torch.Tensor;
    const expected = reference(`${name}/unembed`);
    expectClose(logits, expected, scaled(expected), 'head logits');
    x.dispose();
    logits.dispose();
  });
});

describe('operations as hook points', () => {
  test("model.nodes lists an attention module's operations with shapes; ':pattern' names its softmax", async () => {
    const { model, ids, points } = family('llama');
    const nodes = await model.nodes(points.attention[0], toTorch(ids));
    const softmax = nodes.filter((n) => n.op === 'aten::softmax');
    expect(softmax).toHaveLength(1);
    expect(softmax[0].pattern).toBe(true);
    expect(softmax[0].name).toBe(`${points.attention[0]}/softmax`);
    expect(softmax[0].shape).toEqual([SHAPE[0], family('llama').model.manifest!.heads!, SHAPE[1], SHAPE[1]]);
    // Names follow torch.fx: the first matmul is 'matmul', the second 'matmul_1'.
    expect(nodes.filter((n) => n.op === 'aten::matmul').map((n) => n.name.split('/')[1])).toEqual(['matmul', 'matmul_1']);
    // The named softmax and ':pattern' are the same hook point's value.
    const both = (await torch.activations(model, [softmax[0].name, `${points.attention[0]}:pattern`], toTorch(ids))) as Record<string, torch.Tensor>;
    expect(Array.from(both[softmax[0].name].data() as Float32Array)).toEqual(Array.from(both[`${points.attention[0]}:pattern`].data() as Float32Array));
    torch.dispose(both);
  });

  test('unknown operations, modules without a softmax, and callers that must give an argument', async () => {
    const { model, ids, points } = family('llama');
    await expectTorchscopeError(
      () => torch.activations(model, `${points.attention[0]}/nosuchop`, toTorch(ids)),
      'UNKNOWN_LAYER',
      /has no operation 'nosuchop'.*model\.nodes/,
    );
    await expectTorchscopeError(() => torch.activations(model, `${points.blocks[0]}:pattern`, toTorch(ids)), 'UNKNOWN_LAYER', /computes no softmax/);
    await expectTorchscopeError(() => torch.activations(model, 'model.nope/softmax', toTorch(ids)), 'UNKNOWN_LAYER', /no layer 'model\.nope'/);
    await expectTorchscopeError(() => torch.activations(model, `${points.attention[0]}/`, toTorch(ids)), 'UNKNOWN_LAYER', /an operation is named/);
    // A decoder layer takes rotary tables and a mask that the model computes from forward's inputs.
    const signature = await model.signature(points.blocks[0]);
    expect(signature.some((a) => !a.supplied && /from forward's inputs/.test(a.source ?? ''))).toBe(true);
    const x = (await torch.activations(model, `${points.blocks[0]}:input`, toTorch(ids))) as torch.Tensor;
    await expectTorchscopeError(() => model.call(points.blocks[0], x), 'INVALID_ARGUMENT', /needs its argument .* from forward's inputs: give it/);
    x.dispose();
  });

  test("a model whose attention is one fused kernel has no ':pattern', and says what export gives one", async () => {
    // torch.nn.TransformerEncoder traced: its attention is aten::scaled_dot_product_attention.
    const model = await torch.load(path.join(MODELS, 'zoo', 'transformer-encoder-traced.pt'));
    try {
      const x = torch.zeros([1, 6, 32]);
      const mask = torch.tensor([[false, false, false, false, false, false]]);
      await expectTorchscopeError(
        () => torch.activations(model, 'encoder.layers.0.self_attn:pattern', x, mask),
        'UNKNOWN_LAYER',
        /fused into one kernel \(aten::scaled_dot_product_attention\).*attn_implementation='eager'/,
      );
      expect((await model.nodes('encoder.layers.0.self_attn')).some((n) => n.pattern)).toBe(false);
    } finally {
      model.dispose();
    }
  });

  test("the gradient at ':pattern' equals autograd's at the softmax's output", async () => {
    const { model, ids, points } = family('llama');
    const layer = `${points.attention[0]}:pattern`;
    const result = await torch.gradients(model, [toTorch(ids)], { objective: { logit: TOKEN, position: -1 }, wrt: layer });
    const expected = reference('llama/pattern-grad');
    expectClose(result.gradients[layer] as torch.Tensor, expected, scaled(expected), 'pattern gradient');
    expect(Math.max(...Array.from(expected.data as Float32Array, Math.abs))).toBeGreaterThan(1e-3);
    result.dispose();
  });
});

describe(`${BY_HAND} traced by hand (torch.jit.trace on a dict-returning Hugging Face model, no manifest)`, () => {
  let model: torch.Model;
  beforeAll(async () => {
    model = await torch.load(path.join(dir, `${BY_HAND}-by-hand.pt`));
  });
  afterAll(() => model?.dispose());

  test('attention maps, the logit lens and the tied head equal the eager model', async () => {
    const { ids, points } = family(BY_HAND);
    expect(model.manifest).toBeNull();
    const maps = await torch.attention(model, toTorch(ids));
    expect(maps.modules).toEqual(points.attention);
    expectClose(maps.attentions, reference(`${BY_HAND}/maps`), TOL, 'attentions');
    const lens = await torch.logitLens(model, toTorch(ids), { layers: points.blocks, head: [points.finalNorm, points.unembed] });
    const lensRef = reference(`${BY_HAND}/lens`);
    expectClose(lens.logits, lensRef, scaled(lensRef), 'lens logits');
    const x = (await torch.activations(model, points.finalNorm, toTorch(ids))) as torch.Tensor;
    const head = reference(`${BY_HAND}/unembed`);
    expectClose((await model.call(points.unembed, x)) as torch.Tensor, head, scaled(head), 'head logits');
    maps.attentions.dispose();
    lens.dispose();
  });
});
