// torch.attention (lib/methods/attention.ts) against Hugging Face BertModel (eager attention,
// output_attentions=True) with the same weights, run by test/python/attention_reference.py.
// bert-tiny.pt returns its attentions (source 'output'); bert-tiny-noattn.pt (same weights)
// returns none, and its traced attention.self modules return the context alone, so the maps
// are the softmax inside each attention.self (source 'pattern'); bert.pt (base) once.
// gpt2-tiny.pt (traced on ids alone; its attn modules return no probabilities) against
// GPT2LMHeadModel with the same weights: the softmax inside each attn, causal mask included.
// Tolerance: 1e-5 absolute on probabilities.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';

import * as torch from '../lib';
import { attention, AttentionInput, AttentionResult } from '../lib/methods/attention';
import { expectTorchscopeError, modelPath, python, removeDir, ROOT, scratchDir } from './helpers';

const TOL = 1e-5;
const SCRIPT = path.join(ROOT, 'test', 'python', 'attention_reference.py');
const VOCAB = modelPath('bert-vocab.txt');

const SINGLE = 'The quick brown fox jumps over the lazy dog.';
const BATCH = ['Attention is all you need.', 'Hi!', 'Tokenizers split unaffordable words into word-pieces, e.g. ##ing.'];
const PAIR: [string, string] = ['Where is the cat?', 'The cat sat on the mat.'];
const BASE_TEXT = 'The cat sat on the mat because it was tired.';
// Made by the reference in the scratch dir: bert-tiny's weights, returning attentions averaged
// over heads ([B, L, S, S]), so its traced attention.self modules keep returning (context, probs).
const MEAN = 'bert-tiny-meanattn.pt';

interface Case {
  id: string;
  file: string;
  size: 'tiny' | 'base';
  input: AttentionInput;
  source: AttentionResult['source'];
}

const CASES: Case[] = [];
for (const [file, source] of [
  ['bert-tiny.pt', 'output'],
  ['bert-tiny-noattn.pt', 'pattern'],
] as const) {
  CASES.push({ id: `${file}/single`, file, size: 'tiny', input: SINGLE, source });
  CASES.push({ id: `${file}/batch`, file, size: 'tiny', input: BATCH, source });
  CASES.push({ id: `${file}/pair`, file, size: 'tiny', input: [PAIR], source });
}
CASES.push({ id: 'bert.pt/single', file: 'bert.pt', size: 'base', input: BASE_TEXT, source: 'output' });

const GPT2 = 'gpt2-tiny.pt';
// Right padding (the default): the model takes no mask, and causal attention keeps real tokens off the padding.
const GPT2_TEXTS: Record<string, string[]> = { [`${GPT2}/single`]: [SINGLE], [`${GPT2}/batch`]: BATCH };
let gpt2Tokenizer: torch.Gpt2Tokenizer;
const gpt2Encodings: Record<string, torch.Gpt2BatchEncoding> = {};

interface RefCase {
  /** absent for GPT-2 cases, whose ids came from torchscope's tokenizer */
  tokens?: string[][];
  ids: number[][];
  mask: number[][];
  shape: number[];
  data: Float32Array;
}

let dir: string;
let ref: Record<string, RefCase>;
let tokenizer: torch.BertTokenizer;
const models = new Map<string, torch.Model>();

