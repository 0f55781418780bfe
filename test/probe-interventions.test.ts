// A probe's direction put to use, against PyTorch on the eager models (test/python/probe_reference.py):
// steer() (an add patch) and projectOut() (the `project` patch mode: x - (x Q^T) Q over the
// channels, Q orthonormal over the directions' span) as forward hooks on the GPT-2 fixture
// (models/llm/gpt2, [N, S, H] outputs, also at chosen positions) and the digits CNN ([N, C] and
// [N, C, H, W] outputs); objective() as the direction objective on [N, S, H] (values and gradient
// against autograd) and in maximize. 1e-5 absolute (float32 forwards); every patched output is
// checked to have moved.
import * as torch from '../lib';
import { expectClose, expectTorchscopeError, randn, readValue, refTensor, removeDir, scratchDir } from './helpers';
import { BATCH, Exchange, HIDDEN, high, numbers, parity, ProbeData, probeData, Ref, relative, SEQ, thirds, VOCAB } from './helpers/probe';

const TOL = 1e-5;

let dir: string;
let data: ProbeData;
let x: torch.Tensor;
let y: Int32Array;
let digits: torch.Model;
let gpt2: torch.Model;
let ids: torch.Tensor;
const probes: Record<string, torch.Probe> = {};
let ref: Record<string, Ref>;

/** The first 40 digits as the CNN's input. */
const digitsImages = () => torch.tensor(Float32Array.from((x.data() as Float64Array).slice(0, 40 * 64)), [40, 1, 8, 8]);

beforeAll(async () => {
  dir = scratchDir('probe-interventions');
  const exchange = new Exchange(dir);
  data = await probeData(exchange);
  ({ x, y, digits, gpt2, ids } = data);
  const { acts, hidden, tokens } = data;
  const fitted = await Promise.all([
    torch.probe.fit({ x: hidden, labels: thirds(tokens) }),
    torch.probe.fit({ x: hidden, labels: Int32Array.from(tokens, (t) => (t < VOCAB / 2 ? 1 : 0)), l2: 0.1 }),
    torch.probe.fit({ x, labels: y }),
    torch.probe.fit({ x: acts, labels: y, l2: 4 }),
    torch.probe.fit({ kind: 'massMean', x: acts, labels: high(y) }),
    torch.probe.fit({ kind: 'linear', x: acts, labels: Float64Array.from(y) }),
  ]);
  ['tokens', 'tokenBinary', 'multinomial', 'acts', 'massMean', 'ridge'].forEach((name, i) => (probes[name] = fitted[i]));
  ref = (await exchange.python({ task: 'check', cases: interventionCases(exchange) })).cases;
}, 600_000);

afterAll(() => {
  for (const p of Object.values(probes)) p.dispose();
  data?.dispose();
  removeDir(dir);
});

function refOf(id: string): Ref {
  const r = ref[id];
  if (!r) throw new Error(`no reference result '${id}'`);
  if (r.error) throw new Error(`reference case '${id}' failed in Python: ${r.error}`);
  return r;
}

const steerAlpha = 4;
const convDirections = () => torch.tensor(randn(2 * 32, 23), [2, 32]);
const positions = [2, 5, 9];

function interventionCases(exchange: Exchange): object[] {
  const idsSpec = exchange.tensor(ids);
  const digitsInput = exchange.tensor(digitsImages());
  const patchSpec = (layer: string, spec: torch.PatchSpec, extra: object = {}) => {
    const mode = spec.project ? 'project' : 'add';
    return { layer, mode, value: exchange.tensor((spec.project ?? spec.add)!), ...extra };
  };
  return [
    { id: 'gpt2', kind: 'run', model: 'gpt2', inputs: idsSpec },
    { id: 'gpt2-project-rows', kind: 'run', model: 'gpt2', inputs: idsSpec, patch: patchSpec('transformer.h.1', probes.tokens.projectOut()) },
    {
      id: 'gpt2-project-positions',
      kind: 'run',
      model: 'gpt2',
      inputs: idsSpec,
      patch: patchSpec('transformer.h.0', probes.tokenBinary.projectOut(), { positions }),
    },
    { id: 'gpt2-steer', kind: 'run', model: 'gpt2', inputs: idsSpec, patch: patchSpec('transformer.h.1', probes.tokens.steer(steerAlpha, 2)) },
    { id: 'digits', kind: 'run', model: 'digits', inputs: digitsInput },
    { id: 'digits-project', kind: 'run', model: 'digits', inputs: digitsInput, patch: patchSpec('relu3', probes.multinomial.projectOut()) },
    { id: 'digits-project-class', kind: 'run', model: 'digits', inputs: digitsInput, patch: patchSpec('relu3', probes.acts.projectOut(7)) },
    { id: 'digits-steer', kind: 'run', model: 'digits', inputs: digitsInput, patch: patchSpec('relu3', probes.massMean.steer(-steerAlpha)) },
    { id: 'digits-conv-project', kind: 'run', model: 'digits', inputs: digitsInput, patch: patchSpec('relu2', { project: convDirections() }) },
    {
      id: 'gpt2-gradient',
      kind: 'gradient',
      model: 'gpt2',
      inputs: idsSpec,
      layer: 'transformer.h.1',
      direction: exchange.tensor((probes.tokenBinary.objective('transformer.h.1') as { direction: torch.Tensor }).direction),
      wrt: 'transformer.h.0',
    },
  ];
}

