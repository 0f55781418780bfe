// libtorch work runs off the JS thread: timers and immediates keep firing during a long forward,
// and the JS thread's own CPU time during it is a small share of the process's. CPU time, not
// the longest gap between turns, is what proves it on a loaded machine: the OS may deschedule
// the JS thread for hundreds of milliseconds (397 ms seen under two jest workers), but a
// descheduled thread spends no CPU, while a loop blocked by the work spends all of it.
import * as torch from '../lib';
import { asTensor, hostRandn, modelPath, toTorch } from './helpers';
import { cpuDuring } from './helpers/cpu-time';

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

/** The work ran off the JS thread: that thread spent under a fifth of the process's CPU time meanwhile. */
async function expectOffThread<T>(work: Promise<T>): Promise<T> {
  const [value, cpu] = await cpuDuring(work);
  console.log(`CPU time during the call: JS thread ${cpu.jsThreadMs.toFixed(0)} ms of the process's ${cpu.processMs.toFixed(0)} ms`);
  // Long enough that /proc's 10 ms ticks cannot decide it.
  expect(cpu.processMs).toBeGreaterThan(200);
  expect(cpu.jsThreadMs).toBeLessThan(cpu.processMs / 5);
  return value;
}

test('the event loop keeps turning during a resnet18 forward at batch 8, which runs off the JS thread', async () => {
  const [out, ticks] = await whileAwaiting(model.forward(toTorch(hostRandn([8, 3, 224, 224], 2))));
  expect(asTensor(out).shape).toEqual([8, 1000]);
  // A blocked loop turns not once during the call; this one turns all along.
  expect(ticks.immediates).toBeGreaterThan(100);
  expect(ticks.intervals).toBeGreaterThan(Math.min(50, ticks.elapsedMs / 20));
  // The same forward at batch 16 (no spinning probe, which would busy the JS thread itself).
  expect(asTensor(await expectOffThread(model.forward(toTorch(hostRandn([16, 3, 224, 224], 2))))).shape).toEqual([16, 1000]);
});

test('and during activations + patching', async () => {
  const call = () => torch.run(model, toTorch(hostRandn([8, 3, 224, 224], 3)), { capture: ['layer3'], patch: { layer2: { zero: true, channels: [0] } } });
  const [result, ticks] = await whileAwaiting(call());
  expect(asTensor(result.activations.layer3).shape).toEqual([8, 256, 14, 14]);
  expect(ticks.immediates).toBeGreaterThan(100);
  expect(asTensor((await expectOffThread(call())).activations.layer3).shape).toEqual([8, 256, 14, 14]);
});
