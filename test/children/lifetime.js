// Child process for test/process-lifetime.test.ts: node lifetime.js SCENARIO MODEL
//   exit-queued        queue 50 forwards, process.exit(0) 5 ms later
//   exit-maximize      process.exit(0) during a maximize run
//   worker-capture     a worker captures in a loop; the main thread terminates it mid-call
//   worker-maximize    the same during maximize
//   worker-load        terminate the worker while it loads the model
//   endless            MODEL's forward never returns: a call queued behind it is aborted (it
//                      must reject at once), then process.exit(0) (it must not wait forever)
//   exit-natural       MODEL prints from its forward (C++ stdout); a second model stays loaded;
//                      the process ends by itself with process.exitCode 7 set in an 'exit'
//                      listener: exit ends before libtorch's static destructors, and must still
//                      flush the model's output and keep the code
// Exit code 0 and no signal mean the process survived; the test checks the code and signal.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const torch = require('../../dist/lib');

const [scenario, model] = isMainThread ? process.argv.slice(2) : [workerData.scenario, workerData.model];

async function inWorker() {
  if (scenario === 'worker-load') {
    parentPort.postMessage('started');
    await torch.load(model);
    return;
  }
  const m = await torch.load(model);
  const x = torch.zeros([1, 3, 96, 96]);
  parentPort.postMessage('started');
  if (scenario === 'worker-maximize') await torch.maximize(m, 'layer3', { channel: 1, steps: 500, size: 96 });
  for (;;) await torch.activations(m, 'layer4', x);
}

async function main() {
  if (scenario.startsWith('worker-')) {
    const worker = new Worker(__filename, { workerData: { scenario, model } });
    worker.on('error', (error) => {
      console.error(`worker error: ${error.message}`);
      process.exitCode = 3;
    });
    await new Promise((resolve) => worker.once('message', resolve));
    await new Promise((resolve) => setTimeout(resolve, scenario === 'worker-load' ? 1 : 30));
    await worker.terminate();
    // The process goes on working after the worker is gone.
    const m = await torch.load(model);
    await m.forward(torch.zeros([1, 3, 32, 32]));
    console.log('ok');
    return;
  }
  const m = await torch.load(model);
  if (scenario === 'exit-queued') {
    const x = torch.zeros([1, 3, 64, 64]);
    for (let i = 0; i < 50; i++) m.forward(x).catch(() => {});
    setTimeout(() => process.exit(0), 5);
  } else if (scenario === 'endless') {
    m.forward(torch.zeros([1])).catch(() => {});
    const controller = new AbortController();
    const queued = m.forward(torch.zeros([1]), { signal: controller.signal });
    const start = Date.now();
    controller.abort();
    await queued.catch((error) => console.log(`queued: ${error.code} after ${Date.now() - start} ms`));
    process.exit(0);
  } else if (scenario === 'exit-natural') {
    await m.forward(torch.zeros([2]));
    globalThis.kept = [m, await torch.load(model), torch.zeros([1000, 1000])];
    process.on('exit', () => {
      process.exitCode = 7;
    });
  } else if (scenario === 'exit-maximize') {
    torch.maximize(m, 'layer3', { channel: 1, steps: 500, size: 96 }).catch(() => {});
    setTimeout(() => process.exit(0), 300);
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
}

if (isMainThread) {
  main().catch((error) => {
    console.error(error);
    process.exit(2);
  });
} else {
  inWorker().catch((error) => parentPort.postMessage(`error: ${error.message}`));
}
