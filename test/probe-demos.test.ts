// The probing demos (scripts/demo-probes.ts) on a reduced grid, against
// test/python/probe_demos_reference.py: the features they probe equal forward hooks on the eager
// models (scripts/probe_models.py) with the files' weights, the noisy digits carry the schedule's
// noise, and scikit-learn fitting the same features with the same split gets the same held-out
// scores (LogisticRegression for the digit and its control task, Ridge for the bracket depth).
// And what the numbers should mean: the class fades with the noise, the depth is in the state.
import * as fs from 'fs';
import * as path from 'path';

import sharp from 'sharp';

import { bracketPictures, BracketStudy, bracketStudy, diffusionPicture, DiffusionStudy, diffusionStudy } from '../scripts/demo-probes';
import { MODELS, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const REFERENCE = path.join(ROOT, 'test', 'python', 'probe_demos_reference.py');
const PROBES = path.join(MODELS, 'probes');
const LEVELS = [0, 44, 99];
const SEQUENCES = 1000;
const TOL = 1e-5;

interface DiffusionAnswer {
  labelsEqual: boolean;
  levels: {
    t: number;
    noiseMean: number;
    noiseStd: number;
    denoisingMse: number;
    rows: Record<string, { maxAbsDiff: number; scale: number; accuracy: number; controlAccuracy: number }>;
  }[];
}

interface BracketAnswer {
  drawnAsTrained: boolean;
  depthEqual: boolean;
  statesMaxAbsDiff: number;
  statesScale: number;
  pooledR2: number;
  steps: { step: number; r2: number; shuffledR2: number; pooledR2: number }[];
}

let dir: string;
let diffusion: DiffusionStudy;
let brackets: BracketStudy;
let reference: { diffusion: DiffusionAnswer; brackets: BracketAnswer };

function write(name: string, data: Float32Array | Float64Array | Int32Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return file;
}

beforeAll(async () => {
  dir = scratchDir('probe-demos');
  diffusion = await diffusionStudy({ models: PROBES, levels: LEVELS });
  brackets = await bracketStudy({ models: PROBES, store: path.join(dir, 'store'), sequences: SEQUENCES });
  const request = {
    out: path.join(dir, 'out'),
    models: PROBES,
    diffusion: {
      labels: write('labels.bin', diffusion.labels),
      train: write('train.bin', diffusion.split.train),
      validation: write('validation.bin', diffusion.split.validation),
      l2: 1,
      levels: diffusion.levels.map((level) => ({
        t: level.t,
        inputs: write(`inputs-${level.t}.bin`, level.inputs),
        features: Object.fromEntries(level.probes.map((p) => [p.row, { file: write(`features-${level.t}-${p.row}.bin`, p.features), dim: p.dim }])),
        controlLabels: Object.fromEntries(level.probes.map((p) => [p.row, write(`control-${level.t}-${p.row}.bin`, p.controlLabels)])),
      })),
    },
    brackets: {
      tokens: write('tokens.bin', brackets.tokens),
      states: write('states.bin', brackets.states),
      depth: write('depth.bin', brackets.depth),
      shuffledDepth: write('shuffled.bin', brackets.shuffledDepth),
      length: brackets.length,
      hidden: brackets.hidden,
      trainSequences: brackets.trainSequences,
      l2: 1,
    },
  };
  const requestFile = path.join(dir, 'request.json');
  fs.writeFileSync(requestFile, JSON.stringify(request));
  await runPythonScript(REFERENCE, [requestFile]);
  reference = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'index.json'), 'utf8'));
}, 600_000);

afterAll(() => removeDir(dir));

