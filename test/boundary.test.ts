// The native boundary and resources: inputs that used to abort the process, corrupt a value
// silently or fail untyped now reject with a specific code (or work); memory the machine cannot
// hold is refused before it is tried; queued calls can be aborted; results free their tensors
// at once; dropped models are collected under memory pressure (their memory is reported to V8).
import { spawnSync } from 'child_process';
import * as path from 'path';

import * as torch from '../lib';
import { binding } from '../lib/native/addon';
import { NativeMaximizeRequest } from '../lib/native/binding';
import { asTensor, expectTorchscopeError, modelPath, Reference, removeDir, ROOT, scratchDir } from './helpers';

let dir: string;
let expand: torch.Model;
let allocates: torch.Model;
let tiny: torch.Model;
let resnet: torch.Model;

beforeAll(async () => {
  dir = scratchDir('boundary');
  await new Reference(dir)
    .task({ kind: 'script_expand', path: path.join(dir, 'expand.pt') })
    .task({ kind: 'script_allocates', path: path.join(dir, 'allocates.pt') })
    .run();
  [expand, allocates, tiny, resnet] = await Promise.all([
    torch.load(path.join(dir, 'expand.pt')),
    torch.load(path.join(dir, 'allocates.pt')),
    torch.load(modelPath('resnet-tiny.pt')),
    torch.load(modelPath('resnet18.pt')),
  ]);
}, 120_000);

afterAll(() => {
  for (const model of [expand, allocates, tiny, resnet]) model?.dispose();
  removeDir(dir);
});

/** A small native maximize session on `tiny` (the native request, without lib's defaults). */
const PIXEL_MAXIMIZE: NativeMaximizeRequest = {
  layer: 'layer1',
  objectives: [{ channel: 0 }],
  image: { parameterization: 'pixel', range: 'clamp', decorrelate: false, channels: 3, height: 16, width: 16, decayPower: 1 },
  transforms: [],
  regularizers: {},
  normalize: false,
  lr: 0.05,
  beta1: 0.9,
  beta2: 0.999,
  seed: 0,
};

/** A native call's synchronous throw, as a plain object (the process survived it). */
function nativeThrow(call: () => unknown): { code?: string; message: string } {
  try {
    call();
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return { code, message };
  }
  throw new Error('the native call did not throw');
}

describe('synchronous native calls throw typed errors, never abort', () => {
  test('a shape whose element count overflows, straight to native code (was a c10::Error escaping: abort)', () => {
    const thrown = nativeThrow(() => binding().TensorHandle.fromData(new Float32Array(0), [0, 2 ** 62, 2 ** 62], 'float32'));
    expect(thrown.code).toBe('INVALID_ARGUMENT');
    expect(nativeThrow(() => binding().TensorHandle.fromData(new Float32Array(0), [2 ** 40, 2 ** 40], 'float32')).code).toBe('SHAPE');
  });
  test('the same through torch.tensor and torch.zeros', async () => {
    await expectTorchscopeError(
      () => torch.tensor(new Float32Array(0), [0, 2 ** 62, 2 ** 62]),
      'INVALID_ARGUMENT',
      /sizes are non-negative integers below 2\^53/,
    );
    await expectTorchscopeError(() => torch.tensor(new Float32Array(0), [0, 1e20]), 'INVALID_ARGUMENT', /invalid shape/);
    await expectTorchscopeError(() => torch.zeros([2 ** 30, 2 ** 30, 2 ** 30]), 'SHAPE', /more than a tensor can hold/);
  });
  test('data() of a broadcast view far larger than memory (was an abort)', async () => {
    const view = asTensor(await expand.forward(torch.zeros([1, 1, 64]), 65536));
    expect(view.shape).toEqual([65536, 65536, 64]);
    await expectTorchscopeError(() => view.data(), 'OUT_OF_MEMORY', /data\(\) of a non-contiguous tensor of shape \[65536, 65536, 64\] needs 1024\.0 GiB/);
    expect(asTensor(await expand.forward(torch.zeros([1, 1, 2]), 3)).toArray()).toEqual([
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    ]);
  });
  test('malformed requests straight to native code name the field', () => {
    const handle = tiny.native();
    expect(nativeThrow(() => handle.run([], { output: true, patch: [{ layer: 'layer1', mode: 7 }] } as never))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'run request.patch[0].mode: expected an integer in [0, 4], got the number 7',
    });
    expect(nativeThrow(() => handle.run([], { output: 'yes' } as never)).message).toBe('run request.output: expected a boolean, got a string');
    expect(nativeThrow(() => handle.maximize({ layer: 'layer1', objectives: [{ channel: -1 }] } as never)).message).toMatch(
      /maximize request\.objectives\[0\]\.channel: expected an integer/,
    );
  });
});

