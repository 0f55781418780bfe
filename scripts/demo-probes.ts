// `npm run demo -- probes` (and part of `npm run demo`): two probing studies on models trained at
// set-up (scripts/probe_models.py), with pictures in out/probes/.
//   1. Where does a diffusion model know which digit it is denoising? Linear probes for the class
//      on every UNet block's output (averaged over positions), at ten noise levels, each against
//      Hewitt & Liang's control task: a layer x noise heatmap of accuracy and of selectivity.
//   2. Does a GRU that says whether brackets are balanced keep count? Its hidden states go through
//      an activation store (torch.collect, the datasets workflow); ridge probes read the depth,
//      never a training target, at every step, against probes fitted on shuffled depths.
import * as path from 'path';
import { promises as fs } from 'fs';
import sharp from 'sharp';

import * as torch from '../lib';
import { random } from '../lib/methods/generate';
import { TEXT } from '../lib/plot/common';
import { Figure } from '../lib/plot/figure';
import { measureText } from '../lib/plot/text';
import { lineChart } from './demo-charts';

/** Where the models are (models/probes/). */
export interface StudyPaths {
  models: string;
}

export interface DiffusionStudyOptions extends StudyPaths {
  /** Noise levels t. Default: ten from 0 to the last step. */
  levels?: number[];
  /** Of the noise (one seed per level: seed + t) and of the probes' split and control task. */
  seed?: number;
  /** Held-out fraction of the digits. */
  validation?: number;
}

/** One probe: a row of the heatmap (the noisy pixels or a block) at one noise level. */
export interface DiffusionProbe {
  row: string;
  /** [digits, dim]: the block's output averaged over positions, or the 64 noisy pixels. */
  features: Float32Array;
  dim: number;
  trainAccuracy: number;
  accuracy: number;
  controlAccuracy: number;
  selectivity: number;
  /** The control task's label of each digit. */
  controlLabels: Int32Array;
}

export interface DiffusionLevel {
  t: number;
  alphaBar: number;
  /** [digits, 64]: the noisy digits x_t the model read. */
  inputs: Float32Array;
  /** Mean squared error of the model's predicted noise, and of predicting none. */
  denoisingMse: number;
  noiseMse: number;
  probes: DiffusionProbe[];
}

export interface DiffusionStudy {
  /** The digits' classes. */
  labels: Int32Array;
  rows: string[];
  /** The rows of the digits fitted on and held out (one split for every probe). */
  split: torch.probe.Split;
  levels: DiffusionLevel[];
}

interface UnetRecord {
  steps: number;
  alphasCumprod: number[];
  blocks: string[];
}

const PIXELS = 'x_t';

/** Standard normal values (Box-Muller over mulberry32), the same for the same seed. */
function normals(n: number, seed: number): Float64Array {
  const next = random(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(next(), 1e-300)));
    const angle = 2 * Math.PI * next();
    out[i] = r * Math.cos(angle);
    if (i + 1 < n) out[i + 1] = r * Math.sin(angle);
  }
  return out;
}

/** [N, C, H, W] -> [N, C]: each channel's mean over positions. */
function spatialMean(activation: torch.Tensor): Float32Array {
  const [n, channels, h, w] = activation.shape;
  const data = activation.data() as Float32Array;
  const plane = h * w;
  const out = new Float32Array(n * channels);
  for (let i = 0; i < n * channels; i++) {
    let sum = 0;
    for (let k = 0; k < plane; k++) sum += data[i * plane + k];
    out[i] = sum / plane;
  }
  return out;
}

/** Fits the class probe with its control task on [n, dim] features. */
async function classProbe(row: string, features: Float32Array, dim: number, labels: Int32Array, seed: number, validation: number) {
  const x = torch.tensor(features, [labels.length, dim]);
  const probe = await torch.probe.fit({ x, labels, validation: { fraction: validation, seed }, control: { seed } });
  x.dispose();
  const result = {
    row,
    features,
    dim,
    trainAccuracy: probe.trainAccuracy,
    accuracy: probe.validationAccuracy!,
    controlAccuracy: probe.control!.accuracy,
    selectivity: probe.selectivity!,
    controlLabels: probe.control!.labels,
  };
  const split = probe.split!;
  probe.dispose();
  return { result, split };
}

