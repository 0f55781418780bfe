// A process that ends, or a worker that is terminated, while torchscope calls are queued or
// running: the compute thread never calls into an environment that is gone, queued calls are
// dropped, exit waits for the call in flight (native/bindings/async_work.h). Each scenario runs in child
// processes (test/children/lifetime.js), several times: exit code 0, no signal.
import { spawnSync } from 'child_process';
import * as path from 'path';

import { modelPath, Reference, removeDir, scratchDir } from './helpers';

const CHILD = path.join(__dirname, 'children', 'lifetime.js');
let dir: string;
let endless: string;
let prints: string;

beforeAll(async () => {
  dir = scratchDir('lifetime');
  endless = path.join(dir, 'endless.pt');
  prints = path.join(dir, 'prints.pt');
  await new Reference(dir).task({ kind: 'script_endless', path: endless }).task({ kind: 'script_prints', path: prints }).run();
}, 120_000);

afterAll(() => removeDir(dir));

function runChild(scenario: string, model = modelPath('resnet18.pt')): { status: number | null; signal: string | null; output: string; ms: number } {
  const start = Date.now();
  const result = spawnSync(process.execPath, [CHILD, scenario, model], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, signal: result.signal, output: `${result.stdout}${result.stderr}`.slice(-2000), ms: Date.now() - start };
}

describe.each([
  ['exit-queued', 'process.exit(0) 5 ms after queuing 50 forwards', 10],
  ['exit-maximize', 'process.exit(0) during maximize', 3],
  ['worker-capture', 'worker.terminate() while the worker captures layer4', 5],
  ['worker-maximize', "worker.terminate() during the worker's maximize", 5],
  ['worker-load', 'worker.terminate() while the worker loads a model', 3],
])('%s: %s', (scenario, _what, runs) => {
  test(`exits 0 without a signal, ${runs} runs out of ${runs}`, () => {
    const outcomes = Array.from({ length: runs }, () => runChild(scenario));
    // The whole outcome (with the child's output) is what a failure shows.
    for (const outcome of outcomes) expect(outcome.status === 0 && outcome.signal === null ? 'exit 0' : outcome).toBe('exit 0');
    if (scenario.startsWith('worker-')) for (const outcome of outcomes) expect(outcome.output).toContain('ok');
  }, 300_000);
});

test('a forward that never returns: a call queued behind it aborts at once, and process.exit still exits', () => {
  const outcome = runChild('endless', endless);
  expect(outcome.status === 0 && outcome.signal === null ? 'exit 0' : outcome).toBe('exit 0');
  const aborted = /queued: ABORTED after (\d+) ms/.exec(outcome.output);
  expect(aborted).not.toBeNull();
  expect(Number(aborted![1])).toBeLessThan(1000);
  // exit waits 10 s for the running call, then leaves.
  expect(outcome.ms).toBeLessThan(60_000);
}, 120_000);

// The process's end skips libtorch's static destructors (native/bindings/async_work.cpp): what the
// model printed through C++'s stdout must still come out, and the exit code set last must hold.
test("a process that ends by itself holding models: the model's printed output is flushed and the exit code kept, 3 runs out of 3", () => {
  for (let run = 0; run < 3; run++) {
    const outcome = runChild('exit-natural', prints);
    expect({ status: outcome.status, signal: outcome.signal, printed: outcome.output.includes("printed by the model's forward") }).toEqual({
      status: 7,
      signal: null,
      printed: true,
    });
  }
}, 120_000);