beforeAll(async () => {
  dir = scratchDir('attention');
  gpt2Tokenizer = await torch.Gpt2Tokenizer.load();
  for (const [id, texts] of Object.entries(GPT2_TEXTS)) gpt2Encodings[id] = gpt2Tokenizer.encodeBatch(texts);
  const request = {
    out: dir,
    vocab: VOCAB,
    cases: [
      ...CASES.map((c) => ({ id: c.id, model: modelPath(c.file), size: c.size, input: c.input })),
      ...Object.entries(gpt2Encodings).map(([id, enc]) => ({ id, model: modelPath(GPT2), gpt2: 'tiny', ids: enc.ids, mask: enc.attentionMask })),
    ],
    exports: [
      { from: modelPath('bert-tiny.pt'), path: path.join(dir, MEAN) },
      { kind: 'noattention', path: path.join(dir, 'noattention.pt') },
    ],
  };
  fs.writeFileSync(path.join(dir, 'request.json'), JSON.stringify(request));
  const pythonRun = promisify(execFile)(python(), [SCRIPT, path.join(dir, 'request.json')], { maxBuffer: 1 << 24 });
  tokenizer = await torch.BertTokenizer.fromVocab(VOCAB);
  for (const file of new Set([...CASES.map((c) => c.file), GPT2])) models.set(file, await torch.load(modelPath(file)));
  await pythonRun;
  models.set(MEAN, await torch.load(path.join(dir, MEAN)));
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')).cases;
  ref = {};
  for (const [id, raw] of Object.entries<any>(index)) {
    const bytes = fs.readFileSync(raw.file);
    ref[id] = { ...raw, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
  }
}, 300_000);

afterAll(() => {
  for (const m of models.values()) m.dispose();
  removeDir(dir);
});

/** Real-token block equal to Python's, padding rows and columns 0, real rows summing to 1. */
function checkAgainst(result: AttentionResult, expected: RefCase, label: string, tol = TOL): void {
  const [B, L, H, S] = expected.shape;
  expect(result.attentions.shape).toEqual([B, L, H, S, S]);
  expect(result.attentions.dtype).toBe('float32');
  expect([result.layers, result.heads]).toEqual([L, H]);
  const real = expected.mask.map((row) => row.flatMap((m, i) => (m === 1 ? [i] : [])));
  if (expected.tokens) expect(result.tokens).toEqual(expected.tokens.map((row, b) => real[b].map((i) => row[i])));
  expect(result.lengths).toEqual(real.map((r) => r.length));
  const ours = result.attentions.data() as Float32Array;
  let worst = 0;
  let worstAt = '';
  let worstSum = 0;
  let nonzeroPad = 0;
  for (let b = 0; b < B; b++) {
    const isReal = expected.mask[b].map((m) => m === 1);
    for (let lh = 0; lh < L * H; lh++) {
      const base = (b * L * H + lh) * S * S;
      for (let i = 0; i < S; i++) {
        let sum = 0;
        for (let j = 0; j < S; j++) {
          const k = base + i * S + j;
          if (isReal[i] && isReal[j]) {
            const d = Math.abs(ours[k] - expected.data[k]);
            if (d > worst) [worst, worstAt] = [d, `[${b}, ${Math.floor(lh / H)}, ${lh % H}, ${i}, ${j}]`];
            sum += ours[k];
          } else if (ours[k] !== 0) {
            nonzeroPad++;
          }
        }
        if (isReal[i]) worstSum = Math.max(worstSum, Math.abs(sum - 1));
      }
    }
  }
  if (worst > tol) throw new Error(`${label}: max |ours - python| = ${worst.toExponential(3)} > ${tol} at ${worstAt}`);
  expect(nonzeroPad).toBe(0);
  expect(worstSum).toBeLessThan(1e-5);
}

describe.each(CASES.map((c) => [c.id, c] as const))('%s', (id, c) => {
  test(`matches transformers (eager, output_attentions=True); source '${c.source}'`, async () => {
    const result = await attention(models.get(c.file)!, c.input, { tokenizer });
    expect(result.source).toBe(c.source);
    const expected = ref[id];
    expect(expected.ids.map((row, b) => row.filter((_, i) => expected.mask[b][i] === 1))).toEqual(
      result.tokens.map((row) => row.map((t) => tokenizer.tokenToId(t))),
    );
    checkAgainst(result, expected, id);
    result.attentions.dispose();
  });
});

describe('GPT-2 (traced on ids alone, fused c_attn, causal)', () => {
  test.each(Object.keys(GPT2_TEXTS))("%s matches GPT2LMHeadModel (eager, output_attentions=True); source 'pattern'", async (id) => {
    const enc = gpt2Encodings[id];
    const result = await attention(models.get(GPT2)!, enc, { tokenizer: gpt2Tokenizer });
    expect(result.source).toBe('pattern');
    expect(result.tokens).toEqual(enc.tokens.map((row, b) => row.filter((_, i) => enc.attentionMask[b][i] === 1)));
    checkAgainst(result, ref[id], id);
    // Causal: nothing above the diagonal.
    const [B, L, H, S] = result.attentions.shape;
    const data = result.attentions.data() as Float32Array;
    let above = 0;
    for (let m = 0; m < B * L * H; m++) for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) above += data[(m * S + i) * S + j];
    expect(above).toBe(0);
    result.attentions.dispose();
  });

  test('text in, with the plan remembered: the same maps, and the HTML viewer takes them', async () => {
    const model = models.get(GPT2)!;
    const result = await attention(model, BATCH, { tokenizer: gpt2Tokenizer });
    checkAgainst(result, ref[`${GPT2}/batch`], 'gpt2 text');
    const html = torch.plot.attentionHtml(result, { batch: 1 });
    expect(html).toContain(JSON.stringify(result.tokens[1][0]).slice(1, -1));
  });

  test('left padding is refused: the model takes no mask, so real tokens would attend to padding', async () => {
    const enc = gpt2Tokenizer.encodeBatch(BATCH, { paddingSide: 'left' });
    await expectTorchscopeError(
      () => attention(models.get(GPT2)!, enc, { tokenizer: gpt2Tokenizer }),
      'INVALID_ARGUMENT',
      /takes no attention mask.*pad on the right/,
    );
    await expectTorchscopeError(() => attention(models.get(GPT2)!, [['a', 'b']], { tokenizer: gpt2Tokenizer }), 'INVALID_ARGUMENT', /pairs/);
  });
});

