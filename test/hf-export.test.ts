// From a Hugging Face folder to a torchscope model: the causal LMs of seven families and GPT-2
// with its tied head (models/llm/, made at set-up by scripts/llm_fixtures.py with
// save_pretrained and exported by scripts/hf_export.py), against transformers' eager models
// loaded from the same folders by test/python/llm_reference.py: forward logits on three lengths,
// captures of every block's output and input, MLPs, the final norm, embedding and unembedding
// (1e-5 x the values' scale), and the manifest's facts. Then `torchscope export` on a folder, its
// refusals, `torchscope inspect`, and torch.load's checks of an untrusted manifest.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  asTensor,
  expectTorchscopeError,
  expectValueClose,
  HostTensor,
  MODELS,
  randint,
  readValue,
  refInput,
  RefValue,
  refTensor,
  relativeTolerance,
  removeDir,
  ROOT,
  runPythonScript,
  scratchDir,
  toTorch,
} from './helpers';

const LLM = path.join(MODELS, 'llm');
const LLM_REFERENCE = path.join(ROOT, 'test', 'python', 'llm_reference.py');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');
const FAMILIES = ['llama', 'qwen2', 'gemma2', 'gemma3', 'mistral', 'pythia', 'phi3', 'gpt2'];
// Other lengths than the trace's (8), longer than the sliding windows (4), batches of 1 and 2.
const SHAPES = [
  [1, 5],
  [2, 11],
  [1, 17],
];
const CAPTURED_SHAPE = 1;
const TOL = relativeTolerance(1e-5);
// What the fixtures are made to exercise (scripts/llm_fixtures.py).
const TIED = new Set(['qwen2', 'gemma2', 'gemma3', 'gpt2']);
const SLIDING = new Set(['gemma2', 'gemma3', 'mistral']);
const CHAT = new Set(['llama', 'gemma2', 'gemma3']);
const SLIDING_WINDOW = 4;
const INPUT_SUFFIX = ':input';

interface Family {
  name: string;
  file: string;
  folder: string;
  manifest: any;
  ids: HostTensor[];
  capture: string[];
}

interface Eager {
  output: RefValue;
  captures: Record<string, RefValue[]>;
}

const families: Family[] = FAMILIES.map((name, f) => {
  const manifestFile = path.join(LLM, `${name}.torchscope.json`);
  if (!fs.existsSync(manifestFile)) throw new Error(`no ${manifestFile}: set-up makes it (npm install, or python scripts/llm_fixtures.py)`);
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  const points = manifest.hookPoints;
  const ids = SHAPES.map((shape, s): HostTensor => ({ data: randint(shape[0] * shape[1], manifest.vocabSize, 100 * f + s), shape, dtype: 'int64' }));
  const capture = [points.embed, ...points.blocks, ...points.blocks.map((b: string) => `${b}${INPUT_SUFFIX}`), ...points.mlp, points.finalNorm, points.unembed];
  return { name, file: path.join(LLM, `${name}.pt`), folder: path.join(LLM, name), manifest, ids, capture };
});

let dir: string;
let eager: Map<string, Eager | { error: string }>;
let facts: Record<string, any>;
let tasks: {
  save_t5: string;
  refusals: { shape: string; fused: string };
  encoders: Record<string, { file: string; inputs: any[]; output: any; task: string }>;
};

function writeIds(host: HostTensor, file: string): { file: string; dtype: string; shape: number[] } {
  fs.writeFileSync(file, Buffer.from(host.data.buffer, host.data.byteOffset, host.data.byteLength));
  return { file, dtype: host.dtype, shape: host.shape };
}

