// What the instrumentation does beyond matching eager hooks (test/zoo.test.ts does that):
// hooks whose calls did not run are reported, never an undefined; fused fast paths are turned
// off only where something inside them is hooked; inputs are converted to forward's declared
// types with errors that say where; captured containers are deep copies; programs are built
// once per layer set, with their build time reported; bfloat16 models are frozen only.
import * as path from 'path';

import * as torch from '../lib';
import { asTensor, expectClose, expectTorchscopeError, MODELS, Reference, removeDir, scratchDir } from './helpers';

const ZOO = path.join(MODELS, 'zoo');
let dir: string;
let branches: torch.Model;

beforeAll(async () => {
  dir = scratchDir('instrumentation');
  const file = path.join(dir, 'branches.pt');
  await new Reference(dir).task({ kind: 'script_branches', path: file }).run();
  branches = await torch.load(file);
}, 120_000);

afterAll(() => {
  branches?.dispose();
  removeDir(dir);
});

const positive = () => torch.tensor(new Float32Array([1, 2, 3, 4]), [1, 4]);
const negative = () => torch.tensor(new Float32Array([-1, -2, -3, -4]), [1, 4]);

describe('a layer whose calls this forward did not reach (scripted if/else)', () => {
  test('both branches are hookable call sites', () => {
    const byPath = new Map(branches.modules().map((m) => [m.path, m]));
    expect(byPath.get('pos')).toMatchObject({ hookable: true, callSites: 1 });
    expect(byPath.get('neg')).toMatchObject({ hookable: true, callSites: 1 });
  });

  test('capturing it rejects with LAYER_NOT_RUN naming it, in every call form', async () => {
    await expectTorchscopeError(() => torch.activations(branches, 'neg', positive()), 'LAYER_NOT_RUN', /'neg' did not run/);
    await expectTorchscopeError(() => torch.activations(branches, { layers: ['pos', 'neg'], calls: 'all' }, positive()), 'LAYER_NOT_RUN', /'neg'/);
    await expectTorchscopeError(() => torch.run(branches, [positive()], { capture: ['neg', 'head'] }), 'LAYER_NOT_RUN', /'neg'/);
    expect(asTensor(await torch.activations(branches, 'neg', negative())).shape).toEqual([1, 3]);
  });

  test('a patch that would change nothing rejects, saying so', async () => {
    await expectTorchscopeError(() => torch.run(branches, [positive()], { patch: { neg: { zero: true } } }), 'LAYER_NOT_RUN', /patch of 'neg' changed nothing/);
  });

  test('allowNotRun: null (calls last), [] (calls all), and listed in notRun', async () => {
    const last = await torch.activations(branches, { layers: ['pos', 'neg'], allowNotRun: true }, positive());
    expect(last.neg).toBeNull();
    expect(asTensor(last.pos).shape).toEqual([1, 3]);
    const all = await torch.activations(branches, { layers: ['neg'], calls: 'all', allowNotRun: true }, positive());
    expect(all.neg).toEqual([]);
    const result = await torch.run(branches, [positive()], { patch: { neg: { zero: true } }, capture: ['pos'], allowNotRun: true });
    expect(result.notRun).toEqual(['neg']);
    expectClose(asTensor(result.output), asTensor(await branches.forward(positive())), 0, 'unpatched output');
  });

  test('a patch on the branch taken applies', async () => {
    const result = await torch.run(branches, [negative()], { patch: { neg: { zero: true } }, capture: ['neg'] });
    expect(result.notRun).toEqual([]);
    expect(asTensor(result.activations.neg).toArray()).toEqual([[0, 0, 0]]);
  });
});

describe('fused fast paths (scripted nn.TransformerEncoder in eval mode)', () => {
  let encoder: torch.Model;
  beforeAll(async () => {
    encoder = await torch.load(path.join(ZOO, 'transformer-encoder-scripted.pt'));
  });
  afterAll(() => encoder?.dispose());
  const fused = (info: torch.ProgramInfo) => info.opCounts['aten::_transformer_encoder_layer_fwd'] ?? 0;

  test('stay on where nothing inside the layer is hooked', async () => {
    expect(fused(await torch.inspect(encoder, { output: true }))).toBe(2);
    expect(fused(await torch.inspect(encoder, { capture: ['head'], output: true }))).toBe(2);
  });

  test('turn off in the layer whose submodule is hooked, and only there', async () => {
    expect(fused(await torch.inspect(encoder, { capture: ['encoder.layers.1.linear1'], output: true }))).toBe(1);
    expect(fused(await torch.inspect(encoder, { capture: ['encoder.layers.0.norm2', 'encoder.layers.1.linear1'], output: true }))).toBe(0);
    // The layer itself hooked: as in Python (a hook on the layer turns its fast path off).
    expect(fused(await torch.inspect(encoder, { capture: ['encoder.layers.0'], output: true }))).toBe(1);
  });

  test('a hooked MultiheadAttention keeps its fused kernel, as in Python (it does not check its hooks)', async () => {
    // The layer holding it leaves its own fast path; the attention inside still runs fused.
    const info = await torch.inspect(encoder, { capture: ['encoder.layers.0.self_attn'] });
    expect(info.opCounts['aten::_native_multi_head_attention'] ?? 0).toBe(1);
    expect(fused(info)).toBe(0);
  });

  test('out_proj, which MultiheadAttention never calls as a module, says why it cannot be hooked', async () => {
    const outProj = encoder.modules().find((m) => m.path === 'encoder.layers.0.self_attn.out_proj');
    expect(outProj).toMatchObject({ hookable: false, callSites: 0 });
    expect(outProj?.reason).toMatch(/only its parameters are read/);
    await expectTorchscopeError(
      () => torch.inspect(encoder, { capture: ['encoder.layers.0.self_attn.out_proj'] }),
      'UNHOOKABLE_LAYER',
      /'encoder\.layers\.0\.self_attn\.out_proj' cannot be hooked/,
    );
  });
});