describe('interventions along the probe direction, against PyTorch forward hooks', () => {
  const runs: [string, () => torch.Model, () => torch.Tensor, () => Record<string, torch.PatchSpec>][] = [
    ['gpt2-project-rows', () => gpt2, () => ids, () => ({ 'transformer.h.1': probes.tokens.projectOut() })],
    ['gpt2-project-positions', () => gpt2, () => ids, () => ({ 'transformer.h.0': { ...probes.tokenBinary.projectOut(), positions } })],
    ['gpt2-steer', () => gpt2, () => ids, () => ({ 'transformer.h.1': probes.tokens.steer(steerAlpha, 2) })],
    ['digits-project', () => digits, digitsImages, () => ({ relu3: probes.multinomial.projectOut() })],
    ['digits-project-class', () => digits, digitsImages, () => ({ relu3: probes.acts.projectOut(7) })],
    ['digits-steer', () => digits, digitsImages, () => ({ relu3: probes.massMean.steer(-steerAlpha) })],
    ['digits-conv-project', () => digits, digitsImages, () => ({ relu2: { project: convDirections() } })],
  ];

  test.each(runs)('%s: the output equals the hooked eager model within 1e-5, and moved', async (id, model, inputs, patch) => {
    const { output } = await torch.run(model(), [inputs()], { patch: patch() });
    const expected = refTensor(readValue(refOf(id).output));
    expectClose(output as torch.Tensor, expected, TOL, id);
    const clean = refTensor(readValue(refOf(id.startsWith('gpt2') ? 'gpt2' : 'digits').output));
    expect(relative(numbers(output as torch.Tensor), Float64Array.from(clean.data as Float32Array))).toBeGreaterThan(1e-3);
  });

  test('projecting out removes the component: the patched layer has none left along the direction', async () => {
    const direction = numbers(probes.tokenBinary.direction);
    const { activations } = await torch.run(gpt2, [ids], { capture: ['transformer.h.0'], patch: { 'transformer.h.0': probes.tokenBinary.projectOut() } });
    const h = numbers(activations['transformer.h.0'] as torch.Tensor);
    const norm = Math.hypot(...direction);
    let worst = 0;
    for (let row = 0; row < BATCH * SEQ; row++) {
      let along = 0;
      for (let j = 0; j < HIDDEN; j++) along += (h[row * HIDDEN + j] * direction[j]) / norm;
      worst = Math.max(worst, Math.abs(along));
    }
    expect(worst).toBeLessThan(1e-5);
  });

  test("objective: the direction objective's values and gradient on [N, S, H] equal PyTorch autograd", async () => {
    const r = refOf('gpt2-gradient');
    const result = await torch.gradients(gpt2, ids, { objective: probes.tokenBinary.objective('transformer.h.1'), wrt: 'transformer.h.0' });
    const tolerance = 1e-5 * Math.max(1, ...r.values.map(Math.abs));
    result.objective.forEach((v, i) => expect(Math.abs(v - r.values[i])).toBeLessThan(tolerance));
    expectClose(result.gradients['transformer.h.0'] as torch.Tensor, refTensor(readValue(r.gradient)), TOL, 'gradient');
    result.dispose();
  });

  test('maximize climbs the probe objective', async () => {
    const objective = probes.acts.objective('relu3', 4);
    const run = await torch.maximize(digits, 'relu3', { objective, inputShape: [1, 1, 8, 8], parameterization: 'pixel', transforms: [], steps: 30 });
    expect(run.objective.at(-1)!).toBeGreaterThan(run.objective[0] + 0.1);
    run.image.dispose();
    run.input.dispose();
  });

  test('a multinomial probe names the class it steers along; a disposed probe rejects DISPOSED', async () => {
    await expectTorchscopeError(() => probes.multinomial.steer(1), 'INVALID_ARGUMENT', /a weight row per class \(10\): name the class/);
    await expectTorchscopeError(() => probes.multinomial.direction, 'INVALID_ARGUMENT', /name the class/);
    await expectTorchscopeError(() => probes.multinomial.steer(1, 10), 'INVALID_ARGUMENT', /class must be an integer in \[0, 9\]/);
    await expectTorchscopeError(() => probes.ridge.directionOf(0), 'INVALID_ARGUMENT', /a linear probe has no classes/);
    const probe = await torch.probe.fit({ x, labels: parity(y) });
    probe.dispose();
    probe.dispose();
    await expectTorchscopeError(() => probe.predict(x), 'DISPOSED');
    await expectTorchscopeError(() => probe.steer(1), 'DISPOSED');
    expect(probe.weight.disposed).toBe(true);
  });

  test('a project patch refuses channels, and directions of the wrong width', async () => {
    const spec = probes.tokenBinary.projectOut();
    await expectTorchscopeError(() => torch.run(gpt2, [ids], { patch: { 'transformer.h.0': { ...spec, channels: [1] } } }), 'INVALID_ARGUMENT', /not channels/);
    await expectTorchscopeError(() => torch.run(digits, [digitsImages()], { patch: { relu3: spec } }), 'SHAPE', /must be \[64\] or \[k, 64\]/);
  });
});
