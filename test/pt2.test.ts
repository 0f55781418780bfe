// torch.export programs (.pt2), torchscope's second model format, against eager PyTorch. Every
// model of models/pt2/manifest.json (scripts/zoo/pt2.py: a ResNet, Hugging Face BERT, GPT-2 and
// Llama, an LSTM, a UNet, torch.cond, a dynamic batch), in both IRs (the training IR that
// torch.export.export gives, and core ATen after run_decompositions), through the public API:
// forward, captures of every call, ':input', node-level points ('<module>/<node>' as the manifest
// names them per IR: attention softmaxes, residual additions), zero and scale patches, and
// torch.gradients of sum(output * W) w.r.t. float inputs and layer outputs. The reference is
// test/python/pt2_reference.py, run once: the eager module rebuilt from the same seeded builder
// (not read from the .pt2), with forward hooks. 1e-5 x max |expected| (float32).
// A module's capture is compared whole where the program holds its call signature
// (preserve_module_call_signature); elsewhere the program knows only the outputs used outside
// the module (an attention's probabilities are not), and its tensors are compared, in order,
// with the first ones eager's hook saw.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  describeValue,
  expectClose,
  expectTorchscopeError,
  expectValueClose,
  maxAbs,
  MODELS,
  readValue,
  refInput,
  RefValue,
  relativeTolerance,
  removeDir,
  ROOT,
  runPythonScript,
  scratchDir,
  Tolerance,
  refTensorsOf,
  valueTensorsOf,
} from './helpers';

const PT2 = path.join(MODELS, 'pt2');
const PT2_REFERENCE = path.join(ROOT, 'test', 'python', 'pt2_reference.py');
// 1e-5 x max(1, max |expected|) for one tensor (integer ones exact), and as a Tolerance.
const relative = relativeTolerance(1e-5) as (expected: RefTensor) => number;
const bound = (expected: RefTensor) => (expected.data instanceof BigInt64Array ? 0 : relative(expected));
const TOL: Tolerance = bound;
const IRS = ['training', 'core'] as const;
type Ir = (typeof IRS)[number];
const WEIGHTS_SEED = 7;
const SCALE = 0.5;

type RefTensor = Extract<RefValue, { type: 'tensor' }>;

interface NodePoint {
  id: string;
  kind: 'softmax' | 'residual';
  module: string;
  points: Record<Ir, string>;
}

interface Pt2Entry {
  name: string;
  family: string;
  files: Record<Ir, string>;
  torchscript: string | null;
  inputs: { name: string; dtype: string; shape: number[]; dynamic: Record<string, { name: string; min: number; max: number }> }[];
  altInputs: { shape: number[][]; accepted: Record<Ir, boolean> } | null;
  capture: string[];
  multiCall: string[];
  patch: string;
  /** Eager forward-hook calls per capture and patch path on inputs(0). */
  calls: Record<string, number>;
  branches: { module: string; modules: string[]; seeds: number[] }[];
  nodes: NodePoint[];
  grad: { inputs: number[]; layers: string[] };
  preserved: Record<Ir, string[]>;
}

interface Pt2Result {
  inputs: RefValue[];
  output: RefValue;
  captures: Record<string, RefValue[]>;
  nodes: Record<string, RefValue[]>;
  grad?: { weights: RefTensor; objective: number[]; inputs: RefTensor[]; layers: Record<string, RefTensor[]> };
}

const manifest = JSON.parse(fs.readFileSync(path.join(PT2, 'manifest.json'), 'utf8')) as { models: Pt2Entry[] };
const entries = manifest.models;

/** What a plain case captures: the manifest's paths and the first one's input. */
const capturesOf = (e: Pt2Entry) => [...e.capture, `${e.capture[0]}:input`];
const branchModules = (e: Pt2Entry) => e.branches.map((b) => b.module);

let dir: string;
let results: Map<string, Pt2Result>;

