// Every error code the API can reach: a TorchscopeError with a stable code, a message without
// C++ backtrace or internal tags, a stack pointing at this file (expectTorchscopeError checks
// all of that), and a model that still computes correct results after each failure.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  asTensor,
  expectClose,
  expectEqual,
  expectTorchscopeError,
  hostRandn,
  modelPath,
  randint,
  refCase,
  Reference,
  RefResult,
  refTensor,
  removeDir,
  scratchDir,
  toTorch,
} from './helpers';

const x = hostRandn([1, 3, 32, 32], 7);
let dir: string;
let ref: Map<string, RefResult>;
let model: torch.Model; // resnet-tiny, shared: must survive every error
let bert: torch.Model;
let baseline: { output: torch.Tensor; layer2: torch.Tensor };
const files = { random: '', text: '', stateDict: '', eagerPickle: '', unused: '', unhookable: '', raises: '', typedRaises: '' };

beforeAll(async () => {
  dir = scratchDir('errors');
  files.random = path.join(dir, 'random.pt');
  files.text = path.join(dir, 'notes.txt');
  files.stateDict = path.join(dir, 'state_dict.pt');
  files.eagerPickle = path.join(dir, 'eager_module.pt');
  files.unused = path.join(dir, 'with_unused.pt');
  files.unhookable = path.join(dir, 'unhookable.pt');
  files.raises = path.join(dir, 'raises.pt');
  files.typedRaises = path.join(dir, 'typed-raises.pt');
  const bytes = Buffer.alloc(4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  fs.writeFileSync(files.random, bytes);
  fs.writeFileSync(files.text, 'This is not a model.\n');
  const reference = new Reference(dir)
    .task({ kind: 'save_state_dict', model: modelPath('resnet-tiny.pt'), path: files.stateDict })
    .task({ kind: 'save_eager_module', arch: 'resnet-tiny', path: files.eagerPickle })
    .task({ kind: 'script_unused', path: files.unused })
    .task({ kind: 'script_unhookable', path: files.unhookable })
    .task({ kind: 'script_raises', path: files.raises })
    .task({ kind: 'script_typed_raises', path: files.typedRaises })
    .add({ id: 'jit', kind: 'jit', model: modelPath('resnet-tiny.pt'), inputs: [x] })
    .add({ id: 'eager', kind: 'eager', model: modelPath('resnet-tiny.pt'), inputs: [x], capture: ['layer2'] });
  [ref, model, bert] = await Promise.all([reference.run(), torch.load(modelPath('resnet-tiny.pt')), torch.load(modelPath('bert-tiny.pt'))]);
  baseline = {
    output: asTensor(await model.forward(toTorch(x))),
    layer2: asTensor(await torch.activations(model, 'layer2', toTorch(x))),
  };
  expectClose(baseline.output, refTensor(refCase(ref, 'jit').output), 1e-5, 'baseline output');
  expectClose(baseline.layer2, refTensor(refCase(ref, 'eager').captures.layer2[0]), 1e-5, 'baseline layer2');
});

afterAll(() => {
  model?.dispose();
  bert?.dispose();
  removeDir(dir);
});

// A failed call leaves the model usable: after every test, the shared model still gives the
// same forward output and captures as before any error (and those matched PyTorch).
afterEach(async () => {
  if (!model || model.disposed) return;
  expectEqual(asTensor(await model.forward(toTorch(x))), baseline.output, 'forward after the error');
  const after = await torch.run(model, toTorch(x), { capture: ['layer2'], patch: { layer3: { zero: true, channels: [0] } } });
  expectEqual(asTensor(after.activations.layer2), baseline.layer2, 'capture after the error');
});

describe('MODEL_LOAD', () => {
  test('a missing file', async () => {
    await expectTorchscopeError(() => torch.load(path.join(dir, 'missing.pt')), 'MODEL_LOAD', /missing\.pt/);
  });
  test('random bytes', async () => {
    await expectTorchscopeError(() => torch.load(files.random), 'MODEL_LOAD');
  });
  test('a plain text file', async () => {
    await expectTorchscopeError(() => torch.load(files.text), 'MODEL_LOAD');
  });
  test("a torch.save'd state_dict says it is not TorchScript", async () => {
    await expectTorchscopeError(() => torch.load(files.stateDict), 'MODEL_LOAD', /not a TorchScript file/);
  });
  test("a torch.save'd eager module says it is not TorchScript", async () => {
    await expectTorchscopeError(() => torch.load(files.eagerPickle), 'MODEL_LOAD', /not a TorchScript file/);
  });
  test('a directory', async () => {
    await expectTorchscopeError(() => torch.load(dir), 'MODEL_LOAD');
  });
});

describe('UNKNOWN_LAYER', () => {
  test('a typo gets suggestions, closest first', async () => {
    const error = await expectTorchscopeError(() => torch.activations(model, 'layer4.0.conv3', toTorch(x)), 'UNKNOWN_LAYER', /did you mean/);
    expect(error.suggestions?.slice(0, 2).sort()).toEqual(['layer4.0.conv1', 'layer4.0.conv2']);
    const other = await expectTorchscopeError(() => torch.activations(model, 'layr2', toTorch(x)), 'UNKNOWN_LAYER');
    expect(other.suggestions?.[0]).toBe('layer2');
  });
  test('in a multi-layer capture, a patch and inspect', async () => {
    await expectTorchscopeError(() => torch.activations(model, ['layer2', 'layer9'], toTorch(x)), 'UNKNOWN_LAYER', /layer9/);
    await expectTorchscopeError(() => torch.run(model, toTorch(x), { patch: { 'layer2.0.bn3': { zero: true } } }), 'UNKNOWN_LAYER', /layer2\.0\.bn3/);
    await expectTorchscopeError(() => torch.inspect(model, { capture: ['fc2'] }), 'UNKNOWN_LAYER', /fc2/);
  });
});

describe('UNHOOKABLE_LAYER: a submodule no hook point reaches, with the reason', () => {
  test('a submodule that forward never calls (scripted model with an unused Linear)', async () => {
    const unused = await torch.load(files.unused);
    try {
      expect(unused.modules().map((m) => [m.path, m.hookable])).toEqual([
        ['', false],
        ['used', true],
        ['unused', false],
      ]);
      expect(unused.modules()[2].reason).toMatch(/forward never calls it/);
      const input = torch.tensor(new Float32Array([1, 2, 3, 4]), [1, 4]);
      expect(asTensor(await torch.activations(unused, 'used', input)).shape).toEqual([1, 3]);
      await expectTorchscopeError(
        () => torch.activations(unused, 'unused', input),
        'UNHOOKABLE_LAYER',
        /layer 'unused' cannot be hooked: forward never calls it/,
      );
      await expectTorchscopeError(() => torch.run(unused, input, { patch: { unused: { zero: true } } }), 'UNHOOKABLE_LAYER', /'unused'.*never calls/);
      // One unhookable layer names itself; its hookable neighbours still work alone.
      await expectTorchscopeError(() => torch.activations(unused, ['used', 'unused'], input), 'UNHOOKABLE_LAYER', /'unused'/);
      expect(asTensor(await unused.forward(input)).shape).toEqual([1, 3]);
    } finally {
      unused.dispose();
    }
  });
  test('calls no path names: picked from a ModuleList at run time, behind an interface, only another method', async () => {
    const model = await torch.load(files.unhookable);
    try {
      const byPath = Object.fromEntries(model.modules().map((m) => [m.path, m]));
      expect(byPath['picked.1']).toMatchObject({ hookable: false, callSites: 0 });
      expect(byPath['picked.1'].reason).toMatch(/only as an element of 'picked' picked at run time \(prim::ModuleContainerIndex\)/);
      // Called directly once and through the run-time index: hooks would miss calls, so none.
      expect(byPath['picked.0']).toMatchObject({ hookable: false, callSites: 1 });
      expect(byPath['picked.0'].reason).toMatch(/also calls it as an element of 'picked' picked at run time/);
      expect(byPath['impl']).toMatchObject({ hookable: true, callSites: 1 });
      expect(byPath['impl.0'].reason).toMatch(/only through 'impl', an attribute of a module interface type/);
      expect(byPath['helper'].reason).toMatch(/only its method\(s\) 'doubled'/);
      expect(byPath['direct']).toMatchObject({ hookable: true, callSites: 1 });
      const x = torch.tensor(new Float32Array([1, -2, 3, -4]), [1, 4]);
      for (const [layer, why] of [
        ['picked.0', /hooks would miss those calls/],
        ['picked.1', /ModuleContainerIndex/],
        ['impl.0', /interface/],
        ['helper', /'doubled'/],
      ] as const) {
        await expectTorchscopeError(
          () => torch.activations(model, layer, x, 1),
          'UNHOOKABLE_LAYER',
          new RegExp(`layer '${layer.replace('.', '\\.')}' cannot be hooked: .*${why.source}`),
        );
      }
      expect(asTensor(await torch.activations(model, ['impl', 'direct'], x, 1).then((r) => r.direct)).shape).toEqual([1, 4]);
    } finally {
      model.dispose();
    }
  });
  test('traced BERT: a dropout module the trace never calls, and a ModuleList', async () => {
    const ids = torch.tensor(randint(8, 30522, 1), [1, 8]);
    const mask = torch.tensor(new BigInt64Array(8).fill(1n), [1, 8]);
    await expectTorchscopeError(() => torch.activations(bert, 'encoder.layer.0.attention.self.dropout', ids, mask), 'UNHOOKABLE_LAYER', /never calls it/);
    await expectTorchscopeError(() => torch.activations(bert, 'encoder.layer', ids, mask), 'UNHOOKABLE_LAYER', /a container: forward calls the modules in it/);
    expect(bert.modules().find((m) => m.path === 'encoder.layer')).toMatchObject({ hookable: false, callSites: 0 });
    expect(bert.modules().find((m) => m.path === 'encoder.layer.0.output')).toMatchObject({ hookable: true, callSites: 1 });
    expect(asTensor(await torch.activations(bert, 'encoder.layer.0.output', ids, mask)).shape).toEqual([1, 8, 32]);
  });
});

describe('SHAPE', () => {
  test('an input with the wrong channel count (the TorchScript trace is kept apart)', async () => {
    const error = await expectTorchscopeError(() => model.forward(toTorch(hostRandn([1, 4, 32, 32], 1))), 'SHAPE', /channels/);
    expect(typeof error.torchscriptTrace).toBe('string');
    expect(error.message).not.toMatch(/Traceback/);
    await expectTorchscopeError(() => torch.activations(model, 'layer1', toTorch(hostRandn([1, 4, 32, 32], 1))), 'SHAPE');
  });
  test('the same in an optimized program, whose convolutions are prepacked: the message libtorch gives', async () => {
    const optimized = await torch.load(modelPath('resnet-tiny.pt'), { optimize: true });
    try {
      const error = await expectTorchscopeError(
        () => optimized.forward(toTorch(hostRandn([1, 4, 32, 32], 1))),
        'SHAPE',
        /expected input\[1, 4, 32, 32\] to have 3 channels/,
      );
      expect(error.message).not.toMatch(/onednn|dnnl|primitive/i);
      await expectTorchscopeError(() => optimized.forward(toTorch(hostRandn([1, 3, 32], 1))), 'SHAPE');
      await expectTorchscopeError(() => optimized.forward(torch.tensor(new Float64Array(3 * 32 * 32), [1, 3, 32, 32])), 'DTYPE');
      expect(((await optimized.forward(toTorch(hostRandn([0, 3, 32, 32], 1)))) as torch.Tensor).shape).toEqual([0, 10]);
      expect(((await optimized.forward(toTorch(hostRandn([1, 3, 32, 32], 1)))) as torch.Tensor).shape).toEqual([1, 10]);
    } finally {
      optimized.dispose();
    }
  });
  test('an input of the wrong rank', async () => {
    await expectTorchscopeError(() => model.forward(torch.tensor(new Float32Array(3), [3])), 'SHAPE');
  });
  // layer2 of resnet-tiny outputs [1, 16, 4, 4]
  test('a patch value that does not broadcast to the output ([1, 5, 1, 1])', async () => {
    await expectTorchscopeError(() => torch.run(model, toTorch(x), { patch: { layer2: { add: torch.zeros([1, 5, 1, 1]) } } }), 'SHAPE');
  });
  test('a patch value that broadcasts to something larger than the output ([2, 16, 4, 4])', async () => {
    await expectTorchscopeError(() => torch.run(model, toTorch(x), { patch: { layer2: { set: torch.zeros([2, 16, 4, 4]) } } }), 'SHAPE', /does not broadcast/);
  });
  test('tensor data that does not fill the shape', async () => {
    await expectTorchscopeError(() => torch.tensor(new Float32Array(5), [2, 3]), 'SHAPE', /6/);
    await expectTorchscopeError(() => torch.tensor([1, 2, 3], [2, 2]), 'SHAPE');
  });
});

// native/program/patch.cpp raises these with PATCH_CHECK, whose "torchscope:INVALID_ARGUMENT:" tag is
// documented to carry the code through the TorchScript interpreter (errors.cpp "strips it").
describe('patch regions out of range (native/program/patch.cpp: INVALID_ARGUMENT)', () => {
  test('a channel index out of range', async () => {
    await expectTorchscopeError(
      () => torch.run(model, toTorch(x), { patch: { layer2: { zero: true, channels: [99] } } }),
      'INVALID_ARGUMENT',
      /channel 99 is out of range/,
    );
  });
  test('a position outside the feature map', async () => {
    await expectTorchscopeError(
      () => torch.run(model, toTorch(x), { patch: { layer2: { zero: true, positions: [[9, 9]] } } }),
      'INVALID_ARGUMENT',
      /position \[9, 9\]/,
    );
  });
  test('positions of a 4-D output given as an odd list', async () => {
    await expectTorchscopeError(() => torch.run(model, toTorch(x), { patch: { layer2: { zero: true, positions: [1, 2, 3] } } }), 'INVALID_ARGUMENT', /pairs/);
  });
  test('positions on a 2-D output (fc)', async () => {
    await expectTorchscopeError(
      () => torch.run(model, toTorch(x), { patch: { fc: { zero: true, positions: [[0, 0]] } } }),
      'INVALID_ARGUMENT',
      /positions need/,
    );
  });
});

describe('DTYPE', () => {
  test('a float64 input to a float32 model', async () => {
    await expectTorchscopeError(() => model.forward(torch.tensor(new Float64Array(3 * 32 * 32), [1, 3, 32, 32])), 'DTYPE');
  });
  test('an int64 patch value for a float32 layer', async () => {
    await expectTorchscopeError(
      () => torch.run(model, toTorch(x), { patch: { layer2: { add: torch.tensor(new BigInt64Array(16), [1, 16, 1, 1]) } } }),
      'DTYPE',
      /Long|int64/,
    );
  });
  test('a float64 set value for a float32 layer', async () => {
    await expectTorchscopeError(() => torch.run(model, toTorch(x), { patch: { layer2: { set: torch.tensor(new Float64Array(16), [1, 16, 1, 1]) } } }), 'DTYPE');
  });
  test('float32 token ids to BERT', async () => {
    const mask = torch.tensor(new BigInt64Array(4).fill(1n), [1, 4]);
    await expectTorchscopeError(() => bert.forward(torch.zeros([1, 4]), mask), 'DTYPE');
  });
});

describe('RUNTIME', () => {
  // A scripted `raise Exception(...)` reaches the interpreter's message as
  // "...\nbuiltins.Exception: <message>": the traceback must still go to torchscriptTrace.
  test('an exception raised by the model itself, with its TorchScript traceback kept apart', async () => {
    const refuses = await torch.load(files.raises);
    try {
      const ok = torch.tensor(new Float32Array([1, 2, 3, 4]), [1, 4]);
      expect(asTensor(await refuses.forward(ok)).shape).toEqual([1, 3]);
      const error = await expectTorchscopeError(
        () => refuses.forward(torch.tensor(new Float32Array([-1, -2, -3, -4]), [1, 4])),
        'RUNTIME',
        /the model refuses negative inputs/,
      );
      expect(error.message).not.toMatch(/Traceback|TorchScript interpreter/);
      expect(error.torchscriptTrace).toMatch(/Traceback/);
      // Still usable: the failure was that call's alone.
      expect(asTensor(await refuses.forward(ok)).shape).toEqual([1, 3]);
      expect(asTensor(await torch.activations(refuses, 'inner', ok)).shape).toEqual([1, 3]);
    } finally {
      refuses.dispose();
    }
  });
  // c10's typed errors (TORCH_CHECK_INDEX / _TYPE / _VALUE, and the same raised by a model) say
  // what went wrong by their type: it decides the code before any pattern of the message
  // (these messages name another kind of problem on purpose).
  test.each([
    [0, 'IndexError', 'SHAPE', /no such device/],
    [1, 'TypeError', 'DTYPE', /the sizes do not match/],
    [2, 'ValueError', 'INVALID_ARGUMENT', /expected a float dtype/],
  ] as const)('a model raising kind %i (%s) rejects %s', async (kind, _type, code, message) => {
    const model = await torch.load(files.typedRaises);
    try {
      const x = torch.tensor(new Float32Array([1, 2]), [2]);
      await expectTorchscopeError(() => model.forward(x, kind), code, message);
      expect(asTensor(await model.forward(x, 3)).shape).toEqual([2]);
    } finally {
      model.dispose();
    }
  });
  // An unbatched [3, 32, 32] input passes conv2d (which accepts 3-D input) and fails in
  // batch_norm with "running_mean should contain 16 elements not 8": a shape error.
  test('an unbatched 3-D input to the scripted ResNet fails in batch_norm: SHAPE', async () => {
    const scripted = await torch.load(modelPath('resnet-tiny-scripted.pt'));
    try {
      await expectTorchscopeError(() => scripted.forward(toTorch(hostRandn([3, 32, 32], 2))), 'SHAPE', /running_mean/);
      expectClose(asTensor(await scripted.forward(toTorch(x))), baseline.output, 1e-5, 'scripted after the error');
    } finally {
      scripted.dispose();
    }
  });
});

describe('DEVICE', () => {
  const cuda = torch.cuda.isAvailable();
  test("'cuda' on a machine without CUDA", async () => {
    if (cuda) {
      // With a GPU this is not an error; the GPU suite covers it.
      const m = await torch.load(modelPath('resnet-tiny.pt'), { device: 'cuda' });
      expect(m.device).toBe('cuda:0');
      m.dispose();
      return;
    }
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { device: 'cuda' }), 'DEVICE', /CUDA is not available/);
  });
  test("'cuda:7' (no such GPU)", async () => {
    if (torch.cuda.deviceCount() > 7) throw new Error('this test assumes fewer than 8 GPUs');
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { device: 'cuda:7' }), 'DEVICE', /cuda:7/);
  });
  test("'tpu' and a malformed 'cuda:x'", async () => {
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { device: 'tpu' as torch.Device }), 'DEVICE', /tpu/);
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { device: 'cuda:x' as torch.Device }), 'DEVICE');
  });
  test('tensor.to a device that is not there', async () => {
    const t = torch.zeros([2]);
    if (!cuda) await expectTorchscopeError(() => t.to('cuda'), 'DEVICE');
    await expectTorchscopeError(() => t.to('tpu'), 'DEVICE');
    expect((await t.to('cpu')).toArray()).toEqual([0, 0]);
  });
});

