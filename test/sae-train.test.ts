// torch.sae.train against an independent plain-PyTorch loop written to SAELens v6.18.0's training
// definitions (test/python/sae_train_reference.py): for each architecture, the same initial
// weights (or the same seed) and the same batches of a seeded sparse-feature dataset, then the
// parameters after the last step, the saved form (folded as SAELens saves it), the log10 feature
// sparsity, the learning rate and losses of every step. The saved folders load with
// torch.sae.load and encode as the trained Sae does; Python reads their cfg.json as SAELens's
// loader would and encodes with the reference encoder. An abort stops between steps and the
// checkpoints written so far load (test/sae-train-options.test.ts: the options and bad ones).
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { SaeTrainOptions, SaeTrainProgress } from '../lib/sae';
import { SaeTensorName } from '../lib/sae/names';
import { expectClose, maxAbs, randn, readValue, RefValue, refTensor, removeDir, rng, ROOT, runPythonScript, scratchDir } from './helpers';
import { activations, batchTensors, D_IN, TOKENS } from './helpers/sae-train';

const REFERENCE = path.join(ROOT, 'test', 'python', 'sae_train_reference.py');
const D_SAE = 64;
/** The bar for the parameters after training, relative to each tensor's largest magnitude. */
const RELATIVE = 1e-4;

type Options = Omit<SaeTrainOptions, 'batches' | 'dSae' | 'steps'>;

interface Case {
  id: string;
  steps: number;
  options: Options;
  /** Start from seeded weights made here (else SAELens's initialisation from options.seed). */
  init?: boolean;
  /** Also compare the saved form after these steps (a checkpoint run's). */
  snapshots?: number[];
  /** Feed the batches from an async generator rather than an array. */
  asyncBatches?: boolean;
}

const CASES: Case[] = [
  {
    id: 'standard',
    steps: 50,
    init: true,
    snapshots: [3, 6],
    options: {
      architecture: 'standard',
      l1Coefficient: 0.3,
      l1WarmupSteps: 10,
      lr: 2e-3,
      lrScheduler: 'cosineannealing',
      lrWarmupSteps: 5,
      lrDecaySteps: 10,
      lrEnd: 2e-4,
      featureSamplingWindow: 20,
      metadata: { hook_name: 'blocks.0.hook_resid_pre', model_name: 'synthetic' },
    },
  },
  {
    id: 'topk',
    steps: 50,
    init: true,
    asyncBatches: true,
    options: { architecture: 'topk', k: 6, deadFeatureWindow: 4, lr: 3e-3, lrScheduler: 'cosineannealingwarmrestarts', nRestartCycles: 3, lrWarmupSteps: 3 },
  },
  {
    id: 'batchtopk',
    steps: 50,
    init: true,
    options: {
      architecture: 'batchtopk',
      k: 5.5,
      deadFeatureWindow: 4,
      lr: 3e-3,
      lrWarmupSteps: 4,
      lrDecaySteps: 10,
      topkThresholdLr: 0.05,
      auxLossCoefficient: 0.5,
    },
  },
  {
    id: 'jumprelu',
    steps: 50,
    init: true,
    options: { architecture: 'jumprelu', l0Coefficient: 0.02, l0WarmupSteps: 8, bandwidth: 0.1, preActLossCoefficient: 0.003, deadFeatureWindow: 4, lr: 2e-3 },
  },
  // SAELens's initialisation from a seed (kaiming-uniform, decoder rows at decoderInitNorm).
  { id: 'standard-seed', steps: 10, options: { architecture: 'standard', seed: 7, applyBDecToInput: false, lpNorm: 2, lr: 1e-3 } },
  {
    id: 'topk-seed',
    steps: 10,
    options: { architecture: 'topk', seed: 3, decoderInitNorm: null, k: 4, rescaleActsByDecoderNorm: false, deadFeatureWindow: 2, lr: 1e-3 },
  },
  {
    id: 'jumprelu-tanh-seed',
    steps: 10,
    options: { architecture: 'jumprelu', seed: 11, sparsityLoss: 'tanh', tanhScale: 3, initThreshold: 0.05, l0Coefficient: 0.01, lr: 1e-3 },
  },
  // The activation scale: estimated over 5 batches, trained at, folded into the saved weights.
  {
    id: 'standard-scaled',
    steps: 20,
    init: true,
    options: { architecture: 'standard', normalizeActivations: 'expected_average_only_in', normEstimateBatches: 5, lrDecaySteps: 5, lr: 1e-3 },
  },
];

