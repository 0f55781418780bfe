// The model zoo: architectures this repository did not design (scripts/zoo/, exported at
// set-up into models/zoo/): Hugging Face GPT-2 with its LM head, DistilBERT, RoBERTa, ViT,
// MobileNetV3/EfficientNet/ConvNeXt-style CNNs, scripted and traced LSTM, GRU and
// TransformerEncoder, a UNet, dict and list inputs and outputs, float64, bfloat16, modules
// called repeatedly and in loops. For every model, in exact and optimize modes: forward, the
// captures of its layers (every call, calls 'all' and 'last') and a zero patch, against eager
// PyTorch forward hooks computed now by test/python/zoo_reference.py on the same weights and
// inputs. Exact: 1e-5 absolute; optimize: 1e-4 x max |expected| (the documented bar).
// Scripted models return what eager returns, compared structure for structure. A trace keeps
// only the outputs of a submodule that are used and flattens nested tuples and dicts (traced
// LSTM: (out, h, c) for eager's (out, (h, c)); a Hugging Face attention: its context tensor
// alone): there the captured tensors are compared, in order, with the first ones eager's hook
// saw.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import {
  describeValue,
  expectClose,
  expectValueClose,
  MODELS,
  readValue,
  RefValue,
  refInput,
  relativeTolerance,
  removeDir,
  ROOT,
  runPythonScript,
  scratchDir,
  Tolerance,
  widenRef,
  refTensorsOf,
  valueTensorsOf,
} from './helpers';

const ZOO = path.join(MODELS, 'zoo');
const ZOO_REFERENCE = path.join(ROOT, 'test', 'python', 'zoo_reference.py');
const EXACT_TOL = 1e-5;
const OPTIMIZE_TOL = relativeTolerance(1e-4);

interface ZooEntry {
  name: string;
  file: string;
  mode: 'script' | 'trace';
  family: string;
  dtype: string;
  capture: string[];
  multiCall: string[];
  singleCalls: string;
  patch: string;
  notes: string;
}

interface ZooResult {
  inputs: RefValue[];
  output: RefValue;
  captures: Record<string, RefValue[]>;
}

const manifest = JSON.parse(fs.readFileSync(path.join(ZOO, 'manifest.json'), 'utf8')) as { models: ZooEntry[] };
const entries = manifest.models;

let dir: string;
// A case PyTorch itself cannot compute on this CPU (oneDNN has no bf16 LSTM without AVX-512
// BF16) is kept with its error: it fails the tests that need it, with the reason, and no other.
let results: Map<string, ZooResult | { error: string }>;

beforeAll(async () => {
  dir = scratchDir('zoo');
  const cases = entries.flatMap((e) => [
    { id: `${e.name}/plain`, model: e.name, seed: 0, capture: e.capture },
    { id: `${e.name}/patch`, model: e.name, seed: 0, capture: e.capture, patch: { [e.patch]: { mode: 'zero' } } },
    ...(e.dtype === 'float32' ? [{ id: `${e.name}/bf16`, model: e.name, seed: 0, capture: e.capture, autocast: 'bf16' }] : []),
  ]);
  const out = path.join(dir, 'out');
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out, zoo: ZOO, cases }));
  await runPythonScript(ZOO_REFERENCE, [request]);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  results = new Map();
  for (const [id, raw] of Object.entries<any>(index.cases)) {
    if (raw.error) {
      console.log(`zoo reference case '${id}' fails in PyTorch on this CPU (${cpuDescription()}): ${raw.error}`);
      results.set(id, { error: String(raw.error) });
      continue;
    }
    results.set(id, {
      inputs: raw.inputs.map(readValue),
      output: readValue(raw.output),
      captures: Object.fromEntries(Object.entries<any[]>(raw.captures).map(([k, v]) => [k, v.map(readValue)])),
    });
  }
}, 600_000);

afterAll(() => removeDir(dir));

/** PyTorch's result for a case, or its error where PyTorch failed on this CPU. */
function outcome(id: string): ZooResult | { error: string } {
  const result = results?.get(id);
  if (!result) throw new Error(`no zoo reference result '${id}' (did the reference run in beforeAll fail?)`);
  return result;
}

function reference(id: string): ZooResult {
  const result = outcome(id);
  if ('error' in result) throw new Error(`zoo reference case '${id}' failed in Python on this CPU (${cpuDescription()}): ${result.error}`);
  return result;
}

function cpuDescription(): string {
  const { capability, onednn, bf16 } = torch.info().cpu;
  return `ATen ${capability}, oneDNN ${onednn}, bf16 ${bf16 ? 'native' : 'emulated'}`;
}

