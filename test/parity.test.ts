// Captured activations and forward outputs against PyTorch: eager modules with
// register_forward_hook (storing output.clone()) built from scripts/torchscope_models.py with
// the TorchScript file's weights, and torch.jit.load(file)(x). Tolerance: 1e-5 absolute (float32).
import * as torch from '../lib';
import {
  asArray,
  asTensor,
  expectClose,
  expectEqual,
  expectTorchscopeError,
  hostRandn,
  maxAbs,
  minOf,
  HostTensor,
  modelPath,
  refCase,
  Reference,
  RefPatch,
  RefResult,
  RefValue,
  refTensor,
  removeDir,
  rng,
  numel,
  scratchDir,
  toTorch,
} from './helpers';

const TOL = 1e-5;
const FILES = ['resnet18.pt', 'resnet18-scripted.pt'] as const;
const INPUTS: Record<string, HostTensor> = {
  b1: hostRandn([1, 3, 224, 224], 1),
  b2: hostRandn([2, 3, 224, 224], 2),
};

// What each layer exercises:
//   layer4, layer2            Sequential outputs (whole stages)
//   layer4.1.conv2            a leaf deep inside
//   layer2.0.downsample.0     a module inside the optional downsample branch
//   relu                      the stem ReLU, called once (inplace=True: its output is bn1's tensor)
//   layer1.0.relu             called twice per BasicBlock (traced: forward and forward1)
//   conv1                     feeds bn1, which is not in place: conv1's output is never mutated
const LAYERS = ['layer4', 'layer2', 'layer4.1.conv2', 'layer2.0.downsample.0', 'relu', 'layer1.0.relu', 'conv1'];
// Outputs that the model later modifies in place (BasicBlock: relu_(bn1(..)), bn2(..).add_(identity)
// then relu_; the stem: relu_(bn1(..))). A capture must equal the hook's output.clone().
const IN_PLACE = ['bn1', 'layer1.0.bn1', 'layer1.0.bn2', 'layer1.1.bn2', 'layer2.0.bn2', 'layer4.1.bn2'];
const ALL_LAYERS = [...LAYERS, ...IN_PLACE];

// Patches around folded conv-BN pairs (optimize: true must not fold a patched conv into its BN).
const OPT_PATCH: Record<string, RefPatch> = {
  'layer1.0.conv1': { mode: 'zero', channels: [0, 1, 2, 3, 4, 5, 6, 7] },
  'layer2.0.bn1': { mode: 'scale', scale: 3 },
};
const OPT_PATCH_CAPTURE = ['layer1.0.conv1', 'layer2.0.bn1', 'layer3'];
// One program, inputs of changing batch and spatial size (programs specialize per shape).
const SHAPES = [
  [1, 3, 32, 32],
  [3, 3, 48, 40],
  [1, 3, 32, 32],
  [2, 3, 64, 64],
  [3, 3, 48, 40],
];

let dir: string;
let ref: Map<string, RefResult>;
const models: Partial<Record<(typeof FILES)[number], torch.Model>> = {};

function model(file: (typeof FILES)[number]): torch.Model {
  const m = models[file];
  if (!m) throw new Error(`${file} did not load`);
  return m;
}

beforeAll(async () => {
  dir = scratchDir('parity');
  const reference = new Reference(dir);
  for (const file of FILES) {
    for (const [batch, x] of Object.entries(INPUTS)) {
      reference.add({ id: `${file}/${batch}/eager`, kind: 'eager', model: modelPath(file), inputs: [x], capture: ALL_LAYERS });
      reference.add({ id: `${file}/${batch}/jit`, kind: 'jit', model: modelPath(file), inputs: [x] });
    }
  }
  for (const file of FILES) {
    reference.add({ id: `${file}/b2/optpatch`, kind: 'eager', model: modelPath(file), inputs: [INPUTS.b2], patch: OPT_PATCH, capture: OPT_PATCH_CAPTURE });
  }
  SHAPES.forEach((shape, i) =>
    reference.add({
      id: `tiny/shape${i}`,
      kind: 'eager',
      model: modelPath('resnet-tiny.pt'),
      inputs: [hostRandn(shape, 50 + i)],
      capture: ['layer2', 'layer1.0.relu'],
    }),
  );
  const [results, ...loaded] = await Promise.all([reference.run(), ...FILES.map((f) => torch.load(modelPath(f)))]);
  ref = results;
  FILES.forEach((f, i) => (models[f] = loaded[i]));
});