beforeAll(async () => {
  dir = scratchDir('hf-export');
  const inDir = path.join(dir, 'in');
  fs.mkdirSync(inDir);
  const cases = families.flatMap((f) =>
    f.ids.map((ids, s) => ({
      id: `${f.name}/${s}`,
      folder: f.folder,
      inputs: [writeIds(ids, path.join(inDir, `${f.name}-${s}.bin`))],
      capture: s === CAPTURED_SHAPE ? f.capture : [],
    })),
  );
  const request = path.join(dir, 'request.json');
  const out = path.join(dir, 'out');
  fs.writeFileSync(
    request,
    JSON.stringify({
      out,
      cases,
      facts: families.map((f) => ({ id: f.name, folder: f.folder })),
      tasks: [{ kind: 'save_t5', path: path.join(dir, 't5') }, { kind: 'refusals' }, { kind: 'encoders', path: path.join(dir, 'encoders') }],
    }),
  );
  await runPythonScript(LLM_REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  eager = new Map(
    Object.entries<any>(index.cases).map(([id, raw]) => [
      id,
      raw.error
        ? { error: raw.error }
        : { output: readValue(raw.output), captures: Object.fromEntries(Object.entries<any[]>(raw.captures).map(([k, v]) => [k, v.map(readValue)])) },
    ]),
  );
  facts = index.facts;
  tasks = index.tasks;
}, 300_000);

afterAll(() => removeDir(dir));

function reference(id: string): Eager {
  const result = eager?.get(id);
  if (!result) throw new Error(`no reference result '${id}' (did the reference run in beforeAll fail?)`);
  if ('error' in result) throw new Error(`reference case '${id}' failed in Python: ${result.error}`);
  return result;
}

function fact(name: string): any {
  const found = facts?.[name];
  if (!found || found.error) throw new Error(`no facts for '${name}': ${found?.error ?? 'the reference run failed'}`);
  return found;
}

/** The CLI (dist/, compiled by jest's global set-up) in a child process. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 16 << 20, timeout: 240_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.each(families)('$name', (family) => {
  let model: torch.Model;
  beforeAll(async () => {
    model = await torch.load(family.file);
  });
  afterAll(() => model?.dispose());

  test(`forward's logits equal eager transformers' on input_ids of shapes ${SHAPES.map((s) => `[${s}]`).join(', ')}`, async () => {
    for (const [s, ids] of family.ids.entries()) {
      const input = toTorch(ids);
      const logits = asTensor(await model.forward(input), 'logits');
      expectValueClose(logits, reference(`${family.name}/${s}`).output, TOL, `logits [${ids.shape}]`);
      expect(logits.shape).toEqual([...ids.shape, family.manifest.vocabSize]);
    }
  });

  test('captures of the embedding, every block (output and :input), MLP, final norm and unembedding equal eager forward hooks', async () => {
    const expected = reference(`${family.name}/${CAPTURED_SHAPE}`).captures;
    const got = await torch.activations(model, { layers: family.capture, calls: 'all' }, toTorch(family.ids[CAPTURED_SHAPE]));
    for (const layer of family.capture) {
      const calls = got[layer] as torch.Value[];
      expect({ layer, calls: calls.length }).toEqual({ layer, calls: expected[layer].length });
      calls.forEach((call, i) => {
        // A traced module returning a tuple keeps what was used of it: its first tensor is eager's.
        const tensor = Array.isArray(call) ? call[0] : call;
        expectValueClose(asTensor(tensor, layer), refTensor(expected[layer][i], `${layer} call ${i}`), TOL, `${layer} call ${i}`);
      });
    }
  });

  test('the manifest says what transformers says, and its hook points are hookable modules', () => {
    const m = model.manifest;
    if (!m) throw new Error(`${family.file}: torch.load found no manifest`);
    const f = fact(family.name);
    expect(m).toMatchObject({
      format: 'torchscope-manifest',
      version: 1,
      task: 'causal-lm',
      inputs: ['input_ids'],
      modelType: f.modelType,
      architecture: f.architecture,
      layers: f.layers,
      heads: f.heads,
      kvHeads: f.kvHeads,
      hiddenSize: f.hiddenSize,
      vocabSize: f.vocabSize,
      maxPositions: f.maxPositions,
      tiedEmbeddings: f.tiedEmbeddings,
      bosTokenId: f.bosTokenId,
      eosTokenId: f.eosTokenId,
    });
    expect(m.check!.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(m.check!.inputs).toBeGreaterThanOrEqual(2);
    const points = m.hookPoints;
    expect(points.blocks).toHaveLength(f.layers);
    expect(points.attention).toHaveLength(f.layers);
    expect(points.mlp).toHaveLength(f.layers);
    const hookable = new Map(model.modules().map((info) => [info.path, info.hookable]));
    const named = [points.embed!, ...points.blocks!, ...points.attention!, ...points.mlp!, points.finalNorm!, points.unembed!];
    for (const p of named) {
      expect({ path: p, eager: f.modules.includes(p), hookable: hookable.get(p) }).toEqual({ path: p, eager: true, hookable: true });
    }
    expect(m.tokenizer).toBe(path.join(LLM, `${family.name}.tokenizer`));
    const config = JSON.parse(fs.readFileSync(path.join(m.tokenizer!, 'tokenizer_config.json'), 'utf8'));
    expect(fs.existsSync(path.join(m.tokenizer!, 'tokenizer.json'))).toBe(true);
    expect({ chatTemplate: typeof config.chat_template === 'string' }).toEqual({ chatTemplate: CHAT.has(family.name) });
  });

  test('the fixture exercises its family: tied head, grouped-query attention, sliding window, random norms', () => {
    const f = fact(family.name);
    expect({ tied: f.tiedEmbeddings }).toEqual({ tied: TIED.has(family.name) });
    if (SLIDING.has(family.name)) expect(f.slidingWindow).toBe(SLIDING_WINDOW);
    if (family.name === 'llama') expect(f.kvHeads).toBeLessThan(f.heads);
    // Block inputs differ from block outputs, and later blocks from earlier: the weights are not trivial.
    const captures = reference(`${family.name}/${CAPTURED_SHAPE}`).captures;
    const [b0, b1] = family.manifest.hookPoints.blocks;
    const a = refTensor(captures[b0][0]).data as Float32Array;
    const b = refTensor(captures[b1][0]).data as Float32Array;
    expect(a.some((v, i) => Math.abs(v - b[i]) > 1e-3)).toBe(true);
  });
});

describe('torchscope export', () => {
  test('a save_pretrained folder: writes the model, its manifest and tokenizer folder; the check passes; logits equal eager', async () => {
    const out = path.join(dir, 'cli', 'llama-export.pt');
    const result = await cli(['export', path.join(LLM, 'llama'), '--out', out]);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: result.stderr });
    expect(result.stdout).toMatch(/wrote .*llama-export\.pt \(LlamaForCausalLM, causal-lm, 2 layers, inputs input_ids\)/);
    expect(result.stdout).toMatch(/check: 3 inputs/);
    expect(result.stdout).toMatch(/cached decoding step: llama-export\.decode\.pt/);
    for (const file of [
      'llama-export.torchscope.json',
      'llama-export.decode.pt',
      'llama-export.tokenizer/tokenizer.json',
      'llama-export.tokenizer/tokenizer_config.json',
    ]) {
      expect({ file, exists: fs.existsSync(path.join(dir, 'cli', file)) }).toEqual({ file, exists: true });
    }
    const model = await torch.load(out);
    try {
      expect(model.manifest!.check!.maxAbsDiff).toBeLessThanOrEqual(1e-5);
      expect(model.manifest!.tokenizer).toBe(path.join(dir, 'cli', 'llama-export.tokenizer'));
      const llama = families[0];
      expectValueClose(await model.forward(toTorch(llama.ids[1])), reference('llama/1').output, TOL, 'logits');
      expect(model.manifest!.decodeStep).toMatchObject({
        file: path.join(dir, 'cli', 'llama-export.decode.pt'),
        past: [
          [2, 8],
          [2, 8],
          [2, 8],
          [2, 8],
        ],
      });
      expect(model.manifest!.decodeStep!.check!.maxAbsDiff).toBeLessThanOrEqual(1e-5);
      const cached = await torch.generate(model, [5, 6, 7], { maxNewTokens: 6 }).result;
      const whole = await torch.generate(model, [5, 6, 7], { maxNewTokens: 6, cache: false }).result;
      expect([cached.cached, cached.newIds]).toEqual([true, whole.newIds]);
    } finally {
      model.dispose();
    }
  });

  test('--no-decode-step writes the model alone, and the manifest says why it has no step', async () => {
    const out = path.join(dir, 'cli', 'llama-alone.pt');
    const result = await cli(['export', path.join(LLM, 'llama'), '--out', out, '--no-check', '--no-decode-step']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: result.stderr });
    expect(result.stdout).toMatch(/no cached decoding step: not exported \(--no-decode-step\)/);
    expect(fs.existsSync(path.join(dir, 'cli', 'llama-alone.decode.pt'))).toBe(false);
    const model = await torch.load(out);
    expect([model.decodeStep, model.manifest!.decodeStep, model.manifest!.decodeStepRefused]).toEqual([null, null, 'not exported (--no-decode-step)']);
    model.dispose();
  });

  test('refuses a folder without config.json, an encoder-decoder model and a config transformers cannot read, exiting 1', async () => {
    const empty = path.join(dir, 'not-a-model');
    fs.mkdirSync(empty, { recursive: true });
    fs.writeFileSync(path.join(empty, 'README.md'), 'nothing here\n');
    const unknown = path.join(dir, 'unknown-type');
    fs.mkdirSync(unknown, { recursive: true });
    fs.writeFileSync(path.join(unknown, 'config.json'), JSON.stringify({ model_type: 'not-a-model-type' }));
    const cases: [string, RegExp][] = [
      [empty, /refused: no config\.json in .*not-a-model.*not a Hugging Face model folder/],
      [tasks.save_t5, /refused: 't5' is an encoder-decoder model/],
      [unknown, /refused: transformers .* cannot read .*config\.json/],
    ];
    for (const [folder, message] of cases) {
      const result = await cli(['export', folder, '--out', path.join(dir, 'refused', 'x.pt')]);
      expect({ folder, code: result.code }).toEqual({ folder, code: 1 });
      expect(result.stderr).toMatch(message);
    }
    expect(fs.existsSync(path.join(dir, 'refused', 'x.pt'))).toBe(false);
  });

  test('refuses a trace that does not generalize to other lengths, and fused attention, saying why', () => {
    expect(tasks.refusals.shape).toMatch(/the trace does not generalize to other input shapes: traced at \[2, 8\], at \[2, 1\] its output .* differs/);
    expect(tasks.refusals.fused).toMatch(/computed by aten::scaled_dot_product_attention even with attn_implementation='eager'/);
  });

  test.each([
    ['bert', 'encoder', ['input_ids', 'attention_mask']],
    ['vit', 'image-classification', ['pixel_values']],
  ])("an encoder and a vision model (%s, task auto -> %s): forward's inputs %j, output equal to eager on other shapes", async (name, task, inputs) => {
    const exported = tasks.encoders[name];
    const model = await torch.load(exported.file);
    try {
      expect(model.inputs.map((i) => i.name)).toEqual(inputs);
      expect({ task: exported.task, manifest: model.manifest?.task }).toEqual({ task, manifest: task });
      const values = exported.inputs.map((v) => refInput(readValue(v)));
      expectValueClose(await model.forward(...values), readValue(exported.output), TOL, `${name} output`);
    } finally {
      model.dispose();
    }
  });

  test('without --out: the usage, exit 2', async () => {
    const result = await cli(['export', path.join(LLM, 'llama')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/usage: torchscope export <folder-or-hub-id> --out FILE\.pt/);
  });
});

describe('torchscope inspect', () => {
  test("prints forward's inputs, the manifest's names and each module's hookability, call sites and output shape", async () => {
    const result = await cli(['inspect', path.join(LLM, 'llama.pt'), '--seq', '6']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const out = result.stdout;
    expect(out).toMatch(/^inputs: input_ids: Tensor$/m);
    expect(out).toMatch(/^manifest: LlamaForCausalLM \(llama, causal-lm\)/m);
    expect(out).toMatch(/2 layers, 4 heads \(2 key-value\), hidden 32, vocabulary 384, untied embeddings/);
    expect(out).toMatch(/final norm model\.norm; unembed lm_head/);
    expect(out).toMatch(/^sample: input_ids \[1, 6\] -> output \[1, 6, 384\] float32$/m);
    for (const i of [0, 1]) {
      expect(out).toMatch(new RegExp(`^ {6}model\\.layers\\.${i} +LlamaDecoderLayer +sites 1 +\\[1, 6, 32\\] float32 +<- block ${i}$`, 'm'));
      expect(out).toMatch(new RegExp(`^ {8}model\\.layers\\.${i}\\.mlp +LlamaMLP +sites 1 +\\[1, 6, 32\\] float32 +<- mlp ${i}$`, 'm'));
      expect(out).toMatch(new RegExp(`^ {10}model\\.layers\\.${i}\\.self_attn\\.k_proj +Linear +sites 1 +\\[1, 6, 16\\] float32$`, 'm'));
    }
    expect(out).toMatch(/^ {4}model\.layers +ModuleList +not hookable: a container/m);
    expect(out).toMatch(/^ {2}lm_head +Linear +sites 1 +\[1, 6, 384\] float32 +<- unembed$/m);
  });
});

describe('the manifest beside a model is an untrusted file', () => {
  let copy: string;
  let good: any;
  beforeAll(() => {
    copy = path.join(dir, 'manifests', 'm.pt');
    fs.mkdirSync(path.dirname(copy), { recursive: true });
    fs.copyFileSync(families[1].file, copy);
    // The copy has no decoding step beside it.
    good = { ...families[1].manifest, tokenizer: 'm.tokenizer', decodeStep: null };
  });
  const write = (content: unknown) =>
    fs.writeFileSync(path.join(dir, 'manifests', 'm.torchscope.json'), typeof content === 'string' ? content : JSON.stringify(content));

  test('read by torch.load, its tokenizer folder resolved beside it; none: null', async () => {
    write(good);
    const model = await torch.load(copy);
    expect(model.manifest).toMatchObject({ architecture: 'Qwen2ForCausalLM', tokenizer: path.join(dir, 'manifests', 'm.tokenizer'), tiedEmbeddings: true });
    model.dispose();
    fs.rmSync(path.join(dir, 'manifests', 'm.torchscope.json'));
    const bare = await torch.load(copy);
    expect(bare.manifest).toBeNull();
    bare.dispose();
  });

  test.each([
    ['an unknown version', () => ({ ...good, version: 2 }), /version 2 is not one this torchscope reads \(1\)/],
    ['another format', () => ({ ...good, format: 'other' }), /format is "other"/],
    [
      'a hook point of the wrong type',
      () => ({ ...good, hookPoints: { ...good.hookPoints, blocks: 'model.layers.0' } }),
      /hookPoints\.blocks must be an array/,
    ],
    ['an unknown hook point', () => ({ ...good, hookPoints: { ...good.hookPoints, heads: ['x'] } }), /hookPoints\.heads is not a hook point/],
    ['a tokenizer outside its folder', () => ({ ...good, tokenizer: '../elsewhere' }), /tokenizer must be the name of a folder beside the manifest/],
    ['a negative size', () => ({ ...good, layers: -1 }), /layers must be a non-negative integer/],
    ['a wrong special id', () => ({ ...good, eosTokenId: ['x'] }), /eosTokenId must be a token id/],
    ['no JSON', () => '{"format": ', /is not JSON/],
    ['more than 1 MiB', () => JSON.stringify({ ...good, source: 'x'.repeat(1 << 20) }), /bytes, more than a manifest's 1048576/],
  ] as [string, () => unknown, RegExp][])('%s is refused with MODEL_LOAD', async (_what, content, message) => {
    write(content());
    await expectTorchscopeError(() => torch.load(copy), 'MODEL_LOAD', message);
  });
});