describe('inputs that were silently wrong or untyped', () => {
  test('nested arrays of strings (were NaN)', async () => {
    await expectTorchscopeError(() => torch.tensor([['a', 'b']] as never), 'INVALID_ARGUMENT', /found string "a"/);
  });
  test('a cyclic nested array, and one nested past 64 levels (a cycle was followed for ever)', async () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    await expectTorchscopeError(() => torch.tensor(cyclic as never), 'INVALID_ARGUMENT', /contains a cycle/);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    await expectTorchscopeError(() => torch.tensor(deep as never), 'INVALID_ARGUMENT', /deeper than 64 levels/);
  });
  test('an empty image buffer (was an untyped Error)', async () => {
    await expectTorchscopeError(() => torch.image(Buffer.alloc(0)), 'INVALID_ARGUMENT', /the buffer is empty/);
  });
  test('a Float32Array over a SharedArrayBuffer works (was INTERNAL)', () => {
    const shared = new Float32Array(new SharedArrayBuffer(16));
    shared.set([1, 2, 3, 4]);
    const t = torch.tensor(shared, [2, 2]);
    shared[0] = 99; // copied, not viewed
    expect(t.toArray()).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});

describe('memory', () => {
  test('an allocation that fails inside forward is OUT_OF_MEMORY (was RUNTIME), and the model still works', async () => {
    await expectTorchscopeError(
      () => allocates.forward(torch.zeros([1]), 10_000_000),
      'OUT_OF_MEMORY',
      /can't allocate memory: you tried to allocate 400000000000000 bytes/,
    );
    expect(asTensor(await allocates.forward(torch.zeros([1]), 2)).shape).toEqual([2, 2]);
  });
  test('maximize: a side past the bound, and a size whose step would not fit, before any work (was killed by the kernel)', async () => {
    await expectTorchscopeError(
      () => torch.maximize(tiny, 'layer2', { channel: 0, size: 100000 }),
      'INVALID_ARGUMENT',
      /image\.height: expected an integer in \[1, 16384\]/,
    );
    const batch = Array.from({ length: 8 }, (_, channel) => ({ channel }));
    await expectTorchscopeError(
      () => torch.maximize(tiny, 'layer2', { objective: batch, size: 16384, steps: 1 }),
      'OUT_OF_MEMORY',
      /maximize of 8 image\(s\) of 16384x16384 needs 120\.0 GiB/,
    );
    // One image fits (8 GiB with Adam's state); the activations of one step through ResNet-18,
    // measured on a probe, would not (about 70 GiB): refused before the image is allocated.
    const error = await expectTorchscopeError(
      () => torch.maximize(resnet, 'layer4', { channel: 0, size: 12000, steps: 1 }),
      'OUT_OF_MEMORY',
      /one step of maximize at 12000x12000 \(estimated from a 64x64 probe\) needs [\d.]+ GiB; [\d.]+ GiB of memory is available/,
    );
    console.log(error.message);
  }, 60_000);
  test('dropped models are collected under pressure: 16 bert-base loads stay under 2.5 GB (a child process)', () => {
    const script = `const torch = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
      (async () => { let peak = 0; for (let i = 0; i < 16; i++) { await torch.load(${JSON.stringify(modelPath('bert.pt'))}); peak = Math.max(peak, process.memoryUsage().rss); }
      console.log(peak); })();`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 300_000 });
    expect(result.status).toBe(0);
    const peakMb = Number(result.stdout.trim()) / 2 ** 20;
    console.log(`16 dropped bert-base loads (440 MB each): peak RSS ${peakMb.toFixed(0)} MB`);
    expect(peakMb).toBeLessThan(2500);
  }, 300_000);
});

