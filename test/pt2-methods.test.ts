// Every method on a torch.export program (.pt2) through the one instrumentation interface, against
// the same weights as a TorchScript trace: models/resnet18.pt2 / gpt2.pt2 (dynamic batch and
// image size / sequence length) and resnet18.pt / gpt2.pt (scripts/export-models.py). The
// TorchScript path is itself checked against Captum, TransformerLens and PyTorch references in
// the other suites; here each method's result on the .pt2 must equal it (1e-5 x max |value|).
import * as torch from '../lib';
import { expectClose, expectTorchscopeError, hostRandn, maxAbs, modelPath, randint, toTorch } from './helpers';

const TOL = 1e-5;

function expectSame(actual: torch.Tensor, expected: torch.Tensor, label: string): void {
  expectClose(actual, expected, TOL * Math.max(1, maxAbs(expected.data() as Float32Array)), label);
}

describe('ResNet-18 (.pt2 vs TorchScript)', () => {
  let traced: torch.Model;
  let exported: torch.Model;
  const image = () => toTorch(hostRandn([2, 3, 64, 64], 5));

  beforeAll(async () => {
    traced = await torch.load(modelPath('resnet18.pt'));
    exported = await torch.load(modelPath('resnet18.pt2'));
  });
  afterAll(() => {
    traced.dispose();
    exported.dispose();
  });

  test('modules, call sites and what cannot be hooked', () => {
    const byPath = new Map(exported.modules().map((m) => [m.path, m]));
    for (const m of traced.modules().filter((t) => t.path && t.hookable && !t.path.endsWith('relu'))) {
      expect(byPath.get(m.path)).toMatchObject({ hookable: true });
    }
    // ResNet's ReLU module runs twice per block, as eager hooks see it.
    expect(byPath.get('layer1.0.relu')).toMatchObject({ hookable: true, callSites: 2 });
    expect(exported.inputs).toEqual([{ name: 'x', type: 'Tensor' }]);
  });

  test('gradients with respect to the input and layers, through a patch', async () => {
    const options: torch.GradientsOptions = { target: [7, 400], wrt: ['input', 'layer2', 'layer4.1'], patch: { layer3: { scale: 0.5 } } };
    const want = await torch.gradients(traced, [image()], options);
    const got = await torch.gradients(exported, [image()], options);
    for (const key of ['input', 'layer2', 'layer4.1']) expectSame(got.gradients[key] as torch.Tensor, want.gradients[key] as torch.Tensor, key);
  });

  test('integrated gradients and layer GradCAM', async () => {
    for (const options of [
      { method: 'integratedGradients', target: [3, 9], steps: 8 },
      { method: 'layerGradCam', layer: 'layer4', target: [3, 9] },
    ] as torch.AttributeOptions[]) {
      const want = await torch.attribute(traced, [image()], options);
      const got = await torch.attribute(exported, [image()], options);
      expectSame(got.attributions, want.attributions, options.method);
    }
  });

  test('maximize a layer3 channel: the same images step by step', async () => {
    const options: torch.MaximizeOptions = { channel: 5, steps: 4, size: 64, seed: 3 };
    const want = await torch.maximize(traced, 'layer3', options);
    const got = await torch.maximize(exported, 'layer3', options);
    expectSame(got.image, want.image, 'image');
    expect(got.objective.length).toBe(want.objective.length);
  });

  test('inspect: the run stops after the last capture', async () => {
    const summary = await torch.inspect(exported, { capture: ['layer2'] });
    expect(summary.numerics).toBe('exact');
    expect(summary.calledModules).toContain('layer2.1');
    expect(summary.calledModules).not.toContain('layer3');
  });

  test("inputs by name, as Python's model(**kwargs), for both formats; an unknown name is refused", async () => {
    for (const model of [traced, exported]) {
      const positional = (await model.forward(image())) as torch.Tensor;
      expectSame((await model.forward({ x: image() })) as torch.Tensor, positional, 'forward({ x })');
      const captured = (await torch.activations(model, 'layer2', { x: image() })) as torch.Tensor;
      expectSame(captured, (await torch.activations(model, 'layer2', image())) as torch.Tensor, 'activations by name');
      await expectTorchscopeError(() => model.forward({ image: image() }), 'INVALID_ARGUMENT', /no argument 'image' \(it takes x\)/);
    }
  });

  test('an image smaller than its exported range: SHAPE', async () => {
    await expectTorchscopeError(() => exported.forward(toTorch(hostRandn([1, 3, 32, 32], 1))), 'SHAPE', /height|s\d+/);
  });
});

