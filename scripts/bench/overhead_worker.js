// One checkout's timings for scripts/bench-ab.js: the process's CPU time per call (ms) of calls
// whose cost is mostly torchscope's own (tiny models: marshalling, program lookup, sessions) and
// of two that are mostly libtorch's (ResNet-18's layer4, a GPT-2-tiny sweep). CPU time, one
// intra-op thread: on this shared machine wall time varies by a third between identical runs
// (the VM is descheduled), CPU time by a few percent. Prints JSON.
//   node overhead_worker.js CHECKOUT   (its dist/lib and models/ are used)
'use strict';
const path = require('path');

const checkout = path.resolve(process.argv[2]);
const torch = require(path.join(checkout, 'dist', 'lib'));
const model = (name) => torch.load(path.join(checkout, 'models', name));

async function time(call, count) {
  for (let i = 0; i < 2; i++) await call();
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) await call();
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000 / count;
}

async function main() {
  const out = {};
  const tiny = await model('resnet-tiny.pt');
  const x = torch.tensor(new Float32Array(3 * 32 * 32).fill(0.3), [1, 3, 32, 32]);
  out.tinyForward = await time(async () => torch.dispose(await tiny.forward(x)), 200);
  out.tinyRun = await time(async () => torch.dispose(await torch.run(tiny, [x], { capture: ['layer1', 'layer2', 'layer3'] })), 200);
  out.tinyGradients = await time(async () => torch.dispose(await torch.gradients(tiny, x, { target: 3, wrt: ['input', 'layer2'] })), 100);
  out.tinyIntegratedGradients = await time(
    async () => torch.dispose(await torch.attribute(tiny, x, { method: 'integratedGradients', target: 3, steps: 16 })),
    30,
  );
  out.tinyMaximize = await time(async () => torch.dispose(await torch.maximize(tiny, 'layer2', { channel: 1, size: 32, steps: 20, transforms: [] })), 10);
  const resnet = await model('resnet18.pt');
  const image = torch.tensor(new Float32Array(3 * 224 * 224).fill(0.3), [1, 3, 224, 224]);
  out.resnet18Layer4 = await time(async () => torch.dispose(await torch.activations(resnet, 'layer4', image)), 15);
  const gpt = await model('gpt2-tiny.pt');
  const ids = torch.tensor(
    BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i * 7)),
    [1, 16],
  );
  const sweep = { clean: ids, corrupted: ids, layers: ['transformer.h.0', 'transformer.h.1'], metric: { logit: 5, position: -1 } };
  out.gpt2TinySweep = await time(async () => torch.dispose(await torch.patchingSweep(gpt, sweep)), 10);
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