/** Study 1: the digit's class from the noisy pixels and from each UNet block, at each noise level. */
export async function diffusionStudy(options: DiffusionStudyOptions): Promise<DiffusionStudy> {
  const record = JSON.parse(await fs.readFile(path.join(options.models, 'digits-unet.json'), 'utf8')) as UnetRecord;
  const data = JSON.parse(await fs.readFile(path.join(options.models, 'digits.json'), 'utf8')) as { images: number[][]; labels: number[] };
  const seed = options.seed ?? 0;
  const validation = options.validation ?? 0.2;
  const last = record.steps - 1;
  const levels = options.levels ?? Array.from({ length: 10 }, (_, i) => Math.round((i * last) / 9));
  const n = data.labels.length;
  const clean = Float32Array.from(data.images.flat(), (v) => v / 8 - 1);
  const labels = Int32Array.from(data.labels);
  const model = await torch.load(path.join(options.models, 'digits-unet.pt'));
  const study: DiffusionStudy = {
    labels,
    rows: [PIXELS, ...record.blocks],
    split: { train: new Int32Array(), validation: new Int32Array() },
    levels: [],
  };
  try {
    for (const t of levels) {
      const alphaBar = record.alphasCumprod[t];
      const eps = normals(clean.length, seed + t);
      const inputs = Float32Array.from(clean, (x0, i) => Math.sqrt(alphaBar) * x0 + Math.sqrt(1 - alphaBar) * eps[i]);
      const x = torch.tensor(inputs, [n, 1, 8, 8]);
      const steps = torch.tensor(new BigInt64Array(n).fill(BigInt(t)), [n], 'int64');
      const run = await torch.run(model, [x, steps], { capture: record.blocks });
      x.dispose();
      steps.dispose();
      const predicted = (run.output as torch.Tensor).data() as Float32Array;
      let error = 0;
      let noise = 0;
      for (let i = 0; i < eps.length; i++) {
        error += (predicted[i] - eps[i]) ** 2;
        noise += eps[i] ** 2;
      }
      const features: [string, Float32Array, number][] = [[PIXELS, inputs, 64]];
      for (const block of record.blocks) {
        const activation = run.activations[block] as torch.Tensor;
        features.push([block, spatialMean(activation), activation.shape[1]]);
      }
      run.dispose();
      const probes: DiffusionProbe[] = [];
      for (const [row, values, dim] of features) {
        // The same n and seed every time: one split.
        const { result, split } = await classProbe(row, values, dim, labels, seed, validation);
        study.split = split;
        probes.push(result);
      }
      study.levels.push({ t, alphaBar, inputs, denoisingMse: error / eps.length, noiseMse: noise / eps.length, probes });
    }
  } finally {
    model.dispose();
  }
  return study;
}

export interface BracketStudyOptions extends StudyPaths {
  /** The activation store's folder (replaced). */
  store: string;
  /** Random bracket sequences, drawn as the model's training ones were (brackets-rnn.json). */
  sequences?: number;
  /** The last this fraction of the sequences are held out. */
  validation?: number;
  seed?: number;
}

/** The depth read at one step (the number of tokens read, from 2: after one, the depth is always 1). */
export interface DepthStep {
  step: number;
  /** Held-out R^2 of a ridge probe fitted on this step's states alone. */
  r2: number;
  /** The same fitted on the training depths shuffled among the sequences. */
  shuffledR2: number;
  /** Held-out R^2, at this step, of one probe fitted on every step's states. */
  pooledR2: number;
}