/** cfg fields as SAELens names them, for the Python loop. */
const SAE_NAMES: Record<string, string> = {
  applyBDecToInput: 'apply_b_dec_to_input',
  decoderInitNorm: 'decoder_init_norm',
  normalizeActivations: 'normalize_activations',
  l1Coefficient: 'l1_coefficient',
  lpNorm: 'lp_norm',
  l1WarmupSteps: 'l1_warm_up_steps',
  k: 'k',
  auxLossCoefficient: 'aux_loss_coefficient',
  rescaleActsByDecoderNorm: 'rescale_acts_by_decoder_norm',
  topkThresholdLr: 'topk_threshold_lr',
  initThreshold: 'jumprelu_init_threshold',
  bandwidth: 'jumprelu_bandwidth',
  sparsityLoss: 'jumprelu_sparsity_loss_mode',
  l0Coefficient: 'l0_coefficient',
  l0WarmupSteps: 'l0_warm_up_steps',
  preActLossCoefficient: 'pre_act_loss_coefficient',
  tanhScale: 'jumprelu_tanh_scale',
};
const TRAINER_NAMES: Record<string, string> = {
  lr: 'lr',
  adamBeta1: 'adam_beta1',
  adamBeta2: 'adam_beta2',
  lrScheduler: 'lr_scheduler_name',
  lrWarmupSteps: 'lr_warm_up_steps',
  lrDecaySteps: 'lr_decay_steps',
  lrEnd: 'lr_end',
  nRestartCycles: 'n_restart_cycles',
  deadFeatureWindow: 'dead_feature_window',
  featureSamplingWindow: 'feature_sampling_window',
  normEstimateBatches: 'n_batches_for_norm_estimate',
};

function renamed(options: Options, names: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).flatMap(([key, value]) => (key in names ? [[names[key], value]] : [])));
}

/** Weights near SAELens's start (decoder rows of norm 0.1, encoder near their transpose), not tied. */
function initialWeights(seed: number, jumprelu: boolean): Record<string, { data: Float32Array; shape: number[] }> {
  const wDec = randn(D_SAE * D_IN, 5000 + seed);
  for (let f = 0; f < D_SAE; f++) {
    const row = wDec.subarray(f * D_IN, (f + 1) * D_IN);
    const norm = Math.hypot(...row);
    for (let i = 0; i < D_IN; i++) row[i] *= 0.1 / norm;
  }
  const jitter = randn(D_IN * D_SAE, 6000 + seed);
  const wEnc = new Float32Array(D_IN * D_SAE);
  for (let i = 0; i < D_IN; i++) for (let f = 0; f < D_SAE; f++) wEnc[i * D_SAE + f] = wDec[f * D_IN + i] + 0.01 * jitter[i * D_SAE + f];
  const next = rng(7000 + seed);
  const weights: Record<string, { data: Float32Array; shape: number[] }> = {
    W_enc: { data: wEnc, shape: [D_IN, D_SAE] },
    W_dec: { data: wDec, shape: [D_SAE, D_IN] },
    b_enc: { data: Float32Array.from({ length: D_SAE }, () => -0.02 * next()), shape: [D_SAE] },
    b_dec: { data: Float32Array.from({ length: D_IN }, () => 0.1 * (next() - 0.5)), shape: [D_IN] },
  };
  if (jumprelu) weights.threshold = { data: Float32Array.from({ length: D_SAE }, () => 0.02 + 0.03 * next()), shape: [D_SAE] };
  return weights;
}

