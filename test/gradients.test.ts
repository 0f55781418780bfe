// torch.gradients: d(objective)/d(input) and d(objective)/d(layer output) natively, against
// PyTorch on the same weights (test/python/attribution_reference.py): input gradients from
// autograd, layer gradients from register_full_backward_hook's grad_output (or, where a
// module's inputs need no gradient, Captum's forward-hook way). Then truncation, patches,
// every call of a module called several times, token models, and bad requests.
import * as torch from '../lib';
import { attributionResult, AttributionRefResult, GradientsCase, relativeTo, runAttributionReference } from './helpers/attribution';
import { asTensor, expectClose, expectTorchscopeError, HostTensor, hostRandn, maxAbs, modelPath, randint, removeDir, scratchDir, toTorch } from './helpers';

const TOL = 1e-5; // x max |expected|

const image = hostRandn([2, 3, 64, 64], 21);
const ids: HostTensor = { data: randint(2 * 9, 30522, 8), shape: [2, 9], dtype: 'int64' };
const mask: HostTensor = { data: BigInt64Array.from({ length: 18 }, (_, i) => (i >= 15 ? 0n : 1n)), shape: [2, 9], dtype: 'int64' };

interface Case {
  name: string;
  model: string;
  inputs: HostTensor[];
  options: torch.GradientsOptions;
  ref: Omit<GradientsCase, 'id' | 'kind' | 'model' | 'inputs'>;
}

const CASES: Case[] = [];
for (const [kind, file] of [
  ['traced', 'resnet18.pt'],
  ['scripted', 'resnet18-scripted.pt'],
] as const) {
  CASES.push(
    {
      name: `${kind} ResNet-18: a target per image, wrt the input and three layers`,
      model: file,
      inputs: [image],
      options: { target: [7, 400], wrt: ['input', 'layer2', 'layer4.1', 'fc'] },
      ref: { objective: { layer: '', objectives: [{ target: 7 }, { target: 400 }] }, wrt: { inputs: [0], layers: ['layer2', 'layer4.1', 'fc'] } },
    },
    {
      name: `${kind} ResNet-18: a channel of layer3 (the forward stops there), wrt the input and layer2`,
      model: file,
      inputs: [image],
      options: { objective: { layer: 'layer3', channel: 17 }, wrt: ['input', 'layer2'] },
      ref: { objective: { layer: 'layer3', objectives: [{ channel: 17 }] }, wrt: { inputs: [0], layers: ['layer2'] } },
    },
    {
      name: `${kind} ResNet-18: with layer3's channels 1-3 zeroed, through the patch`,
      model: file,
      inputs: [image],
      options: { target: 5, wrt: ['input', 'layer2'], patch: { layer3: { zero: true, channels: [1, 2, 3] } } },
      ref: {
        objective: { layer: '', objectives: [{ target: 5 }] },
        wrt: { inputs: [0], layers: ['layer2'] },
        patch: { layer3: { mode: 'zero', channels: [1, 2, 3] } },
      },
    },
  );
}
CASES.push(
  {
    name: 'every call of a module called twice (layer1.0.relu, in place), calls all',
    model: 'resnet18.pt',
    inputs: [image],
    options: { target: 9, wrt: ['layer1.0.relu'], calls: 'all' },
    ref: { objective: { layer: '', objectives: [{ target: 9 }] }, wrt: { layers: ['layer1.0.relu'] }, layerGrads: 'captum' },
  },
  {
    name: 'BERT classifier: token ids have no gradient, the word embeddings do',
    model: 'bert-tiny-cls.pt',
    inputs: [ids, mask],
    options: { target: [0, 1], wrt: ['bert.embeddings.word_embeddings', 'bert.encoder.layer.1.output'] },
    ref: {
      objective: { layer: '', objectives: [{ target: 0 }, { target: 1 }] },
      wrt: { layers: ['bert.embeddings.word_embeddings', 'bert.encoder.layer.1.output'] },
      layerGrads: 'captum',
    },
  },
);

let dir: string;
let reference: Map<string, AttributionRefResult>;

beforeAll(async () => {
  dir = scratchDir('gradients');
  reference = await runAttributionReference(
    dir,
    CASES.map((c) => ({ id: c.name, kind: 'gradients', model: modelPath(c.model), inputs: c.inputs, ...c.ref })),
  );
}, 600_000);

afterAll(() => removeDir(dir));