export interface BracketStudy {
  /** Each token id's bracket. */
  symbols: string[];
  length: number;
  hidden: number;
  /** Sequences fitted on: the first ones; the rest are held out. */
  trainSequences: number;
  /** [sequences * length] from the store: the token ids and the depth after each. */
  tokens: Int32Array;
  depth: Float64Array;
  /** [sequences * length, hidden] from the store: the GRU's state after each token. */
  states: Float32Array;
  steps: DepthStep[];
  /** The one probe over every step: held-out R^2, and its predictions for the held-out sequences. */
  pooledR2: number;
  pooledPredictions: Float64Array;
  /** The shuffled training depths (seeded Fisher-Yates within each step). */
  shuffledDepth: Float64Array;
}

interface RnnRecord {
  vocab: Record<string, number>;
  length: number;
  maxDepth: number;
  pOpen: [number, number];
  layer: string;
}

/** Token ids of `count` bracket sequences: the random walk on the depth of brackets-rnn.json. */
function bracketSequences(record: RnnRecord, count: number, seed: number): number[][] {
  const next = random(seed);
  return Array.from({ length: count }, () => {
    const p = record.pOpen[0] + (record.pOpen[1] - record.pOpen[0]) * next();
    let depth = 0;
    return Array.from({ length: record.length }, () => {
      const draw = next();
      const opens = depth === 0 || (depth < record.maxDepth && draw < p);
      depth += opens ? 1 : -1;
      return record.vocab[opens ? '(' : ')'];
    });
  });
}

/** Rows of [count, width] `values` at `rows`, as a tensor. */
function gather(values: Float32Array, width: number, rows: ArrayLike<number>): torch.Tensor {
  const out = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(values.subarray(rows[i] * width, (rows[i] + 1) * width), i * width);
  return torch.tensor(out, [rows.length, width]);
}

async function ridge(x: torch.Tensor, labels: Float64Array, heldX: torch.Tensor, heldLabels: Float64Array): Promise<torch.Probe> {
  return torch.probe.fit({ x, labels, kind: 'linear', validation: { x: heldX, labels: heldLabels } });
}

