// load({ precision: 'bf16' | 'fp16' }): every call of the model runs under autocast. Checked
// against PyTorch's own torch.autocast('cpu', dtype) around the eager model with the same
// weights and hooks (test/python/reference.py, attribution_reference.py), on traced and scripted
// models, a BERT and a GPT-2: outputs, captures (module outputs and ':input's), gradients. The
// drift from float32 PyTorch is bounded by the README's documented tolerance.
import * as torch from '../lib';
import { attributionResult, AttributionRefResult, GradientsCase, relativeTo, runAttributionReference } from './helpers/attribution';
import {
  asTensor,
  decodeReduced,
  expectEqual,
  expectTorchscopeError,
  expectValueClose,
  HostTensor,
  hostRandn,
  maxAbs,
  modelPath,
  randint,
  Reference,
  refCase,
  RefResult,
  relativeTolerance,
  removeDir,
  scratchDir,
  toTorch,
  widenRef,
} from './helpers';

// Against PyTorch's autocast at the same precision: the same kernels on the same values. Measured
// bit-identical on the ResNets, BERT and in float16; GPT-2's output is one unit of bfloat16's last
// place off at its largest value. The bar: two units (2^-7, 2^-10) of max(1, max |value|).
const SAME_PRECISION = { bf16: 2 ** -7, fp16: 2 ** -10 };
// Against float32 PyTorch: README's documented drift, of max(1, max |value|) of each tensor.
const DRIFT = { bf16: 3e-2, fp16: 5e-3 };

const image = hostRandn([2, 3, 32, 32], 5);
const ids: HostTensor = { data: randint(2 * 7, 30522, 3), shape: [2, 7], dtype: 'int64' };
const mask: HostTensor = { data: BigInt64Array.from({ length: 14 }, (_, i) => (i >= 12 ? 0n : 1n)), shape: [2, 7], dtype: 'int64' };
const gptIds: HostTensor = { data: randint(2 * 8, 50257, 4), shape: [2, 8], dtype: 'int64' };

interface Case {
  name: string;
  file: string;
  inputs: HostTensor[];
  capture: string[];
  precision: 'bf16' | 'fp16';
}

const CASES: Case[] = [
  { name: 'traced ResNet (tiny)', file: 'resnet-tiny.pt', inputs: [image], capture: ['layer1', 'layer3.0.conv1', 'fc'], precision: 'bf16' },
  { name: 'scripted ResNet (tiny)', file: 'resnet-tiny-scripted.pt', inputs: [image], capture: ['layer1', 'layer3.0.conv1', 'fc'], precision: 'bf16' },
  {
    name: 'BERT (tiny), attention modules and a dense layer',
    file: 'bert-tiny.pt',
    inputs: [ids, mask],
    capture: ['encoder.layer.1.attention.self', 'encoder.layer.0.output.dense'],
    precision: 'bf16',
  },
  {
    name: "GPT-2 (tiny), a block and a projection's input",
    file: 'gpt2-tiny.pt',
    inputs: [gptIds],
    capture: ['transformer.h.1', 'transformer.h.2.attn.c_proj:input'],
    precision: 'bf16',
  },
  { name: 'traced ResNet (tiny), float16', file: 'resnet-tiny.pt', inputs: [image], capture: ['layer2', 'fc'], precision: 'fp16' },
];

let dir: string;
let refs: Map<string, RefResult>;
let gradientRefs: Map<string, AttributionRefResult> | undefined;
const GRADIENTS: GradientsCase = {
  id: 'gradients/bf16',
  kind: 'gradients',
  model: modelPath('resnet-tiny.pt'),
  inputs: [image],
  objective: { layer: '', objectives: [{ target: 3 }, { target: 7 }] },
  wrt: { inputs: [0], layers: ['layer2'] },
  autocast: 'bf16',
};

beforeAll(async () => {
  dir = scratchDir('precision');
  const reference = new Reference(dir);
  for (const c of CASES) {
    const base = { kind: 'eager' as const, model: modelPath(c.file), inputs: c.inputs, capture: c.capture };
    reference.add({ id: `${c.name}/autocast`, ...base, autocast: c.precision });
    reference.add({ id: `${c.name}/fp32`, ...base });
  }
  const [results, gradients] = await Promise.all([reference.run(), runAttributionReference(`${dir}/gradients`, [GRADIENTS])]);
  refs = results;
  gradientRefs = gradients;
}, 600_000);

