// torch.run with patches against PyTorch forward hooks that return a modified output
// (test/python/reference.py implements the documented regions independently of native/program/patch.cpp).
// Tolerance: 1e-5 absolute (float32).
import * as torch from '../lib';
import {
  asArray,
  asTensor,
  expectClose,
  expectEqual,
  hostRandn,
  HostTensor,
  maxAbsDiff,
  modelPath,
  refCase,
  Reference,
  RefPatch,
  RefResult,
  refTensor,
  removeDir,
  scratchDir,
  toHost,
  toTorch,
} from './helpers';

const TOL = 1e-5;
const FILE = 'resnet18.pt';
const SCRIPTED = 'resnet18-scripted.pt';
const xA = hostRandn([1, 3, 224, 224], 11);
const xB = hostRandn([1, 3, 224, 224], 12);
const xAB = hostRandn([2, 3, 224, 224], 13);

interface PatchCase {
  name: string;
  file: string;
  input: HostTensor;
  patch: Record<string, RefPatch>;
  capture: string[];
  calls?: torch.Calls;
}

// Filled in beforeAll: the patch values that come from another run.
let fromB: { layer3: HostTensor; layer2_1: HostTensor } | undefined;

function cases(): PatchCase[] {
  if (!fromB) throw new Error('source activations were not captured');
  const perChannel = (c: number, seed: number): HostTensor => hostRandn([1, c, 1, 1], seed);
  return [
    { name: 'zero, whole layer3', file: FILE, input: xA, patch: { layer3: { mode: 'zero' } }, capture: ['layer3', 'layer4'] },
    {
      name: 'zero, layer3 channels [3, 17, 42]',
      file: FILE,
      input: xA,
      patch: { layer3: { mode: 'zero', channels: [3, 17, 42] } },
      capture: ['layer3', 'layer4.0.conv1', 'layer4'],
    },
    { name: 'scale 0.5, whole layer2.1', file: FILE, input: xA, patch: { 'layer2.1': { mode: 'scale', scale: 0.5 } }, capture: ['layer2.1', 'layer3.0.conv1'] },
    {
      name: 'scale 3, layer2.1 channels [0, 5] at positions [[0,0],[27,27],[13,4]]',
      file: FILE,
      input: xA,
      patch: {
        'layer2.1': {
          mode: 'scale',
          scale: 3,
          channels: [0, 5],
          positions: [
            [0, 0],
            [27, 27],
            [13, 4],
          ],
        },
      },
      capture: ['layer2.1', 'layer3'],
    },
    {
      name: 'add [1,256,1,1] broadcast, whole layer3',
      file: FILE,
      input: xA,
      patch: { layer3: { mode: 'add', value: perChannel(256, 21) } },
      capture: ['layer3', 'layer4'],
    },
    {
      name: 'add [1,64,1,1] on layer1.0.bn2 channels [1, 2] (its output is then add_ed and relu_ed in place)',
      file: FILE,
      input: xA,
      patch: { 'layer1.0.bn2': { mode: 'add', value: perChannel(64, 22), channels: [1, 2] } },
      capture: ['layer1.0.bn2', 'layer1.0', 'layer2'],
    },
    {
      name: 'set layer3 from input B at positions [[0,0],[5,7],[13,13]] (activation patching)',
      file: FILE,
      input: xA,
      patch: {
        layer3: {
          mode: 'set',
          value: fromB.layer3,
          positions: [
            [0, 0],
            [5, 7],
            [13, 13],
          ],
        },
      },
      capture: ['layer3', 'layer4'],
    },
    {
      name: 'set layer2.1 from input B, channels [7] at position [3, 9]',
      file: FILE,
      input: xA,
      patch: { 'layer2.1': { mode: 'set', value: fromB.layer2_1, channels: [7], positions: [[3, 9]] } },
      capture: ['layer2.1', 'layer3.1.bn2'],
    },
    {
      name: 'set a [1,C,H,W] value on a batch of 2 (broadcast over the batch), whole layer3',
      file: FILE,
      input: xAB,
      patch: { layer3: { mode: 'set', value: fromB.layer3 } },
      capture: ['layer3', 'layer4'],
    },
    {
      name: 'two patches in one run: zero layer2.0 channel 1, scale layer4 by -1',
      file: FILE,
      input: xAB,
      patch: { 'layer2.0': { mode: 'zero', channels: [1] }, layer4: { mode: 'scale', scale: -1 } },
      capture: ['layer2.0', 'layer3', 'layer4', 'avgpool'],
    },
    {
      name: 'scale a module called twice (layer1.0.relu): every call is patched',
      file: FILE,
      input: xA,
      patch: { 'layer1.0.relu': { mode: 'scale', scale: 0.25 } },
      capture: ['layer1.0.relu', 'layer1.0.conv2', 'layer1.1'],
      calls: 'all',
    },
    {
      name: 'nested patches: zero channel 3 of layer2.0.conv1 inside layer2, then add to all of layer2',
      file: FILE,
      input: xA,
      patch: { 'layer2.0.conv1': { mode: 'zero', channels: [3] }, layer2: { mode: 'add', value: perChannel(128, 24) } },
      capture: ['layer2.0.conv1', 'layer2.0.bn1', 'layer2', 'layer3'],
    },
    { name: 'zero fc channels [0, 3] ([N, C] output)', file: FILE, input: xAB, patch: { fc: { mode: 'zero', channels: [0, 3] } }, capture: ['fc'] },
    {
      name: 'scripted: zero layer3 channels [3, 17, 42]',
      file: SCRIPTED,
      input: xA,
      patch: { layer3: { mode: 'zero', channels: [3, 17, 42] } },
      capture: ['layer3', 'layer4'],
    },
    {
      name: 'scripted: set layer3 from input B at positions [[1,2],[12,0]], add on layer4.1.conv1',
      file: SCRIPTED,
      input: xA,
      patch: {
        layer3: {
          mode: 'set',
          value: fromB.layer3,
          positions: [
            [1, 2],
            [12, 0],
          ],
        },
        'layer4.1.conv1': { mode: 'add', value: perChannel(512, 23) },
      },
      capture: ['layer3', 'layer4.1.conv1', 'layer4'],
    },
  ];
}