beforeAll(async () => {
  dir = scratchDir('pt2');
  const cases = entries.flatMap((e) => {
    const nodes = e.nodes.map((n) => n.id);
    const grad = { ...e.grad, weightsSeed: WEIGHTS_SEED };
    return [
      { id: `${e.name}/plain`, model: e.name, seed: 0, capture: capturesOf(e), nodes, grad },
      { id: `${e.name}/zero`, model: e.name, seed: 0, capture: e.capture, nodes, patch: { [e.patch]: { mode: 'zero' } } },
      { id: `${e.name}/scale`, model: e.name, seed: 0, capture: e.capture, nodes, patch: { [e.patch]: { mode: 'scale', scale: SCALE } } },
      ...(e.altInputs ? [{ id: `${e.name}/alt`, model: e.name, seed: 2, alt: true, capture: e.capture, grad }] : []),
      ...(e.branches.length ? [0, 1].map((seed) => ({ id: `${e.name}/seed${seed}`, model: e.name, seed, capture: [...e.capture, ...branchModules(e)] })) : []),
    ];
  });
  const out = path.join(dir, 'out');
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out, manifest: path.join(PT2, 'manifest.json'), cases }));
  await runPythonScript(PT2_REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  const perCall = (record: Record<string, any[]>) => Object.fromEntries(Object.entries(record).map(([k, v]) => [k, v.map(readValue)]));
  results = new Map();
  for (const [id, raw] of Object.entries<any>(index.cases)) {
    if (raw.error) throw new Error(`pt2 reference case '${id}' failed in Python: ${raw.error}`);
    const grad = raw.grad && {
      weights: readValue(raw.grad.weights) as RefTensor,
      objective: raw.grad.objective,
      inputs: raw.grad.inputs.map(readValue),
      layers: perCall(raw.grad.layers),
    };
    results.set(id, { inputs: raw.inputs.map(readValue), output: readValue(raw.output), captures: perCall(raw.captures), nodes: perCall(raw.nodes), grad });
  }
}, 600_000);

afterAll(() => removeDir(dir));

function reference(id: string): Pt2Result {
  const result = results?.get(id);
  if (!result) throw new Error(`no pt2 reference result '${id}' (did the reference run in beforeAll fail?)`);
  return result;
}

/** Fresh inputs per call: a model may change its inputs in place. */
const inputsOf = (id: string) => reference(id).inputs.map(refInput);

/** A captured value against eager's: whole where the call signature is preserved, else as the header says. */
function expectCaptureClose(entry: Pt2Entry, ir: Ir, layer: string, actual: torch.Value, expected: RefValue, label: string): void {
  if (entry.preserved[ir].includes(layer.replace(/:input$/, '')) || expected.type === 'tensor') {
    expectValueClose(actual, expected, TOL, label);
    return;
  }
  const got = valueTensorsOf(actual);
  const want = refTensorsOf(expected);
  if (got.length === 0 || got.length > want.length) {
    throw new Error(`${label}: the program's ${describeValue(actual)} is not a prefix of eager's ${want.length} tensors`);
  }
  got.forEach((t, i) => expectClose(t, want[i], bound(want[i]), `${label} tensor ${i}`));
}

function expectCapturesClose(entry: Pt2Entry, ir: Ir, got: Record<string, torch.Value>, want: Record<string, RefValue[]>, label: string): void {
  for (const [layer, calls] of Object.entries(want)) {
    const actual = got[layer] as torch.Value[];
    expect({ layer, calls: actual.length }).toEqual({ layer, calls: calls.length });
    calls.forEach((call, i) => expectCaptureClose(entry, ir, layer, actual[i], call, `${label} ${layer} call ${i}`));
  }
}

/** torch.gradients' objective for sum(output * W): per batch row, a weighted sum of the row's flattened logits. */
function weightedSum(weights: RefTensor): torch.Objective[] {
  const rows = weights.shape[0];
  const data = weights.data as Float32Array;
  const per = data.length / rows;
  return Array.from({ length: rows }, (_, row) => ({
    sum: Array.from({ length: per }, (_, i) => ({ weight: data[row * per + i], objective: { logit: i } })),
  }));
}

async function expectGradientsClose(model: torch.Model, entry: Pt2Entry, id: string): Promise<void> {
  const want = reference(id).grad!;
  for (const g of [...want.inputs, ...Object.values(want.layers).flat()]) expect(maxAbs(g.data as Float32Array)).toBeGreaterThan(0);
  const wrt = [...entry.grad.inputs.map((i) => `input:${i}`), ...entry.grad.layers];
  const result = await torch.gradients(model, inputsOf(id), { objective: weightedSum(want.weights), wrt, calls: 'all' });
  try {
    expect(result.objective).toHaveLength(want.objective.length);
    result.objective.forEach((v, i) => expect(Math.abs(v - want.objective[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want.objective[i]))));
    entry.grad.inputs.forEach((input, i) =>
      expectClose(result.gradients[`input:${input}`] as torch.Tensor, want.inputs[i], bound(want.inputs[i]), `input:${input}`),
    );
    for (const layer of entry.grad.layers) {
      const got = result.gradients[layer] as torch.Tensor[];
      expect({ layer, calls: got.length }).toEqual({ layer, calls: want.layers[layer].length });
      got.forEach((g, i) => expectClose(g, want.layers[layer][i], bound(want.layers[layer][i]), `${layer} call ${i}`));
    }
  } finally {
    result.dispose();
  }
}

