// GPU suite: needs a libtorch with CUDA and a visible GPU. Without one it is skipped, and says
// so (jest counts the tests as skipped); TORCHSCOPE_GPU_TESTS=1 makes it run regardless, so a
// GPU job cannot pass by skipping. CPU results are the reference; cuDNN picks other
// algorithms, so the bar is 1e-4 relative to the largest magnitude instead of 1e-5 absolute.
import * as torch from '../../lib';
import { asTensor, expectClose, expectTorchscopeError, hostRandn, maxAbs, modelPath, toTorch } from '../helpers';

const required = process.env.TORCHSCOPE_GPU_TESTS === '1';
const runs = required || torch.cuda.isAvailable();
if (!runs) {
  const { libtorchVersion, cudaBuild } = torch.info();
  console.warn(
    `test/gpu SKIPPED: no GPU visible (libtorch ${libtorchVersion}${cudaBuild ? ' with CUDA' : ', a CPU build'}); set TORCHSCOPE_GPU_TESTS=1 on a GPU machine to require it`,
  );
}

const x = hostRandn([2, 3, 224, 224], 1);
let cpu: torch.Model;
let gpu: torch.Model;

// Skipped tests carry the reason in their names.
const gpuTest = runs ? test : (name: string, fn: () => unknown) => test.skip(`${name} [skipped: no GPU visible]`, fn as jest.ProvidesCallback);

beforeAll(async () => {
  if (!runs) return;
  expect(torch.cuda.isAvailable()).toBe(true);
  [cpu, gpu] = await Promise.all([torch.load(modelPath('resnet18.pt')), torch.load(modelPath('resnet18.pt'), { device: 'cuda' })]);
});

afterAll(() => {
  cpu?.dispose();
  gpu?.dispose();
});

gpuTest('a model loaded on cuda reports its device', () => {
  expect(gpu.device).toBe('cuda:0');
});

gpuTest('outputs and captures come back on the CPU and match the CPU model', async () => {
  const layers = ['layer1.0.bn2', 'layer3', 'layer4.1.conv2'];
  const [onCpu, onGpu] = await Promise.all([torch.run(cpu, toTorch(x), { capture: layers }), torch.run(gpu, toTorch(x), { capture: layers })]);
  for (const layer of layers) {
    const expected = asTensor(onCpu.activations[layer]);
    const got = asTensor(onGpu.activations[layer]);
    expect(got.device).toBe('cpu');
    expectClose(got, expected, 1e-4 * maxAbs(expected.data() as Float32Array), layer);
  }
  const expected = asTensor(onCpu.output);
  expectClose(asTensor(onGpu.output), expected, 1e-4 * maxAbs(expected.data() as Float32Array), 'output');
});

gpuTest('patches on the GPU equal patches on the CPU', async () => {
  const patch = { layer3: { zero: true as const, channels: [1, 2, 3] }, layer2: { add: torch.zeros([1, 128, 1, 1]) } };
  const [a, b] = await Promise.all([torch.run(cpu, toTorch(x), { patch }), torch.run(gpu, toTorch(x), { patch })]);
  const expected = asTensor(a.output);
  expectClose(asTensor(b.output), expected, 1e-4 * maxAbs(expected.data() as Float32Array), 'patched output');
});

gpuTest('tensor.to: a round trip through the GPU; data() of a GPU tensor is a DEVICE error', async () => {
  const t = torch.tensor(new Float32Array([1, 2, 3]));
  const onGpu = await t.to('cuda');
  expect(onGpu.device).toBe('cuda:0');
  await expectTorchscopeError(() => onGpu.data(), 'DEVICE');
  expect((await onGpu.to('cpu')).toArray()).toEqual([1, 2, 3]);
});