function writeTensor(dir: string, name: string, data: Float32Array, shape: number[]) {
  const file = path.join(dir, `${name}.bin`);
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return { file, dtype: 'float32', shape };
}

async function* fed(batches: torch.Tensor[]): AsyncGenerator<torch.Tensor> {
  for (const batch of batches) yield batch;
}

/** max |actual - expected| / max |expected|, asserted under `bar`; returns it. */
function expectRelative(actual: torch.Tensor, expected: RefValue, bar: number, label: string): number {
  const e = refTensor(expected, label);
  const scale = maxAbs(e.data as Float32Array);
  const diff = expectClose(actual, e, bar * scale, label);
  return diff.max / scale;
}

interface Run {
  result: torch.sae.SaeTrainResult;
  progress: SaeTrainProgress[];
}

let dir: string;
const runs = new Map<string, Run>();
const reference = new Map<string, any>();
const saved = new Map<string, any>();
let probe: torch.Tensor;
let aborted: { result: torch.sae.SaeTrainResult; checkpoints: string; progress: number[] };
/** The largest relative difference of the trained parameters, per case (reported at the end). */
const worst: Record<string, number> = {};

/** What every case's cfg.json names (standard's names more; standard-seed none: it loads with { hookPoint }). */
function metadataOf(c: Case): Record<string, unknown> | undefined {
  return c.id === 'standard-seed' ? undefined : (c.options.metadata ?? { hook_name: 'blocks.1.hook_resid_post' });
}

function trainingOptions(c: Case, batches: torch.Tensor[], weights: Record<string, torch.Tensor> | undefined): SaeTrainOptions {
  return {
    ...c.options,
    metadata: metadataOf(c),
    batches: c.asyncBatches ? fed(batches) : batches,
    dSae: D_SAE,
    steps: c.steps,
    initialWeights: weights as SaeTrainOptions['initialWeights'],
    progressEvery: 1,
    out: path.join(dir, 'out', c.id),
  };
}

beforeAll(async () => {
  dir = scratchDir('sae-train');
  const inDir = path.join(dir, 'in');
  fs.mkdirSync(inDir, { recursive: true });
  const requests: unknown[] = [];
  for (const [index, c] of CASES.entries()) {
    const count = c.steps + (c.options.normEstimateBatches ?? 0);
    const data = activations(count, index);
    const weights = c.init ? initialWeights(index, c.options.architecture === 'jumprelu') : undefined;
    const batches = batchTensors(data, count);
    const handles = weights ? Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, torch.tensor(w.data, w.shape)])) : undefined;
    const progress: SaeTrainProgress[] = [];
    const result = await torch.sae.train({ ...trainingOptions(c, batches, handles), onProgress: (p) => progress.push(p) });
    runs.set(c.id, { result, progress });
    if (c.id === 'standard') {
      // The same run, checkpointed every 3 steps and aborted after the 7th.
      const controller = new AbortController();
      const seen: number[] = [];
      const checkpoints = path.join(dir, 'checkpoints');
      const run = await torch.sae.train({
        ...trainingOptions(c, batches, handles),
        out: path.join(dir, 'out', 'aborted'),
        checkpoints: { every: 3, dir: checkpoints },
        signal: controller.signal,
        onProgress: (p) => {
          seen.push(p.step);
          if (p.step === 7) controller.abort();
        },
      });
      aborted = { result: run, checkpoints, progress: seen };
    }
    requests.push({
      id: c.id,
      op: 'train',
      architecture: c.options.architecture,
      d_in: D_IN,
      d_sae: D_SAE,
      sae: renamed(c.options, SAE_NAMES),
      trainer: { ...renamed(c.options, TRAINER_NAMES), total_training_steps: c.steps },
      seed: c.options.seed ?? 42,
      init: weights ? Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, writeTensor(inDir, `${c.id}-${k}`, w.data, w.shape)])) : null,
      batches: writeTensor(inDir, `${c.id}-batches`, data, [count, TOKENS, D_IN]),
      steps: c.steps,
      snapshots: c.snapshots ?? [],
    });
  }
  const x = activations(1, 99).subarray(0, 16 * D_IN);
  probe = torch.tensor(x, [16, D_IN]);
  const probeSpec = writeTensor(inDir, 'probe', x, [16, D_IN]);
  for (const c of CASES) requests.push({ id: `saved-${c.id}`, op: 'saved', folder: path.join(dir, 'out', c.id), x: probeSpec });
  const requestFile = path.join(dir, 'request.json');
  const outDir = path.join(dir, 'ref');
  fs.writeFileSync(requestFile, JSON.stringify({ out: outDir, cases: requests }));
  await runPythonScript(REFERENCE, [requestFile]);
  const index = JSON.parse(fs.readFileSync(path.join(outDir, 'index.json'), 'utf8'));
  for (const [id, value] of Object.entries<any>(index.cases)) {
    if (value.error) throw new Error(`reference case '${id}' failed: ${value.error}`);
    (id.startsWith('saved-') ? saved : reference).set(id.replace(/^saved-/, ''), value);
  }
}, 600_000);

