// KV-cached generation: the decoding step `torchscope export` writes beside a causal LM
// (scripts/hf_decode.py, models/llm/<family>.decode.pt), loaded with the model as
// model.decodeStep. What its hooks see at step t equals what the full forward over the first t
// tokens sees at the new positions (captures, patches), chained from an empty past; generation
// through it gives the ids of the whole-sequence path (generate-llm.test.ts compares both with
// transformers, sae-splice.test.ts with SAE splices); the files it comes from are checked.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectClose, expectTorchscopeError, HostTensor, MODELS, python, randint, randn, removeDir, scratchDir } from './helpers';

const LLM = path.join(MODELS, 'llm');
const FAMILIES = ['llama', 'qwen2', 'gemma2', 'gemma3', 'mistral', 'pythia', 'phi3', 'gpt2'];
const PROMPT = 6;
const STEPS = 4;
const TOL = 1e-5;

let dir: string;
const models: Record<string, torch.Model> = {};

beforeAll(async () => {
  dir = scratchDir('generate-cached');
  for (const family of FAMILIES) models[family] = await torch.load(path.join(LLM, `${family}.pt`));
}, 120_000);

afterAll(() => {
  for (const model of Object.values(models)) model.dispose();
  removeDir(dir);
});

function manifest(family: string): torch.ModelManifest {
  return models[family].manifest!;
}

/** Positions [from, to) of a [1, seq, ...] tensor, as a host tensor. */
function rows(t: torch.Tensor, from: number, to: number): HostTensor {
  const width = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { data: (t.data() as Float32Array).slice(from * width, to * width), shape: [1, to - from, ...t.shape.slice(2)], dtype: 'float32' };
}

/** A block's (or attention's) output in the decoding step also carries its keys and values: its first tensor is the output. */
function first(value: torch.Value): torch.Tensor {
  return (Array.isArray(value) ? value[0] : value) as torch.Tensor;
}

function idsTensor(ids: bigint[]): torch.Tensor {
  return torch.tensor(BigInt64Array.from(ids), [1, ids.length]);
}

function emptyPast(family: string): torch.Tensor[] {
  return manifest(family).decodeStep!.past.map(([heads, dim]) => torch.tensor(new Float32Array(0), [1, heads, 0, dim]));
}

describe.each(FAMILIES)('%s', (family) => {
  test('loads with its decoding step: the same modules, checked at export', () => {
    const model = models[family];
    const step = model.decodeStep!;
    expect(step).toBeInstanceOf(torch.Model);
    expect(step.modules().map((m) => m.path)).toEqual(model.modules().map((m) => m.path));
    const entry = manifest(family).decodeStep!;
    expect(entry.file).toBe(path.join(LLM, `${family}.decode.pt`));
    expect(entry.past).toHaveLength(2 * manifest(family).layers!);
    expect(entry.check!.maxAbsDiff).toBeLessThanOrEqual(1e-5 * 100);
    expect(manifest(family).decodeStepRefused).toBeNull();
  });

  test("each step's logits, captures and patches equal the full forward's at the new positions", async () => {
    const model = models[family];
    const step = model.decodeStep!;
    const points = manifest(family).hookPoints;
    const capture = [points.embed!, ...points.blocks!, ...points.mlp!, points.finalNorm!];
    const hidden = manifest(family).hiddenSize!;
    const vector = torch.tensor(randn(hidden, 7), [hidden]);
    // A steering vector at every position, and a zeroed position of the prompt.
    const patch: Record<string, torch.PatchSpec> = { [points.blocks![0]]: { add: vector } };
    const ids = Array.from(randint(PROMPT + STEPS, manifest(family).vocabSize!, 3));
    let past = emptyPast(family);
    let start = 0;
    for (const end of [PROMPT, ...Array.from({ length: STEPS }, (_, i) => PROMPT + i + 1)]) {
      const mlpPatch = start <= 2 && 2 < end ? { [points.mlp![1]]: { zero: true as const, positions: [2 - start] } } : {};
      const fresh = idsTensor(ids.slice(start, end));
      const got = await torch.run(step, [fresh, ...past], { capture, patch: { ...patch, ...mlpPatch } });
      const whole = idsTensor(ids.slice(0, end));
      const want = await torch.run(model, [whole], { capture, patch: { ...patch, [points.mlp![1]]: { zero: true, positions: [2] } } });
      const [logits, ...present] = got.output as torch.Tensor[];
      expectClose(logits, rows(want.output as torch.Tensor, start, end), TOL, `${family} logits at [${start}, ${end})`);
      for (const layer of capture) {
        expectClose(first(got.activations[layer]), rows(want.activations[layer] as torch.Tensor, start, end), TOL, `${family} ${layer} at [${start}, ${end})`);
      }
      expect(present.map((t) => t.shape[2])).toEqual(past.map(() => end));
      for (const t of [fresh, whole, ...past, logits]) t.dispose();
      past = present;
      start = end;
    }
    for (const t of past) t.dispose();
    vector.dispose();
  });
});

