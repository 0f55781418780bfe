// torch.sae.train's options and ways of running: a streamed run (trainIter), SAELens's step count
// for trainingTokens, an abort before the start, and every kind of bad option rejected with its
// code before or while the run starts (test/sae-train.test.ts checks the training itself).
import * as torch from '../lib';
import { SaeTrainOptions } from '../lib/sae';
import { expectTorchscopeError, removeDir, scratchDir } from './helpers';
import { activations, batchTensors, D_IN, TOKENS } from './helpers/sae-train';

/** SAELens's default learning rate (LanguageModelSAERunnerConfig.lr). */
const SAE_LR_DEFAULT = 3e-4;

let dir: string;
beforeAll(() => {
  dir = scratchDir('sae-train-options');
});
afterAll(() => removeDir(dir));

test('a signal aborted before the start rejects ABORTED', async () => {
  const controller = new AbortController();
  controller.abort();
  await expectTorchscopeError(
    () => torch.sae.train({ batches: batchTensors(activations(1, 0), 1), architecture: 'standard', dSae: 8, steps: 1, signal: controller.signal }),
    'ABORTED',
  );
});

describe('trainIter', () => {
  test('streams the same progress train() reports, then the result', async () => {
    const batches = batchTensors(activations(6, 1), 6);
    const run = torch.sae.trainIter({ batches, architecture: 'topk', k: 4, dSae: 16, steps: 6, progressEvery: 2 });
    const steps: number[] = [];
    for await (const p of run) steps.push(p.step);
    const result = await run.result;
    expect(steps).toEqual([2, 4, 6]);
    expect(result.steps).toBe(6);
    expect(result.stats?.lr).toBe(SAE_LR_DEFAULT);
    result.sae.dispose();
  });

  test('a loop that stops early ends the run: its result rejects ABORTED', async () => {
    const run = torch.sae.trainIter({ batches: batchTensors(activations(6, 1), 6), architecture: 'standard', dSae: 16, steps: 6, progressEvery: 1 });
    const steps: number[] = [];
    for await (const p of run) {
      steps.push(p.step);
      if (p.step === 2) break;
    }
    expect(steps).toEqual([1, 2]);
    await expectTorchscopeError(() => run.result, 'ABORTED', /iteration stopped before the training finished/);
  });
});