afterAll(() => {
  for (const { result } of runs.values()) {
    result.sae.dispose();
    for (const t of Object.values(result.parameters)) t.dispose();
  }
  aborted?.result.sae.dispose();
  probe?.dispose();
  removeDir(dir);
  // The numbers the report quotes.
  if (Object.keys(worst).length) console.log(`sae-train: max relative parameter difference per case ${JSON.stringify(worst)}`);
});

describe.each(CASES.map((c) => [c.id, c] as const))('%s', (id, c) => {
  test(`the parameters after ${c.steps} steps equal the Python loop's (${RELATIVE} relative)`, () => {
    const { result } = runs.get(id)!;
    const expected = reference.get(id)!;
    expect(result.steps).toBe(c.steps);
    expect(result.aborted).toBe(false);
    expect(Object.keys(result.parameters).sort()).toEqual(Object.keys(expected.params).sort());
    let max = 0;
    for (const [name, value] of Object.entries<any>(expected.params)) {
      max = Math.max(max, expectRelative(result.parameters[name], readValue(value), RELATIVE, `${id} ${name}`));
    }
    worst[id] = max;
  });

  test('the saved form (folded as SAELens saves it) and the feature sparsity equal the Python loop’s', async () => {
    const { result } = runs.get(id)!;
    const expected = reference.get(id)!;
    const names = Object.keys(expected.saved.tensors).sort();
    expect(names).toEqual(
      c.options.architecture === 'standard' || c.options.architecture === 'topk'
        ? ['W_dec', 'W_enc', 'b_dec', 'b_enc']
        : ['W_dec', 'W_enc', 'b_dec', 'b_enc', 'threshold'],
    );
    for (const name of names) {
      const weight = (await result.sae.weight(name as SaeTensorName))!;
      expectRelative(weight, readValue(expected.saved.tensors[name]), RELATIVE, `${id} saved ${name}`);
      weight.dispose();
    }
    expectClose(result.sae.sparsity!, refTensor(readValue(expected.saved.sparsity)), 1e-5, `${id} sparsity`);
    if (expected.scaling_factor === null) expect(result.scalingFactor).toBeNull();
    else expect(Math.abs(result.scalingFactor! / expected.scaling_factor - 1)).toBeLessThan(1e-12);
    if (expected.topk_threshold === null) expect(result.topkThreshold).toBeNull();
    else expect(Math.abs(result.topkThreshold! / expected.topk_threshold - 1)).toBeLessThan(RELATIVE);
  });

  test("every step's learning rate, losses, L0 and dead latents are the Python loop's", () => {
    const { progress } = runs.get(id)!;
    const steps = reference.get(id)!.steps as { lr: number; loss: number; losses: Record<string, number>; l0: number; dead: number }[];
    expect(progress.map((p) => p.step)).toEqual(steps.map((_, i) => i + 1));
    steps.forEach((s, i) => {
      const p = progress[i];
      // The schedule is scalar arithmetic in doubles, emulated operation by operation.
      expect({ step: i + 1, lr: p.lr }).toEqual({ step: i + 1, lr: s.lr });
      expect(Object.keys(p.losses)).toEqual(Object.keys(s.losses));
      for (const [name, value] of Object.entries(s.losses)) expect(Math.abs(p.losses[name] - value)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(value)));
      expect(Math.abs(p.loss - s.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(s.loss)));
      expect({ step: i + 1, l0: p.l0, dead: p.deadFeatures }).toEqual({ step: i + 1, l0: s.l0, dead: s.dead });
    });
  });

  test('the saved folder loads with torch.sae.load, encodes as the trained Sae, and as SAELens would read it', async () => {
    const { result } = runs.get(id)!;
    const folder = path.join(dir, 'out', id);
    expect(result.out).toBe(folder);
    const loaded = await torch.sae.load(folder, metadataOf(c) ? undefined : { hookPoint: 'transformer.h.1' });
    try {
      const trained = await result.sae.encode(probe);
      const again = await loaded.encode(probe);
      expectClose(again, trained, 0, `${id} load(out).encode`);
      const fromPython = saved.get(id)!;
      expect(fromPython.problems).toEqual([]);
      expectClose(trained, refTensor(readValue(fromPython.features)), 1e-5 * Math.max(1, maxAbs(trained.data() as Float32Array)), `${id} reference encoder`);
      trained.dispose();
      again.dispose();
      const cfg = fromPython.cfg;
      const architecture = c.options.architecture === 'batchtopk' ? 'jumprelu' : c.options.architecture;
      expect(cfg).toMatchObject({
        architecture,
        d_in: D_IN,
        d_sae: D_SAE,
        dtype: 'float32',
        device: 'cpu',
        apply_b_dec_to_input: c.options.applyBDecToInput ?? true,
        normalize_activations: 'none',
        reshape_activations: 'none',
        metadata: { ...metadataOf(c), sae_lens_version: '6.18.0', sae_lens_training_version: '6.18.0' },
      });
      if (architecture === 'topk') expect(cfg).toMatchObject({ k: c.options.k, rescale_acts_by_decoder_norm: c.options.rescaleActsByDecoderNorm ?? true });
      expect(loaded.cfg).toEqual(result.sae.cfg);
      expect(loaded.hookName).toBe(result.sae.hookName);
      expect(loaded.architecture).toBe(architecture);
      expectClose(loaded.sparsity!, result.sae.sparsity!, 0, `${id} sparsity file`);
    } finally {
      loaded.dispose();
    }
  });
});