afterAll(() => {
  for (const m of Object.values(models)) m?.dispose();
  removeDir(dir);
});

// ResNet-18 takes most of a second per forward on a 2-core CPU: each distinct call runs once
// and the tests that need it share the promise (memoized, so test order does not matter).
const memo = new Map<string, Promise<unknown>>();
function once<T>(key: string, compute: () => Promise<T>): Promise<T> {
  if (!memo.has(key)) memo.set(key, compute());
  return memo.get(key) as Promise<T>;
}
function capture(file: (typeof FILES)[number], batch: string, layer: string, calls: torch.Calls = 'last'): Promise<torch.Value> {
  return once(`${file}/${batch}/${layer}/${calls}`, () => torch.activations(model(file), { layers: layer, calls }, toTorch(INPUTS[batch])));
}

function eagerCalls(file: string, batch: string, layer: string) {
  return refCase(ref, `${file}/${batch}/eager`).captures[layer];
}

describe.each(FILES)('%s', (file) => {
  describe.each(Object.keys(INPUTS))('batch %s', (batch) => {
    test.each(LAYERS)('activations(%s) equal the eager forward hook', async (layer) => {
      const got = asTensor(await capture(file, batch, layer), layer);
      const calls = eagerCalls(file, batch, layer);
      expect(calls.length).toBeGreaterThan(0);
      expectClose(got, refTensor(calls[calls.length - 1]), TOL, `${file} ${layer} ${batch}`);
    });

    test('forward equals torch.jit.load(file)(x) and the eager model', async () => {
      const out = asTensor(await model(file).forward(toTorch(INPUTS[batch])), 'output');
      expect(out.shape).toEqual([INPUTS[batch].shape[0], 1000]);
      expectClose(out, refTensor(refCase(ref, `${file}/${batch}/jit`).output), TOL, `${file} forward vs jit`);
      expectClose(out, refTensor(refCase(ref, `${file}/${batch}/eager`).output), TOL, `${file} forward vs eager`);
    });

    test("layer1.0.relu runs twice per forward: 'last' is the second call, calls:'all' gives both in order", async () => {
      const calls = eagerCalls(file, batch, 'layer1.0.relu');
      expect(calls).toHaveLength(2);
      const last = asTensor(await capture(file, batch, 'layer1.0.relu', 'last'));
      expectClose(last, refTensor(calls[1]), TOL, 'last call');
      const all = asArray(await capture(file, batch, 'layer1.0.relu', 'all'));
      expect(all).toHaveLength(2);
      expectClose(asTensor(all[0]), refTensor(calls[0]), TOL, 'call 0 (after bn1)');
      expectClose(asTensor(all[1]), refTensor(calls[1]), TOL, 'call 1 (block output)');
      // The two calls are different tensors: the first is conv2's input, the second the block output.
      expect(all[0]).not.toBe(all[1]);
    });

    test("the stem relu runs once: calls:'all' gives a one-element array", async () => {
      const all = asArray(await capture(file, batch, 'relu', 'all'));
      expect(eagerCalls(file, batch, 'relu')).toHaveLength(1);
      expect(all).toHaveLength(1);
      expectClose(asTensor(all[0]), refTensor(eagerCalls(file, batch, 'relu')[0]), TOL, 'relu');
    });

    test('a multi-layer capture in one call equals separate calls, and the eager hooks', async () => {
      const x = toTorch(INPUTS[batch]);
      const together = await torch.activations(model(file), LAYERS, x);
      expect(Object.keys(together).sort()).toEqual([...LAYERS].sort());
      for (const layer of LAYERS) {
        const alone = asTensor(await capture(file, batch, layer));
        // Same ops on the same data: bit-identical, whatever else the program captures.
        expectEqual(asTensor(together[layer], layer), alone, `${layer}: together vs alone`);
        const calls = eagerCalls(file, batch, layer);
        expectClose(asTensor(together[layer]), refTensor(calls[calls.length - 1]), TOL, `${layer} vs eager`);
      }
    });

    test("calls:'all' on a multi-layer capture gives every layer an array", async () => {
      const x = toTorch(INPUTS[batch]);
      const result = await torch.activations(model(file), { layers: ['layer1.0.relu', 'conv1', 'layer2'], calls: 'all' }, x);
      const record = result as Record<string, torch.Value>;
      for (const layer of ['layer1.0.relu', 'conv1', 'layer2']) {
        const got = asArray(record[layer], layer);
        const calls = eagerCalls(file, batch, layer);
        expect(got).toHaveLength(calls.length);
        got.forEach((value, i) => expectClose(asTensor(value), refTensor(calls[i]), TOL, `${layer} call ${i}`));
      }
    });
  });

  describe('in-place safety', () => {
    // The eager hook stores output.clone() when the module returns; the model then runs
    // relu_ / add_ on that very tensor. A capture must be the value at return time.
    test.each(IN_PLACE)('%s equals the eager hook output.clone() although the model mutates it later', async (layer) => {
      const got = asTensor(await capture(file, 'b1', layer), layer);
      const calls = eagerCalls(file, 'b1', layer);
      const expected = refTensor(calls[calls.length - 1]);
      expectClose(got, expected, TOL, `${file} ${layer}`);
      // Proof that no later ReLU touched it: BatchNorm outputs are negative in places.
      expect(minOf(got.data() as Float32Array)).toBeLessThan(0);
    });

    test('capturing with the forward output too: in-place captures still hold the pre-ReLU values', async () => {
      const result = await torch.run(model(file), toTorch(INPUTS.b2), { capture: IN_PLACE });
      expectClose(asTensor(result.output), refTensor(refCase(ref, `${file}/b2/jit`).output), TOL, 'output');
      for (const layer of IN_PLACE) {
        const calls = eagerCalls(file, 'b2', layer);
        expectClose(asTensor(result.activations[layer], layer), refTensor(calls[calls.length - 1]), TOL, layer);
      }
    });
  });
});