afterAll(() => removeDir(dir));

/** A tensor's values as numbers, whatever its floating dtype. */
function numbers(t: torch.Tensor): number[] {
  return t.dtype === 'bfloat16' || t.dtype === 'float16' ? Array.from(decodeReduced(t.data() as Uint16Array, t.dtype)) : Array.from(t.data() as Float32Array);
}

/** The same structure with every floating tensor as float32. */
function asFloat(value: torch.Value): torch.Value {
  if (value instanceof torch.Tensor)
    return value.dtype === 'bfloat16' || value.dtype === 'float16' ? torch.tensor(Float32Array.from(numbers(value)), value.shape) : value;
  if (Array.isArray(value)) return value.map(asFloat);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asFloat(v)]));
  return value;
}

// First in the file: the warning is given once per process and precision.
test('torch.info().cpu says what the CPU computes natively; an emulated precision warns once', async () => {
  const { cpu } = torch.info();
  expect(typeof cpu.capability).toBe('string');
  expect(typeof cpu.bf16).toBe('boolean');
  const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  try {
    const models = [await torch.load(modelPath('resnet-tiny.pt'), { precision: 'fp16' }), await torch.load(modelPath('resnet-tiny.pt'), { precision: 'fp16' })];
    models.forEach((m) => m.dispose());
    const ours = emitWarning.mock.calls.filter(([, options]) => (options as { code?: string } | undefined)?.code === 'TORCHSCOPE_EMULATED_PRECISION');
    expect(ours).toHaveLength(cpu.fp16 ? 0 : 1);
    if (!cpu.fp16) expect(String(ours[0][0])).toMatch(/fp16.*emulated/);
  } finally {
    emitWarning.mockRestore();
  }
});

describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  let model: torch.Model;
  beforeAll(async () => {
    model = await torch.load(modelPath(c.file), { precision: c.precision });
  });
  afterAll(() => model.dispose());

  test(`${c.precision}: output and captures equal PyTorch's torch.autocast, dtypes included`, async () => {
    const expected = refCase(refs, `${c.name}/autocast`);
    const result = await torch.run(model, c.inputs.map(toTorch), { capture: c.capture });
    const tol = relativeTolerance(SAME_PRECISION[c.precision]);
    expectValueClose(result.output, expected.output, tol, 'output');
    for (const layer of c.capture) expectValueClose(result.activations[layer], expected.captures[layer][0], tol, layer);
    result.dispose();
  });

  test(`${c.precision}: within the documented drift of float32 PyTorch`, async () => {
    const expected = refCase(refs, `${c.name}/fp32`);
    const result = await torch.run(model, c.inputs.map(toTorch), { capture: c.capture });
    const tol = relativeTolerance(DRIFT[c.precision]);
    expectValueClose(asFloat(result.output), widenRef(expected.output!), tol, 'output');
    for (const layer of c.capture) expectValueClose(asFloat(result.activations[layer]), widenRef(expected.captures[layer][0]), tol, layer);
    result.dispose();
  });
});