describe('DISPOSED', () => {
  test('every use of a disposed model', async () => {
    const m = await torch.load(modelPath('resnet-tiny.pt'));
    m.dispose();
    expect(m.disposed).toBe(true);
    await expectTorchscopeError(() => m.forward(toTorch(x)), 'DISPOSED');
    await expectTorchscopeError(() => torch.activations(m, 'layer2', toTorch(x)), 'DISPOSED');
    await expectTorchscopeError(() => torch.run(m, toTorch(x), { capture: ['layer2'] }), 'DISPOSED');
    await expectTorchscopeError(() => torch.inspect(m, { capture: ['layer2'] }), 'DISPOSED');
    await expectTorchscopeError(() => m.modules(), 'DISPOSED');
    await expectTorchscopeError(() => m.device, 'DISPOSED');
  });
  test('every use of a disposed tensor, including as an input or a patch value', async () => {
    const t = torch.tensor(new Float32Array(16), [1, 16, 1, 1]);
    t.dispose();
    expect(t.disposed).toBe(true);
    await expectTorchscopeError(() => t.shape, 'DISPOSED');
    await expectTorchscopeError(() => t.dtype, 'DISPOSED');
    await expectTorchscopeError(() => t.data(), 'DISPOSED');
    await expectTorchscopeError(() => t.toArray(), 'DISPOSED');
    await expectTorchscopeError(() => t.item(), 'DISPOSED');
    await expectTorchscopeError(() => t.to('cpu'), 'DISPOSED');
    const input = toTorch(x);
    input.dispose();
    await expectTorchscopeError(() => model.forward(input), 'DISPOSED');
    await expectTorchscopeError(() => torch.run(model, toTorch(x), { patch: { layer2: { add: t } } }), 'DISPOSED');
  });
});