/** Study 2: the bracket depth in the GRU's hidden states, through an activation store. */
export async function bracketStudy(options: BracketStudyOptions): Promise<BracketStudy> {
  const record = JSON.parse(await fs.readFile(path.join(options.models, 'brackets-rnn.json'), 'utf8')) as RnnRecord;
  const count = options.sequences ?? 2000;
  const seed = options.seed ?? 0;
  const length = record.length;
  const trainSequences = Math.round(count * (1 - (options.validation ?? 0.2)));
  const model = await torch.load(path.join(options.models, 'brackets-rnn.pt'));
  try {
    // A fresh store: collect resumes a store that is there, which would keep an older model's states.
    await fs.rm(options.store, { recursive: true, force: true });
    await torch.collect(model, { layers: { [record.layer]: record.layer }, inputs: bracketSequences(record, count, seed), out: options.store, batchSize: 256 });
  } finally {
    model.dispose();
  }
  const store = await torch.openStore(options.store);
  const matrix = await store.matrix(record.layer, { position: 'all' });
  const hidden = matrix.x.shape[1];
  const states = Float32Array.from(matrix.x.data() as Float32Array);
  matrix.x.dispose();
  const tokens = matrix.tokens!;
  const depth = new Float64Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) depth[i] = (i % length === 0 ? 0 : depth[i - 1]) + (tokens[i] === record.vocab['('] ? 1 : -1);

  // Rows of sequences [from, to) at step s (0-based), or at every step.
  const rowsAt = (from: number, to: number, s?: number) =>
    s === undefined
      ? Int32Array.from({ length: (to - from) * length }, (_, i) => from * length + i)
      : Int32Array.from({ length: to - from }, (_, i) => (from + i) * length + s);
  const labelsOf = (rows: Int32Array, source: Float64Array = depth) => Float64Array.from(rows, (r) => source[r]);

  const shuffledDepth = Float64Array.from(depth);
  const next = random(seed + 1);
  for (let s = 0; s < length; s++) {
    const rows = rowsAt(0, trainSequences, s);
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [shuffledDepth[rows[i]], shuffledDepth[rows[j]]] = [shuffledDepth[rows[j]], shuffledDepth[rows[i]]];
    }
  }

  const trainAll = rowsAt(0, trainSequences);
  const heldAll = rowsAt(trainSequences, count);
  const [x, heldX] = [gather(states, hidden, trainAll), gather(states, hidden, heldAll)];
  const pooled = await ridge(x, labelsOf(trainAll), heldX, labelsOf(heldAll));
  const predicted = await pooled.predict(heldX);
  const pooledPredictions = Float64Array.from(predicted.data() as Float64Array);
  for (const t of [predicted, x, heldX]) t.dispose();

  const steps: DepthStep[] = [];
  for (let s = 1; s < length; s++) {
    const train = rowsAt(0, trainSequences, s);
    const held = rowsAt(trainSequences, count, s);
    const [xs, heldXs] = [gather(states, hidden, train), gather(states, hidden, held)];
    const probe = await ridge(xs, labelsOf(train), heldXs, labelsOf(held));
    const shuffled = await ridge(xs, labelsOf(train, shuffledDepth), heldXs, labelsOf(held));
    steps.push({ step: s + 1, r2: probe.validationAccuracy!, shuffledR2: shuffled.validationAccuracy!, pooledR2: await pooled.score(heldXs, labelsOf(held)) });
    for (const t of [probe, shuffled, xs, heldXs]) t.dispose();
  }
  const pooledR2 = pooled.validationAccuracy!;
  pooled.dispose();
  const symbols: string[] = [];
  for (const [symbol, id] of Object.entries(record.vocab)) symbols[id] = symbol;
  return { symbols, length, hidden, trainSequences, tokens, depth, states, steps, pooledR2, pooledPredictions, shuffledDepth };
}

// ---------------------------------------------------------------------------- pictures