describe('other sources and programs', () => {
  test.each(['single', 'batch', 'pair'])('attention.self returning (context, probs): its pattern, %s', async (name) => {
    const input = CASES.find((c) => c.id === `bert-tiny.pt/${name}`)!.input;
    const result = await attention(models.get(MEAN)!, input, { tokenizer });
    expect(result.source).toBe('pattern');
    checkAgainst(result, ref[`bert-tiny.pt/${name}`], `capture/${name}`);
  });

  test.each(['bert-tiny.pt', 'bert-tiny-noattn.pt'])('load(%s, { optimize: true }): within 1e-4 of transformers', async (file) => {
    const model = await torch.load(modelPath(file), { optimize: true });
    try {
      for (const name of ['single', 'batch', 'pair']) {
        const c = CASES.find((x) => x.id === `${file}/${name}`)!;
        checkAgainst(await attention(model, c.input, { tokenizer }), ref[c.id], `optimize ${c.id}`, 1e-4);
      }
    } finally {
      model.dispose();
    }
  });
});

describe('inputs', () => {
  test('an Encoding and a BatchEncoding give what the text gives', async () => {
    const model = models.get('bert-tiny-noattn.pt')!;
    const fromText = await attention(model, BATCH, { tokenizer });
    const fromBatch = await attention(model, tokenizer.encodeBatch(BATCH), { tokenizer });
    expect(Array.from(fromBatch.attentions.data() as Float32Array)).toEqual(Array.from(fromText.attentions.data() as Float32Array));
    const one = await attention(model, tokenizer.encode(SINGLE), { tokenizer });
    checkAgainst(one, ref['bert-tiny-noattn.pt/single'], 'Encoding');
  });

  test('maxLength truncates', async () => {
    const result = await attention(models.get('bert-tiny.pt')!, SINGLE, { tokenizer, maxLength: 5 });
    expect(result.lengths).toEqual([5]);
    expect(result.tokens[0][0]).toBe('[CLS]');
    expect(result.tokens[0][4]).toBe('[SEP]');
    expect(result.attentions.shape).toEqual([1, 2, 2, 5, 5]);
  });

  test('output and pattern agree on a batch (same weights)', async () => {
    const a = await attention(models.get('bert-tiny.pt')!, BATCH, { tokenizer });
    const b = await attention(models.get('bert-tiny-noattn.pt')!, BATCH, { tokenizer });
    const x = a.attentions.data() as Float32Array;
    const y = b.attentions.data() as Float32Array;
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    expect(worst).toBeLessThan(TOL);
  });
});

describe('errors', () => {
  test('a model without attention', async () => {
    const model = await torch.load(path.join(dir, 'noattention.pt'));
    try {
      await expectTorchscopeError(
        () => attention(model, SINGLE, { tokenizer }),
        'INVALID_ARGUMENT',
        /no \[batch, layers, heads, seq, seq\] attentions and no module's forward computes a softmax.*eager attention/,
      );
    } finally {
      model.dispose();
    }
  });

  test('bad options and inputs', async () => {
    const model = models.get('bert-tiny.pt')!;
    await expectTorchscopeError(() => attention({} as torch.Model, SINGLE, { tokenizer }), 'INVALID_ARGUMENT', /torch\.load/);
    await expectTorchscopeError(() => attention(model, SINGLE, {} as never), 'INVALID_ARGUMENT', /text needs options\.tokenizer/);
    await expectTorchscopeError(() => attention(model, SINGLE, { tokenizer: {} } as never), 'INVALID_ARGUMENT', /must be a tokenizer/);
    await expectTorchscopeError(() => attention(model, SINGLE, { tokenizer, maxLength: 1 }), 'INVALID_ARGUMENT', /maxLength/);
    await expectTorchscopeError(() => attention(model, SINGLE, { tokenizer, heads: 2 } as never), 'INVALID_ARGUMENT', /unknown option 'heads'/);
    await expectTorchscopeError(() => attention(model, [], { tokenizer }), 'INVALID_ARGUMENT', /empty/);
    await expectTorchscopeError(() => attention(model, [{}] as never, { tokenizer }), 'INVALID_ARGUMENT', /input\[0\]/);
    await expectTorchscopeError(() => attention(model, 42 as never, { tokenizer }), 'INVALID_ARGUMENT', /input must be/);
    await expectTorchscopeError(() => attention(model, tokenizer.encode(SINGLE), { tokenizer, maxLength: 8 }), 'INVALID_ARGUMENT', /encoded input/);
  });
});