describe('upcast, programs, optimize', () => {
  test('upcast: float32 values equal to the reduced ones widened', async () => {
    const reduced = await torch.load(modelPath('gpt2-tiny.pt'), { precision: 'bf16' });
    const widened = await torch.load(modelPath('gpt2-tiny.pt'), { precision: 'bf16', upcast: true });
    try {
      const layers = ['transformer.h.1', 'transformer.h.1.mlp.c_fc'];
      const a = await torch.run(reduced, [toTorch(gptIds)], { capture: layers });
      const b = await torch.run(widened, [toTorch(gptIds)], { capture: layers });
      // The MLP's projection computes in bfloat16; the block's output is the float32 residual
      // stream plus bfloat16 updates, float32 as in PyTorch.
      expect([a.activations[layers[0]], a.activations[layers[1]]].map((t) => (t as torch.Tensor).dtype)).toEqual(['float32', 'bfloat16']);
      for (const layer of layers) {
        const [x, y] = [a.activations[layer], b.activations[layer]] as torch.Tensor[];
        expect(y.dtype).toBe('float32');
        expect(numbers(y)).toEqual(numbers(x));
      }
      // A widened capture patches its (bfloat16) layer back, cast to it as autocast casts: the
      // run is unchanged. A float32 model still refuses a value of another dtype.
      const fc = b.activations[layers[1]] as torch.Tensor;
      const same = await torch.run(widened, [toTorch(gptIds)], { patch: { [layers[1]]: { set: fc } }, capture: ['transformer.h.2'] });
      const plain = await torch.run(widened, [toTorch(gptIds)], { capture: ['transformer.h.2'] });
      expect(numbers(same.activations['transformer.h.2'] as torch.Tensor)).toEqual(numbers(plain.activations['transformer.h.2'] as torch.Tensor));
      const exact = await torch.load(modelPath('gpt2-tiny.pt'));
      try {
        const half = a.activations[layers[1]] as torch.Tensor;
        await expectTorchscopeError(
          () => torch.run(exact, [toTorch(gptIds)], { patch: { [layers[1]]: { set: half } } }),
          'DTYPE',
          /BFloat16 but the layer outputs Float/,
        );
      } finally {
        exact.dispose();
      }
      // Gradients of a bfloat16 layer are bfloat16, or float32 with upcast.
      const objective = { objective: { logit: 262, position: -1 }, wrt: [layers[1]] };
      expect(((await torch.gradients(reduced, toTorch(gptIds), objective)).gradients[layers[1]] as torch.Tensor).dtype).toBe('bfloat16');
      expect(((await torch.gradients(widened, toTorch(gptIds), objective)).gradients[layers[1]] as torch.Tensor).dtype).toBe('float32');
      // model.call and the logit lens run at the model's precision too.
      const h1 = a.activations['transformer.h.1'] as torch.Tensor;
      expect(((await reduced.call('lm_head', h1)) as torch.Tensor).dtype).toBe('bfloat16');
      expect(((await widened.call('lm_head', h1)) as torch.Tensor).dtype).toBe('float32');
      const lens = await torch.logitLens(widened, toTorch(gptIds), { layers: ['transformer.h.3'], head: ['transformer.ln_f', 'lm_head'] });
      expect(lens.logits.dtype).toBe('float32');
      // The lens of the last block is the model's own output.
      expect(numbers(lens.logits)).toEqual(numbers(b.output as torch.Tensor));
    } finally {
      reduced.dispose();
      widened.dispose();
    }
  });

  // Channels-last and bf16 prepacking pay only where oneDNN computes bf16 natively; where it is
  // emulated the program stays contiguous, as PyTorch runs it, and its weights are still cast once.
  const nativeBf16 = torch.info().cpu.bf16;
  test(`inspect says the precision and memory format; optimize under a reduced precision freezes only (no rewrites that leave autocast); ${nativeBf16 ? 'bf16 native here: channels-last, convolutions prepacked' : 'bf16 emulated here: contiguous, weights cast once'}`, async () => {
    const model = await torch.load(modelPath('resnet-tiny.pt'), { precision: 'bf16', optimize: true });
    const unfrozen = await torch.load(modelPath('resnet-tiny.pt'), { precision: 'bf16' });
    try {
      const info = await torch.inspect(model, { capture: ['layer2'] });
      expect([info.precision, info.numerics, info.memoryFormat]).toEqual(['bf16', 'frozen', nativeBf16 ? 'channels_last' : 'contiguous']);
      const constants = (graph: string) => graph.split('\n').filter((line) => line.includes('prim::Constant[value=<Tensor>]'));
      const bf16Weights = (graph: string) => constants(graph).filter((line) => / : BFloat16\(\d+, \d+, \d+, \d+,/.test(line)).length;
      if (nativeBf16) {
        // Inference: every convolution prepacked at bf16 once, at build.
        expect(info.opCounts['torchscope::prepacked_conv2d']).toBeGreaterThan(0);
        expect(Object.keys(info.opCounts).filter((op) => /conv|weight_for_layout/.test(op))).toEqual(['torchscope::prepacked_conv2d']);
      } else {
        // Every convolution's weight cast to bf16 once, contiguous only.
        expect(Object.keys(info.opCounts).filter((op) => /conv|weight_for_layout/.test(op))).toEqual(['aten::conv2d']);
        expect(bf16Weights(info.graph)).toBe(info.opCounts['aten::conv2d']);
      }
      // Batch norm's constants stay float32, as autocast leaves them.
      expect(constants(info.graph).some((line) => /running_mean : Float\(/.test(line))).toBe(true);
      // A program that takes gradients has no prepacked op (it has no backward): its convolutions'
      // weights are cast once (channels-last: in both layouts, picked per call by the input's).
      const differentiable = await torch.inspect(model, { capture: ['layer2'], gradient: ['layer2'] });
      expect(differentiable.opCounts['torchscope::prepacked_conv2d']).toBeUndefined();
      const layouts = nativeBf16 ? 2 : 1;
      expect(bf16Weights(differentiable.graph)).toBe(layouts * differentiable.opCounts['aten::conv2d']);
      expect(differentiable.opCounts['torchscope::weight_for_layout']).toBe(nativeBf16 ? differentiable.opCounts['aten::conv2d'] : undefined);
      const layers = ['layer1', 'layer3.0.conv1', 'fc'];
      const result = await torch.run(model, [toTorch(image)], { capture: layers });
      const expected = refCase(refs, 'traced ResNet (tiny)/autocast');
      expectValueClose(result.output, expected.output, relativeTolerance(SAME_PRECISION.bf16), 'output');
      expect((result.activations.layer1 as torch.Tensor).dtype).toBe('bfloat16');
      // Frozen means the exact program's values: the prepacked convolutions are the same kernel
      // on the same operands as autocast's.
      const same = await torch.run(unfrozen, [toTorch(image)], { capture: layers });
      expectEqual(asTensor(result.output), asTensor(same.output), 'output');
      for (const layer of layers) expectEqual(asTensor(result.activations[layer]), asTensor(same.activations[layer]), layer);
    } finally {
      model.dispose();
      unfrozen.dispose();
    }
    const exact = await torch.load(modelPath('resnet-tiny.pt'));
    try {
      const info = await torch.inspect(exact, { capture: ['layer2'] });
      expect([info.precision, info.memoryFormat]).toEqual(['fp32', 'contiguous']);
    } finally {
      exact.dispose();
    }
  });

  test('bad precision options are INVALID_ARGUMENT', async () => {
    await expectTorchscopeError(
      () => torch.load(modelPath('resnet-tiny.pt'), { precision: 'int8' as never }),
      'INVALID_ARGUMENT',
      /precision must be 'fp32', 'bf16', 'fp16'/,
    );
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { upcast: 1 as never }), 'INVALID_ARGUMENT', /upcast/);
  });
});