describe('generation through the decoding step', () => {
  const prompt = [3, 9, 4, 17, 5, 11, 8];
  const steer = (family: string) => {
    const hidden = manifest(family).hiddenSize!;
    return torch.tensor(
      Float32Array.from(randn(hidden, 5), (x) => 3 * x),
      [hidden],
    );
  };
  const block = (family: string, i: number) => manifest(family).hookPoints.blocks![i];

  test.each(['plain', 'steered', 'patched at prompt positions'])('%s: the ids of the whole-sequence path, one token per step', async (kind) => {
    for (const family of ['llama', 'gemma2', 'gpt2']) {
      const vector = steer(family);
      const patch =
        kind === 'plain'
          ? undefined
          : kind === 'steered'
            ? { [block(family, 0)]: { add: vector } }
            : { [block(family, 1)]: { add: vector, positions: [1, 5] } };
      const cached = await torch.generate(models[family], prompt, { maxNewTokens: 10, patch }).result;
      const whole = await torch.generate(models[family], prompt, { maxNewTokens: 10, patch, cache: false }).result;
      expect({ family, cached: cached.cached, whole: whole.cached }).toEqual({ family, cached: true, whole: false });
      expect(cached.newIds).toEqual(whole.newIds);
      vector.dispose();
    }
  });

  test('a steering patch changes the continuation (the comparison above is not of two plain runs)', async () => {
    const plain = await torch.generate(models.llama, prompt, { maxNewTokens: 10 }).result;
    const steered = await torch.generate(models.llama, prompt, { maxNewTokens: 10, patch: { 'model.layers.0': { add: steer('llama') } } }).result;
    expect(steered.newIds).not.toEqual(plain.newIds);
  });

  test('patch positions count from the prompt: past it is refused, from the end reruns the sequence', async () => {
    await expectTorchscopeError(
      () => torch.generate(models.llama, prompt, { patch: { 'model.layers.0': { zero: true, positions: [prompt.length] } } }).result,
      'INVALID_ARGUMENT',
      /position 7 is past the prompt's 7 tokens/,
    );
    const fromEnd = { patch: { 'model.layers.0': { add: steer('llama'), positions: [-1] } }, maxNewTokens: 4 };
    const moving = await torch.generate(models.llama, prompt, fromEnd).result;
    expect(moving.cached).toBe(false);
    expect(moving.newIds).toEqual((await torch.generate(models.llama, prompt, { ...fromEnd, cache: false }).result).newIds);
  });

  test('an abort ends it with what it made; a stop too', async () => {
    const controller = new AbortController();
    const run = torch.generate(models.llama, prompt, { maxNewTokens: 50, signal: controller.signal });
    const seen: number[] = [];
    for await (const token of run) {
      seen.push(token.id);
      if (seen.length === 3) controller.abort();
    }
    const result = await run.result;
    expect(result).toMatchObject({ finish: 'aborted', cached: true, newIds: seen });
    const full = await torch.generate(models.llama, prompt, { maxNewTokens: 6 }).result;
    const stopped = await torch.generate(models.llama, prompt, { maxNewTokens: 6, stop: full.newIds[1] }).result;
    expect(stopped.newIds).toEqual(full.newIds.slice(0, full.newIds.indexOf(full.newIds[1]) + 1));
  });

  test('{ decodeStep: false } loads the model alone: generate says once that it reruns the sequence, and gives the same ids', async () => {
    const alone = await torch.load(path.join(LLM, 'llama.pt'), { decodeStep: false });
    expect(alone.decodeStep).toBeNull();
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const result = await torch.generate(alone, prompt, { maxNewTokens: 5 }).result;
      await torch.generate(alone, prompt, { maxNewTokens: 1 }).result;
      expect(result.cached).toBe(false);
      expect(result.newIds).toEqual((await torch.generate(models.llama, prompt, { maxNewTokens: 5 }).result).newIds);
      const ours = emitWarning.mock.calls.filter(([, options]) => (options as { code?: string } | undefined)?.code === 'TORCHSCOPE_UNCACHED_GENERATION');
      expect(ours).toHaveLength(1);
      expect(String(ours[0][0])).toMatch(/reruns the whole sequence for every token.*decodeStep: false/);
    } finally {
      emitWarning.mockRestore();
      alone.dispose();
    }
  });

  test('a bfloat16 model (no upcast) chooses from its logits read as numbers, not raw words: the ids of upcast float32 logits', async () => {
    const file = path.join(LLM, 'llama.pt');
    const [raw, upcast] = [await torch.load(file, { precision: 'bf16' }), await torch.load(file, { precision: 'bf16', upcast: true })];
    try {
      const want = (await torch.generate(upcast, prompt, { maxNewTokens: 6 }).result).newIds;
      for (const cache of [true, false])
        expect({ cache, ids: (await torch.generate(raw, prompt, { maxNewTokens: 6, cache }).result).newIds }).toEqual({ cache, ids: want });
    } finally {
      raw.dispose();
      upcast.dispose();
    }
  });

  test('dispose frees the decoding step with the model', async () => {
    const model = await torch.load(path.join(LLM, 'qwen2.pt'));
    const step = model.decodeStep!;
    model.dispose();
    expect(step.disposed).toBe(true);
    await expectTorchscopeError(() => step.forward(idsTensor([1n])), 'DISPOSED');
  });
});