function toSpec(p: RefPatch): torch.PatchSpec {
  const spec: torch.PatchSpec = {};
  if (p.mode === 'zero') spec.zero = true;
  if (p.mode === 'scale') spec.scale = p.scale;
  if (p.mode === 'set') spec.set = toTorch(p.value!);
  if (p.mode === 'add') spec.add = toTorch(p.value!);
  if (p.channels) spec.channels = p.channels;
  if (p.positions) spec.positions = p.positions as [number, number][];
  return spec;
}

// ResNet-18 takes most of a second per forward here: unpatched outputs are computed once.
const plainOutputs = new Map<string, Promise<torch.Value>>();
function plainForward(file: string, input: HostTensor): Promise<torch.Value> {
  const key = `${file}/${input === xA ? 'A' : input === xB ? 'B' : input === xAB ? 'AB' : 'other'}`;
  if (!plainOutputs.has(key)) plainOutputs.set(key, models[file].forward(toTorch(input)));
  return plainOutputs.get(key)!;
}

let dir: string;
let ref: Map<string, RefResult>;
const models: Record<string, torch.Model> = {};
let caseList: PatchCase[] = [];

beforeAll(async () => {
  dir = scratchDir('patch');
  const [traced, scripted] = await Promise.all([torch.load(modelPath(FILE)), torch.load(modelPath(SCRIPTED))]);
  models[FILE] = traced;
  models[SCRIPTED] = scripted;
  const source = await torch.activations(traced, ['layer3', 'layer2.1'], toTorch(xB));
  fromB = { layer3: toHost(asTensor(source.layer3)), layer2_1: toHost(asTensor(source['layer2.1'])) };
  caseList = cases();
  // NAMES (needed before beforeAll, for test.each) must list exactly the cases.
  expect(caseList.map((c) => c.name)).toEqual(NAMES);
  const reference = new Reference(dir);
  caseList.forEach((c, i) => reference.add({ id: `case${i}`, kind: 'eager', model: modelPath(c.file), inputs: [c.input], patch: c.patch, capture: c.capture }));
  for (const [name, x] of Object.entries({ xA, xB, xAB })) {
    reference.add({ id: `plain/${name}`, kind: 'eager', model: modelPath(FILE), inputs: [x], capture: ['layer3', 'layer2.1'] });
  }
  ref = await reference.run();
});

afterAll(() => {
  for (const m of Object.values(models)) m.dispose();
  removeDir(dir);
});

test('the activations patched in come from torchscope and equal the eager capture of input B', () => {
  const plain = refCase(ref, 'plain/xB');
  expectClose(fromB!.layer3, refTensor(plain.captures.layer3[0]), TOL, 'layer3(B)');
  expectClose(fromB!.layer2_1, refTensor(plain.captures['layer2.1'][0]), TOL, 'layer2.1(B)');
});

