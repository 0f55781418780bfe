// SAEs spliced into a forward (torch.run / torch.activations / torch.generate with `saes`) on
// GPT-2 and Llama (models/llm/, traced), against test/python/sae_splice_reference.py: the same
// SAE files (written there, with sae_fixtures.py's writers) spliced into transformers' eager
// model from the same save_pretrained folder with forward hooks, as SAELens's
// HookedSAETransformer splices them, the math from sae_reference.py. Every architecture the
// brief names (standard, jumprelu, topk, gated, a layer_norm SAE, an MLP transcoder, an hook_z
// SAE at the attention's output projection), with and without the error term; feature ablation
// and steering; SAELens's hook names; several SAEs in one run; steered greedy generation; the
// errors. 1e-5 of the values' scale. Edits are checked to move the output, so a splice that did
// nothing would fail.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  expectClose,
  expectEqual,
  expectTorchscopeError,
  maxAbsDiff,
  MODELS,
  randint,
  readValue,
  refTensor,
  removeDir,
  ROOT,
  runPythonScript,
  scratchDir,
} from './helpers';

const LLM = path.join(MODELS, 'llm');
const REFERENCE = path.join(ROOT, 'test', 'python', 'sae_splice_reference.py');
const SHAPE = [2, 8];
const TOL = 1e-5;
// sae_fixtures.py's d_sae; the models' hidden size is 32, and so is heads * d_head.
const D_SAE = 48;
const D_MODEL = 32;
// An edit moves the logits by more than this (they are O(1)); a splice without error term too.
const MOVED = 1e-2;
// Features zeroed, steered (added STEER times its direction), scaled (at the last position).
const ABLATED = [0, 3, 7, 11, 19, 23, 30, 41];
const STEERED = 5;
const STEER = 8;
const SCALED = [2, 6, 13, 17, 29, 44];
const SCALE = 3;
const GENERATE_STEPS = 6;
const PROMPT_LENGTH = 6;

const STAGES = [':featuresPre', ':features', ':reconstruction', ':error'] as const;
type Stage = (typeof STAGES)[number];
// SAELens's names of the same values (HookedSAETransformer's cache keys).
const SAELENS_NAMES: Record<Stage, string> = {
  ':featuresPre': 'hook_sae_acts_pre',
  ':features': 'hook_sae_acts_post',
  ':reconstruction': 'hook_sae_recons',
  ':error': 'hook_sae_error',
};

/** A family's module paths, written here from the Hugging Face module layout (not from lib/sae/hook-names.ts). */
interface Family {
  name: 'gpt2' | 'llama';
  block(layer: number): string;
  outProjection: string;
}

const FAMILIES: Family[] = [
  { name: 'gpt2', block: (l) => `transformer.h.${l}`, outProjection: 'attn.c_proj' },
  { name: 'llama', block: (l) => `model.layers.${l}`, outProjection: 'self_attn.o_proj' },
];

/** An SAE file: its architecture, TransformerLens hook(s), and the torchscope hook points they must map to. */
interface Kind {
  arch: string;
  hook: string;
  hookOut?: string;
  fields?: Record<string, unknown>;
  dIn?: number;
  seed: number;
  read(f: Family): string;
  write?(f: Family): string;
  /** hook_z: Python reshapes to the model's heads, as TransformerLens's hook_z. */
  heads?: boolean;
  /** hook_resid_mid: the block's MLP, whose output Python corrects so that the SAE's output is the residual stream, as in TransformerLens (see the reference). */
  residMidMlp?(f: Family): string;
  /** hook_resid_mid, Python's side: the MLP norm whose input the reference replaces. */
  residMidNorm?(f: Family): string;
}

