// One runtime in its own process for scripts/bench-runtimes.js (two runtimes' thread pools in
// one process slow each other down). Prints JSON:
//   { "1": { "forward": [ms...], "layer4": [ms...] }, "8": {...}, "logits": [first 10 of batch 0],
//     "maximize": { "steps": n, "itPerSecond": x } (torchscope, with MAXIMIZE_STEPS timed steps) }
//
//   node runtime_worker.js onnxruntime ORT_DIR ONNX_DIR BATCHES CALLS WARMUP
//   node runtime_worker.js torchscope MODEL MODE(exact|optimize|bf16: optimize at bf16) BATCHES CALLS WARMUP [MAXIMIZE_STEPS]
'use strict';
const path = require('path');
const { timeCalls } = require('./stats');

const MAXIMIZE_WARMUP = 8;

/** The same pseudo-random image batch in every runtime. */
function inputData(batch) {
  let seed = 1;
  return new Float32Array(batch * 3 * 224 * 224).map(() => (seed = (seed * 16807) % 2147483647) / 2147483647);
}

async function onnxruntime([ortDir, onnxDir, batches, calls, warmup]) {
  const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
  // Default session options, as a Node user gets them.
  const forward = await ort.InferenceSession.create(path.join(onnxDir, 'resnet18.onnx'));
  const withLayer4 = await ort.InferenceSession.create(path.join(onnxDir, 'resnet18-layer4.onnx'));
  const out = {};
  for (const batch of batches) {
    const input = new ort.Tensor('float32', inputData(batch), [batch, 3, 224, 224]);
    out[batch] = {
      forward: await timeCalls(() => forward.run({ input }), warmup, calls),
      layer4: await timeCalls(() => withLayer4.run({ input }), warmup, calls),
    };
    if (out.logits === undefined) out.logits = Array.from((await forward.run({ input })).logits.data.slice(0, 10));
  }
  return out;
}

async function torchscope([model, mode, batches, calls, warmup, maximizeSteps]) {
  const torch = require('../../dist/lib');
  const options = mode === 'optimize' ? { optimize: true } : mode === 'bf16' ? { precision: 'bf16', upcast: true, optimize: true } : {};
  const net = await torch.load(model, options);
  const out = {};
  for (const batch of batches) {
    const x = torch.tensor(inputData(batch), [batch, 3, 224, 224]);
    out[batch] = {
      forward: await timeCalls(async () => torch.dispose(await net.forward(x)), warmup, calls),
      layer4: await timeCalls(async () => torch.dispose(await torch.activations(net, 'layer4', x)), warmup, calls),
    };
    if (out.logits === undefined) {
      const logits = await net.forward(x);
      out.logits = Array.from(logits.data().slice(0, 10));
      logits.dispose();
    }
    x.dispose();
  }
  if (maximizeSteps > 0) {
    // Steps per second after the first chunk of MAXIMIZE_WARMUP steps (the program's build, and
    // oneDNN's kernels for the sizes the standard transforms make): a long run's pace.
    const stamps = [];
    const steps = MAXIMIZE_WARMUP + maximizeSteps;
    await torch.maximize(net, 'layer4', {
      channel: 5,
      steps,
      size: 224,
      progressEvery: MAXIMIZE_WARMUP,
      onProgress: (p) => stamps.push([p.step, performance.now()]),
    });
    const [firstStep, firstTime] = stamps[0];
    const [lastStep, lastTime] = stamps[stamps.length - 1];
    out.maximize = { steps: lastStep - firstStep, itPerSecond: ((lastStep - firstStep) * 1000) / (lastTime - firstTime) };
  }
  net.dispose();
  return out;
}

async function main() {
  const [runtime, ...args] = process.argv.slice(2);
  const numbers = (i) => args[i].split(',').map(Number);
  let out;
  if (runtime === 'onnxruntime') out = await onnxruntime([args[0], args[1], numbers(2), Number(args[3]), Number(args[4])]);
  else if (runtime === 'torchscope') out = await torchscope([args[0], args[1], numbers(2), Number(args[3]), Number(args[4]), Number(args[5] || 0)]);
  else throw new Error(`unknown runtime ${runtime}`);
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
