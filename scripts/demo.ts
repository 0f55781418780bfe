// `npm run demo`: the seed's Example 1 done right. Loads ResNet-18, reads a real photo,
// captures every block's activations in one forward pass, ranks layer4's channels,
// zero-ablates layer3 channels and shows the logit change, and draws layer4's strongest
// channel maps over the photo.
import * as path from 'path';
import { promises as fs } from 'fs';
import sharp from 'sharp';

import * as torch from '../lib';
import { datasetsDemo } from './demo-datasets';
import { probesDemo } from './demo-probes';

const root = path.resolve(__dirname, '..', '..');
const modelFile = path.join(root, 'models', 'resnet18.pt');
const photo = path.join(root, 'assets', 'chelsea.jpg');
const outDir = path.join(root, 'out');

interface Stats {
  mean: number;
  std: number;
  max: number;
  active: number; // fraction > 0
}

function stats(values: Float32Array): Stats {
  let sum = 0;
  let sumSq = 0;
  let max = -Infinity;
  let active = 0;
  for (const v of values) {
    sum += v;
    sumSq += v * v;
    if (v > max) max = v;
    if (v > 0) active++;
  }
  const mean = sum / values.length;
  return { mean, std: Math.sqrt(Math.max(0, sumSq / values.length - mean * mean)), max, active: active / values.length };
}

/** Mean over H, W of each channel of a [1, C, H, W] tensor. */
function channelMeans(activation: torch.Tensor): Float32Array {
  const [, channels, height, width] = activation.shape;
  const data = activation.data() as Float32Array;
  const plane = height * width;
  const means = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let i = 0; i < plane; i++) sum += data[c * plane + i];
    means[c] = sum / plane;
  }
  return means;
}

function topK(values: ArrayLike<number>, k: number): number[] {
  return Array.from(values, (_, i) => i)
    .sort((a, b) => values[b] - values[a])
    .slice(0, k);
}

// Five stops of matplotlib's 'inferno', interpolated linearly.
const inferno = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

function colour(t: number): number[] {
  const x = Math.min(1, Math.max(0, t)) * (inferno.length - 1);
  const i = Math.min(inferno.length - 2, Math.floor(x));
  const f = x - i;
  return inferno[i].map((a, j) => Math.round(a + (inferno[i + 1][j] - a) * f));
}

