// Lifetimes: dispose, views that outlive their tensor, dispose with calls in flight, and memory
// that comes back after thousands of calls.
import * as v8 from 'v8';
import * as vm from 'vm';

import * as torch from '../lib';
import { asTensor, expectEqual, expectTorchscopeError, hostRandn, modelPath, toTorch } from './helpers';

// A real gc() without starting jest with --expose-gc.
v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

async function collect(): Promise<void> {
  // Several rounds with turns of the event loop between, so weak callbacks (tensor
  // finalizers, ArrayBuffer release) run.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

let model: torch.Model;
const x = hostRandn([2, 3, 32, 32], 3);
let expected: torch.Tensor;

beforeAll(async () => {
  model = await torch.load(modelPath('resnet-tiny.pt'));
  expected = asTensor(await model.forward(toTorch(x)));
});

afterAll(() => model?.dispose());

describe('dispose', () => {
  test('is idempotent for tensors and models', async () => {
    const t = torch.zeros([4]);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    const m = await torch.load(modelPath('resnet-tiny.pt'));
    m.dispose();
    m.dispose();
    expect(m.disposed).toBe(true);
    await expectTorchscopeError(() => m.forward(toTorch(x)), 'DISPOSED');
  });

  test('Symbol.dispose releases like dispose()', async () => {
    const t = torch.zeros([4]);
    t[Symbol.dispose]();
    expect(t.disposed).toBe(true);
    const m = await torch.load(modelPath('resnet-tiny.pt'));
    m[Symbol.dispose]();
    expect(m.disposed).toBe(true);
  });

  test('a data() view stays valid after its tensor is disposed and collected', async () => {
    let t: torch.Tensor | undefined = torch.tensor(
      Float32Array.from({ length: 1 << 16 }, (_, i) => i * 0.5),
      [1 << 16],
    );
    const view = t.data() as Float32Array;
    t.dispose();
    // eslint-disable-next-line no-useless-assignment -- the last reference dropped, for collect() to free the tensor
    t = undefined;
    await collect();
    // Allocate and free enough that reused memory would show in the view.
    for (let i = 0; i < 20; i++) torch.tensor(new Float32Array(1 << 16).fill(-1)).dispose();
    await collect();
    expect(view.length).toBe(1 << 16);
    for (let i = 0; i < view.length; i += 997) expect(view[i]).toBe(i * 0.5);
  });

  test('a view of a model output stays valid after the output is disposed', async () => {
    const out = asTensor(await model.forward(toTorch(x)));
    const view = out.data() as Float32Array;
    const copy = Array.from(view);
    out.dispose();
    await collect();
    await model.forward(toTorch(x)); // more native allocations
    expect(Array.from(view)).toEqual(copy);
  });

  test('a tensor disposed after it was passed to a call does not disturb that call', async () => {
    const input = toTorch(x);
    const pending = model.forward(input);
    input.dispose();
    expectEqual(asTensor(await pending), expected, 'forward with the input disposed after the call');
  });

  test('disposing a model while calls are in flight lets them finish; later calls reject DISPOSED', async () => {
    const m = await torch.load(modelPath('resnet-tiny.pt'));
    const inFlight = [m.forward(toTorch(x)), torch.activations(m, 'layer3', toTorch(x)), m.forward(toTorch(x))];
    m.dispose();
    expect(m.disposed).toBe(true);
    const [a, , c] = await Promise.all(inFlight);
    expectEqual(asTensor(a), expected, 'first in-flight forward');
    expectEqual(asTensor(c), expected, 'last in-flight forward');
    await expectTorchscopeError(() => m.forward(toTorch(x)), 'DISPOSED');
    await expectTorchscopeError(() => torch.activations(m, 'layer3', toTorch(x)), 'DISPOSED');
  });

  test('disposing a resnet18 during its forward', async () => {
    const m = await torch.load(modelPath('resnet18.pt'));
    const input = toTorch(hostRandn([1, 3, 64, 64], 4));
    const reference = asTensor(await m.forward(input));
    const pending = m.forward(input);
    await new Promise((resolve) => setTimeout(resolve, 5)); // the forward is running now
    m.dispose();
    expectEqual(asTensor(await pending), reference, 'forward that was in flight');
    await expectTorchscopeError(() => m.forward(input), 'DISPOSED');
  });
});

describe('memory', () => {
  const MB = 1 << 20;

  // Each iteration allocates ~300 KB of native memory (a [4,3,64,64] input, captures of
  // [4,8,16,16] and [4,32,2,2], the output) and drops every reference without dispose():
  // a leak of any of them over 2000 calls would pass the bound several times over.
  test('2000 tensor creations + activations calls (references dropped, GC) do not grow RSS by 200 MB', async () => {
    const input = hostRandn([4, 3, 64, 64], 9);
    const step = async () => {
      const t = toTorch(input);
      const r = await torch.activations(model, ['layer1', 'layer4'], t);
      return asTensor(r.layer1).size + asTensor(r.layer4).size;
    };
    for (let i = 0; i < 200; i++) await step(); // warm up: programs, allocator pools
    await collect();
    const before = process.memoryUsage();
    for (let i = 0; i < 2000; i++) {
      await step();
      if (i % 250 === 249) await collect();
    }
    await collect();
    const after = process.memoryUsage();
    const growth = {
      rss: (after.rss - before.rss) / MB,
      external: (after.external - before.external) / MB,
      arrayBuffers: (after.arrayBuffers - before.arrayBuffers) / MB,
    };
    expect(growth.rss).toBeLessThan(200);
    // V8 is told about native tensor memory (AdjustExternalMemory): it must come back too.
    expect(growth.external).toBeLessThan(50);
    expect(growth.arrayBuffers).toBeLessThan(50);
  });

  test('explicit dispose of 2000 tensors and views of them returns the memory', async () => {
    await collect();
    const before = process.memoryUsage();
    for (let i = 0; i < 2000; i++) {
      const t = torch.tensor(new Float32Array(64 * 1024), [64, 1024]); // 256 KB
      const out = asTensor(await model.forward(torch.tensor(new Float32Array(3 * 32 * 32), [1, 3, 32, 32])));
      t.data();
      t.dispose();
      out.dispose();
    }
    await collect();
    const after = process.memoryUsage();
    expect((after.rss - before.rss) / MB).toBeLessThan(200);
    expect((after.external - before.external) / MB).toBeLessThan(50);
  });
});