// Names are fixed here so jest can list them before beforeAll runs; bodies look up the case.
const NAMES = [
  'zero, whole layer3',
  'zero, layer3 channels [3, 17, 42]',
  'scale 0.5, whole layer2.1',
  'scale 3, layer2.1 channels [0, 5] at positions [[0,0],[27,27],[13,4]]',
  'add [1,256,1,1] broadcast, whole layer3',
  'add [1,64,1,1] on layer1.0.bn2 channels [1, 2] (its output is then add_ed and relu_ed in place)',
  'set layer3 from input B at positions [[0,0],[5,7],[13,13]] (activation patching)',
  'set layer2.1 from input B, channels [7] at position [3, 9]',
  'set a [1,C,H,W] value on a batch of 2 (broadcast over the batch), whole layer3',
  'two patches in one run: zero layer2.0 channel 1, scale layer4 by -1',
  'scale a module called twice (layer1.0.relu): every call is patched',
  'nested patches: zero channel 3 of layer2.0.conv1 inside layer2, then add to all of layer2',
  'zero fc channels [0, 3] ([N, C] output)',
  'scripted: zero layer3 channels [3, 17, 42]',
  'scripted: set layer3 from input B at positions [[1,2],[12,0]], add on layer4.1.conv1',
];

test.each(NAMES)('%s: output and captures equal the hook-patched eager model', async (name) => {
  const index = caseList.findIndex((c) => c.name === name);
  expect(index).toBeGreaterThanOrEqual(0);
  const c = caseList[index];
  const expected = refCase(ref, `case${index}`);
  const patch = Object.fromEntries(Object.entries(c.patch).map(([layer, p]) => [layer, toSpec(p)]));
  const result = await torch.run(models[c.file], toTorch(c.input), { patch, capture: c.capture, calls: c.calls });
  expectClose(asTensor(result.output, 'output'), refTensor(expected.output), TOL, `${name}: output`);
  expect(Object.keys(result.activations).sort()).toEqual([...c.capture].sort());
  for (const layer of c.capture) {
    const calls = expected.captures[layer];
    if (c.calls === 'all') {
      const got = asArray(result.activations[layer], layer);
      expect(got).toHaveLength(calls.length);
      got.forEach((v, i) => expectClose(asTensor(v), refTensor(calls[i]), TOL, `${name}: ${layer} call ${i}`));
    } else {
      expectClose(asTensor(result.activations[layer], layer), refTensor(calls[calls.length - 1]), TOL, `${name}: ${layer}`);
    }
  }
  // The patch changed something: the patched forward differs from the plain one.
  const plain = asTensor(await plainForward(c.file, c.input));
  expect(maxAbsDiff(plain.data(), asTensor(result.output).data()).max).toBeGreaterThan(1e-4);
});

describe('patched values as captured', () => {
  test('a zeroed channel region reads as zeros exactly there, and unchanged elsewhere', async () => {
    const x = toTorch(xA);
    const plain = asTensor(await torch.activations(models[FILE], 'layer3', x));
    const { activations } = await torch.run(models[FILE], x, { patch: { layer3: { zero: true, channels: [3, 17] } }, capture: ['layer3'] });
    const got = asTensor(activations.layer3).data() as Float32Array;
    const before = plain.data() as Float32Array;
    const [, C, H, W] = plain.shape;
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < H * W; i++) {
        const k = c * H * W + i;
        if (c === 3 || c === 17) expect(got[k]).toBe(0);
        else if (got[k] !== before[k]) throw new Error(`channel ${c} element ${i} changed: ${before[k]} -> ${got[k]}`);
      }
    }
  });

  test('setting all of layer3 to input B’s layer3 gives B’s output (patching is the whole story downstream)', async () => {
    const { output } = await torch.run(models[FILE], toTorch(xA), { patch: { layer3: { set: toTorch(fromB!.layer3) } } });
    const outB = asTensor(await plainForward(FILE, xB));
    expectClose(asTensor(output), outB, TOL, 'patched A vs B');
  });

  test('patches are per call: a plain forward after a patched run is unpatched, and values are run-time inputs', async () => {
    const x = toTorch(xA);
    const plain = asTensor(await plainForward(FILE, xA));
    const half = await torch.run(models[FILE], x, { patch: { layer4: { scale: 0.5 } }, capture: ['layer4'] });
    const twice = await torch.run(models[FILE], x, { patch: { layer4: { scale: 2 } }, capture: ['layer4'] });
    const unpatched = await torch.activations(models[FILE], 'layer4', x);
    const l4 = asTensor(unpatched).data() as Float32Array;
    const h = asTensor(half.activations.layer4).data() as Float32Array;
    const t = asTensor(twice.activations.layer4).data() as Float32Array;
    for (let i = 0; i < l4.length; i += 97) {
      expect(h[i]).toBeCloseTo(l4[i] * 0.5, 6);
      expect(t[i]).toBeCloseTo(l4[i] * 2, 6);
    }
    expectEqual(asTensor(await models[FILE].forward(x)), plain, 'forward after patched runs');
  });

  test('run without capture returns the output and no activations', async () => {
    const result = await torch.run(models[FILE], [toTorch(xA)], { patch: { layer3: { zero: true } } });
    expect(result.activations).toEqual({});
    expectClose(asTensor(result.output), refTensor(refCase(ref, 'case0').output), TOL, 'output');
  });
});
