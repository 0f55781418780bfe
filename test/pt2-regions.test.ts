// Higher-order regions of a torch.export program: a no_grad block, an autocast (bfloat16) block and
// a while_loop, exported now in the training IR and core ATen by test/python/pt2_regions_reference.py,
// against eager PyTorch with forward hooks. The training IR keeps the regions (its gradient is
// eager's: nothing flows through the no_grad block), and torchscope inlines them between mode
// markers, so the modules inside are hooked as eager hooks them; core ATen's run_decompositions
// inlines them itself, dropping their modules' metadata (its gradient is that of the model without
// the block, as it documents). Both compute eager's output.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectClose, expectTorchscopeError, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const TOL = 1e-5;

interface Flat {
  data: number[];
  shape: number[];
}
interface Reference {
  input: Flat;
  output: Flat;
  captures: Record<string, Flat>;
  grad: Flat;
  gradWithoutNoGrad: Flat;
  autocast: Flat;
}

let dir: string;
let ref: Reference;
const host = (flat: Flat) => ({ data: Float32Array.from(flat.data), shape: flat.shape, dtype: 'float32' as const });
const input = () => torch.tensor(Float32Array.from(ref.input.data), ref.input.shape);

beforeAll(async () => {
  dir = scratchDir('pt2-regions');
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out: dir }));
  await runPythonScript(path.join(ROOT, 'test', 'python', 'pt2_regions_reference.py'), [request]);
  ref = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
}, 120_000);
afterAll(() => removeDir(dir));

describe.each(['training', 'core'] as const)('%s IR', (ir) => {
  let model: torch.Model;
  beforeAll(async () => {
    model = await torch.load(path.join(dir, `regions.${ir}.pt2`));
  });
  afterAll(() => model.dispose());

  test("forward and the captures of the modules outside the regions equal eager's", async () => {
    const result = await torch.run(model, [input()], { capture: ['inp', 'out'] });
    expectClose(result.output as torch.Tensor, host(ref.output), TOL, 'output');
    for (const layer of ['inp', 'out']) expectClose(result.activations[layer] as torch.Tensor, host(ref.captures[layer]), TOL, layer);
    result.dispose();
  });

  test(
    ir === 'training' ? "the input's gradient is eager's: none flows through the no_grad block" : 'the gradient flows through the inlined no_grad block',
    async () => {
      const got = await torch.gradients(model, [input()], { target: 1, wrt: ['input'] });
      expectClose(got.gradients.input as torch.Tensor, host(ir === 'training' ? ref.grad : ref.gradWithoutNoGrad), TOL, 'input gradient');
    },
  );

  test("precision 'bf16' runs the whole program under autocast: eager torch.autocast's output", async () => {
    const got = await torch.run(model, [input()], { precision: 'bf16', upcast: true });
    expectClose(got.output as torch.Tensor, host(ref.autocast), TOL, 'bf16 output');
    got.dispose();
  });

  if (ir === 'training') {
    test("the modules inside the regions are hooked: their outputs are eager's (the autocast one's bfloat16, upcast)", async () => {
      const result = await torch.run(model, [input()], { capture: ['frozen', 'cast'], upcast: true });
      for (const layer of ['frozen', 'cast']) expectClose(result.activations[layer] as torch.Tensor, host(ref.captures[layer]), TOL, layer);
      const nodes = await model.nodes('frozen');
      expect(nodes.map((n) => n.op)).toEqual(['aten::linear']);
      expectClose((await torch.activations(model, nodes[0].name, input())) as torch.Tensor, host(ref.captures.frozen), TOL, nodes[0].name);
      result.dispose();
    });

    test('a zero patch inside the no_grad block reaches the output; the next call is unpatched', async () => {
      const patched = await torch.run(model, [input()], { patch: { frozen: { zero: true } }, capture: ['frozen'] });
      expect(Math.max(...Array.from((patched.activations.frozen as torch.Tensor).data() as Float32Array, Math.abs))).toBe(0);
      const plain = (await model.forward(input())) as torch.Tensor;
      expectClose(plain, host(ref.output), TOL, 'output after');
      const changed = Array.from((patched.output as torch.Tensor).data() as Float32Array, (v, i) => Math.abs(v - ref.output.data[i]));
      expect(Math.max(...changed)).toBeGreaterThan(1e-3);
      patched.dispose();
    });
  } else {
    test('the modules whose blocks core ATen inlined carry no module metadata: unhookable, with the reason', async () => {
      for (const layer of ['frozen', 'cast']) {
        expect(model.modules().find((m) => m.path === layer)!.hookable).toBe(false);
        await expectTorchscopeError(() => torch.activations(model, layer, input()), 'UNHOOKABLE_LAYER', new RegExp(layer));
      }
    });
  }
});
