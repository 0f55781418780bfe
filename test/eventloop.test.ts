// libtorch work runs off the JS thread: timers and immediates keep firing during a long forward.
import * as torch from '../lib';
import { asTensor, hostRandn, modelPath, toTorch } from './helpers';

let model: torch.Model;

beforeAll(async () => {
  model = await torch.load(modelPath('resnet18.pt'));
  await model.forward(toTorch(hostRandn([1, 3, 224, 224], 1))); // warm up the program
});

afterAll(() => model?.dispose());

interface Ticks {
  immediates: number;
  intervals: number;
  maxGapMs: number;
  elapsedMs: number;
}

/** Counts event-loop turns while `work` is pending. */
async function whileAwaiting<T>(work: Promise<T>): Promise<[T, Ticks]> {
  const start = performance.now();
  let last = start;
  let maxGapMs = 0;
  let immediates = 0;
  let intervals = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    immediates++;
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    setImmediate(spin);
  };
  setImmediate(spin);
  const timer = setInterval(() => intervals++, 1);
  try {
    const value = await work;
    return [value, { immediates, intervals, maxGapMs, elapsedMs: performance.now() - start }];
  } finally {
    done = true;
    clearInterval(timer);
  }
}

test('the event loop keeps turning during a resnet18 forward at batch 8', async () => {
  const [out, ticks] = await whileAwaiting(model.forward(toTorch(hostRandn([8, 3, 224, 224], 2))));
  expect(asTensor(out).shape).toEqual([8, 1000]);
  // Loose: the forward takes seconds on this machine; the loop must turn all along.
  expect(ticks.immediates).toBeGreaterThan(100);
  expect(ticks.intervals).toBeGreaterThan(Math.min(50, ticks.elapsedMs / 20));
  // A blocked loop shows one gap as long as the whole call; the OS may still deschedule the
  // JS thread for a while on a busy 2-core machine (397 ms seen under two jest workers).
  expect(ticks.maxGapMs).toBeLessThan(ticks.elapsedMs / 2);
});

test('and during activations + patching', async () => {
  const [result, ticks] = await whileAwaiting(
    torch.run(model, toTorch(hostRandn([4, 3, 224, 224], 3)), { capture: ['layer3'], patch: { layer2: { zero: true, channels: [0] } } }),
  );
  expect(asTensor(result.activations.layer3).shape).toEqual([4, 256, 14, 14]);
  expect(ticks.immediates).toBeGreaterThan(100);
  expect(ticks.maxGapMs).toBeLessThan(ticks.elapsedMs / 2);
});