/** Digit `index` as the model read it at each level, `size` pixels a side, t under each. */
async function noisyStrip(study: DiffusionStudy, index: number, size: number, gap: number): Promise<Buffer> {
  const figure = new Figure();
  const labels = study.levels.map((l) => `t=${l.t}`);
  const extents = await measureText(labels, TEXT.tick);
  for (const [k, { inputs }] of study.levels.entries()) {
    const grey = Buffer.from(Array.from({ length: 64 }, (_, i) => Math.round(Math.min(1, Math.max(0, (inputs[index * 64 + i] + 1) / 2)) * 255)));
    const { data } = await sharp(grey, { raw: { width: 8, height: 8, channels: 1 } })
      .resize(size, size, { kernel: 'nearest' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const left = k * (size + gap);
    figure.raster(data, left, 0, size, size);
    figure.text(labels[k], extents[k], left + size / 2 - (extents[k].left + extents[k].right) / 2, size + 16, TEXT.tick);
  }
  await figure.title(`The model's input x_t at each noise level (a ${study.labels[index]}, digit ${index} of ${study.labels.length})`, {
    x: 0,
    bottom: 0,
    align: 'left',
  });
  return figure.render();
}

/** Pictures side by side (top-aligned) or stacked (left-aligned), on white. */
async function join(pictures: Buffer[], direction: 'row' | 'column', gap: number): Promise<Buffer> {
  const sizes = await Promise.all(pictures.map((p) => sharp(p).metadata()));
  const along = (i: number) => (direction === 'row' ? sizes[i].width! : sizes[i].height!);
  const across = Math.max(...sizes.map((s) => (direction === 'row' ? s.height! : s.width!)));
  const total = pictures.reduce((sum, _, i) => sum + along(i), 0) + gap * (pictures.length - 1);
  let offset = 0;
  const layers = pictures.map((input, i) => {
    const at = offset;
    offset += along(i) + gap;
    return direction === 'row' ? { input, left: at, top: 0 } : { input, left: 0, top: at };
  });
  const [width, height] = direction === 'row' ? [total, across] : [across, total];
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(layers)
    .png()
    .toBuffer();
}

export async function diffusionPicture(study: DiffusionStudy): Promise<Buffer> {
  const rows = study.rows.map((row, r) => `${row}: ${study.levels[0].probes[r].dim} ${row === PIXELS ? 'pixels' : 'channel means'}`);
  const columns = study.levels.map((l) => `t=${l.t} (ᾱ ${l.alphaBar.toFixed(2)})`);
  const matrix = (pick: (p: DiffusionProbe) => number) =>
    torch.tensor(Float32Array.from(study.rows.flatMap((_, r) => study.levels.map((l) => pick(l.probes[r])))), [rows.length, columns.length]);
  const accuracy = matrix((p) => p.accuracy);
  const selectivity = matrix((p) => p.selectivity);
  const panels = await Promise.all([
    torch.plot.matrixHeatmap(accuracy, {
      title: 'Held-out accuracy of a linear probe for the digit',
      rowLabels: rows,
      columnLabels: columns,
      vmin: 0,
      vmax: 1,
    }),
    torch.plot.matrixHeatmap(selectivity, {
      title: 'Selectivity: accuracy minus the control task',
      rowLabels: rows.map(() => ''), // the rows of the panel on the left
      columnLabels: columns,
      colormap: 'viridis',
      vmin: 0,
      vmax: 1,
    }),
  ]);
  accuracy.dispose();
  selectivity.dispose();
  return join([await noisyStrip(study, 0, 48, 10), await join(panels, 'row', 16)], 'column', 4);
}

export async function bracketPictures(study: BracketStudy, examples = 3): Promise<{ r2: Buffer; traces: Buffer }> {
  const steps = study.steps.map((s) => s.step);
  const r2 = await lineChart({
    title: 'How much of the bracket depth a ridge probe reads from the GRU state (held-out R²)',
    xLabel: 'tokens read',
    yLabel: 'R²',
    yRange: [Math.min(-0.1, Math.floor(Math.min(...study.steps.map((s) => s.shuffledR2)) * 10) / 10), 1.05],
    xRange: [1, study.length],
    series: [
      { label: 'probe per step', x: steps, y: study.steps.map((s) => s.r2), colour: '#1f77b4', markers: true },
      { label: 'one probe for all steps', x: steps, y: study.steps.map((s) => s.pooledR2), colour: '#ff7f0e' },
      { label: 'probe on shuffled depths', x: steps, y: study.steps.map((s) => s.shuffledR2), colour: '#7f7f7f', dashed: true },
    ],
  });
  const panels: Buffer[] = [];
  const shown = Math.min(examples, study.depth.length / study.length - study.trainSequences);
  const first = study.trainSequences * study.length;
  const values = [...study.depth.subarray(first, first + shown * study.length), ...study.pooledPredictions.subarray(0, shown * study.length)];
  const top = Math.ceil(Math.max(...values));
  const yRange: [number, number] = [Math.min(-0.5, ...values), top + 0.5];
  const yTicks = Array.from({ length: Math.floor(top / 2) + 1 }, (_, i) => 2 * i);
  for (let k = 0; k < shown; k++) {
    const base = (study.trainSequences + k) * study.length;
    const x = Array.from({ length: study.length }, (_, i) => i + 1);
    const truth = Array.from(study.depth.subarray(base, base + study.length));
    const predicted = Array.from(study.pooledPredictions.subarray(k * study.length, (k + 1) * study.length));
    panels.push(
      await lineChart({
        title: k === 0 ? 'Depth along held-out sequences: true, and read by one ridge probe' : '',
        xLabel: k === shown - 1 ? 'the sequence' : '',
        yLabel: 'depth',
        xRange: [0.5, study.length + 0.5],
        yRange,
        yTicks,
        xTickLabels: Array.from(study.tokens.subarray(base, base + study.length), (id) => study.symbols[id]),
        series: [
          { label: k === 0 ? 'true depth' : '', x, y: truth, colour: '#222222', step: true },
          { label: k === 0 ? 'read by the probe' : '', x, y: predicted, colour: '#d62728', markers: true },
        ],
      }),
    );
  }
  return { r2, traces: await join(panels, 'column', 4) };
}

// ---------------------------------------------------------------------------- the demo

function table(rows: string[], columns: string[], value: (r: number, c: number) => number): string {
  const width = Math.max(...rows.map((r) => r.length));
  const head = `${''.padEnd(width)}  ${columns.map((c) => c.padStart(6)).join('')}`;
  return [head, ...rows.map((row, r) => `${row.padEnd(width)}  ${columns.map((_, c) => value(r, c).toFixed(2).padStart(6)).join('')}`)].join('\n');
}

/** Both studies, their pictures in out/probes/ and a summary on the console. */
export async function probesDemo(root: string): Promise<void> {
  const models = path.join(root, 'models', 'probes');
  const outDir = path.join(root, 'out', 'probes');
  await fs.mkdir(outDir, { recursive: true });

  const diffusion = await diffusionStudy({ models });
  const columns = diffusion.levels.map((l) => `t=${l.t}`);
  console.log('\nprobes 1: which digit is a diffusion model denoising? (digits-unet.pt, DDPM on the 1797 digits, cosine schedule)');
  console.log(`  denoising MSE by t: ${diffusion.levels.map((l) => `${l.t}: ${l.denoisingMse.toFixed(3)}`).join(', ')} (predicting no noise: ~1)`);
  console.log(`  held-out accuracy of a multinomial logistic probe for the class (chance 0.10; ${diffusion.split.validation.length} digits held out):`);
  console.log(table(diffusion.rows, columns, (r, c) => diffusion.levels[c].probes[r].accuracy).replace(/^/gm, '    '));
  console.log('  selectivity (accuracy - control task):');
  console.log(table(diffusion.rows, columns, (r, c) => diffusion.levels[c].probes[r].selectivity).replace(/^/gm, '    '));
  const digitsFile = path.join(outDir, 'digits-probes.png');
  await fs.writeFile(digitsFile, await diffusionPicture(diffusion));
  console.log(
    `  wrote ${path.relative(root, digitsFile)}: the first digit at each noise level, then accuracy and selectivity (block outputs averaged over positions)`,
  );

  const brackets = await bracketStudy({ models, store: path.join(outDir, 'brackets-store') });
  const at = (step: number) => brackets.steps.find((s) => s.step === step)!;
  const mean = (pick: (s: DepthStep) => number) => brackets.steps.reduce((sum, s) => sum + pick(s), 0) / brackets.steps.length;
  console.log('\nprobes 2: does a GRU that checks brackets count? (brackets-rnn.pt, hidden states through torch.collect -> out/probes/brackets-store)');
  console.log(
    `  depth from the hidden state, held-out R^2: per-step probes mean ${mean((s) => s.r2).toFixed(3)} (step 2 ${at(2).r2.toFixed(3)}, ` +
      `step ${brackets.length} ${at(brackets.length).r2.toFixed(3)}); shuffled-depth probes mean ${mean((s) => s.shuffledR2).toFixed(3)}; ` +
      `one probe for all steps ${brackets.pooledR2.toFixed(3)}`,
  );
  const pictures = await bracketPictures(brackets);
  const r2File = path.join(outDir, 'brackets-r2.png');
  const tracesFile = path.join(outDir, 'brackets-depth.png');
  await fs.writeFile(r2File, pictures.r2);
  await fs.writeFile(tracesFile, pictures.traces);
  console.log(`  wrote ${path.relative(root, r2File)} (R^2 by step) and ${path.relative(root, tracesFile)} (true and probed depth along held-out sequences)`);
}