describe('AbortSignal: a call still queued is dropped, ABORTED', () => {
  const big = () => torch.zeros([4, 3, 64, 64]);

  // Holds the one compute thread with a maximize chunk that ends only when released, so the call
  // under test is certainly still queued when its signal aborts (quick forwards ahead of it could
  // all finish first on a loaded machine, and then it would run).
  async function holdComputeThread() {
    const session = await tiny.native().maximize(PIXEL_MAXIMIZE);
    const chunk = session.steps(Number.MAX_SAFE_INTEGER);
    const settled = chunk.then(() => 'settled');
    return {
      stillRunning: async () => {
        let timer: NodeJS.Timeout | undefined;
        const waited = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('running'), 50)));
        const state = await Promise.race([settled, waited]);
        clearTimeout(timer);
        return state === 'running';
      },
      release: async () => {
        session.abort();
        const result = await chunk;
        session.dispose();
        return result;
      },
    };
  }

  test.each([
    ['forward', (m: torch.Model, signal: AbortSignal) => m.forward(big(), { signal })],
    ['run', (m: torch.Model, signal: AbortSignal) => torch.run(m, [big()], { capture: ['layer1'], signal })],
    ['activations', (m: torch.Model, signal: AbortSignal) => torch.activations(m, { layers: 'layer1', signal }, big())],
    ['load', (_m: torch.Model, signal: AbortSignal) => torch.load(modelPath('resnet-tiny.pt'), { signal })],
  ])('%s, behind a running call', async (_name, call) => {
    const holder = await holdComputeThread();
    try {
      const controller = new AbortController();
      const queued = call(tiny, controller.signal);
      const unsignalled = tiny.forward(big());
      controller.abort();
      await expectTorchscopeError(() => queued, 'ABORTED', /aborted before/);
      // Another call's signal does not interrupt the running call; the call queued without one still runs.
      expect(await holder.stillRunning()).toBe(true);
      const held = await holder.release();
      expect(held.objectives.length).toBeGreaterThan(0);
      expect(held.aborted).toBe(true);
      expect(asTensor(await unsignalled).shape).toEqual([4, 10]);
    } finally {
      await holder.release(); // idempotent; a failure above must not leave the compute thread held
    }
  });

  test('an already aborted signal rejects without queuing; a forward whose last argument is not { signal } is not confused', async () => {
    await expectTorchscopeError(() => tiny.forward(big(), { signal: AbortSignal.abort() }), 'ABORTED', /before the call started/);
    await expectTorchscopeError(() => torch.run(tiny, [big()], { signal: 'soon' as never }), 'INVALID_ARGUMENT', /AbortSignal/);
    expect(asTensor(await tiny.forward(big(), { signal: new AbortController().signal })).shape).toEqual([4, 10]);
  });
});

describe('disposable results free every tensor at once', () => {
  test('run(): result.dispose() and `using`', async () => {
    const result = await torch.run(tiny, [torch.zeros([1, 3, 32, 32])], { capture: ['layer1', 'layer2'], calls: 'all' });
    const tensors = [asTensor(result.output), ...Object.values(result.activations).flatMap((calls) => calls as torch.Tensor[])];
    result.dispose();
    expect(tensors.map((t) => t.disposed)).toEqual(tensors.map(() => true));
    let held: torch.Tensor;
    {
      using scoped = await torch.run(tiny, [torch.zeros([1, 3, 32, 32])]);
      held = asTensor(scoped.output);
    }
    expect(held.disposed).toBe(true);
  });
  test('activations() with several layers: [Symbol.dispose], invisible to Object.keys', async () => {
    const record = await torch.activations(tiny, ['layer1', 'layer2'], torch.zeros([1, 3, 32, 32]));
    expect(Object.keys(record)).toEqual(['layer1', 'layer2']);
    record[Symbol.dispose]();
    expect([asTensor(record.layer1).disposed, asTensor(record.layer2).disposed]).toEqual([true, true]);
  });
  test('torch.dispose(value, keep?) frees the tensors of any value but the one kept; maximize sessions are disposed with their run', async () => {
    const outputs = [torch.zeros([2]), { a: torch.zeros([1]), b: [torch.zeros([1])] }];
    torch.dispose(outputs);
    expect([outputs[0], (outputs[1] as any).a, (outputs[1] as any).b[0]].map((t: torch.Tensor) => t.disposed)).toEqual([true, true, true]);
    const kept = torch.zeros([2]);
    const output = [torch.zeros([1]), [kept, torch.zeros([3])]];
    torch.dispose(output, kept);
    expect([asTensor(output[0]).disposed, kept.disposed, asTensor((output[1] as torch.Tensor[])[1]).disposed]).toEqual([true, false, true]);
    expect(Array.from(kept.data() as Float32Array)).toEqual([0, 0]);
    const session = await tiny.native().maximize(PIXEL_MAXIMIZE);
    expect((await session.steps(1)).objectives).toHaveLength(1);
    session.dispose();
    session.dispose();
    expect(nativeThrow(() => session.steps(1)).code).toBe('DISPOSED');
  });
});
