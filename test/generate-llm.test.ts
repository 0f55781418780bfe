// torch.generate with any tokenizer, or none: the causal LMs of the seven families and GPT-2 of
// models/llm/ (scripts/llm_fixtures.py: byte-level BPE for Llama, Qwen2, Pythia, GPT-2;
// SentencePiece-style BPE for Gemma, Mistral, Phi-3; Llama 3 and Gemma chat templates), each with
// torch.Tokenizer loaded from its
// save_pretrained folder, against test/python/generate_reference.py: transformers' tokenizer and
// eager model from the same folder, greedy, one full forward per token. The prompt's ids, the new
// ids and the decoded text must be equal; ids alone (no tokenizer) give the same ids.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectTorchscopeError, MODELS, randn, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const LLM = path.join(MODELS, 'llm');
const REFERENCE = path.join(ROOT, 'test', 'python', 'generate_reference.py');
const STEPS = 8;
const PROMPT = 'The quick brown fox, naïve 日本 🦊';
const MESSAGES: torch.ChatMessage[] = [
  { role: 'user', content: 'Hi! What do induction heads do?' },
  { role: 'assistant', content: 'They copy.' },
  { role: 'user', content: 'Copy what?' },
];

interface Case {
  id: string;
  family: string;
  prompt: string | null;
  messages: torch.ChatMessage[] | null;
}
// Activation steering: a vector added to block 0's output at every step.
const STEER_LAYER = 'model.layers.0';
const STEER_SCALE = 4;
const CASES: Case[] = [
  { id: 'llama/text', family: 'llama', prompt: PROMPT, messages: null },
  { id: 'llama/chat', family: 'llama', prompt: null, messages: MESSAGES },
  { id: 'gemma2/chat', family: 'gemma2', prompt: null, messages: MESSAGES },
  // Every other family, with text.
  ...['qwen2', 'gemma2', 'gemma3', 'mistral', 'pythia', 'phi3', 'gpt2'].map((family) => ({ id: `${family}/text`, family, prompt: PROMPT, messages: null })),
];

interface Answer {
  ids: number[];
  newIds: number[];
  text: string;
}

let dir: string;
let steer: Float32Array;
let answers: Record<string, Answer | { error: string }>;
const models: Record<string, torch.Model> = {};
const tokenizers: Record<string, torch.Tokenizer> = {};

beforeAll(async () => {
  dir = scratchDir('generate-llm');
  const out = path.join(dir, 'out');
  const request = path.join(dir, 'request.json');
  const cases: object[] = CASES.map((c) => ({ id: c.id, folder: path.join(LLM, c.family), prompt: c.prompt, messages: c.messages, steps: STEPS }));
  const hidden = JSON.parse(fs.readFileSync(path.join(LLM, 'llama.torchscope.json'), 'utf8')).hiddenSize as number;
  steer = Float32Array.from(randn(hidden, 11), (x) => x * STEER_SCALE);
  const steerFile = path.join(dir, 'steer.bin');
  fs.writeFileSync(steerFile, Buffer.from(steer.buffer));
  cases.push({
    id: 'llama/steered',
    folder: path.join(LLM, 'llama'),
    prompt: PROMPT,
    messages: null,
    steps: STEPS,
    steer: { layer: STEER_LAYER, add: { file: steerFile, dtype: 'float32', shape: [hidden] } },
  });
  fs.writeFileSync(request, JSON.stringify({ out, cases }));
  await runPythonScript(REFERENCE, [request]);
  answers = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')).cases;
  for (const family of new Set(CASES.map((c) => c.family))) {
    models[family] = await torch.load(path.join(LLM, `${family}.pt`));
    tokenizers[family] = await torch.Tokenizer.fromPretrained(path.join(LLM, family));
  }
}, 600_000);

afterAll(() => {
  for (const model of Object.values(models)) model.dispose();
  removeDir(dir);
});

function answer(id: string): Answer {
  const value = answers[id];
  if (!value || 'error' in value) throw new Error(`reference ${id}: ${value ? value.error : 'missing'}`);
  return value;
}

describe.each(CASES)('$id', (c) => {
  test('greedy: the prompt, the new ids and the text equal transformers', async () => {
    const want = answer(c.id);
    const tokenizer = tokenizers[c.family];
    const prompt = c.prompt ?? tokenizer.applyChatTemplate(c.messages!, { addGenerationPrompt: true, tokenize: true }).ids;
    const run = torch.generate(models[c.family], tokenizer, prompt, { maxNewTokens: STEPS });
    const streamed: number[] = [];
    for await (const token of run) streamed.push(token.id);
    const result = await run.result;
    expect(result.ids).toEqual([...want.ids, ...want.newIds]);
    expect(result.newIds).toEqual(want.newIds);
    expect(streamed).toEqual(want.newIds);
    expect(result.text).toBe(want.text);
  });

  test('ids alone, with no tokenizer, give the same ids', async () => {
    const want = answer(c.id);
    const alone = await torch.generate(models[c.family], want.ids, { maxNewTokens: STEPS }).result;
    expect(alone.newIds).toEqual(want.newIds);
    expect(alone.text).toBe('');
    const nullTokenizer = await torch.generate(models[c.family], null, want.ids, { maxNewTokens: 2 }).result;
    expect(nullTokenizer.newIds).toEqual(want.newIds.slice(0, 2));
  });
});

test("stop at a token id (the tokenizer's eos), and what needs a tokenizer", async () => {
  const want = answer('llama/text');
  const model = models.llama;
  const stopped = await torch.generate(model, tokenizers.llama, PROMPT, { maxNewTokens: STEPS, stop: want.newIds[2] }).result;
  expect(stopped.newIds).toEqual(want.newIds.slice(0, want.newIds.indexOf(want.newIds[2]) + 1));
  expect(stopped.finish).toBe('stop');
  await expectTorchscopeError(() => torch.generate(model, null, PROMPT).result, 'INVALID_ARGUMENT', /a text prompt needs a tokenizer/);
  await expectTorchscopeError(() => torch.generate(model, want.ids, { stop: 'x' }).result, 'INVALID_ARGUMENT', /stop strings need a tokenizer/);
  await expectTorchscopeError(() => torch.generate(model, {} as never, PROMPT).result, 'INVALID_ARGUMENT', /tokenizer must have encode and decode/);
  const vocab = tokenizers.llama.vocabSize;
  await expectTorchscopeError(
    () => torch.generate(model, tokenizers.llama, [1, vocab]).result,
    'INVALID_ARGUMENT',
    new RegExp(`${vocab} is not in the vocabulary \\[0, ${vocab}\\)`),
  );
});

test('steering at every step (a patch adding a vector to a block) equals a Python forward hook doing the same', async () => {
  const want = answer('llama/steered');
  const vector = torch.tensor(steer, [steer.length]);
  const steered = await torch.generate(models.llama, tokenizers.llama, PROMPT, { maxNewTokens: STEPS, patch: { [STEER_LAYER]: { add: vector } } }).result;
  expect(steered.newIds).toEqual(want.newIds);
  // The steering changes the continuation: the comparison is not of two plain runs.
  expect(want.newIds).not.toEqual(answer('llama/text').newIds);
  vector.dispose();
});