describe('diffusion: the digit in the UNet blocks at each noise level', () => {
  test('the digits and their classes are scikit-learn’s; one split of 1797 for every probe', () => {
    expect(reference.diffusion.labelsEqual).toBe(true);
    expect(diffusion.labels.length).toBe(1797);
    expect(diffusion.split.validation.length).toBe(Math.ceil(0.2 * 1797));
    expect(diffusion.split.train.length + diffusion.split.validation.length).toBe(1797);
    expect(diffusion.rows).toEqual(['x_t', 'down.0', 'down.1', 'mid', 'up.0', 'up.1']);
  });

  test('the noisy digits carry standard normal noise through the schedule, and the model predicts it', () => {
    for (const [i, level] of diffusion.levels.entries()) {
      const answer = reference.diffusion.levels[i];
      expect(answer.t).toBe(level.t);
      // 1797 x 64 draws: the sample mean and std of N(0, 1) are within 0.01 of 0 and 1.
      expect(Math.abs(answer.noiseMean)).toBeLessThan(0.01);
      expect(Math.abs(answer.noiseStd - 1)).toBeLessThan(0.01);
      expect(Math.abs(level.denoisingMse - answer.denoisingMse)).toBeLessThan(1e-4);
      expect(Math.abs(level.noiseMse - 1)).toBeLessThan(0.01);
    }
    // A denoiser that learned: far below predicting no noise (MSE 1) at every level.
    expect(Math.max(...diffusion.levels.map((l) => l.denoisingMse))).toBeLessThan(0.8);
  });

  test('the features probed are the blocks’ outputs averaged over positions, as hooks on the eager UNet give them', () => {
    for (const [i, level] of diffusion.levels.entries()) {
      for (const probe of level.probes) {
        const answer = reference.diffusion.levels[i].rows[probe.row];
        expect({ row: probe.row, t: level.t, diff: answer.maxAbsDiff <= TOL * Math.max(1, answer.scale) }).toEqual({ row: probe.row, t: level.t, diff: true });
      }
    }
  });

  test('held-out accuracies, for the class and for the control task, are scikit-learn’s on the same features and split', () => {
    const oneDigit = 1 / diffusion.split.validation.length;
    for (const [i, level] of diffusion.levels.entries()) {
      for (const probe of level.probes) {
        const answer = reference.diffusion.levels[i].rows[probe.row];
        // Both fits converge to the one optimum; a held-out digit on the boundary may go either way.
        expect(Math.abs(probe.accuracy - answer.accuracy)).toBeLessThanOrEqual(oneDigit + 1e-12);
        expect(Math.abs(probe.controlAccuracy - answer.controlAccuracy)).toBeLessThanOrEqual(oneDigit + 1e-12);
        expect(probe.selectivity).toBeCloseTo(probe.accuracy - probe.controlAccuracy, 12);
      }
    }
  });

  test('the class fades with the noise: well above chance clean, at chance (0.1) from pure noise', () => {
    const clean = diffusion.levels[0];
    const noise = diffusion.levels[diffusion.levels.length - 1];
    expect(noise.alphaBar).toBeLessThan(1e-5);
    for (const [r, row] of diffusion.rows.entries()) {
      expect({ row, drop: clean.probes[r].accuracy - noise.probes[r].accuracy > 0.25 }).toEqual({ row, drop: true });
      expect({ row, chance: noise.probes[r].accuracy < 0.2 }).toEqual({ row, chance: true });
    }
    // A control task a linear probe cannot memorize: near chance everywhere.
    for (const level of diffusion.levels) for (const probe of level.probes) expect(probe.controlAccuracy).toBeLessThan(0.2);
    // Clean, the deeper blocks' channel means say the class far better than the first block's.
    const at = (row: string) => clean.probes[diffusion.rows.indexOf(row)].accuracy;
    expect(at('mid')).toBeGreaterThan(at('down.0') + 0.3);
  });
});

describe('brackets: the depth in the GRU’s state, through an activation store', () => {
  test('the stored sequences are drawn as the model’s were, and the stored states are the GRU’s output', () => {
    expect(brackets.tokens.length).toBe(SEQUENCES * brackets.length);
    expect(reference.brackets.drawnAsTrained).toBe(true);
    expect(reference.brackets.depthEqual).toBe(true);
    expect(reference.brackets.statesMaxAbsDiff).toBeLessThanOrEqual(TOL * Math.max(1, reference.brackets.statesScale));
  });

  test('held-out R^2 per step, on shuffled depths and of one probe for all steps equal scikit-learn’s Ridge', () => {
    expect(brackets.steps.map((s) => s.step)).toEqual(reference.brackets.steps.map((s) => s.step));
    for (const [i, step] of brackets.steps.entries()) {
      const answer = reference.brackets.steps[i];
      expect(Math.abs(step.r2 - answer.r2)).toBeLessThan(1e-6);
      expect(Math.abs(step.shuffledR2 - answer.shuffledR2)).toBeLessThan(1e-6);
      expect(Math.abs(step.pooledR2 - answer.pooledR2)).toBeLessThan(1e-6);
    }
    expect(Math.abs(brackets.pooledR2 - reference.brackets.pooledR2)).toBeLessThan(1e-6);
  });

  test('the depth, never a training target, is read from the state; shuffled depths are not', () => {
    const r2 = brackets.steps.map((s) => s.r2);
    const shuffled = brackets.steps.map((s) => s.shuffledR2);
    expect(Math.min(...r2)).toBeGreaterThan(0.9);
    expect(brackets.pooledR2).toBeGreaterThan(0.9);
    // A probe fitted on shuffled depths scores about 0, give or take what 800 sequences allow by chance.
    expect(Math.abs(shuffled.reduce((a, b) => a + b, 0) / shuffled.length)).toBeLessThan(0.05);
    for (const [i, step] of brackets.steps.entries()) expect({ step: step.step, above: r2[i] - shuffled[i] > 0.6 }).toEqual({ step: step.step, above: true });
  });
});

test('the pictures render: the strip and two heatmaps, the R^2 chart, three sequences', async () => {
  const sizes = async (png: Buffer) => {
    const { width, height, format } = await sharp(png).metadata();
    return { format, width: width!, height: height! };
  };
  const digits = await sizes(await diffusionPicture(diffusion));
  const { r2, traces } = await bracketPictures(brackets);
  const [chart, depth] = [await sizes(r2), await sizes(traces)];
  expect([digits.format, chart.format, depth.format]).toEqual(['png', 'png', 'png']);
  // Two heatmaps of 6 x 3 cells side by side under the strip; three stacked charts.
  expect(digits.width).toBeGreaterThan(2 * 3 * 40);
  expect(depth.height).toBeGreaterThan(3 * 200);
  expect(chart.width).toBeGreaterThan(640);
});