describe('GPT-2 small (.pt2 vs TorchScript)', () => {
  let traced: torch.Model;
  let exported: torch.Model;
  const ids = () => torch.tensor(randint(16, 50257, 11), [2, 8], 'int64');
  const corrupted = () => torch.tensor(randint(16, 50257, 12), [2, 8], 'int64');
  const logitsOf = (value: torch.Value) => (value instanceof torch.Tensor ? value : ((value as Record<string, torch.Value>).logits as torch.Tensor));

  beforeAll(async () => {
    traced = await torch.load(modelPath('gpt2.pt'));
    exported = await torch.load(modelPath('gpt2.pt2'));
  });
  afterAll(() => {
    traced.dispose();
    exported.dispose();
  });

  test('forward, and the residual stream of every block', async () => {
    const layers = Array.from({ length: 12 }, (_, i) => `transformer.h.${i}`);
    const want = await torch.run(traced, [ids()], { capture: layers });
    const got = await torch.run(exported, [ids()], { capture: layers });
    expectSame(logitsOf(got.output), logitsOf(want.output), 'logits');
    for (const layer of layers) {
      const w = want.activations[layer];
      expectSame(got.activations[layer] as torch.Tensor, (Array.isArray(w) ? w[0] : w) as torch.Tensor, layer);
    }
  });

  test('logit lens through ln_f and the head', async () => {
    const options = { layers: ['transformer.h.3', 'transformer.h.7:input', 'transformer.h.11'], head: ['transformer.ln_f', 'lm_head'], topK: 5 };
    const want = await torch.logitLens(traced, [ids()], options);
    const got = await torch.logitLens(exported, [ids()], options);
    expectSame(got.logits, want.logits, 'top logits');
    expect(Array.from(got.indices!.data() as BigInt64Array)).toEqual(Array.from(want.indices!.data() as BigInt64Array));
  });

  test('an activation patching sweep over positions', async () => {
    const options = { layers: ['transformer.h.0', 'transformer.h.5:input'], metric: { logitDiff: [11, 42] as [number, number] } };
    const want = await torch.patchingSweep(traced, { clean: ids(), corrupted: corrupted(), ...options });
    const got = await torch.patchingSweep(exported, { clean: ids(), corrupted: corrupted(), ...options });
    expectSame(got.results, want.results, 'sweep');
  });

  test('steered greedy generation: the same tokens', async () => {
    const steer = torch.tensor(
      Float32Array.from({ length: 768 }, (_, i) => Math.sin(i) * 4),
      [768],
    );
    const options = { maxNewTokens: 5, patch: { 'transformer.h.4': { add: steer } } };
    const want = await torch.generate(traced, [464, 3290, 318], options).result;
    const got = await torch.generate(exported, [464, 3290, 318], options).result;
    expect(got.ids).toEqual(want.ids);
  });

  test('model.call runs a submodule alone: ln_f on a captured residual', async () => {
    const residual = (await torch.activations(exported, 'transformer.h.11', ids())) as torch.Tensor;
    const want = (await traced.call('transformer.ln_f', residual)) as torch.Tensor;
    const got = (await exported.call('transformer.ln_f', residual)) as torch.Tensor;
    expectSame(got, want, 'ln_f');
    const args = await exported.signature('transformer.ln_f');
    expect(args.map((a) => a.type)).toEqual(['Tensor']);
  });
});