describe('abort and checkpoints', () => {
  test('an abort stops between steps: the SAE so far, no out folder', () => {
    expect(aborted.progress).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(aborted.result.aborted).toBe(true);
    expect(aborted.result.steps).toBe(7);
    expect(aborted.result.trainedTokens).toBe(7 * TOKENS);
    expect(aborted.result.out).toBeNull();
    expect(fs.existsSync(path.join(dir, 'out', 'aborted'))).toBe(false);
  });

  test('the checkpoints written so far (named by trained tokens, as SAELens names them) load and equal the Python loop at their step', async () => {
    expect(fs.readdirSync(aborted.checkpoints).sort()).toEqual([String(3 * TOKENS), String(6 * TOKENS)]);
    const expected = reference.get('standard')!.snapshots;
    for (const step of [3, 6]) {
      const sae = await torch.sae.load(path.join(aborted.checkpoints, String(step * TOKENS)));
      try {
        expect(sae.cfg.metadata).toMatchObject({ hook_name: 'blocks.0.hook_resid_pre', sae_lens_version: '6.18.0' });
        for (const name of ['W_enc', 'W_dec', 'b_enc', 'b_dec'] as const) {
          const weight = (await sae.weight(name))!;
          expectRelative(weight, readValue(expected[String(step)].tensors[name]), RELATIVE, `checkpoint ${step} ${name}`);
          weight.dispose();
        }
        expectClose(sae.sparsity!, refTensor(readValue(expected[String(step)].sparsity)), 1e-5, `checkpoint ${step} sparsity`);
      } finally {
        sae.dispose();
      }
    }
  });
});