describe('bad options reject with codes', () => {
  const batches = () => batchTensors(activations(3, 2), 3);
  const base = (): SaeTrainOptions => ({ batches: batches(), architecture: 'topk', k: 4, dSae: 16, steps: 2 });
  test.each<[string, (o: SaeTrainOptions) => unknown, torch.ErrorCode, RegExp]>([
    ['a misspelt option', (o) => ({ ...o, stesp: 2 }), 'INVALID_ARGUMENT', /unknown option 'stesp' \(did you mean 'steps'\?\)/],
    [
      'an unknown architecture',
      (o) => ({ ...o, architecture: 'gated' }),
      'INVALID_ARGUMENT',
      /architecture must be 'standard', 'topk', 'batchtopk', 'jumprelu'/,
    ],
    ['an option of another architecture', (o) => ({ ...o, l1Coefficient: 1 }), 'INVALID_ARGUMENT', /l1Coefficient is for standard SAEs; this one is topk/],
    ['neither steps nor trainingTokens', (o) => ({ ...o, steps: undefined }), 'INVALID_ARGUMENT', /give steps or trainingTokens/],
    ['k above dSae', (o) => ({ ...o, k: 17 }), 'INVALID_ARGUMENT', /k must be an integer in \[1, 16\]/],
    ['a fractional topk k', (o) => ({ ...o, k: 2.5 }), 'INVALID_ARGUMENT', /k must be an integer/],
    ['batches that are not iterable', (o) => ({ ...o, batches: 3 }), 'INVALID_ARGUMENT', /batches must be an iterable or async iterable/],
    ['no batches', (o) => ({ ...o, batches: [] }), 'INVALID_ARGUMENT', /batches is empty/],
    ['too few batches', (o) => ({ ...o, steps: 5 }), 'INVALID_ARGUMENT', /batches ended after 3; the run takes 5/],
    [
      'a batch of another width',
      (o) => ({ ...o, batches: [...batches().slice(0, 1), torch.zeros([TOKENS, D_IN + 1])] }),
      'SHAPE',
      /batches\[1\] is \[64,33\]; every batch is \[tokens, 32\]/,
    ],
    ['an integer batch', (o) => ({ ...o, batches: [torch.zeros([TOKENS, D_IN], 'int64')] }), 'DTYPE', /batches\[0\] must be floating point/],
    [
      'a warm-up and decay longer than the run',
      (o) => ({ ...o, lrWarmupSteps: 2, lrDecaySteps: 1 }),
      'INVALID_ARGUMENT',
      /must not exceed the 2 training steps/,
    ],
    [
      'a cosine decay from lrEnd 0',
      (o) => ({ ...o, lrScheduler: 'cosineannealing', lrEnd: 0, lrDecaySteps: 1 }),
      'INVALID_ARGUMENT',
      /decays from lrEnd, which must be in \(0, lr\]/,
    ],
    ['lrEnd with the constant scheduler', (o) => ({ ...o, lrEnd: 1e-4 }), 'INVALID_ARGUMENT', /lrEnd is for the cosine schedulers/],
    [
      'normEstimateBatches without the normalization',
      (o) => ({ ...o, normEstimateBatches: 3 }),
      'INVALID_ARGUMENT',
      /normEstimateBatches is for normalizeActivations/,
    ],
    [
      'initial weights of the wrong shape',
      (o) => ({
        ...o,
        initialWeights: { W_enc: torch.zeros([D_IN, 8]), W_dec: torch.zeros([16, D_IN]), b_enc: torch.zeros([16]), b_dec: torch.zeros([D_IN]) },
      }),
      'SHAPE',
      /initialWeights.W_enc is \[32,8\]; with dIn 32 and dSae 16 it is \[32,16\]/,
    ],
    [
      'initial weights without b_dec',
      (o) => ({ ...o, initialWeights: { W_enc: torch.zeros([D_IN, 16]), W_dec: torch.zeros([16, D_IN]), b_enc: torch.zeros([16]) } }),
      'INVALID_ARGUMENT',
      /b_dec is missing/,
    ],
    [
      'a seed with initial weights',
      (o) => ({
        ...o,
        seed: 1,
        initialWeights: { W_enc: torch.zeros([D_IN, 16]), W_dec: torch.zeros([16, D_IN]), b_enc: torch.zeros([16]), b_dec: torch.zeros([D_IN]) },
      }),
      'INVALID_ARGUMENT',
      /seed sets up the initial weights/,
    ],
    [
      'a SAELens version in metadata',
      (o) => ({ ...o, metadata: { sae_lens_version: '1.0' } }),
      'INVALID_ARGUMENT',
      /metadata.sae_lens_version is set by torch.sae.train/,
    ],
    ['checkpoints every 0 steps', (o) => ({ ...o, checkpoints: { every: 0, dir } }), 'INVALID_ARGUMENT', /checkpoints.every must be a positive integer/],
    ['an unknown device', (o) => ({ ...o, device: 'tpu' }), 'DEVICE', /tpu/],
    [
      'trainingTokens under one batch',
      (o) => ({ ...o, steps: undefined, trainingTokens: 10 }),
      'INVALID_ARGUMENT',
      /trainingTokens \(10\) is less than one batch \(64 tokens\)/,
    ],
  ])('%s', async (_what, change, code, message) => {
    await expectTorchscopeError(() => torch.sae.train(change(base()) as SaeTrainOptions), code, message);
  });
});

describe('trainingTokens', () => {
  test("runs SAELens's step count: while fewer tokens were trained", async () => {
    const result = await torch.sae.train({ batches: batchTensors(activations(3, 3), 3), architecture: 'standard', dSae: 16, trainingTokens: 2 * TOKENS + 1 });
    expect(result.steps).toBe(3);
    expect(result.trainedTokens).toBe(3 * TOKENS);
    result.sae.dispose();
  });
});