/** One tile: the photo with a channel's map, upsampled and coloured, blended over it. */
async function overlay(base: Buffer, size: number, map: Float32Array, mapSize: number, lo: number, hi: number): Promise<Buffer> {
  const grey = Buffer.from(map.map((v) => Math.round(((v - lo) / (hi - lo || 1)) * 255)));
  const { data: up, info } = await sharp(grey, { raw: { width: mapSize, height: mapSize, channels: 1 } })
    .resize(size, size, { kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rgba = Buffer.alloc(size * size * 4);
  for (let i = 0; i < size * size; i++) {
    const [r, g, b] = colour(up[i * info.channels] / 255);
    rgba.set([r, g, b, 170], i * 4);
  }
  return sharp(base)
    .composite([{ input: rgba, raw: { width: size, height: size, channels: 4 } }])
    .png()
    .toBuffer();
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => (typeof c === 'number' ? c.toFixed(4).padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
}

async function main(): Promise<void> {
  const info = torch.info();
  console.log(`torchscope demo: libtorch ${info.libtorchVersion}, ${info.cudaAvailable ? 'CUDA' : 'CPU'}, ${info.threads} threads`);
  const model = await torch.load(modelFile);
  const input = await torch.image(photo, { size: 224, normalize: 'imagenet' });
  console.log(`model ${path.relative(root, modelFile)} (${model.modules().length} modules), image ${path.relative(root, photo)} -> [${input.shape}]`);

  // Every block and the stem, one forward pass.
  const blocks = model
    .modules()
    .filter((m) => m.type === 'BasicBlock' || m.type === 'Bottleneck')
    .map((m) => m.path);
  const layers = ['maxpool', ...blocks, 'layer1', 'layer2', 'layer3', 'layer4'];
  const captured = (await torch.activations(model, layers, input)) as Record<string, torch.Tensor>;

  console.log('\nactivation statistics per block');
  const widths = [10, 16, 9, 9, 9, 8];
  console.log(row(['layer', 'shape', 'mean', 'std', 'max', 'active'], widths));
  for (const layer of ['maxpool', ...blocks]) {
    const s = stats(captured[layer].data() as Float32Array);
    console.log(row([layer, `[${captured[layer].shape.slice(1)}]`, s.mean, s.std, s.max, s.active], widths));
  }

  const layer4 = captured.layer4;
  const means4 = channelMeans(layer4);
  const top = topK(means4, 8);
  console.log('\ntop activating channels of layer4 (mean over 7x7)');
  for (const c of top) console.log(`  channel ${String(c).padStart(3)}  ${means4[c].toFixed(4)}`);

  // Patching: zero-ablate the 16 most active layer3 channels and watch the logits move.
  const ablated = topK(channelMeans(captured.layer3), 16);
  const clean = (await model.forward(input)) as torch.Tensor;
  const patched = await torch.run(model, [input], { patch: { layer3: { zero: true, channels: ablated } }, capture: ['layer4'] });
  const cleanLogits = clean.data() as Float32Array;
  const patchedLogits = (patched.output as torch.Tensor).data() as Float32Array;
  const top5 = topK(cleanLogits, 5);
  console.log(`\nablation: layer3 channels [${ablated.join(', ')}] set to zero`);
  console.log(row(['class', 'clean', 'ablated', 'change'], [8, 10, 10, 10]));
  for (const k of top5) {
    console.log(row([String(k), cleanLogits[k], patchedLogits[k], patchedLogits[k] - cleanLogits[k]], [8, 10, 10, 10]));
  }
  const after = topK(patchedLogits, 1)[0];
  console.log(
    `top class: ${top5[0]} -> ${after}; layer4 mean ${stats(layer4.data() as Float32Array).mean.toFixed(4)} -> ${stats((patched.activations.layer4 as torch.Tensor).data() as Float32Array).mean.toFixed(4)}`,
  );

  // Picture: the 8 strongest layer4 channel maps over the photo, 4 x 2.
  const size = 224;
  const base = await sharp(photo).resize(size, size, { fit: 'cover' }).removeAlpha().png().toBuffer();
  const [, , h, w] = layer4.shape;
  const data = layer4.data() as Float32Array;
  const maps = top.map((c) => data.subarray(c * h * w, (c + 1) * h * w));
  const lo = Math.min(...maps.map((m) => Math.min(...m)));
  const hi = Math.max(...maps.map((m) => Math.max(...m)));
  const tiles = await Promise.all(maps.map((m) => overlay(base, size, m, h, lo, hi)));
  const gap = 4;
  const grid = sharp({ create: { width: 4 * size + 5 * gap, height: 2 * size + 3 * gap, channels: 3, background: '#ffffff' } }).composite(
    tiles.map((tile, i) => ({ input: tile, left: gap + (i % 4) * (size + gap), top: gap + Math.floor(i / 4) * (size + gap) })),
  );
  await fs.mkdir(outDir, { recursive: true });
  const file = path.join(outDir, 'layer4-channels.png');
  await grid.png().toFile(file);
  console.log(`\nwrote ${path.relative(root, file)}: layer4 channels [${top.join(', ')}] over the photo (one colour scale for all)`);

  // Feature visualization: what the photo's 8 strongest channels of layer3 and layer4 respond
  // to most, one batched run per layer (one objective per batch element).
  const sheetSize = 112;
  const sheetSteps = 64;
  const rows: Float32Array[] = [];
  for (const [layer, channels] of [
    ['layer3', ablated.slice(0, 8)],
    ['layer4', top],
  ] as const) {
    const result = await torch.maximize(model, layer, {
      objective: channels.map((channel) => ({ channel })),
      size: sheetSize,
      steps: sheetSteps,
    });
    const first = result.objective[0];
    const last = result.objective[result.objective.length - 1];
    console.log(
      `maximized ${layer} channels [${channels.join(', ')}]: objective ${first.toFixed(3)} -> ${last.toFixed(3)} in ${sheetSteps} steps (${(result.elapsedMs / 1000).toFixed(1)} s)`,
    );
    rows.push(Float32Array.from(result.image.data() as Float32Array));
  }
  const sheet = torch.tensor(Float32Array.from([...rows[0], ...rows[1]]), [16, 3, sheetSize, sheetSize]);
  const sheetFile = path.join(outDir, 'contact-sheet.png');
  await torch.saveImage(sheet, sheetFile, { columns: 8, gap: 4 });
  console.log(`wrote ${path.relative(root, sheetFile)}: top row layer3, bottom row layer4`);

  await attributionDemo(model, input, top5[0]);
  model.dispose();
  await digitsDemo();
  await attentionDemo();
  await inductionDemo();
  await datasetsDemo(root);
  await probesDemo(root);
}

/**
 * Olsson et al.'s induction heads, found with torchscope alone in the attention-only
 * transformer trained at set-up on random tokens repeated twice (models/induction.pt).
 */
async function inductionDemo(): Promise<void> {
  const half = 16;
  let seed = 11;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const rows = Array.from({ length: 16 }, () => {
    const first = Array.from({ length: half }, () => 1 + Math.floor(random() * 63));
    return [0, ...first, ...first];
  });
  const ids = (values: number[][]) => torch.tensor(BigInt64Array.from(values.flat().map(BigInt)), [values.length, values[0].length]);
  const model = await torch.load(path.join(root, 'models', 'induction.pt'));
  const patterns = (await torch.activations(model, ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern'], ids(rows))) as Record<string, torch.Tensor>;
  const scores = [0, 1].map((l) => ({
    induction: torch.lagScores(patterns[`blocks.${l}.attn.hook_pattern`], half - 1, half + 1),
    previous: torch.lagScores(patterns[`blocks.${l}.attn.hook_pattern`], 1, half + 1),
  }));
  console.log('\ninduction (2-layer attention-only transformer trained on repeated random tokens):');
  scores.forEach((s, l) =>
    console.log(
      `  layer ${l}: induction scores ${s.induction.map((v) => v.toFixed(2)).join(' ')}, previous-token scores ${s.previous.map((v) => v.toFixed(2)).join(' ')}`,
    ),
  );
  // Corrupt the first copy: the second no longer follows from it. Which heads carry the answer?
  const corrupted = rows.map((row, r) => row.map((t, i) => (i >= 1 && i <= half ? 1 + ((t + 7 + r) % 63) : t)));
  const sweep = await torch.patchingSweep(model, {
    clean: ids(rows.map((row) => row.slice(0, -1))),
    corrupted: ids(corrupted.map((row) => row.slice(0, -1))),
    layers: ['blocks.0.attn.hook_z', 'blocks.1.attn.hook_z'],
    heads: 4,
    metric: rows.map((row) => ({ logProb: row[row.length - 1] })),
    normalize: true,
  });
  const effects = sweep.results.toArray() as number[][];
  console.log(
    `  head patching sweep (log-prob of the repeated token, clean ${sweep.clean.toFixed(2)}, corrupted ${sweep.corrupted.toFixed(2)}; 1 = fully restored):`,
  );
  effects.forEach((row, l) => console.log(`    layer ${l}: ${row.map((v) => v.toFixed(2)).join(' ')}`));
  const file = path.join(outDir, 'induction-sweep.png');
  await fs.writeFile(
    file,
    await torch.plot.matrixHeatmap(sweep.results, {
      title: 'Head patching: the repeated token restored',
      rowLabels: ['layer 0', 'layer 1'],
      columnLabels: ['head 0', 'head 1', 'head 2', 'head 3'],
    }),
  );
  console.log(`wrote ${path.relative(root, file)}`);
  model.dispose();
}

/** Saliency, integrated gradients and Grad-CAM of the photo's top class, side by side. */
async function attributionDemo(model: torch.Model, input: torch.Tensor, target: number): Promise<void> {
  const picture = await torch.image(photo, { size: 224 });
  const runs: [string, torch.AttributeOptions, torch.plot.AttributionSign][] = [
    ['saliency', { method: 'saliency', target }, 'absolute'],
    ['integrated gradients', { method: 'integratedGradients', target, steps: 32, convergenceDelta: true }, 'all'],
    ['Grad-CAM (layer4)', { method: 'layerGradCam', target, layer: 'layer4', relu: true, upsample: true, upsampleMode: 'bilinear' }, 'positive'],
  ];
  const tiles: Buffer[] = [];
  console.log(`
attribution of class ${target} (ResNet-18's top class for the photo):`);
  for (const [name, options, sign] of runs) {
    const result = await torch.attribute(model, input, options);
    const delta = result.convergenceDelta ? `, convergence delta ${result.convergenceDelta[0].toExponential(2)}` : '';
    console.log(`  ${name}: [${result.attributions.shape}] in ${(result.elapsedMs / 1000).toFixed(2)} s${delta}`);
    tiles.push(await torch.plot.attributionOverlay(picture, result.attributions, { sign, size: 224 }));
    result.dispose();
  }
  const gap = 4;
  const file = path.join(outDir, 'attribution.png');
  await sharp({ create: { width: 3 * 224 + 4 * gap, height: 224 + 2 * gap, channels: 3, background: '#ffffff' } })
    .composite(tiles.map((tile, i) => ({ input: tile, left: gap + i * (224 + gap), top: gap })))
    .png()
    .toFile(file);
  console.log(`wrote ${path.relative(root, file)}: saliency, integrated gradients (signed), Grad-CAM over the photo`);
}

/** A model that has learned something: integrated gradients on held-out digits of the trained digits CNN. */
async function digitsDemo(): Promise<void> {
  const samples = JSON.parse(await fs.readFile(path.join(root, 'models', 'digits-samples.json'), 'utf8')) as { images: number[][]; labels: number[] };
  const count = 8;
  const digits = torch.tensor(Float32Array.from(samples.images.slice(0, count).flat()), [count, 1, 8, 8]);
  const model = await torch.load(path.join(root, 'models', 'digits-cnn.pt'));
  const labels = samples.labels.slice(0, count);
  const result = await torch.attribute(model, digits, { method: 'integratedGradients', target: labels, convergenceDelta: true });
  const worst = Math.max(...result.convergenceDelta!.map(Math.abs));
  console.log(`
digits CNN (trained at set-up on scikit-learn's digits): IG for digits ${labels.join(', ')}, max |convergence delta| ${worst.toExponential(2)}`);
  const tiles = await Promise.all(
    labels.map((_, i) => torch.plot.attributionOverlay(digits, result.attributions, { batch: i, sign: 'all', size: 96, alpha: 0.6 })),
  );
  const gap = 4;
  const file = path.join(outDir, 'digits-ig.png');
  await sharp({ create: { width: count * (96 + gap) + gap, height: 96 + 2 * gap, channels: 3, background: '#ffffff' } })
    .composite(tiles.map((tile, i) => ({ input: tile, left: gap + i * (96 + gap), top: gap })))
    .png()
    .toFile(file);
  console.log(`wrote ${path.relative(root, file)}: green pushes towards the true digit, red against it`);
  model.dispose();
}

/** BERT attention for one sentence: a heatmap PNG and the self-contained HTML viewer. */
async function attentionDemo(): Promise<void> {
  const sentence = 'The cat sat on the mat because it was tired.';
  const tokenizer = await torch.BertTokenizer.fromVocab(path.join(root, 'models', 'bert-vocab.txt'));
  const bert = await torch.load(path.join(root, 'models', 'bert.pt'));
  const result = await torch.attention(bert, sentence, { tokenizer });
  console.log(
    `\nBERT attention for "${sentence}": [${result.attentions.shape}] (${result.layers} layers x ${result.heads} heads, from the model's ${result.source})`,
  );
  console.log(`tokens: ${result.tokens[0].join(' ')}`);
  // Which token does 'it' attend to most, per layer (averaged over heads)?
  const itIndex = result.tokens[0].indexOf('it');
  const [, layers, heads, seq] = result.attentions.shape;
  const data = result.attentions.data() as Float32Array;
  const focus = [];
  for (let l = 0; l < layers; l++) {
    const weights = new Float32Array(seq);
    for (let h = 0; h < heads; h++) {
      const row = ((l * heads + h) * seq + itIndex) * seq;
      for (let k = 0; k < seq; k++) weights[k] += data[row + k] / heads;
    }
    focus.push(result.tokens[0][topK(weights, 1)[0]]);
  }
  console.log(`'it' attends most to, by layer: ${focus.join(', ')}`);
  const png = path.join(outDir, 'attention.png');
  await fs.writeFile(png, await torch.plot.attentionHeatmap(result, { layer: layers - 1, head: 0 }));
  const html = path.join(outDir, 'attention.html');
  await torch.plot.saveAttentionHtml(result, html, { title: sentence });
  console.log(`wrote ${path.relative(root, png)} (last layer, head 0) and ${path.relative(root, html)} (head view and model view, no network needed)`);
  bert.dispose();
  await tokenAttributionDemo(tokenizer, sentence);
}

/** Token attributions of a BERT classifier (bert-tiny-cls, seeded weights) through its word embeddings. */
async function tokenAttributionDemo(tokenizer: torch.BertTokenizer, sentence: string): Promise<void> {
  const classifier = await torch.load(path.join(root, 'models', 'bert-tiny-cls.pt'));
  const encoding = tokenizer.encode(sentence);
  const ids = torch.tensor(BigInt64Array.from(encoding.ids.map(BigInt)), [1, encoding.ids.length]);
  const mask = torch.tensor(BigInt64Array.from(encoding.attentionMask.map(BigInt)), [1, encoding.ids.length]);
  const result = await torch.attribute(classifier, [ids, mask], {
    method: 'layerIntegratedGradients',
    layer: 'bert.embeddings.word_embeddings',
    target: 1,
    convergenceDelta: true,
  });
  const scores = torch.tokenScores(result.attributions);
  const html = path.join(outDir, 'token-attribution.html');
  await fs.writeFile(html, torch.plot.tokenAttributionHtml(encoding.tokens, scores, { title: `Class 1 of bert-tiny-cls: "${sentence}"` }));
  const png = path.join(outDir, 'token-attribution.png');
  await fs.writeFile(png, await torch.plot.tokenAttributionPng(encoding.tokens, scores, { title: 'Class 1 of bert-tiny-cls (seeded weights)' }));
  console.log(`
token attributions (layer integrated gradients on bert.embeddings.word_embeddings, delta ${result.convergenceDelta![0].toExponential(2)}):`);
  console.log('  ' + encoding.tokens.map((t, i) => `${t} ${scores[i] >= 0 ? '+' : ''}${scores[i].toFixed(3)}`).join('  '));
  console.log(`wrote ${path.relative(root, html)} and ${path.relative(root, png)}`);
  classifier.dispose();
}

// `npm run demo -- <part>` runs one part; without one, everything.
const parts: Record<string, () => Promise<void>> = { datasets: () => datasetsDemo(root), probes: () => probesDemo(root) };
const part = process.argv[2];
(part === undefined
  ? main()
  : parts[part]
    ? parts[part]()
    : Promise.reject(new Error(`no demo part '${part}'; parts: ${Object.keys(parts).join(', ')}`))
).catch((error) => {
  console.error(error);
  process.exit(1);
});