// load({ optimize: true }) freezes programs and folds conv-BN; lib/model/model.ts documents captures
// and outputs within 1e-4 *relative* of PyTorch's (folding reassociates the arithmetic), so
// here the bar is 1e-4 x max |expected| instead of 1e-5 absolute.
describe.each(FILES)('%s with optimize: true', (file) => {
  let optimized: torch.Model;
  beforeAll(async () => {
    optimized = await torch.load(modelPath(file), { optimize: true });
  });
  afterAll(() => optimized?.dispose());

  test('captures (a conv feeding a BatchNorm, BatchNorm outputs mutated in place, a stage) and the output', async () => {
    const layers = ['layer2.0.downsample.0', 'layer1.0.bn2', 'bn1', 'layer4', 'layer1.0.relu'];
    const result = await torch.run(optimized, toTorch(INPUTS.b2), { capture: layers });
    const relative = (expected: ReturnType<typeof refTensor>) => 1e-4 * maxAbs(expected.data as Float32Array);
    for (const layer of layers) {
      const calls = eagerCalls(file, 'b2', layer);
      const expected = refTensor(calls[calls.length - 1]);
      expectClose(asTensor(result.activations[layer], layer), expected, relative(expected), `optimized ${layer}`);
    }
    const out = refTensor(refCase(ref, `${file}/b2/jit`).output);
    expectClose(asTensor(result.output), out, relative(out), 'optimized output');
    // A captured conv is never folded away: the capture is the conv's output, not conv+BN.
    expect(minOf(asTensor(result.activations['layer1.0.bn2']).data() as Float32Array)).toBeLessThan(0);
  });

  test('patches on a conv that feeds a BatchNorm and on a BatchNorm equal the hook-patched eager model', async () => {
    const result = await torch.run(optimized, toTorch(INPUTS.b2), {
      patch: { 'layer1.0.conv1': { zero: true, channels: [0, 1, 2, 3, 4, 5, 6, 7] }, 'layer2.0.bn1': { scale: 3 } },
      capture: OPT_PATCH_CAPTURE,
    });
    const expected = refCase(ref, `${file}/b2/optpatch`);
    for (const layer of OPT_PATCH_CAPTURE) {
      const want = refTensor(expected.captures[layer][0]);
      expectClose(asTensor(result.activations[layer], layer), want, 1e-4 * maxAbs(want.data as Float32Array), `optimized patched ${layer}`);
    }
    const out = refTensor(expected.output);
    expectClose(asTensor(result.output), out, 1e-4 * maxAbs(out.data as Float32Array), 'optimized patched output');
  });
});

