// SAE files (lib/sae/, lib/io/): every format and architecture loads as an independent Python
// loader loads it (test/python/sae_reference.py: the safetensors library, numpy, SAELens's config
// rules), tensors bit for bit after the cast; hostile files are refused with MODEL_LOAD naming the
// file and the problem; TransformerLens hook names map to the hook points of each model family.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { float16ToFloat32Bits, float32BitsToBfloat16, float32BitsToFloat16 } from '../lib/io/host-tensor';
import { HookModel, mapHookName, modelFamily } from '../lib/sae/hook-names';
import { comparePep440, parsePep440 } from '../lib/sae/legacy-config';
import { loadSaeFiles, SaeFiles, SaeLoadOptions } from '../lib/sae/load';
import { modelPath, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const FIXTURES = path.join(ROOT, 'test', 'python', 'sae_fixtures.py');
const REFERENCE = path.join(ROOT, 'test', 'python', 'sae_reference.py');

/** Each good fixture: how it is loaded, and what this test knows of it besides what Python says. */
interface Good {
  fixture: string;
  format: SaeFiles['format'];
  options?: SaeLoadOptions;
  check?: (files: SaeFiles) => void;
}

const saelens = (fixture: string, check?: Good['check'], options?: SaeLoadOptions): Good => ({ fixture, format: 'saelens', check, options });

const GOOD: Record<string, Good> = {
  standard: saelens('standard', (f) => expect(f.sparsity?.shape).toEqual([48])),
  'standard-cnr': saelens('standard-cnr', (f) => expect(f.spec.normalization).toBe('constant_norm_rescale')),
  'standard-ln': saelens('standard-ln', (f) => expect(f.spec.normalization).toBe('layer_norm')),
  // SAELens scales by the dataset norm only in from_pretrained: from disk it is the identity.
  'standard-expavg': saelens('standard-expavg', (f) => {
    expect(f.cfg.normalize_activations).toBe('expected_average_only_in');
    expect(f.spec.normalization).toBe('none');
  }),
  'standard-nobdec': saelens('standard-nobdec', (f) => expect(f.spec.applyBDecToInput).toBe(false)),
  'standard-hookz': saelens('standard-hookz', (f) => expect(f.spec.reshapeHeads).toBe(true)),
  'standard-hookz-ln': saelens('standard-hookz-ln'),
  'standard-f64': saelens('standard-f64', (f) => expect(f.tensors.W_enc!.data).toBeInstanceOf(Float64Array)),
  'standard-bf16': saelens('standard-bf16', (f) => expect(f.dtype).toBe('bfloat16')),
  // float64 -> float16 rounds twice, through float32, as torch does.
  'standard-f16-from-f64': saelens('standard-f16-from-f64', (f) => expect(f.dtype).toBe('float16')),
  'standard-f32-from-bf16': saelens('standard-f32-from-bf16'),
  'standard-f32-from-f16': saelens('standard-f32-from-f16'),
  'standard+float64': saelens('standard', (f) => expect(f.cfg.dtype).toBe('float64'), { dtype: 'float64' }),
  'standard+bfloat16': saelens('standard', (f) => expect(f.tensors.b_dec!.dtype).toBe('bfloat16'), { dtype: 'bfloat16' }),
  jumprelu: saelens('jumprelu', (f) => expect(f.tensors.threshold!.shape).toEqual([48])),
  'jumprelu-cnr': saelens('jumprelu-cnr'),
  topk: saelens('topk', (f) => expect([f.spec.k, f.spec.rescaleByDecoderNorm]).toEqual([5, false])),
  'topk-rescale': saelens('topk-rescale', (f) => expect([f.spec.k, f.spec.rescaleByDecoderNorm]).toEqual([7, true])),
  'topk-hookz': saelens('topk-hookz'),
  gated: saelens('gated', (f) => expect(f.tensors.b_enc).toBeUndefined()),
  'gated-ln': saelens('gated-ln'),
  transcoder: saelens('transcoder', (f) => {
    expect([f.dIn, f.dSae, f.dOut]).toEqual([16, 48, 12]);
    expect([f.hookName, f.hookNameOut]).toEqual(['blocks.0.mlp.hook_in', 'blocks.0.hook_mlp_out']);
    expect(f.spec.applyBDecToInput).toBe(false);
  }),
  'transcoder-cnr': saelens('transcoder-cnr'),
  'transcoder-ln': saelens('transcoder-ln'),
  skip_transcoder: saelens('skip_transcoder', (f) => expect(f.tensors.W_skip!.shape).toEqual([12, 16])),
  'skip_transcoder-ln': saelens('skip_transcoder-ln'),
  jumprelu_transcoder: saelens('jumprelu_transcoder'),
  'scaling-ones': saelens('scaling-ones', (f) => expect(Object.keys(f.tensors).sort()).toEqual(['W_dec', 'W_enc', 'b_dec', 'b_enc'])),
  // Pre-6.0 configs: SAELens's conversion (hook_point renamed, defaults, topk from activation_fn_kwargs, a boolean normalization named).
  'legacy-hook-point': saelens('legacy-hook-point', (f) => {
    expect(f.hookName).toBe('blocks.1.hook_resid_pre');
    expect(f.cfg.metadata).toMatchObject({ hook_head_index: null, sae_lens_training_version: '2.1.3', neuronpedia_id: 'gpt2-small/2-res-jb' });
    expect(f.cfg.metadata).not.toHaveProperty('hook_point');
  }),
  'legacy-topk': saelens('legacy-topk', (f) => {
    expect([f.architecture, f.cfg.k, f.cfg.normalize_activations]).toEqual(['topk', 6, 'expected_average_only_in']);
    expect(f.cfg.metadata.sae_lens_version).toBe('5.9.1');
  }),
  'legacy-hookz': saelens('legacy-hookz', (f) => expect(f.cfg.reshape_activations).toBe('hook_z')),
  'legacy-dev-version': saelens('legacy-dev-version', (f) => expect(f.hookName).toBe('blocks.0.hook_mlp_out')),
  // The version inside metadata only: SAELens 6's own files.
  'v6-metadata-version': saelens('v6-metadata-version', (f) => {
    expect(f.hookName).toBe('blocks.1.attn.hook_z');
    expect(f.cfg.metadata.model_name).toBe('gpt2');
  }),
  'v6-rc': saelens('v6-rc', (f) => expect(f.cfg.metadata).toHaveProperty('sae_lens_version', null)),
  'gemma-scope': { fixture: 'gemma-scope', format: 'gemma-scope', options: { hookPoint: 'model.layers.1' } },
  'gemma-scope-folder': { fixture: 'gemma-scope-folder', format: 'gemma-scope', options: { hookPoint: 'model.layers.1' } },
  'gemma-scope-compressed': { fixture: 'gemma-scope-compressed', format: 'gemma-scope', options: { hookPoint: 'model.layers.1' } },
  'gemma-scope-f64': { fixture: 'gemma-scope-f64', format: 'gemma-scope', options: { hookPoint: 'model.layers.1' } },
  'gemma-scope+float16': { fixture: 'gemma-scope', format: 'gemma-scope', options: { hookPoint: 'model.layers.1', dtype: 'float16' } },
  sparsify: { fixture: 'sparsify', format: 'sparsify', options: { hookPoint: 'model.layers.1' }, check: (f) => expect(f.spec.applyBDecToInput).toBe(true) },
  'sparsify-bf16': { fixture: 'sparsify-bf16', format: 'sparsify', options: { hookPoint: 'transformer.h.0' }, check: (f) => expect(f.dtype).toBe('bfloat16') },
  'sparsify-bf16+float32': { fixture: 'sparsify-bf16', format: 'sparsify', options: { hookPoint: 'transformer.h.0', dtype: 'float32' } },
};

/** Each hostile fixture, and what the refusal must say. */
const HOSTILE: Record<string, RegExp> = {
  'st-truncated': /tensor '\w+' ends at byte \d+ of the data, past the data section/,
  'st-short': /4 bytes is too short for a safetensors file/,
  'st-header-past-file': /header claims \d+ bytes, past the end of the \d+-byte file/,
  'st-header-2p40': /header claims 1099511627776 bytes, more than the 100000000/,
  'st-header-not-json': /header is not UTF-8 JSON/,
  'st-header-array': /header is not a JSON object/,
  'st-overlap': /tensors '\w+' \[\d+, \d+\] and '\w+' \[\d+, \d+\] overlap/,
  'st-gap': /bytes \[\d+, \d+\) of the data belong to no tensor/,
  'st-trailing': /the data section has \d+ bytes but its tensors cover \d+/,
  'st-wrong-size': /tensor 'W_enc': shape \[16, 49\] of F32 is 3136 bytes, but its data_offsets \[\d+, \d+\] span 3072/,
  'st-dtype-int': /tensor 'b_dec' has dtype "I32"; torchscope reads F32, F64, F16, BF16/,
  'st-negative-shape': /tensor 'b_dec': shape must be an array of non-negative integers/,
  'st-huge-offsets': /tensor 'b_dec': data_offsets must be \[begin, end\]/,
  'st-shape-mismatch': /tensor 'W_enc' has shape \[16, 47\]; the config makes it \[16, 48\]/,
  'st-transposed': /tensor 'W_dec' has shape \[16, 48\]; the config makes it \[48, 16\] \(\[d_sae, d_out\]\)/,
  'st-missing-key': /no tensor 'threshold' \(a jumprelu SAE has W_enc, b_enc, W_dec, b_dec, threshold\)/,
  'st-extra-key': /unexpected tensor 'threshold' \(a standard SAE has/,
  'st-scaling-factor': /'scaling_factor' is not all ones; a finetuning scaling factor is not supported/,
  'sparsity-wrong-shape': /sparsity file .*tensor 'sparsity' has shape \[47\]; expected \[48\]/,
  'sparsity-no-key': /sparsity file .* has no tensor 'sparsity'/,
  'cfg-not-json': /SAE config .* is not JSON/,
  'cfg-array': /SAE config .*: it is not a JSON object/,
  'cfg-arch-newer': /architecture 'matching_pursuit' is a newer SAELens architecture torchscope does not compute yet; torchscope computes standard, jumprelu/,
  'cfg-arch-bogus': /architecture "resnet" is not an SAELens architecture/,
  'cfg-norm-unknown': /normalize_activations must be one of none, expected_average_only_in, constant_norm_rescale, layer_norm, got "batch_norm"/,
  'cfg-reshape-unknown': /reshape_activations must be one of none, hook_z, got "hook_q"/,
  'cfg-d-in-string': /d_in must be a positive integer, got "16"/,
  'cfg-no-d-sae': /d_sae must be a positive integer, got undefined/,
  'cfg-dtype-int': /dtype must be one of .*bfloat16.*, got "int8"/,
  'cfg-transcoder-bdec': /apply_b_dec_to_input must be false for a transcoder/,
  'cfg-version-invalid': /sae_lens_version "banana" is not a PEP 440 version/,
  'cfg-topk-k': /k is 49, more than the 48 features/,
  'cfg-hookz-name': /reshape_activations is 'hook_z' but metadata.hook_name 'blocks.1.hook_resid_pre' is not a hook_z/,
  'cfg-huge': /SAE config .* is \d+ bytes, more than the 1048576 it may have/,
  'npz-truncated': /npz file .*: it is not a readable zip archive/,
  'npz-not-zip': /npz file .*: it is not a readable zip archive/,
  'npz-fortran': /entry 'W_enc.npy': it is stored in Fortran order/,
  'npz-big-endian': /entry 'b_dec.npy': its dtype is ">f4"; torchscope reads little-endian floats/,
  'npz-int': /entry 'b_dec.npy': its dtype is "<i8"/,
  'npz-bad-magic': /entry 'b_enc.npy': it is not a .npy array/,
  'npz-size-mismatch': /entry 'b_enc.npy': its header makes \d+ bytes \(shape \(49\) of float32\), but the entry has \d+/,
  'npz-header-evaluated': /entry 'b_enc.npy': its .npy header is not a dict literal/,
  'npz-header-huge': /entry 'b_enc.npy': its .npy header claims 60000 bytes, more than the 10000/,
  'npz-shape-mismatch': /tensor 'W_dec' has shape \[47, 16\]; the config makes it \[48, 16\]/,
  'npz-missing-threshold': /no tensor 'threshold'/,
  'npz-extra-entry': /entry 'notes.txt' is not an array/,
  'npz-size-claim': /claims 2147483632 bytes from \d+ deflated ones, more than deflate can make/,
  'sparsify-groupmax': /activation is "groupmax"; torchscope computes sparsify's 'topk'/,
  'sparsify-transcode': /transcode is true: sparsify transcoders/,
  'sparsify-skip': /skip_connection is true/,
  'sparsify-untransposed': /tensor 'W_enc' has shape \[48, 16\]; the config makes it \[16, 48\]/,
  'empty-folder': /SAE folder .*: it holds none of their files; an SAE is a SAELens folder/,
  'cfg-only': /it has cfg.json but no weights beside it/,
  'not-an-sae-file': /is a file but not an .npz/,
};

let dir: string;
let index: { good: Record<string, string>; hostile: Record<string, string> };
let reference: Record<string, any>;

beforeAll(async () => {
  dir = scratchDir('sae-files');
  const request = (name: string, body: object) => {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(body));
    return file;
  };
  await runPythonScript(FIXTURES, [request('fixtures', { out: path.join(dir, 'fixtures') })]);
  index = JSON.parse(fs.readFileSync(path.join(dir, 'fixtures', 'index.json'), 'utf8'));
  const cases = Object.entries(GOOD).map(([id, good]) => ({ id, op: 'load', sae: index.good[good.fixture], dtype: good.options?.dtype ?? null }));
  await runPythonScript(REFERENCE, [request('load', { out: path.join(dir, 'reference'), cases })]);
  reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference', 'index.json'), 'utf8')).cases;
}, 300_000);

afterAll(() => removeDir(dir));

test('the fixtures Python wrote are the ones listed here', () => {
  expect(Object.keys(index.good).sort()).toEqual([...new Set(Object.values(GOOD).map((g) => g.fixture))].sort());
  expect(Object.keys(index.hostile).sort()).toEqual(Object.keys(HOSTILE).sort());
});

function bytesOf(data: ArrayBufferView): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

describe('every format and architecture loads as the Python reference loads it', () => {
  test.each(Object.keys(GOOD))('%s', async (id) => {
    const good = GOOD[id];
    const expected = reference[id];
    if (expected.error) throw new Error(`the reference could not load ${id}: ${expected.error}`);
    const files = await loadSaeFiles(index.good[good.fixture], good.options);
    expect(files.format).toBe(good.format);
    expect(files.cfg).toEqual(expected.cfg);
    const cfg = files.cfg;
    expect([files.architecture, files.dIn, files.dSae, files.dOut, files.dtype]).toEqual([
      cfg.architecture,
      cfg.d_in,
      cfg.d_sae,
      cfg.d_out ?? cfg.d_in,
      cfg.dtype,
    ]);
    expect(Object.keys(files.tensors).sort()).toEqual(Object.keys(expected.tensors).sort());
    for (const [name, ref] of Object.entries<any>(expected.tensors)) {
      const t = files.tensors[name as keyof typeof files.tensors]!;
      expect([name, t.dtype, t.shape]).toEqual([name, ref.dtype, ref.shape]);
      // Bit for bit: the same bytes as torch's .to(dtype) of what the file holds.
      expect(bytesOf(t.data).equals(fs.readFileSync(ref.file))).toBe(true);
    }
    if (expected.sparsity) expect(bytesOf(files.sparsity!.data).equals(fs.readFileSync(expected.sparsity.file))).toBe(true);
    else expect(files.sparsity).toBeNull();
    // Without a model, a TransformerLens name stays a name; a hook point given is used as given.
    expect(files.hookName).toBe(cfg.metadata.hook_name ?? null);
    expect(files.hookPoint).toBe(good.options?.hookPoint ?? null);
    const transcoder = ['transcoder', 'skip_transcoder', 'jumprelu_transcoder'].includes(cfg.architecture);
    expect(files.spec).toEqual({
      architecture: cfg.architecture,
      normalization: cfg.normalize_activations === 'expected_average_only_in' ? 'none' : cfg.normalize_activations,
      applyBDecToInput: cfg.apply_b_dec_to_input,
      reshapeHeads: cfg.reshape_activations === 'hook_z' && !transcoder,
      k: cfg.k ?? 0,
      rescaleByDecoderNorm: cfg.rescale_acts_by_decoder_norm ?? false,
    });
    good.check?.(files);
  });
});

describe('hostile files are refused with MODEL_LOAD naming the file and the problem', () => {
  test.each(Object.keys(HOSTILE))('%s', async (name) => {
    const file = index.hostile[name];
    const error = await loadSaeFiles(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(torch.TorchscopeError);
    const { code, message } = error as torch.TorchscopeError;
    expect({ code, message }).toEqual({ code: 'MODEL_LOAD', message: expect.stringMatching(HOSTILE[name]) });
    expect(message).toContain(file);
  });
});

describe('hook points', () => {
  test('Gemma Scope and sparsify name none the loader can use alone: it asks for one', async () => {
    await expect(loadSaeFiles(index.good['gemma-scope'])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/a Gemma Scope params.npz names no hook point .*; pass \{ hookPoint \}/),
    });
    await expect(loadSaeFiles(index.good.sparsify)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/names its hook point by its folder, 'layers.1', in the base model: pass \{ model \}/),
    });
    await expect(loadSaeFiles(index.good.standard, { hookPointOut: 'x' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: /hookPointOut is for transcoders/,
    });
    await expect(loadSaeFiles(index.good.standard, { hookpoint: 'x' } as SaeLoadOptions)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: /unknown option 'hookpoint' \(did you mean 'hookPoint'\?\)/,
    });
  });

  // The TransformerLens hooks of each family, at layer 1 (GPT-2 small's at layer 5).
  const FAMILY_POINTS: Record<string, Record<string, string>> = {
    gpt2: {
      hook_resid_pre: 'transformer.h.1:input',
      hook_resid_mid: 'transformer.h.1/add',
      hook_resid_post: 'transformer.h.1',
      hook_attn_out: 'transformer.h.1.attn',
      hook_mlp_out: 'transformer.h.1.mlp',
      'attn.hook_z': 'transformer.h.1.attn.c_proj:input',
      'mlp.hook_in': 'transformer.h.1.mlp:input',
    },
    llama: {
      hook_resid_pre: 'model.layers.1:input',
      hook_resid_mid: 'model.layers.1/add',
      hook_resid_post: 'model.layers.1',
      hook_attn_out: 'model.layers.1.self_attn',
      hook_mlp_out: 'model.layers.1.mlp',
      'attn.hook_z': 'model.layers.1.self_attn.o_proj:input',
      'mlp.hook_in': 'model.layers.1.mlp:input',
    },
    gemma2: {
      hook_resid_pre: 'model.layers.1:input',
      hook_resid_mid: 'model.layers.1/add',
      hook_resid_post: 'model.layers.1',
      hook_attn_out: 'model.layers.1.post_attention_layernorm',
      hook_mlp_out: 'model.layers.1.post_feedforward_layernorm',
      'attn.hook_z': 'model.layers.1.self_attn.o_proj:input',
      'mlp.hook_in': 'model.layers.1.mlp:input',
    },
    gpt_neox: {
      hook_resid_pre: 'gpt_neox.layers.1:input',
      hook_resid_post: 'gpt_neox.layers.1',
      hook_attn_out: 'gpt_neox.layers.1.attention',
      hook_mlp_out: 'gpt_neox.layers.1.mlp',
      'attn.hook_z': 'gpt_neox.layers.1.attention.dense:input',
      'mlp.hook_in': 'gpt_neox.layers.1.mlp:input',
    },
  };
  const LLMS: Record<string, string> = {
    gpt2: 'gpt2',
    llama: 'llama',
    mistral: 'llama',
    qwen2: 'llama',
    phi3: 'llama',
    gemma2: 'gemma2',
    gemma3: 'gemma2',
    pythia: 'gpt_neox',
  };

  test.each(Object.keys(LLMS))('models/llm/%s: its manifest names the family, every hook maps to a layer it has', async (name) => {
    const model = await torch.load(modelPath(`llm/${name}.pt`));
    try {
      const family = LLMS[name];
      expect(model.manifest).not.toBeNull();
      expect(modelFamily(model)).toBe(family);
      for (const [hook, point] of Object.entries(FAMILY_POINTS[family])) {
        expect([hook, mapHookName(`blocks.1.${hook}`, model)]).toEqual([hook, point]);
        model.checkLayers([point], {});
      }
      // Without the manifest, the module names tell the same family.
      expect(modelFamily({ manifest: null, modules: () => model.modules() })).toBe(family);
      // What it cannot map, it says, asking for a hookPoint.
      const refusals: [string, RegExp][] = [
        ['blocks.2.hook_resid_post', /the model has 2 blocks/],
        ['blocks.1.ln2.hook_normalized', /torchscope maps blocks.L.\{hook_resid_pre, .*\}/],
        ['hook_embed', /torchscope maps blocks.L/],
      ];
      if (family === 'gpt_neox') refusals.push(['blocks.1.hook_resid_mid', /runs attention and MLP in parallel: it has no hook_resid_mid/]);
      for (const [hook, why] of refusals) {
        expect(() => mapHookName(hook, model)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(why) }));
        expect(() => mapHookName(hook, model)).toThrow(new RegExp(`cannot map the SAE's hook '${hook}' .*; pass \\{ hookPoint \\}`));
      }
      expect(() => mapHookName('blocks.1.attn.hook_z', model, 3)).toThrow(/reads one attention head \(hook_head_index 3\)/);
    } finally {
      model.dispose();
    }
  });

  test("models/gpt2.pt, with its manifest and without: GPT-2 small's module names map, and SAEs find their points on it", async () => {
    const model = await torch.load(modelPath('gpt2.pt'), { decodeStep: false });
    try {
      expect(model.manifest?.modelType).toBe('gpt2');
      // Without a manifest the family comes from the modules.
      const bare = { manifest: null, modules: () => model.modules() };
      for (const hooked of [model, bare]) {
        expect(modelFamily(hooked)).toBe('gpt2');
        for (const [hook, point] of Object.entries(FAMILY_POINTS.gpt2)) {
          const at5 = point.replace('transformer.h.1', 'transformer.h.5');
          expect(mapHookName(`blocks.5.${hook}`, hooked)).toBe(at5);
          model.checkLayers([at5], {});
        }
      }
      expect(() => mapHookName('blocks.12.hook_resid_pre', model)).toThrow(/the model has 12 blocks/);
      expect(() => mapHookName('blocks.12.hook_resid_pre', bare)).toThrow(/the model has no module 'transformer.h.12'/);
      const sae = await loadSaeFiles(index.good['standard-hookz'], { model });
      expect(sae.hookPoint).toBe('transformer.h.1.attn.c_proj:input');
      const transcoder = await loadSaeFiles(index.good.transcoder, { model });
      expect([transcoder.hookPoint, transcoder.hookPointOut]).toEqual(['transformer.h.0.mlp:input', 'transformer.h.0.mlp']);
      const given = await loadSaeFiles(index.good.transcoder, { model, hookPointOut: 'transformer.h.0' });
      expect(given.hookPointOut).toBe('transformer.h.0');
      // sparsify names a module of the base model ('h.0'): found among the model's modules.
      const sparsify = await loadSaeFiles(index.good['sparsify-bf16'], { model });
      expect(sparsify.hookPoint).toBe('transformer.h.0');
      await expect(loadSaeFiles(index.good.sparsify, { model })).rejects.toThrow(
        /reads module 'layers.1' of the base model, but no module of the model is or ends with it/,
      );
    } finally {
      model.dispose();
    }
  });

  test('a Llama SAE maps through the manifest; sparsify finds model.layers.1', async () => {
    const model = await torch.load(modelPath('llm/llama.pt'));
    try {
      const sae = await loadSaeFiles(index.good.jumprelu, { model });
      expect(sae.hookPoint).toBe('model.layers.1');
      const sparsify = await loadSaeFiles(index.good.sparsify, { model });
      expect(sparsify.hookPoint).toBe('model.layers.1');
    } finally {
      model.dispose();
    }
  });

  test('a model of no known family: the refusal says which families are known', () => {
    const model: HookModel = { manifest: null, modules: () => [{ path: 'encoder.block.0' }, { path: 'encoder.block.0.layer' }] };
    expect(() => mapHookName('blocks.0.hook_resid_post', model)).toThrow(
      /the model's family is not one torchscope knows the layout of \(gpt2, llama, gemma2, gpt_neox/,
    );
  });
});