describe('INVALID_ARGUMENT', () => {
  const run = (patch: unknown) => torch.run(model, toTorch(x), { patch: { layer2: patch as torch.PatchSpec } });
  test('a patch with two modes, or none', async () => {
    await expectTorchscopeError(() => run({ zero: true, scale: 2 }), 'INVALID_ARGUMENT', /exactly one/);
    await expectTorchscopeError(() => run({ channels: [1] }), 'INVALID_ARGUMENT', /exactly one/);
  });
  test("an unknown key ('chanels')", async () => {
    await expectTorchscopeError(() => run({ zero: true, chanels: [1] }), 'INVALID_ARGUMENT', /chanels/);
  });
  test('zero: false', async () => {
    await expectTorchscopeError(() => run({ zero: false }), 'INVALID_ARGUMENT', /zero/);
  });
  test('non-integer, non-array and empty channel lists', async () => {
    await expectTorchscopeError(() => run({ zero: true, channels: [1.5] }), 'INVALID_ARGUMENT', /integers/);
    await expectTorchscopeError(() => run({ zero: true, channels: 3 }), 'INVALID_ARGUMENT', /array/);
    await expectTorchscopeError(() => run({ zero: true, channels: [] }), 'INVALID_ARGUMENT', /empty/);
    await expectTorchscopeError(() => run({ zero: true, positions: [[0, 0.5]] }), 'INVALID_ARGUMENT', /integers/);
  });
  test('a non-finite scale and a set value that is not a Tensor', async () => {
    await expectTorchscopeError(() => run({ scale: NaN }), 'INVALID_ARGUMENT', /finite/);
    await expectTorchscopeError(() => run({ scale: Infinity }), 'INVALID_ARGUMENT', /finite/);
    await expectTorchscopeError(() => run({ set: new Float32Array(16) }), 'INVALID_ARGUMENT', /Tensor/);
  });
  test('too many and too few inputs to forward', async () => {
    await expectTorchscopeError(() => model.forward(toTorch(x), toTorch(x)), 'INVALID_ARGUMENT', /at most/);
    await expectTorchscopeError(() => model.forward(), 'INVALID_ARGUMENT', /missing/);
    await expectTorchscopeError(() => torch.activations(model, 'layer2', toTorch(x), toTorch(x)), 'INVALID_ARGUMENT');
  });
  test('an input of the wrong kind', async () => {
    await expectTorchscopeError(() => model.forward('an image'), 'INVALID_ARGUMENT', /Tensor/);
  });
  test("calls other than 'last' / 'all', no layers, an empty layer name", async () => {
    await expectTorchscopeError(() => torch.activations(model, { layers: 'layer2', calls: 'first' as torch.Calls }, toTorch(x)), 'INVALID_ARGUMENT', /calls/);
    await expectTorchscopeError(() => torch.activations(model, [], toTorch(x)), 'INVALID_ARGUMENT');
    await expectTorchscopeError(() => torch.activations(model, '', toTorch(x)), 'INVALID_ARGUMENT');
  });
  test('a model that did not come from torch.load, a path that is not a string', async () => {
    await expectTorchscopeError(() => torch.activations({} as torch.Model, 'layer2', toTorch(x)), 'INVALID_ARGUMENT');
    await expectTorchscopeError(() => torch.run({} as torch.Model, toTorch(x)), 'INVALID_ARGUMENT');
    await expectTorchscopeError(() => torch.load(42 as unknown as string), 'INVALID_ARGUMENT');
  });
  test('tensor(): an unknown dtype, a ragged array, a Uint16Array without dtype, a bad shape', async () => {
    await expectTorchscopeError(() => torch.tensor([1, 2], undefined, 'float8' as torch.DType), 'INVALID_ARGUMENT', /float8/);
    await expectTorchscopeError(() => torch.tensor([[1, 2], [3]]), 'INVALID_ARGUMENT', /ragged/);
    await expectTorchscopeError(() => torch.tensor(new Uint16Array(2)), 'INVALID_ARGUMENT', /Uint16Array/);
    await expectTorchscopeError(() => torch.tensor(new Float32Array(2), [2, -1]), 'INVALID_ARGUMENT', /shape/);
    await expectTorchscopeError(() => torch.tensor([1, 2, 3]).item(), 'INVALID_ARGUMENT', /one element/);
  });
});

describe('OUT_OF_MEMORY', () => {
  test('zeros of 10^12 elements is a TorchscopeError, not a RangeError from a JS typed array', async () => {
    await expectTorchscopeError(() => torch.zeros([1e6, 1e6]), 'OUT_OF_MEMORY');
  });
});