describe('the files it comes from are untrusted', () => {
  /** llama.pt and its tokenizer copied into a folder, with the manifest edited by `edit`. */
  function copyWith(name: string, edit: (m: Record<string, unknown>) => void): string {
    const folder = path.join(dir, name);
    fs.mkdirSync(folder, { recursive: true });
    for (const file of ['llama.pt', 'llama.decode.pt']) fs.copyFileSync(path.join(LLM, file), path.join(folder, file));
    const raw = JSON.parse(fs.readFileSync(path.join(LLM, 'llama.torchscope.json'), 'utf8')) as Record<string, unknown>;
    raw.tokenizer = null;
    edit(raw);
    fs.writeFileSync(path.join(folder, 'llama.torchscope.json'), JSON.stringify(raw));
    return path.join(folder, 'llama.pt');
  }
  const step = (m: Record<string, unknown>) => m.decodeStep as Record<string, unknown>;

  test.each([
    [
      'a path out of the folder',
      (m: Record<string, unknown>) => (step(m).file = '../llama.decode.pt'),
      /decodeStep\.file must be the name of a file beside the manifest/,
    ],
    ['an odd number of past tensors', (m: Record<string, unknown>) => (step(m).past = [[2, 8]]), /decodeStep\.past must list \[heads, head dim\]/],
    [
      'a huge head size',
      (m: Record<string, unknown>) =>
        (step(m).past = [
          [2, 8],
          [2, 1e9],
        ]),
      /decodeStep\.past must list/,
    ],
    ['not an object', (m: Record<string, unknown>) => (m.decodeStep = 'llama.decode.pt'), /decodeStep must be an object or null/],
    ['a missing file', (m: Record<string, unknown>) => (step(m).file = 'gone.decode.pt'), /decoding step '.*gone\.decode\.pt'.*decodeStep: false/],
  ])('a manifest with %s is refused', async (name, edit, message) => {
    const file = copyWith(name.replace(/\W+/g, '-'), edit);
    await expectTorchscopeError(() => torch.load(file), 'MODEL_LOAD', message);
  });

  test("a decoding step whose weights differ from the model's is refused, naming the tensor", async () => {
    const file = copyWith('other-weights', () => undefined);
    const stepFile = path.join(path.dirname(file), 'llama.decode.pt');
    const code = [
      'import sys, torch',
      'm = torch.jit.load(sys.argv[1])',
      "with torch.no_grad(): getattr(m.model.layers, '1').mlp.up_proj.weight.add_(1)",
      'torch.jit.save(m, sys.argv[1])',
    ].join('\n');
    execFileSync(python(), ['-c', code, stepFile]);
    await expectTorchscopeError(() => torch.load(file), 'MODEL_LOAD', /'model\.layers\.1\.mlp\.up_proj\.weight' differs from the model's/);
    const alone = await torch.load(file, { decodeStep: false });
    expect(alone.decodeStep).toBeNull();
    alone.dispose();
  });

  test('a torch.export program named as the decoding step is refused', async () => {
    const file = copyWith('pt2-step', (m) => (step(m).file = 'step.pt2'));
    fs.copyFileSync(path.join(MODELS, 'gpt2.pt2'), path.join(path.dirname(file), 'step.pt2'));
    await expectTorchscopeError(() => torch.load(file), 'MODEL_LOAD', /is a torch\.export program: a decoding step is a TorchScript file/);
  });
});

test("a torch.export program's decoding step (models/gpt2.pt2 beside gpt2.pt's manifest) adopts the program's weights", async () => {
  const model = await torch.load(path.join(MODELS, 'gpt2.pt2'));
  try {
    expect(model.decodeStep).toBeInstanceOf(torch.Model);
    const prompt = [464, 2068, 7586, 21831, 11];
    const cached = await torch.generate(model, prompt, { maxNewTokens: 5 }).result;
    const whole = await torch.generate(model, prompt, { maxNewTokens: 5, cache: false }).result;
    expect([cached.cached, cached.newIds]).toEqual([true, whole.newIds]);
  } finally {
    model.dispose();
  }
});

test('GPT-2 small holds one copy of its weights with its decoding step (the step adopts them)', () => {
  // Resident memory of a child after loading models/gpt2.pt with and without its step (652 MB of weights).
  const script = `
    const torch = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'lib'))});
    (async () => {
      const model = await torch.load(${JSON.stringify(path.join(MODELS, 'gpt2.pt'))}, { decodeStep: process.argv[1] === 'with' });
      global.gc();
      console.log(JSON.stringify({ rss: process.memoryUsage().rss, step: model.decodeStep !== null }));
    })();`;
  const measure = (which: string) =>
    JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script, which], { encoding: 'utf8' })) as { rss: number; step: boolean };
  const alone = measure('without');
  const withStep = measure('with');
  expect([alone.step, withStep.step]).toEqual([false, true]);
  expect(withStep.rss - alone.rss).toBeLessThan(150 * 2 ** 20);
});