/** The tensors of a value, depth first (dict values in their order), Nones dropped. */
/** A captured value against eager's (see the header for traces). */
function expectCaptureClose(entry: ZooEntry, actual: torch.Value, expected: RefValue, tol: Tolerance, label: string): void {
  if (entry.mode === 'script') {
    expectValueClose(actual, expected, tol, label);
    return;
  }
  const got = valueTensorsOf(actual);
  const want = refTensorsOf(expected);
  if (got.length === 0 || got.length > want.length) {
    throw new Error(`${label}: the trace's ${describeValue(actual)} is not a prefix of eager's ${want.length} tensors`);
  }
  got.forEach((t, i) => expectClose(t, want[i], typeof tol === 'number' ? tol : tol(want[i]), `${label} tensor ${i}`));
}

test('the zoo has at least 12 architectures, each with 3+ captured layers', () => {
  const architectures = new Set(entries.map((e) => e.name.replace(/-(scripted|traced)$/, '')));
  expect(architectures.size).toBeGreaterThanOrEqual(12);
  for (const entry of entries) {
    expect(entry.capture.length).toBeGreaterThanOrEqual(3);
    // A module called several times is captured with calls: 'all', unless the architecture has none.
    expect({ name: entry.name, multiCallOrWhyNot: entry.multiCall.length > 0 || entry.singleCalls.length > 0 }).toEqual({
      name: entry.name,
      multiCallOrWhyNot: true,
    });
  }
});

describe.each(entries)('$name: $family', (entry) => {
  test('every captured and patched layer is hookable (model.modules())', async () => {
    const model = await torch.load(path.join(ZOO, entry.file));
    try {
      const byPath = new Map(model.modules().map((m) => [m.path, m]));
      for (const layer of [...entry.capture, entry.patch]) {
        expect({ layer, ...byPath.get(layer) }).toMatchObject({ layer, hookable: true });
      }
      for (const layer of entry.multiCall) expect(byPath.get(layer)!.callSites).toBeGreaterThanOrEqual(1);
    } finally {
      model.dispose();
    }
  });

  // Reduced-precision models are frozen only under optimize (no rewrite that rounds
  // differently), so their values are exact mode's.
  const reducedPrecision = entry.dtype === 'bfloat16' || entry.dtype === 'float16';
  describe.each([
    ['exact', false, EXACT_TOL],
    ['optimize', true, reducedPrecision ? EXACT_TOL : OPTIMIZE_TOL],
  ] as [string, boolean, Tolerance][])('%s', (_mode, optimize, tol) => {
    let model: torch.Model;
    let inputs: torch.Input[];
    beforeAll(async () => {
      model = await torch.load(path.join(ZOO, entry.file), { optimize });
    });
    beforeEach(() => {
      // Fresh inputs per test: a model may change its inputs in place.
      inputs = reference(`${entry.name}/plain`).inputs.map(refInput);
    });
    afterAll(() => model?.dispose());

    test('forward equals eager', async () => {
      expectValueClose(await model.forward(...inputs), reference(`${entry.name}/plain`).output, tol, 'output');
    });

    test(`captures of ${entry.capture.join(', ')}: every call equals eager forward hooks`, async () => {
      const eager = reference(`${entry.name}/plain`).captures;
      const all = (await torch.activations(model, { layers: entry.capture, calls: 'all' }, ...inputs)) as Record<string, torch.Value[]>;
      for (const layer of entry.capture) {
        expect({ layer, calls: all[layer].length }).toEqual({ layer, calls: eager[layer].length });
        eager[layer].forEach((call, i) => expectCaptureClose(entry, all[layer][i], call, tol, `${layer} call ${i}`));
      }
      for (const layer of entry.multiCall) expect({ layer, calls: eager[layer].length > 1 }).toEqual({ layer, calls: true });
      const last = (await torch.activations(model, entry.capture, ...refInputs(entry))) as Record<string, torch.Value>;
      for (const layer of entry.capture) expectCaptureClose(entry, last[layer], eager[layer][eager[layer].length - 1], tol, `${layer} (last)`);
    });

    test(`a zero patch of ${entry.patch}: output and captures equal eager's, and the output changed`, async () => {
      const eager = reference(`${entry.name}/patch`);
      const result = await torch.run(model, inputs, { patch: { [entry.patch]: { zero: true } }, capture: entry.capture, calls: 'all' });
      expect(result.notRun).toEqual([]);
      expectValueClose(result.output, eager.output, tol, 'patched output');
      for (const layer of entry.capture) {
        const calls = result.activations[layer] as torch.Value[];
        expect({ layer, calls: calls.length }).toEqual({ layer, calls: eager.captures[layer].length });
        eager.captures[layer].forEach((call, i) => expectCaptureClose(entry, calls[i], call, tol, `${layer} call ${i} (patched)`));
      }
      expect(() => expectValueClose(result.output, reference(`${entry.name}/plain`).output, EXACT_TOL)).toThrow();
    });
  });
});