describe("inputs follow forward's declared types", () => {
  let dictModel: torch.Model;
  let listModel: torch.Model;
  beforeAll(async () => {
    dictModel = await torch.load(path.join(ZOO, 'dict-io-scripted.pt'));
    listModel = await torch.load(path.join(ZOO, 'list-io.pt'));
  });
  afterAll(() => {
    dictModel?.dispose();
    listModel?.dispose();
  });
  const image = () => torch.zeros([2, 3, 16, 16]);
  const mask = () => torch.zeros([2, 1, 16, 16]);

  test('a Dict[str, Tensor] from an object, a List[Tensor] from an array', async () => {
    const out = (await dictModel.forward({ image: image(), mask: mask() })) as Record<string, torch.Tensor>;
    expect(Object.keys(out).sort()).toEqual(['features', 'logits']);
    const list = (await listModel.forward([torch.zeros([2, 8]), torch.zeros([2, 8]), torch.zeros([2, 8])])) as torch.Tensor[];
    expect(Array.isArray(list)).toBe(true);
  });

  test('a wrong value names where it is', async () => {
    await expectTorchscopeError(
      () => dictModel.forward({ image: image(), mask: 3 }),
      'INVALID_ARGUMENT',
      /input 0 \('batch'\)\['mask'\]: expected Tensor, got the number 3/,
    );
    await expectTorchscopeError(
      () => dictModel.forward([image()]),
      'INVALID_ARGUMENT',
      /input 0 \('batch'\): expected Dict\[str, Tensor\] \(a plain object\), got an array of 1/,
    );
    await expectTorchscopeError(
      () => listModel.forward([torch.zeros([2, 8]), 'x']),
      'INVALID_ARGUMENT',
      /input 0 \('xs'\)\[1\]: expected Tensor, got a string/,
    );
    await expectTorchscopeError(() => dictModel.forward(new Float32Array(4) as never), 'INVALID_ARGUMENT', /typed array is not a model input/);
  });

  test('a cyclic input is an error, not a stack overflow', async () => {
    const cyclic: torch.Input[] = [];
    cyclic.push(cyclic);
    await expectTorchscopeError(() => listModel.forward(cyclic), 'INVALID_ARGUMENT', /cycl/);
  });
});

describe('captured containers are deep copies', () => {
  test("the dict a submodule returned, before the caller's in-place relu_", async () => {
    const model = await torch.load(path.join(ZOO, 'dict-io-scripted.pt'));
    try {
      const batch = {
        image: torch.tensor(
          Float32Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.sin(i)),
          [2, 3, 16, 16],
        ),
        mask: torch.zeros([2, 1, 16, 16]),
      };
      const { fpn, 'fpn.c2': c2 } = (await torch.activations(model, ['fpn', 'fpn.c2'], batch)) as Record<string, any>;
      const p2 = asTensor(fpn.p2);
      // fpn returned c2's output as p2; the caller then ran relu_ on it: a reference would be >= 0.
      expect(Math.min(...(p2.data() as Float32Array))).toBeLessThan(0);
      expectClose(p2, asTensor(c2), 0, 'p2 is c2 as returned');
    } finally {
      model.dispose();
    }
  });
});

describe('programs: built once per layer set, build time reported', () => {
  test('the same layers in another order reuse the program', async () => {
    const model = await torch.load(path.join(ZOO, 'vit.pt'));
    try {
      const first = await torch.inspect(model, { capture: ['layers.0.attention', 'layernorm'] });
      expect(first.buildMs).toBeGreaterThan(0);
      expect(first.programsCached).toBe(1);
      const again = await torch.inspect(model, { capture: ['layernorm', 'layers.0.attention'] });
      expect(again).toMatchObject({ buildMs: first.buildMs, programsCached: 1, numerics: 'exact' });
      const other = await torch.inspect(model, { capture: ['layernorm'] });
      expect(other.programsCached).toBe(2);
    } finally {
      model.dispose();
    }
  });

  test("optimize: 'optimized' for float32, 'frozen' for a bfloat16 model", async () => {
    const fp32 = await torch.load(path.join(ZOO, 'convnext.pt'), { optimize: true });
    const bf16 = await torch.load(path.join(ZOO, 'cnn-bfloat16.pt'), { optimize: true });
    try {
      expect((await torch.inspect(fp32, { capture: ['head_norm'] })).numerics).toBe('optimized');
      expect((await torch.inspect(bf16, { capture: ['fc'] })).numerics).toBe('frozen');
    } finally {
      fp32.dispose();
      bf16.dispose();
    }
  });
});