test('the manifest has the eight models, half exported with their call signatures, and node points in both IRs', () => {
  expect(entries.map((e) => e.name).sort()).toEqual(['bert', 'cond', 'dynbatch', 'gpt2', 'llama', 'lstm', 'resnet', 'unet']);
  expect(
    entries
      .filter((e) => e.preserved.training.length > 0)
      .map((e) => e.name)
      .sort(),
  ).toEqual(['bert', 'cond', 'llama', 'lstm']);
  for (const entry of entries) {
    for (const ir of IRS) expect(fs.existsSync(path.join(PT2, entry.files[ir]))).toBe(true);
    for (const node of entry.nodes) for (const ir of IRS) expect(node.points[ir].startsWith(`${node.module}/`)).toBe(true);
  }
  expect(
    entries
      .filter((e) => e.nodes.some((n) => n.kind === 'softmax'))
      .map((e) => e.name)
      .sort(),
  ).toEqual(['bert', 'gpt2', 'llama']);
});

describe.each(entries)('$name: $family', (entry) => {
  describe.each(IRS)('%s IR', (ir) => {
    let model: torch.Model;
    beforeAll(async () => {
      model = await torch.load(path.join(PT2, entry.files[ir]));
    });
    afterAll(() => model?.dispose());

    test('modules(): the captured, patched and node modules are hookable; nodes(module) lists each node point', async () => {
      const byPath = new Map(model.modules().map((m) => [m.path, m]));
      for (const layer of [...entry.capture, entry.patch, ...entry.grad.layers, ...entry.nodes.map((n) => n.module)]) {
        expect({ layer, ...byPath.get(layer) }).toMatchObject({ layer, hookable: true });
      }
      for (const [layer, calls] of Object.entries(entry.calls)) expect({ layer, callSites: byPath.get(layer)?.callSites }).toEqual({ layer, callSites: calls });
      expect(model.inputs.map((i) => i.name)).toEqual(entry.inputs.map((i) => i.name));
      for (const node of entry.nodes) {
        const listed = (await model.nodes(node.module)).find((n) => n.name === node.points[ir]);
        expect({ point: node.points[ir], op: listed?.op }).toEqual({
          point: node.points[ir],
          op: expect.stringMatching(node.kind === 'softmax' ? /softmax/ : /add/),
        });
      }
    });

    test(`forward, and captures of every call of ${capturesOf(entry).join(', ')}, equal eager`, async () => {
      const want = reference(`${entry.name}/plain`);
      expectValueClose(await model.forward(...inputsOf(`${entry.name}/plain`)), want.output, TOL, 'output');
      const all = await torch.activations(model, { layers: capturesOf(entry), calls: 'all' }, ...inputsOf(`${entry.name}/plain`));
      expectCapturesClose(entry, ir, all, want.captures, 'capture');
      for (const layer of entry.multiCall) expect({ layer, calls: want.captures[layer].length }).toEqual({ layer, calls: 2 });
    });

    if (entry.nodes.length > 0) {
      test(`node points ${entry.nodes.map((n) => n.points[ir]).join(', ')} equal eager (attention probabilities, residual sums)`, async () => {
        const want = reference(`${entry.name}/plain`).nodes;
        const points = entry.nodes.map((n) => n.points[ir]);
        const got = await torch.activations(model, { layers: points, calls: 'all' }, ...inputsOf(`${entry.name}/plain`));
        for (const node of entry.nodes) {
          const calls = got[node.points[ir]] as torch.Value[];
          expect({ point: node.points[ir], calls: calls.length }).toEqual({ point: node.points[ir], calls: want[node.id].length });
          want[node.id].forEach((value, i) => expectValueClose(calls[i], value, TOL, `${node.points[ir]} call ${i}`));
        }
      });
    }

    test.each([
      ['zero', { zero: true }],
      ['scale', { scale: SCALE }],
    ] as [string, torch.PatchSpec][])(`a %s patch of ${entry.patch}: output, captures and node points equal eager's`, async (mode, spec) => {
      const want = reference(`${entry.name}/${mode}`);
      const points = entry.nodes.map((n) => n.points[ir]);
      const result = await torch.run(model, inputsOf(`${entry.name}/${mode}`), {
        patch: { [entry.patch]: spec },
        capture: [...entry.capture, ...points],
        calls: 'all',
      });
      try {
        expect(result.notRun).toEqual([]);
        expectValueClose(result.output, want.output, TOL, 'patched output');
        expectCapturesClose(entry, ir, result.activations, want.captures, 'patched capture');
        for (const node of entry.nodes)
          want.nodes[node.id].forEach((v, i) => expectValueClose((result.activations[node.points[ir]] as torch.Value[])[i], v, TOL, node.points[ir]));
        expect(() => expectValueClose(result.output, reference(`${entry.name}/plain`).output, 1e-5)).toThrow();
      } finally {
        result.dispose();
      }
    });

    test(`torch.gradients of sum(output * W) w.r.t. ${[...entry.grad.inputs.map((i) => `input:${i}`), ...entry.grad.layers].join(', ')} equal eager autograd`, async () => {
      await expectGradientsClose(model, entry, `${entry.name}/plain`);
    });

    const alt = entry.altInputs;
    if (alt) {
      if (alt.accepted[ir]) {
        test(`at another shape (${alt.shape.map((s) => `[${s}]`).join(', ')}): forward, captures and gradients equal eager`, async () => {
          const want = reference(`${entry.name}/alt`);
          const result = await torch.run(model, inputsOf(`${entry.name}/alt`), { capture: entry.capture, calls: 'all' });
          expectValueClose(result.output, want.output, TOL, 'output');
          expectCapturesClose(entry, ir, result.activations, want.captures, 'capture');
          result.dispose();
          await expectGradientsClose(model, entry, `${entry.name}/alt`);
        });
      } else {
        test(`at another shape (${alt.shape.map((s) => `[${s}]`).join(', ')}), which the program was not exported for (torch.export's module() refuses it too): SHAPE`, async () => {
          await expectTorchscopeError(() => model.forward(...inputsOf(`${entry.name}/alt`)), 'SHAPE');
          await expectTorchscopeError(() => torch.activations(model, entry.capture, ...inputsOf(`${entry.name}/alt`)), 'SHAPE');
        });
      }
    }

    const dynamic = entry.inputs.flatMap((input, index) => Object.entries(input.dynamic).map(([dim, range]) => ({ index, dim: Number(dim), ...range })));
    for (const d of dynamic) {
      test(`'${d.name}' above its max (${d.max + 1}), and a static dimension changed: SHAPE`, async () => {
        const shaped = (change: (shape: number[]) => void) =>
          entry.inputs.map((input) => {
            const shape = [...input.shape];
            if (input === entry.inputs[d.index]) change(shape);
            return torch.zeros(shape, input.dtype as torch.DType);
          });
        await expectTorchscopeError(() => model.forward(...shaped((s) => (s[d.dim] = d.max + 1))), 'SHAPE');
        const staticDim = entry.inputs[d.index].shape.findIndex((_, i) => !(String(i) in entry.inputs[d.index].dynamic));
        await expectTorchscopeError(() => model.forward(...shaped((s) => (s[staticDim] += 1))), 'SHAPE');
        expectValueClose(await model.forward(...inputsOf(`${entry.name}/plain`)), reference(`${entry.name}/plain`).output, TOL, 'a good call after');
      });
    }

    // torch.export keeps no module metadata inside torch.cond's branch subgraphs, and eager
    // PyTorch refuses hooks there too (torch.cond compiles its branches and rejects their side
    // effects): a module that runs only in a branch is reported and refused, never guessed.
    for (const branch of entry.branches) {
      test(`${branch.module} runs only inside a torch.cond branch: unhookable with the reason; forward takes the branch each input picks`, async () => {
        const info = model.modules().find((m) => m.path === branch.module)!;
        expect(info).toMatchObject({ hookable: false, callSites: 0 });
        expect(info.reason).toMatch(/torch\.cond/);
        await expectTorchscopeError(
          () => torch.activations(model, [...entry.capture, branch.module], ...inputsOf(`${entry.name}/seed0`)),
          'UNHOOKABLE_LAYER',
          /torch\.cond/,
        );
        for (const seed of [0, 1]) {
          const want = reference(`${entry.name}/seed${seed}`);
          expect(want.captures[branch.module].length > 0).toBe(branch.seeds.includes(seed));
          const got = await torch.run(model, inputsOf(`${entry.name}/seed${seed}`), { capture: entry.capture, calls: 'all' });
          expectValueClose(got.output, want.output, TOL, `seed ${seed} output`);
          expectCapturesClose(entry, ir, got.activations, Object.fromEntries(entry.capture.map((l) => [l, want.captures[l]])), `seed ${seed}`);
          got.dispose();
        }
      });
    }
  });

  if (entry.torchscript) {
    test(`the TorchScript twin ${entry.torchscript} (same weights) gives eager's output`, async () => {
      const model = await torch.load(path.join(PT2, entry.torchscript!));
      try {
        const want = reference(`${entry.name}/plain`).output;
        expectValueClose(await model.forward(...inputsOf(`${entry.name}/plain`)), refTensorsOf(want)[0], TOL, 'output');
      } finally {
        model.dispose();
      }
    });
  }
});
