// Structural proof that a capture without the output runs only what it needs: torch.inspect
// shows the instrumented program (module calls left, op counts of the fully inlined graph).
import * as torch from '../lib';
import { asTensor, expectEqual, hostRandn, modelPath, randint, toTorch } from './helpers';

const RESNETS = [
  { file: 'resnet18.pt', conv: 'aten::_convolution' }, // traced: torch.jit.trace records _convolution
  { file: 'resnet18-scripted.pt', conv: 'aten::conv2d' },
] as const;
const LATER = ['layer3', 'layer4', 'avgpool', 'fc'];

const models: Record<string, torch.Model> = {};

beforeAll(async () => {
  for (const file of ['resnet18.pt', 'resnet18-scripted.pt', 'resnet-tiny.pt', 'bert-tiny.pt']) {
    models[file] = await torch.load(modelPath(file));
  }
});

afterAll(() => {
  for (const m of Object.values(models)) m.dispose();
});

function count(summary: { opCounts: Record<string, number> }, op: string): number {
  return summary.opCounts[op] ?? 0;
}

function touches(calledModules: string[], module: string): boolean {
  return calledModules.some((m) => m === module || m.startsWith(`${module}.`) || m.startsWith(`${module}:`));
}

describe.each(RESNETS)('$file', ({ file, conv }) => {
  test('a layer2 capture runs the stem, layer1 and layer2 only: 10 convolutions, no linear', async () => {
    const summary = await torch.inspect(models[file], { capture: ['layer2'] });
    for (const later of LATER) expect({ later, touched: touches(summary.calledModules, later) }).toEqual({ later, touched: false });
    for (const needed of ['conv1', 'layer1', 'layer2']) expect(touches(summary.calledModules, needed)).toBe(true);
    // conv1 + layer1 (2 blocks x 2) + layer2 (2 blocks x 2 + downsample)
    expect(count(summary, conv)).toBe(10);
    expect(count(summary, 'aten::linear')).toBe(0);
    expect(count(summary, 'aten::addmm')).toBe(0);
    expect(count(summary, 'aten::adaptive_avg_pool2d')).toBe(0);
    expect(summary.graph).toEqual(expect.any(String));
  });

  test('the same capture with the output keeps the whole network: 20 convolutions and fc', async () => {
    const summary = await torch.inspect(models[file], { capture: ['layer2'], output: true });
    for (const later of LATER) expect(touches(summary.calledModules, later)).toBe(true);
    expect(count(summary, conv)).toBe(20);
    expect(count(summary, 'aten::linear') + count(summary, 'aten::addmm')).toBe(1);
  });

  test('a plain forward program has 20 convolutions and no capture ops', async () => {
    const summary = await torch.inspect(models[file], { output: true });
    expect(count(summary, conv)).toBe(20);
    expect(count(summary, 'aten::clone')).toBe(0);
    expect(count(summary, 'aten::append')).toBe(0);
  });

  test('the cut follows the last requested layer: layer1 + layer3 runs 15 convolutions', async () => {
    const summary = await torch.inspect(models[file], { capture: ['layer1', 'layer3'] });
    expect(count(summary, conv)).toBe(15);
    expect(touches(summary.calledModules, 'layer4')).toBe(false);
    expect(touches(summary.calledModules, 'fc')).toBe(false);
  });

  test('a leaf capture (layer1.0.conv1) stops right after it: 2 convolutions', async () => {
    const summary = await torch.inspect(models[file], { capture: ['layer1.0.conv1'] });
    expect(count(summary, conv)).toBe(2);
    expect(touches(summary.calledModules, 'layer1.0.bn1')).toBe(false);
    expect(touches(summary.calledModules, 'layer1.1')).toBe(false);
  });

  test('a module called twice (layer1.0.relu) is cut after its last call, not its first', async () => {
    const summary = await torch.inspect(models[file], { capture: ['layer1.0.relu'] });
    expect(count(summary, conv)).toBe(3); // conv1, layer1.0.conv1, layer1.0.conv2
    expect(touches(summary.calledModules, 'layer1.0.conv2')).toBe(true);
    expect(touches(summary.calledModules, 'layer1.1')).toBe(false);
  });

  test('a patch program contains one torchscope::patch per patched layer and keeps the network', async () => {
    const summary = await torch.inspect(models[file], { patch: { layer2: { zero: true }, layer4: { scale: 2 } }, output: true });
    expect(count(summary, 'torchscope::patch')).toBe(2);
    expect(count(summary, conv)).toBe(20);
  });
});

test('the truncated capture has the same values as a capture taken with the full forward', async () => {
  const x = toTorch(hostRandn([2, 3, 32, 32], 5));
  const model = models['resnet-tiny.pt'];
  const truncated = asTensor(await torch.activations(model, 'layer2', x));
  const full = await torch.run(model, x, { capture: ['layer2'] });
  expectEqual(truncated, asTensor(full.activations.layer2), 'layer2 truncated vs full');
  const summary = await torch.inspect(model, { capture: ['layer2'] });
  expect(count(summary, 'aten::_convolution')).toBe(1 + 2 + 3);
});

test('bert-tiny: a capture in layer 0 never runs layer 1 or the pooler', async () => {
  const model = models['bert-tiny.pt'];
  const summary = await torch.inspect(model, { capture: ['encoder.layer.0.output'] });
  expect(touches(summary.calledModules, 'encoder.layer.1')).toBe(false);
  expect(touches(summary.calledModules, 'pooler')).toBe(false);
  expect(count(summary, 'aten::linear')).toBe(6); // q, k, v, attention output, intermediate, output
  expect(count(summary, 'aten::tanh')).toBe(0);
  const full = await torch.inspect(model, { output: true });
  expect(count(full, 'aten::linear')).toBe(13); // 2 layers x 6 + the pooler
  const ids = { data: randint(16, 30522, 3), shape: [1, 16], dtype: 'int64' as const };
  const mask = torch.tensor(new BigInt64Array(16).fill(1n), [1, 16]);
  const cut = asTensor(await torch.activations(model, 'encoder.layer.0.output', toTorch(ids), mask));
  const run = await torch.run(model, [toTorch(ids), mask], { capture: ['encoder.layer.0.output'] });
  expectEqual(cut, asTensor(run.activations['encoder.layer.0.output']), 'layer 0 output truncated vs full');
});