const KINDS = {
  standard: { arch: 'standard', hook: 'blocks.1.hook_resid_pre', seed: 1, read: (f) => `${f.block(1)}:input` },
  jumprelu: { arch: 'jumprelu', hook: 'blocks.0.hook_resid_post', fields: { apply_b_dec_to_input: false }, seed: 2, read: (f) => f.block(0) },
  topk: { arch: 'topk', hook: 'blocks.1.hook_resid_post', fields: { k: 6 }, seed: 3, read: (f) => f.block(1) },
  gated: { arch: 'gated', hook: 'blocks.0.hook_resid_pre', seed: 4, read: (f) => `${f.block(0)}:input` },
  'layer-norm': { arch: 'standard', hook: 'blocks.0.hook_mlp_out', fields: { normalize_activations: 'layer_norm' }, seed: 5, read: (f) => `${f.block(0)}.mlp` },
  transcoder: {
    arch: 'transcoder',
    hook: 'blocks.0.mlp.hook_in',
    hookOut: 'blocks.0.hook_mlp_out',
    seed: 6,
    read: (f) => `${f.block(0)}.mlp:input`,
    write: (f) => `${f.block(0)}.mlp`,
  },
  'hook-z': {
    arch: 'standard',
    hook: 'blocks.1.attn.hook_z',
    fields: { reshape_activations: 'hook_z' },
    seed: 7,
    read: (f) => `${f.block(1)}.${f.outProjection}:input`,
    heads: true,
  },
  'resid-mid': {
    arch: 'standard',
    hook: 'blocks.1.hook_resid_mid',
    seed: 8,
    // The block's first residual addition, which feeds the MLP's norm and the second addition.
    read: (f) => `${f.block(1)}/add`,
    residMidMlp: (f) => `${f.block(1)}.mlp`,
    residMidNorm: (f) => `${f.block(1)}.${f.name === 'gpt2' ? 'ln_2' : 'post_attention_layernorm'}:input`,
  },
  // d_in 16 on a 32-wide residual stream: refused when run.
  mismatch: { arch: 'standard', hook: 'blocks.0.hook_resid_pre', dIn: 16, seed: 9, read: (f) => `${f.block(0)}:input` },
} satisfies Record<string, Kind>;
type KindName = keyof typeof KINDS;
const ARCHITECTURES: KindName[] = ['standard', 'jumprelu', 'topk', 'gated', 'layer-norm', 'transcoder', 'hook-z'];
// Several SAEs in one run: resid_pre of block 0, the MLP of block 0, hook_z of block 1, resid_post of block 1.
const MULTI: KindName[] = ['gated', 'transcoder', 'hook-z', 'topk'];

type RefTensor = ReturnType<typeof refTensor>;
interface PyPatch {
  mode: 'zero' | 'add' | 'scale';
  value?: { file: string; dtype: string; shape: number[] };
  scale?: number;
  channels?: number[];
  positions?: number[];
}
type PyAnswer = { output: unknown; captures: Record<string, unknown> } | { newIds: number[] } | { error: string };

let dir: string;
let answers: Record<string, PyAnswer>;
const models: Record<string, torch.Model> = {};
const saes: Record<string, torch.Sae> = {};
const ids: Record<string, BigInt64Array> = {};
const inputs: Record<string, torch.Tensor> = {};
const prompts: Record<string, number[]> = {};
let steerVector: Float32Array;

const id = (f: Family, ...parts: string[]) => [f.name, ...parts].join('/');
const kind = (name: KindName): Kind => KINDS[name];

/** The Python splice of one SAE. */
function pySplice(f: Family, name: KindName, errorTerm: boolean, edit?: PyPatch) {
  const k = kind(name);
  const read = k.read(f);
  return {
    sae: id(f, name),
    read,
    write: k.write ? k.write(f) : read,
    errorTerm,
    heads: k.heads ? models[f.name].manifest!.heads : null,
    residMid: k.residMidMlp && k.residMidNorm ? { mlp: k.residMidMlp(f), norm: k.residMidNorm(f) } : null,
    edit: edit ?? null,
  };
}

function stagesOf(read: string, errorTerm: boolean): string[] {
  return STAGES.filter((s) => errorTerm || s !== ':error').map((s) => read + s);
}

function writeFloats(name: string, data: Float32Array, shape: number[]) {
  const file = path.join(dir, `${name}.bin`);
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return { file, dtype: 'float32', shape };
}