// Per call: { precision, upcast } on run, activations, inspect, gradients, attribute, maximize,
// logitLens and patchingSweep, over the model's load options, each precision its own program.
describe("a call's own precision", () => {
  const resnet = CASES[0];
  let fp32: torch.Model;
  let bf16: torch.Model;
  beforeAll(async () => {
    fp32 = await torch.load(modelPath(resnet.file));
    bf16 = await torch.load(modelPath(resnet.file), { precision: 'bf16' });
  });
  afterAll(() => {
    fp32.dispose();
    bf16.dispose();
  });

  test(`run, activations and inspect: autocast for that call only, float32 again after; a bf16 model computes float32 when asked; ${torch.info().cpu.bf16 ? 'bf16 native here: channels-last' : 'bf16 emulated here: contiguous'}`, async () => {
    const autocast = refCase(refs, `${resnet.name}/autocast`);
    const plain = refCase(refs, `${resnet.name}/fp32`);
    const reduced = await torch.run(fp32, [toTorch(image)], { capture: resnet.capture, precision: 'bf16' });
    expect((reduced.output as torch.Tensor).dtype).toBe('bfloat16');
    expectValueClose(reduced.output, autocast.output, relativeTolerance(SAME_PRECISION.bf16), 'output');
    for (const layer of resnet.capture)
      expectValueClose(reduced.activations[layer], autocast.captures[layer][0], relativeTolerance(SAME_PRECISION.bf16), layer);
    const widened = (await torch.activations(fp32, { layers: 'layer1', precision: 'bf16', upcast: true }, toTorch(image))) as torch.Tensor;
    expect(widened.dtype).toBe('float32');
    expect(numbers(widened)).toEqual(numbers(reduced.activations.layer1 as torch.Tensor));
    // The model's own calls are untouched: float32, PyTorch's values to 1e-5.
    const after = await torch.run(fp32, [toTorch(image)], { capture: resnet.capture });
    expectValueClose(after.output, plain.output, 1e-5, 'output after');
    for (const layer of resnet.capture) expectValueClose(after.activations[layer], plain.captures[layer][0], 1e-5, `${layer} after`);
    const info = await torch.inspect(fp32, { capture: ['layer2'], precision: 'bf16' });
    expect([info.precision, info.memoryFormat]).toEqual(['bf16', torch.info().cpu.bf16 ? 'channels_last' : 'contiguous']);
    expect((await torch.inspect(fp32, { capture: ['layer2'] })).precision).toBe('fp32');
    // And the other way: a bf16 model asked for float32 computes PyTorch's float32 values.
    const full = await torch.run(bf16, [toTorch(image)], { capture: resnet.capture, precision: 'fp32' });
    expectValueClose(full.output, plain.output, 1e-5, 'fp32 call of a bf16 model');
    [reduced, after, full].forEach((r) => r.dispose());
    widened.dispose();
  });

  test('gradients and attribute: the forward under autocast for that call, as PyTorch', async () => {
    const expected = attributionResult(gradientRefs, GRADIENTS.id);
    const input = expected.inputs![0];
    const result = await torch.gradients(fp32, toTorch(image), { target: [3, 7], wrt: ['input', 'layer2'], precision: 'bf16' });
    expectValueClose(result.gradients.input as torch.Tensor, input, relativeTo(input, SAME_PRECISION.bf16), 'd/d input');
    expect((result.gradients.layer2 as torch.Tensor).dtype).toBe('bfloat16');
    const saliency = await torch.attribute(fp32, toTorch(image), { method: 'saliency', target: [3, 7], abs: false, precision: 'bf16' });
    expectValueClose(saliency.attributions, input, relativeTo(input, SAME_PRECISION.bf16), 'saliency');
    const plainSaliency = await torch.attribute(fp32, toTorch(image), { method: 'saliency', target: [3, 7], abs: false });
    expect(() => expectValueClose(plainSaliency.attributions, input, 1e-7, 'float32 saliency')).toThrow();
    // A layer method's attributions come in the layer's type, or float32 with upcast.
    const cam: torch.AttributeOptions = { method: 'layerGradCam', layer: 'layer2', target: [3, 7], precision: 'bf16' };
    const reduced = await torch.attribute(fp32, toTorch(image), cam);
    const widened = await torch.attribute(fp32, toTorch(image), { ...cam, upcast: true });
    expect([reduced.attributions.dtype, widened.attributions.dtype]).toEqual(['bfloat16', 'float32']);
    expect(numbers(widened.attributions)).toEqual(numbers(reduced.attributions));
    [saliency, plainSaliency, reduced, widened].forEach((r) => r.dispose());
  });

  test('maximize, logitLens and patchingSweep: as on a model loaded at that precision', async () => {
    const options: torch.MaximizeOptions = { channel: 3, size: 32, steps: 6, transforms: [], seed: 1 };
    const perCall = await torch.maximize(fp32, 'layer2.0.conv1', { ...options, precision: 'bf16' });
    const loaded = await torch.maximize(bf16, 'layer2.0.conv1', options);
    const full = await torch.maximize(fp32, 'layer2.0.conv1', options);
    expect(perCall.objective).toEqual(loaded.objective);
    expect(perCall.objective).not.toEqual(full.objective);
    const gpt = await torch.load(modelPath('gpt2-tiny.pt'));
    const gptBf16 = await torch.load(modelPath('gpt2-tiny.pt'), { precision: 'bf16' });
    try {
      const lens = { layers: ['transformer.h.1', 'transformer.h.3'], head: ['transformer.ln_f', 'lm_head'] };
      const a = await torch.logitLens(gpt, toTorch(gptIds), { ...lens, precision: 'bf16' });
      const b = await torch.logitLens(gptBf16, toTorch(gptIds), lens);
      expect(a.logits.dtype).toBe('bfloat16');
      expect(numbers(a.logits)).toEqual(numbers(b.logits));
      const corrupted: HostTensor = { data: randint(2 * 8, 50257, 9), shape: [2, 8], dtype: 'int64' };
      const sweep = {
        clean: toTorch(gptIds),
        corrupted: toTorch(corrupted),
        layers: ['transformer.h.0', 'transformer.h.2'],
        metric: { logit: 262, position: -1 },
      };
      const c = await torch.patchingSweep(gpt, { ...sweep, precision: 'bf16' });
      const d = await torch.patchingSweep(gptBf16, sweep);
      const e = await torch.patchingSweep(gpt, sweep);
      expect(numbers(c.results)).toEqual(numbers(d.results));
      expect(numbers(c.results)).not.toEqual(numbers(e.results));
      [a, b, c, d, e].forEach((r) => r.dispose());
    } finally {
      gpt.dispose();
      gptBf16.dispose();
    }
  });

  test('a bad per-call precision or upcast is INVALID_ARGUMENT, natively too', async () => {
    await expectTorchscopeError(() => torch.run(fp32, [toTorch(image)], { precision: 'int8' as never }), 'INVALID_ARGUMENT', /precision must be/);
    await expectTorchscopeError(
      () => torch.gradients(fp32, toTorch(image), { target: 1, wrt: 'input', upcast: 'yes' as never }),
      'INVALID_ARGUMENT',
      /upcast must be a boolean/,
    );
    // The native request is read on the JS thread: a bad one throws there, before any work.
    expect(() => fp32.native().run([toTorch(image).handle], { output: true, precision: 'fp64' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/precision must be 'fp32', 'bf16' or 'fp16', got 'fp64'/) }),
    );
  });
});

