// Many calls in flight on one model give the same numbers as the same calls made one by one.
// Every call gets its own input, so a result delivered to the wrong caller would show.
import * as torch from '../lib';
import { asArray, asTensor, expectEqual, HostTensor, hostRandn, modelPath, toTorch } from './helpers';

const N = 100;
let tiny: torch.Model;
let tinyScripted: torch.Model;
let resnet18: torch.Model;

beforeAll(async () => {
  [tiny, tinyScripted, resnet18] = await Promise.all([
    torch.load(modelPath('resnet-tiny.pt')),
    torch.load(modelPath('resnet-tiny-scripted.pt')),
    torch.load(modelPath('resnet18.pt')),
  ]);
});

afterAll(() => {
  tiny?.dispose();
  tinyScripted?.dispose();
  resnet18?.dispose();
});

const inputs: HostTensor[] = Array.from({ length: N }, (_, i) => hostRandn([1, 3, 32, 32], 1000 + i));

// Call i of the mixed workload: a different kind of request depending on i.
type Kind = 'forward' | 'layer2' | 'many' | 'all-calls' | 'patched';
const kinds: Kind[] = ['forward', 'layer2', 'many', 'all-calls', 'patched'];

async function call(model: torch.Model, kind: Kind, x: HostTensor): Promise<torch.Tensor[]> {
  switch (kind) {
    case 'forward':
      return [asTensor(await model.forward(toTorch(x)))];
    case 'layer2':
      return [asTensor(await torch.activations(model, 'layer2', toTorch(x)))];
    case 'many': {
      const r = await torch.activations(model, ['layer1.0.bn2', 'layer3', 'fc'], toTorch(x));
      return [r['layer1.0.bn2'], r.layer3, r.fc].map((v) => asTensor(v));
    }
    case 'all-calls':
      return asArray(await torch.activations(model, { layers: 'layer1.0.relu', calls: 'all' }, toTorch(x))).map((v) => asTensor(v));
    case 'patched': {
      const r = await torch.run(model, toTorch(x), { patch: { layer2: { zero: true, channels: [1, 2] } }, capture: ['layer3'] });
      return [asTensor(r.output), asTensor(r.activations.layer3)];
    }
  }
}

function sameResults(concurrent: torch.Tensor[][], sequential: torch.Tensor[][], what: string): void {
  expect(concurrent).toHaveLength(sequential.length);
  concurrent.forEach((tensors, i) => {
    expect(tensors).toHaveLength(sequential[i].length);
    // The same program on the same input: bit-identical, whatever else is in flight.
    tensors.forEach((t, j) => expectEqual(t, sequential[i][j], `${what} call ${i} result ${j}`));
  });
}

test(`${N} concurrent forwards on resnet-tiny equal sequential ones`, async () => {
  const sequential: torch.Tensor[][] = [];
  for (const x of inputs) sequential.push(await call(tiny, 'forward', x));
  const concurrent = await Promise.all(inputs.map((x) => call(tiny, 'forward', x)));
  sameResults(concurrent, sequential, 'forward');
  // Different inputs give different outputs (so a swapped result could not pass).
  expect(sequential[0][0].data()[0]).not.toBe(sequential[1][0].data()[0]);
});

test(`${N} concurrent activations on resnet-tiny equal sequential ones`, async () => {
  const sequential: torch.Tensor[][] = [];
  for (const x of inputs) sequential.push(await call(tiny, 'layer2', x));
  const concurrent = await Promise.all(inputs.map((x) => call(tiny, 'layer2', x)));
  sameResults(concurrent, sequential, 'activations');
});

test(`${N} concurrent mixed calls (forward, captures of different layer sets, calls:'all', patches) on two models`, async () => {
  const plan = inputs.map((x, i) => ({ x, kind: kinds[i % kinds.length], model: i % 3 === 0 ? tinyScripted : tiny }));
  const sequential: torch.Tensor[][] = [];
  for (const p of plan) sequential.push(await call(p.model, p.kind, p.x));
  // Run the mix twice concurrently: the first round also builds programs concurrently.
  const rounds = await Promise.all([0, 1].map(() => Promise.all(plan.map((p) => call(p.model, p.kind, p.x)))));
  for (const round of rounds) sameResults(round, sequential, 'mixed');
});

test('concurrent loads of one file give independent, working models', async () => {
  const models = await Promise.all(Array.from({ length: 4 }, () => torch.load(modelPath('resnet-tiny.pt'))));
  try {
    const expected = asTensor(await tiny.forward(toTorch(inputs[0])));
    const outputs = await Promise.all(models.map((m) => m.forward(toTorch(inputs[0]))));
    outputs.forEach((o, i) => expectEqual(asTensor(o), expected, `model ${i}`));
  } finally {
    models.forEach((m) => m.dispose());
  }
});

test('resnet18: concurrent activations and forwards equal sequential ones', async () => {
  const xs = Array.from({ length: 4 }, (_, i) => hostRandn([1, 3, 224, 224], 2000 + i));
  const plan: { x: HostTensor; kind: 'forward' | 'layer2' | 'many' }[] = [
    { x: xs[0], kind: 'layer2' },
    { x: xs[1], kind: 'forward' },
    { x: xs[2], kind: 'many' },
    { x: xs[3], kind: 'layer2' },
    { x: xs[0], kind: 'forward' },
    { x: xs[1], kind: 'layer2' },
  ];
  const sequential: torch.Tensor[][] = [];
  for (const p of plan) sequential.push(await call(resnet18, p.kind, p.x));
  const concurrent = await Promise.all(plan.map((p) => call(resnet18, p.kind, p.x)));
  sameResults(concurrent, sequential, 'resnet18');
});