function edits(): Record<string, PyPatch> {
  const last = SHAPE[1] - 1;
  return {
    ablate: { mode: 'zero', channels: ABLATED },
    'steer-add': { mode: 'add', value: writeFloats('steer', steerVector, [D_SAE]) },
    'steer-scale': { mode: 'scale', scale: SCALE, channels: SCALED, positions: [last] },
  };
}

/** The same edits as torchscope patches. */
function patchSpec(name: string): torch.PatchSpec {
  switch (name) {
    case 'ablate':
      return { zero: true, channels: ABLATED };
    case 'steer-add':
      return { add: torch.tensor(steerVector, [D_SAE], 'float32') };
    case 'steer-scale':
      return { scale: SCALE, channels: SCALED, positions: [SHAPE[1] - 1] };
    default:
      throw new Error(`no edit '${name}'`);
  }
}

beforeAll(async () => {
  dir = scratchDir('sae-splice');
  steerVector = Float32Array.from({ length: D_SAE }, (_, i) => (i === STEERED ? STEER : 0));
  const specs: Record<string, object> = {};
  const cases: object[] = [];
  for (const [i, f] of FAMILIES.entries()) {
    const model = await torch.load(path.join(LLM, `${f.name}.pt`));
    models[f.name] = model;
    const manifest = model.manifest!;
    expect(manifest.hiddenSize).toBe(D_MODEL);
    ids[f.name] = randint(SHAPE[0] * SHAPE[1], manifest.vocabSize!, 100 + i);
    inputs[f.name] = torch.tensor(ids[f.name], SHAPE, 'int64');
    prompts[f.name] = Array.from(randint(PROMPT_LENGTH, manifest.vocabSize!, 200 + i), Number);
    const folder = path.join(LLM, f.name);
    const idsFile = path.join(dir, `${f.name}-ids.bin`);
    fs.writeFileSync(idsFile, Buffer.from(ids[f.name].buffer));
    const promptFile = path.join(dir, `${f.name}-prompt.bin`);
    fs.writeFileSync(promptFile, Buffer.from(BigInt64Array.from(prompts[f.name], BigInt).buffer));
    const common = { folder, ids: { file: idsFile, dtype: 'int64', shape: SHAPE } };
    for (const [name, k] of Object.entries(KINDS) as [KindName, Kind][]) {
      const transcoder = k.arch.endsWith('transcoder');
      specs[id(f, name)] = {
        arch: k.arch,
        hook_name: k.hook,
        hook_name_out: k.hookOut ?? null,
        d_in: k.dIn ?? D_MODEL,
        d_out: transcoder ? D_MODEL : null,
        seed: k.seed,
        fields: k.fields ?? {},
      };
    }
    cases.push({ id: id(f, 'clean'), ...common });
    for (const name of [...ARCHITECTURES, 'resid-mid' as const]) {
      const read = kind(name).read(f);
      for (const errorTerm of [false, true]) {
        cases.push({ id: id(f, name, `${errorTerm}`), ...common, splices: [pySplice(f, name, errorTerm)], capture: stagesOf(read, errorTerm) });
      }
    }
    const read = kind('standard').read(f);
    for (const [name, edit] of Object.entries(edits())) {
      cases.push({ id: id(f, name), ...common, splices: [pySplice(f, 'standard', true, edit)], capture: stagesOf(read, true) });
    }
    for (const errorTerm of [false, true]) {
      cases.push({
        id: id(f, 'multi', `${errorTerm}`),
        ...common,
        splices: MULTI.map((name) => pySplice(f, name, errorTerm)),
        capture: MULTI.map((name) => `${kind(name).read(f)}:features`),
      });
    }
    const prompt = { folder, ids: { file: promptFile, dtype: 'int64', shape: [1, PROMPT_LENGTH] }, generate: GENERATE_STEPS };
    cases.push({ id: id(f, 'generate', 'clean'), ...prompt });
    cases.push({ id: id(f, 'generate', 'steered'), ...prompt, splices: [pySplice(f, 'standard', true, edits()['steer-add'])] });
  }
  const request = path.join(dir, 'request.json');
  const out = path.join(dir, 'out');
  fs.writeFileSync(request, JSON.stringify({ out, saes: specs, cases }));
  await runPythonScript(REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as { saes: Record<string, string>; cases: Record<string, PyAnswer> };
  answers = index.cases;
  for (const f of FAMILIES) {
    for (const name of Object.keys(KINDS) as KindName[]) saes[id(f, name)] = await torch.sae.load(index.saes[id(f, name)], { model: models[f.name] });
  }
}, 300_000);

afterAll(() => {
  for (const sae of Object.values(saes)) sae.dispose();
  for (const x of Object.values(inputs)) x.dispose();
  for (const model of Object.values(models)) model.dispose();
  removeDir(dir);
});

function answer(caseId: string): Exclude<PyAnswer, { error: string }> {
  const value = answers[caseId];
  if (!value || 'error' in value) throw new Error(`reference ${caseId}: ${value ? value.error : 'missing'}`);
  return value;
}

function pyLogits(caseId: string): RefTensor {
  const value = answer(caseId);
  if (!('output' in value)) throw new Error(`reference ${caseId} has no logits`);
  return refTensor(readValue(value.output), `${caseId} logits`);
}

function pyCapture(caseId: string, layer: string): RefTensor {
  const value = answer(caseId);
  if (!('captures' in value)) throw new Error(`reference ${caseId} has no captures`);
  return refTensor(readValue(value.captures[layer]), `${caseId} ${layer}`);
}

function pyNewIds(caseId: string): number[] {
  const value = answer(caseId);
  if (!('newIds' in value)) throw new Error(`reference ${caseId} generated nothing`);
  return value.newIds;
}

/** 1e-5 of the values' scale. */
function scaled(expected: RefTensor): number {
  let max = 1;
  for (const v of expected.data as Float32Array) max = Math.max(max, Math.abs(v));
  return TOL * max;
}

function expectMatches(actual: torch.Value | undefined, expected: RefTensor, label: string): void {
  if (!(actual instanceof torch.Tensor)) throw new Error(`${label}: not a Tensor`);
  expectClose(actual, expected, scaled(expected), label);
}

/** Asserts the run's logits are far from the clean model's: the edit did something. */
function expectMoved(actual: torch.Value | undefined, f: Family, label: string): void {
  if (!(actual instanceof torch.Tensor)) throw new Error(`${label}: not a Tensor`);
  const clean = pyLogits(id(f, 'clean'));
  const moved = maxAbsDiff(actual.data() as Float32Array, clean.data as Float32Array).max;
  if (!(moved > MOVED)) throw new Error(`${label}: the logits moved by ${moved} from the clean model's, expected more than ${MOVED}`);
}

const input = (f: Family) => inputs[f.name];
const sae = (f: Family, name: KindName) => saes[id(f, name)];

describe.each(FAMILIES)('$name', (f) => {
  test('the SAE files map to the hook points of the Hugging Face module layout', () => {
    for (const name of Object.keys(KINDS) as KindName[]) {
      const k = kind(name);
      expect([name, sae(f, name).hookPoint, sae(f, name).hookPointOut]).toEqual([name, k.read(f), k.write ? k.write(f) : k.read(f)]);
    }
  });

  test('the clean logits equal transformers (the reference runs the same model)', async () => {
    using result = await torch.run(models[f.name], [input(f)]);
    expectMatches(result.output, pyLogits(id(f, 'clean')), 'clean logits');
  });

  describe.each(ARCHITECTURES)('%s', (name) => {
    test('spliced without the error term: the logits and the SAE values equal the Python splice, and moved', async () => {
      const read = kind(name).read(f);
      const capture = stagesOf(read, false);
      using result = await torch.run(models[f.name], [input(f)], { saes: [sae(f, name)], capture });
      const caseId = id(f, name, 'false');
      expectMatches(result.output, pyLogits(caseId), `${caseId} logits`);
      expectMoved(result.output, f, caseId);
      for (const layer of capture) expectMatches(result.activations[layer], pyCapture(caseId, layer), `${caseId} ${layer}`);
    });

    test('with the error term: the logits equal the clean model, the SAE values (error too) the Python splice', async () => {
      const read = kind(name).read(f);
      const capture = stagesOf(read, true);
      using result = await torch.run(models[f.name], [input(f)], { saes: [{ sae: sae(f, name), errorTerm: true }], capture });
      const caseId = id(f, name, 'true');
      expectMatches(result.output, pyLogits(id(f, 'clean')), `${caseId} logits vs clean`);
      expectMatches(result.output, pyLogits(caseId), `${caseId} logits`);
      for (const layer of capture) expectMatches(result.activations[layer], pyCapture(caseId, layer), `${caseId} ${layer}`);
    });
  });

  describe.each(['ablate', 'steer-add', 'steer-scale'])('%s the features (with the error term)', (edit) => {
    test('equals the Python splice editing hook_sae_acts_post before decoding, the error from the clean input', async () => {
      const read = kind('standard').read(f);
      const capture = stagesOf(read, true);
      const patch = patchSpec(edit);
      using result = await torch.run(models[f.name], [input(f)], {
        saes: [sae(f, 'standard')],
        errorTerm: true,
        patch: { [`${read}:features`]: patch },
        capture,
      });
      patch.add?.dispose();
      const caseId = id(f, edit);
      expectMatches(result.output, pyLogits(caseId), `${caseId} logits`);
      expectMoved(result.output, f, caseId);
      for (const layer of capture) expectMatches(result.activations[layer], pyCapture(caseId, layer), `${caseId} ${layer}`);
      // The error term is the clean one: equal to the unedited splice's.
      expectMatches(result.activations[`${read}:error`], pyCapture(id(f, 'standard', 'true'), `${read}:error`), `${caseId} error vs unedited`);
    });
  });

  test('the ablated features are zero, and fired before', async () => {
    const read = kind('standard').read(f);
    const clean = pyCapture(id(f, 'standard', 'true'), `${read}:features`).data as Float32Array;
    const ablated = pyCapture(id(f, 'ablate'), `${read}:features`).data as Float32Array;
    const firing = (data: Float32Array) => ABLATED.filter((c) => data.some((v, i) => i % D_SAE === c && v !== 0));
    expect(firing(clean).length).toBeGreaterThan(ABLATED.length / 2);
    expect(firing(ablated)).toEqual([]);
  });

  test("SAELens's hook names (hook_sae_acts_post...) capture and patch the same values as torchscope's", async () => {
    const k = kind('standard');
    const read = k.read(f);
    const alias = (stage: Stage) => `${k.hook}.${SAELENS_NAMES[stage]}`;
    using ours = await torch.run(models[f.name], [input(f)], {
      saes: [sae(f, 'standard')],
      errorTerm: true,
      patch: { [`${read}:features`]: { zero: true, channels: ABLATED } },
      capture: stagesOf(read, true),
    });
    using theirs = await torch.run(models[f.name], [input(f)], {
      saes: [sae(f, 'standard')],
      errorTerm: true,
      patch: { [alias(':features')]: { zero: true, channels: ABLATED } },
      capture: STAGES.map(alias),
    });
    expectEqual(theirs.output as torch.Tensor, ours.output as torch.Tensor, 'logits');
    expectMatches(theirs.output, pyLogits(id(f, 'ablate')), 'aliased logits');
    for (const stage of STAGES) {
      expect(Object.keys(theirs.activations)).toContain(alias(stage));
      expectEqual(theirs.activations[alias(stage)] as torch.Tensor, ours.activations[read + stage] as torch.Tensor, alias(stage));
    }
  });

  test.each([false, true])('several SAEs at several layers in one run (error term %s)', async (errorTerm) => {
    const caseId = id(f, 'multi', `${errorTerm}`);
    const layers = MULTI.map((name) => `${kind(name).read(f)}:features`);
    const spliced = MULTI.map((name) => sae(f, name));
    using result = await torch.run(models[f.name], [input(f)], { saes: spliced, errorTerm, capture: layers });
    expectMatches(result.output, pyLogits(caseId), `${caseId} logits`);
    if (errorTerm) expectMatches(result.output, pyLogits(id(f, 'clean')), `${caseId} logits vs clean`);
    else expectMoved(result.output, f, caseId);
    for (const layer of layers) expectMatches(result.activations[layer], pyCapture(caseId, layer), `${caseId} ${layer}`);
    // torch.activations splices them too (and stops after the last capture).
    using captured = await torch.activations(models[f.name], { layers, saes: spliced, errorTerm }, input(f));
    for (const layer of layers) expectMatches(captured[layer], pyCapture(caseId, layer), `${caseId} activations ${layer}`);
  });

  test('greedy generation steered through a feature at every step equals the Python splice steering at every full forward', async () => {
    const read = kind('standard').read(f);
    const steered = pyNewIds(id(f, 'generate', 'steered'));
    const clean = pyNewIds(id(f, 'generate', 'clean'));
    expect(steered).not.toEqual(clean);
    const steer = torch.tensor(steerVector, [D_SAE], 'float32');
    const options = { maxNewTokens: GENERATE_STEPS, saes: [sae(f, 'standard')], errorTerm: true };
    const result = await torch.generate(models[f.name], prompts[f.name], { ...options, patch: { [`${read}:features`]: { add: steer } } }).result;
    steer.dispose();
    expect(result.newIds).toEqual(steered);
    // Spliced with the error term and not steered, generation is the clean model's.
    expect((await torch.generate(models[f.name], prompts[f.name], options).result).newIds).toEqual(clean);
  });

  test("hook_resid_mid: the SAE's output is the residual stream between attention and MLP (TransformerLens's resid_mid)", async () => {
    const read = kind('resid-mid').read(f);
    const capture = stagesOf(read, false);
    using result = await torch.run(models[f.name], [input(f)], { saes: [sae(f, 'resid-mid')], capture });
    const caseId = id(f, 'resid-mid', 'false');
    for (const layer of capture) expectMatches(result.activations[layer], pyCapture(caseId, layer), `${caseId} ${layer}`);
    expectMatches(result.output, pyLogits(caseId), `${caseId} logits`);
    using withError = await torch.run(models[f.name], [input(f)], { saes: [sae(f, 'resid-mid')], errorTerm: true });
    expectMatches(withError.output, pyLogits(id(f, 'clean')), `${caseId} logits with the error term vs clean`);
  });

  test('an SAE whose d_in does not fit its hook point is refused with SHAPE, and the model still computes', async () => {
    const model = models[f.name];
    await expectTorchscopeError(() => torch.run(model, [input(f)], { saes: [sae(f, 'mismatch')] }), 'SHAPE', /takes \[\.\.\., 16\]/);
    using after = await torch.run(model, [input(f)], { saes: [sae(f, 'standard')], errorTerm: true });
    expectMatches(after.output, pyLogits(id(f, 'clean')), 'logits after the error');
  });

  test('an SAE value with no SAE spliced there is UNKNOWN_LAYER, by either name', async () => {
    const model = models[f.name];
    const features = `${kind('standard').read(f)}:features`;
    await expectTorchscopeError(() => torch.run(model, [input(f)], { capture: [features] }), 'UNKNOWN_LAYER');
    await expectTorchscopeError(() => torch.activations(model, features, input(f)), 'UNKNOWN_LAYER');
    await expectTorchscopeError(() => torch.run(model, [input(f)], { patch: { [features]: { zero: true } } }), 'UNKNOWN_LAYER');
    // Another SAE spliced elsewhere does not make this one's values exist.
    await expectTorchscopeError(() => torch.run(model, [input(f)], { saes: [sae(f, 'gated')], capture: [features] }), 'UNKNOWN_LAYER');
    await expectTorchscopeError(() => torch.run(model, [input(f)], { capture: [`${KINDS.standard.hook}.hook_sae_acts_post`] }), 'UNKNOWN_LAYER');
  });

  test('two SAEs reading one hook point are INVALID_ARGUMENT', async () => {
    const model = models[f.name];
    const twin = await torch.sae.load(sae(f, 'standard').path, { model });
    try {
      await expectTorchscopeError(() => torch.run(model, [input(f)], { saes: [sae(f, 'standard'), twin] }), 'INVALID_ARGUMENT', /two SAEs read/);
    } finally {
      twin.dispose();
    }
  });
});