describe('gradients and maximization in bf16', () => {
  test('torch.gradients: the forward under autocast, the backward after it, as PyTorch advises', async () => {
    const model = await torch.load(modelPath('resnet-tiny.pt'), { precision: 'bf16' });
    try {
      const expected = attributionResult(gradientRefs, GRADIENTS.id);
      const result = await torch.gradients(model, toTorch(image), { target: [3, 7], wrt: ['input', 'layer2'] });
      const input = expected.inputs![0];
      const layer2 = expected.layers!.layer2[0];
      expectValueClose(result.gradients.input as torch.Tensor, input, relativeTo(input, SAME_PRECISION.bf16), 'd/d input');
      expectValueClose(result.gradients.layer2 as torch.Tensor, layer2, relativeTo(layer2, SAME_PRECISION.bf16), 'd/d layer2');
      expected.objective!.forEach((value, i) => expect(Math.abs(result.objective[i] - value)).toBeLessThanOrEqual(2 ** -8 * Math.max(1, Math.abs(value))));
    } finally {
      model.dispose();
    }
  });

  test('with optimize: the frozen program, weights cast once, differentiates as the exact one, bit for bit; float32 optimize differentiates the exact program', async () => {
    const bits = (t: torch.Tensor) => Array.from(t.data() as Float32Array);
    for (const precision of ['bf16', 'fp32'] as const) {
      const optimized = await torch.load(modelPath('resnet-tiny.pt'), { precision, optimize: true, upcast: true });
      const exact = await torch.load(modelPath('resnet-tiny.pt'), { precision, upcast: true });
      try {
        const [a, b] = await Promise.all([optimized, exact].map((m) => torch.gradients(m, toTorch(image), { target: [3, 7], wrt: ['input', 'layer2'] })));
        expect(bits(a.gradients.input as torch.Tensor)).toEqual(bits(b.gradients.input as torch.Tensor));
        expect(bits(a.gradients.layer2 as torch.Tensor)).toEqual(bits(b.gradients.layer2 as torch.Tensor));
        // The standard random transforms: inputs of changing sizes every step.
        const options = { channel: 3, size: 40, steps: 6, seed: 4 };
        const [x, y] = await Promise.all([optimized, exact].map((m) => torch.maximize(m, 'layer2.0.conv1', options)));
        expect(bits(x.image)).toEqual(bits(y.image));
        expect(x.objective).toEqual(y.objective);
      } finally {
        optimized.dispose();
        exact.dispose();
      }
    }
  });

  test('torch.maximize in bf16: the image stays float32 and the objective rises', async () => {
    const model = await torch.load(modelPath('resnet-tiny.pt'), { precision: 'bf16' });
    try {
      const result = await torch.maximize(model, 'layer2.0.conv1', { channel: 3, size: 32, steps: 12, transforms: [], seed: 1 });
      expect(result.image.dtype).toBe('float32');
      expect(result.objective.every(Number.isFinite)).toBe(true);
      expect(result.objective[result.objective.length - 1]).toBeGreaterThan(result.objective[0] + 0.1 * Math.abs(result.objective[0]));
      expect(maxAbs(result.image.data() as Float32Array)).toBeLessThanOrEqual(1);
    } finally {
      model.dispose();
    }
  });
});