test('traced and scripted files give the same activations (same weights)', async () => {
  for (const layer of ['layer4', 'layer1.0.bn2']) {
    const traced = asTensor(await capture('resnet18.pt', 'b1', layer));
    const scripted = asTensor(await capture('resnet18-scripted.pt', 'b1', layer));
    expectClose(traced, scripted, TOL, layer);
  }
});

// One program over SHAPES: layer2, both calls of layer1.0.relu and the output against eager,
// within `tolerance` of each expected tensor.
async function expectEagerAtEveryShape(tiny: torch.Model, tolerance: (expected: ReturnType<typeof refTensor>) => number) {
  for (const [i, shape] of SHAPES.entries()) {
    const x = toTorch(hostRandn(shape, 50 + i));
    const expected = refCase(ref, `tiny/shape${i}`);
    const close = (actual: torch.Value, want: ReturnType<typeof refTensor>, label: string) =>
      expectClose(asTensor(actual), want, tolerance(want), `${label} at [${shape}]`);
    const got = (await torch.activations(tiny, { layers: ['layer2', 'layer1.0.relu'], calls: 'all' }, x)) as Record<string, torch.Value>;
    close((got.layer2 as torch.Value[])[0], refTensor(expected.captures.layer2[0]), 'layer2');
    const relu = got['layer1.0.relu'] as torch.Value[];
    expect(relu).toHaveLength(2);
    relu.forEach((v, k) => close(v, refTensor(expected.captures['layer1.0.relu'][k]), `layer1.0.relu call ${k}`));
    close(await tiny.forward(x), refTensor(expected.output), 'output');
  }
}

test('resnet-tiny: the same programs on inputs of changing batch and spatial size equal eager at every shape', async () => {
  const tiny = await torch.load(modelPath('resnet-tiny.pt'));
  try {
    await expectEagerAtEveryShape(tiny, () => TOL);
  } finally {
    tiny.dispose();
  }
});

// Float32 optimize on the CPU prepacks each convolution's weight once, for one planned input
// size (native/torchscript/conv_prepack.h), and runs channels-last: every other size must still be right.
test('resnet-tiny with optimize: true: prepacked channels-last convolutions equal eager at every batch and spatial size', async () => {
  const tiny = await torch.load(modelPath('resnet-tiny.pt'), { optimize: true });
  try {
    const info = await torch.inspect(tiny, { capture: ['layer2', 'layer1.0.relu'] });
    expect([info.numerics, info.memoryFormat]).toEqual(['optimized', 'channels_last']);
    expect(info.opCounts['torchscope::prepacked_conv2d']).toBeGreaterThan(0);
    expect(Object.keys(info.opCounts).filter((op) => /conv/.test(op))).toEqual(['torchscope::prepacked_conv2d']);
    await expectEagerAtEveryShape(tiny, (expected) => 1e-4 * maxAbs(expected.data as Float32Array));
  } finally {
    tiny.dispose();
  }
});