test.each(CASES)('$name', async (c) => {
  const model = await torch.load(modelPath(c.model));
  try {
    const result = await torch.gradients(model, c.inputs.map(toTorch), c.options);
    const expected = attributionResult(reference, c.name);
    expect(result.objective).toHaveLength(expected.objective!.length);
    result.objective.forEach((v, i) => expect(Math.abs(v - expected.objective![i])).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(expected.objective![i]))));
    const wrt = typeof c.options.wrt === 'string' ? [c.options.wrt] : c.options.wrt;
    let input = 0;
    for (const entry of wrt) {
      if (entry.startsWith('input')) {
        const want = expected.inputs![input++];
        expect(maxAbs(want.data as Float32Array)).toBeGreaterThan(0);
        expectClose(asTensor(result.gradients[entry] as torch.Tensor), want, relativeTo(want, TOL), entry);
        continue;
      }
      const calls = expected.layers![entry];
      const got = c.options.calls === 'all' ? (result.gradients[entry] as torch.Tensor[]) : [result.gradients[entry] as torch.Tensor];
      const want = c.options.calls === 'all' ? calls : [calls[calls.length - 1]];
      expect({ entry, calls: got.length }).toEqual({ entry, calls: want.length });
      got.forEach((g, i) => {
        expect(maxAbs(want[i].data as Float32Array)).toBeGreaterThan(0);
        expectClose(g, want[i], relativeTo(want[i], TOL), `${entry} call ${i}`);
      });
    }
    result.dispose();
  } finally {
    model.dispose();
  }
});

describe('the program behind it', () => {
  let model: torch.Model;
  beforeAll(async () => {
    model = await torch.load(modelPath('resnet18.pt'));
  });
  afterAll(() => model?.dispose());

  test('an objective on layer3 stops the forward there: no layer4, no fc', async () => {
    const info = await torch.inspect(model, { capture: ['layer3'], gradient: ['layer2'] });
    expect(info.calledModules.some((m) => m.startsWith('layer4') || m === 'fc' || m === 'avgpool')).toBe(false);
    expect(info.opCounts['torchscope::gradient_tap']).toBe(1);
  });

  test('gradients leave the parameters as they were and accumulate nothing (the same call twice is bit-identical)', async () => {
    const x = toTorch(image);
    const first = await torch.gradients(model, x, { target: 3, wrt: 'input' });
    const second = await torch.gradients(model, x, { target: 3, wrt: 'input' });
    expectClose(asTensor(second.gradients.input as torch.Tensor), asTensor(first.gradients.input as torch.Tensor), 0, 'second call');
    const plain = await model.forward(x);
    expectClose(asTensor(plain), asTensor(await model.forward(x)), 0, 'forward after');
  });

  test('a layer the objective does not depend on has a zero gradient', async () => {
    const result = await torch.gradients(model, toTorch(image), { objective: { layer: 'layer2', channel: 0 }, wrt: ['layer1', 'layer3'] });
    expect(maxAbs((result.gradients.layer3 as torch.Tensor).data() as Float32Array)).toBe(0);
    expect(maxAbs((result.gradients.layer1 as torch.Tensor).data() as Float32Array)).toBeGreaterThan(0);
  });
});

describe('bad requests reject with typed codes', () => {
  let model: torch.Model;
  let bert: torch.Model;
  beforeAll(async () => {
    [model, bert] = await Promise.all([torch.load(modelPath('resnet-tiny.pt')), torch.load(modelPath('bert-tiny-cls.pt'))]);
  });
  afterAll(() => {
    model?.dispose();
    bert?.dispose();
  });
  const x = () => toTorch(hostRandn([1, 3, 32, 32], 2));

  test.each([
    ['wrt an unknown layer', { target: 1, wrt: ['layer9'] }, 'UNKNOWN_LAYER', /layer9/],
    ['wrt an input that was not given', { target: 1, wrt: ['input:1'] }, 'INVALID_ARGUMENT', /'input:1': forward was given 1 input/],
    ['wrt the same input twice', { target: 1, wrt: ['input', 'input:0'] }, 'INVALID_ARGUMENT', /names input 0 twice/],
    ['a target out of range', { target: 10, wrt: 'input' }, 'INVALID_ARGUMENT', /target 10 is out of range/],
    ['a channel objective without its layer', { objective: { channel: 1 }, wrt: 'input' }, 'INVALID_ARGUMENT', /reads a layer: name it/],
    [
      'objectives on two layers',
      {
        objective: [
          { layer: 'layer1', channel: 1 },
          { layer: 'layer2', channel: 1 },
        ],
        wrt: 'input',
      },
      'INVALID_ARGUMENT',
      /objectives read one layer/,
    ],
    ['a target and an objective', { target: 1, objective: { logit: 1 }, wrt: 'input' }, 'INVALID_ARGUMENT', /one of the two/],
  ] as [string, torch.GradientsOptions, torch.ErrorCode, RegExp][])('%s', async (_name, options, code, message) => {
    await expectTorchscopeError(() => torch.gradients(model, x(), options), code, message);
    expect(asTensor(await model.forward(x())).shape).toEqual([1, 10]);
  });

  test('token ids have no gradient: DTYPE, naming the way to attribute them', async () => {
    await expectTorchscopeError(
      () => torch.gradients(bert, [toTorch(ids), toTorch(mask)], { target: 0, wrt: 'input' }),
      'DTYPE',
      /only floating-point inputs have gradients/,
    );
  });
});