describe('numbers', () => {
  const f32 = new Float32Array(1);
  const bitsOf = (x: number) => {
    f32[0] = x;
    return new Uint32Array(f32.buffer)[0];
  };

  test('float16 -> float32 -> float16 is the identity on all 65536 words (NaNs become the quiet NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const back = float32BitsToFloat16(float16ToFloat32Bits(h));
      const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (back !== (nan ? (h & 0x8000) | 0x7e00 : h)) throw new Error(`float16 0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    }
  });

  test('float32 -> float16 rounds to nearest even, overflows to infinity, and underflows through subnormals', () => {
    const cases: [number, number][] = [
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00], // the tie at the top rounds to the even: infinity
      [1 + 2 ** -11, 0x3c00], // a tie between 1 and its successor: to the even 1
      [1 + 3 * 2 ** -11, 0x3c02], // a tie: to the even successor
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // half the smallest subnormal: a tie, to even zero
      [2 ** -25 * 1.0000001, 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 units: to the even 2
      [-(2 ** -14), 0x8400],
      [2 ** -14 - 2 ** -25, 0x0400], // the largest subnormal's tie with the smallest normal: up
      [-0, 0x8000],
      [Infinity, 0x7c00],
    ];
    for (const [value, expected] of cases) expect([value, float32BitsToFloat16(bitsOf(value))]).toEqual([value, expected]);
  });

  test('float32 -> bfloat16 rounds to nearest even; every NaN is 0x7FC0', () => {
    expect(float32BitsToBfloat16(0x3f808000)).toBe(0x3f80); // a tie: to even
    expect(float32BitsToBfloat16(0x3f818000)).toBe(0x3f82); // a tie: to even, up
    expect(float32BitsToBfloat16(0x3f808001)).toBe(0x3f81);
    expect(float32BitsToBfloat16(0x7f7fffff)).toBe(0x7f80); // the largest float rounds to infinity
    expect(float32BitsToBfloat16(0xffc00001)).toBe(0x7fc0);
  });

  test('SAELens versions compare as PEP 440 orders them', () => {
    const before = (a: string, b: string) => comparePep440(parsePep440(a)!, parsePep440(b)!) < 0;
    const ordered = ['5.9.1', '6.0.0.dev1', '6.0.0a1', '6.0.0b2', '6.0.0-rc.0', '6.0.0rc1', '6.0.0', '6.0.0.post1', '6.0.1', '6.18.0', '10.0'];
    for (let i = 0; i + 1 < ordered.length; i++) expect([ordered[i], before(ordered[i], ordered[i + 1])]).toEqual([ordered[i], true]);
    expect(comparePep440(parsePep440('6.0.0-rc.0')!, parsePep440('6.0.0rc0')!)).toBe(0);
    expect(comparePep440(parsePep440('6.0')!, parsePep440('6.0.0')!)).toBe(0);
    expect(parsePep440('banana')).toBeUndefined();
  });
});