// Exact programs max-pool contiguous float tensors with ATen's channels-last kernel
// (native/torchscript/max_pool.h): the same element of every window must come out, bit for bit, whatever the
// window holds: ties (small integers), -0 beside +0, -inf, and NaNs of different payloads.
describe('max pooling in exact programs', () => {
  const SHAPE = [2, 3, 13, 11];
  let poolsDir: string;
  let pools: torch.Model;
  let expected: RefValue;
  const input = (() => {
    const bits = new Uint32Array(numel(SHAPE));
    const values = new Float32Array(bits.buffer);
    const random = rng(7);
    for (let i = 0; i < values.length; i++) {
      const r = random();
      if (r < 0.08)
        bits[i] = 0x7fc00000 + 1 + Math.floor(random() * 1000); // NaN, payload varies
      else if (r < 0.12)
        bits[i] = 0xffc00000 + 3; // a negative NaN
      else if (r < 0.2) values[i] = -0;
      else if (r < 0.25) values[i] = -Infinity;
      else values[i] = Math.floor(random() * 7) - 3;
    }
    return { data: values, shape: SHAPE, dtype: 'float32' } as HostTensor;
  })();

  beforeAll(async () => {
    poolsDir = scratchDir('pools');
    const file = `${poolsDir}/pools.pt`;
    const results = await new Reference(poolsDir)
      .task({ kind: 'script_pools', path: file })
      .add({ id: 'pools', kind: 'jit', model: file, inputs: [input] })
      .run();
    expected = refCase(results, 'pools').output as RefValue;
    pools = await torch.load(file);
  });
  afterAll(() => {
    pools?.dispose();
    removeDir(poolsDir);
  });

  function expectSameBits(actual: torch.Tensor, want: ReturnType<typeof refTensor>, label: string) {
    expect([label, actual.shape]).toEqual([label, want.shape]);
    const got = new Uint32Array(actual.data().slice().buffer);
    const bits = new Uint32Array(want.data.buffer, want.data.byteOffset, want.data.length);
    const first = got.findIndex((word, i) => word !== bits[i]);
    expect({ label, first, got: got[first], want: bits[first] }).toEqual({ label, first: -1, got: undefined, want: undefined });
  }

  test('every pool (in a Sequential after a conv, ceil_mode, dilated, rectangular, unbatched) gives PyTorch bits', async () => {
    const info = await torch.inspect(pools, {});
    expect([info.opCounts['torchscope::max_pool2d'], info.opCounts['aten::max_pool2d'] ?? 0]).toEqual([5, 0]);
    const outputs = asArray(await pools.forward(toTorch(input)));
    const want = expected.type === 'tuple' ? expected.items : [];
    expect(outputs).toHaveLength(5);
    ['stem', 'ceil', 'dilated', 'rectangular', 'unbatched'].forEach((label, i) => expectSameBits(asTensor(outputs[i]), refTensor(want[i]), label));
  });

  test("an input too small for a pool fails with ATen's message, and the next call is right", async () => {
    // Contiguous but not channels-last, so it takes the channels-last copy; the rectangular pool needs width 2.
    await expectTorchscopeError(() => pools.forward(torch.tensor(new Float32Array(24), [2, 3, 4, 1])), 'SHAPE', /Output size is too small/);
    const outputs = asArray(await pools.forward(toTorch(input)));
    expectSameBits(asTensor(outputs[3]), refTensor(expected.type === 'tuple' ? expected.items[3] : undefined), 'rectangular');
  });

  test('a captured pool inside a Sequential is the same bits as its output', async () => {
    const pooled = asTensor(await torch.activations(pools, 'stem.1', toTorch(input)));
    expectSameBits(pooled, refTensor(expected.type === 'tuple' ? expected.items[0] : undefined), 'stem.1');
  });
});