// load({ precision: 'bf16' }) on every float32 architecture against PyTorch's torch.autocast
// around the eager module: the same kernels on the same values, within two units of bfloat16's
// last place of max(1, max |value|) (test/precision.test.ts's bar). Where oneDNN computes bf16
// natively (torch.info().cpu.bf16), convolutional programs that never view run channels-last
// (faster oneDNN kernels); where it is emulated they stay contiguous, as PyTorch runs them.
// Optimize casts the weights once instead of at every call: neither may change a value, so
// optimize equals exact bit for bit. dict-io's images come inside a dict, which is given as it
// is: its convolutions see contiguous inputs in a channels-last program, so they must get the
// contiguous weight (weight_layout.h). A case PyTorch's autocast cannot run on this CPU must fail
// in torchscope with PyTorch's error, typed, and leave the model working.
const CHANNELS_LAST = ['convnext', 'efficientnet', 'mobilenet-v3', 'unet', 'dict-io-scripted', 'dict-io-traced'];
const BF16_NATIVE = torch.info().cpu.bf16;
describe.each(entries.filter((e) => e.dtype === 'float32'))('$name in bf16', (entry) => {
  const layout = BF16_NATIVE ? 'convolutional ones run channels-last (bf16 native here)' : 'all run contiguous (bf16 emulated here)';
  test(`forward and captures equal PyTorch autocast, or fail as it fails; optimize equals exact; ${layout}`, async () => {
    const model = await torch.load(path.join(ZOO, entry.file), { precision: 'bf16', upcast: true, optimize: true });
    try {
      const info = await torch.inspect(model, { capture: entry.capture });
      expect(info.memoryFormat).toBe(BF16_NATIVE && CHANNELS_LAST.includes(entry.name) ? 'channels_last' : 'contiguous');
      const eager = outcome(`${entry.name}/bf16`);
      if ('error' in eager) {
        await expectPyTorchFailure(model, entry, eager.error);
        return;
      }
      const tol = relativeTolerance(2 ** -7);
      const result = await torch.run(model, eager.inputs.map(refInput), { capture: entry.capture });
      expectValueClose(result.output, widenRef(eager.output), tol, 'output');
      for (const layer of entry.capture) {
        expectCaptureClose(entry, result.activations[layer], widenRef(eager.captures[layer][eager.captures[layer].length - 1]), tol, layer);
      }
      const exact = await torch.load(path.join(ZOO, entry.file), { precision: 'bf16', upcast: true });
      try {
        const unoptimized = await torch.run(exact, eager.inputs.map(refInput), { capture: entry.capture });
        const values = (r: torch.RunResult) =>
          [r.output, ...entry.capture.map((l) => r.activations[l])].flatMap(valueTensorsOf).map((t) => Array.from(t.data() as Float32Array));
        expect(values(result)).toEqual(values(unoptimized));
        unoptimized.dispose();
      } finally {
        exact.dispose();
      }
      result.dispose();
    } finally {
      model.dispose();
    }
  });
});

/**
 * Where PyTorch's autocast fails on this CPU: the optimized and the exact bf16 program reject
 * with a TorchscopeError carrying PyTorch's message, and the model computes again afterwards
 * (a float32 call of it gives PyTorch's float32 values).
 */
async function expectPyTorchFailure(model: torch.Model, entry: ZooEntry, error: string): Promise<void> {
  // "RuntimeError: could not create a primitive descriptor for ... primitive. Run workload with ..."
  const reason = error.replace(/^\w+: /, '').split('. ')[0];
  const exact = await torch.load(path.join(ZOO, entry.file), { precision: 'bf16', upcast: true });
  try {
    for (const m of [model, exact]) {
      const failure = await torch.run(m, refInputs(entry), { capture: entry.capture }).then(
        () => new Error('the run succeeded'),
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(torch.TorchscopeError);
      expect((failure as Error).message).toContain(reason);
    }
    const after = await torch.run(model, refInputs(entry), { precision: 'fp32' });
    expectValueClose(after.output, reference(`${entry.name}/plain`).output, EXACT_TOL, 'a float32 call after');
    after.dispose();
  } finally {
    exact.dispose();
  }
}

// Float32 optimize on the CPU: the same programs run channels-last, each 2-D convolution
// prepacked once (native/torchscript/conv_prepack.h); 'forward equals eager' above checks their values.
describe.each(entries.filter((e) => e.dtype === 'float32'))('$name, float32 optimize', (entry) => {
  test('convolutional ones run channels-last with every 2-D convolution prepacked', async () => {
    const model = await torch.load(path.join(ZOO, entry.file), { optimize: true });
    try {
      const info = await torch.inspect(model, { capture: entry.capture });
      const channelsLast = CHANNELS_LAST.includes(entry.name);
      expect(info.memoryFormat).toBe(channelsLast ? 'channels_last' : 'contiguous');
      const convolutions = Object.keys(info.opCounts).filter((op) => /conv2d|_convolution$|mkldnn_convolution/.test(op));
      if (channelsLast) expect(convolutions).toEqual(['torchscope::prepacked_conv2d']);
      else expect(info.opCounts['torchscope::prepacked_conv2d']).toBeUndefined();
    } finally {
      model.dispose();
    }
  });
});

function refInputs(entry: ZooEntry): torch.Input[] {
  return reference(`${entry.name}/plain`).inputs.map(refInput);
}
