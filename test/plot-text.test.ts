// Every PNG plot sizes itself to its text: long titles, tokens and labels are neither clipped at
// the picture's edges nor shortened. Attention and matrices are synthetic: no model needed.
import sharp from 'sharp';

import * as torch from '../lib';
import * as plot from '../lib/plot';

// 120 characters of wide glyphs (W, M) in words: clipping leaves ink on the edge it crosses.
const TITLE = 'Which heads restore the repeated token WHEN the first copy is corrupted: MWMW patching sweep over every HEAD and MMWW layer';
// 40 characters each; labels differ so that none is deduplicated away.
const LONG = (i: number) => `W${i} MWMWMWMWMWMWMWMWMWMWMWMWMWMWMWMWMWMWMW`.slice(0, 40);
// Ink this close to an edge is taken for text running off it (the plots keep a wider margin).
const MARGIN = 10;

/** Non-white pixels within MARGIN of the PNG's edges, as "x,y" (the first few). */
async function inkAtEdges(png: Buffer): Promise<string[]> {
  const { data, info } = await sharp(png).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const hits: string[] = [];
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const inside = x >= MARGIN && y >= MARGIN && x < info.width - MARGIN && y < info.height - MARGIN;
      const o = (y * info.width + x) * 3;
      if (!inside && Math.min(data[o], data[o + 1], data[o + 2]) < 250 && hits.length < 5) hits.push(`${x},${y} of ${info.width}x${info.height}`);
    }
  }
  return hits;
}

async function size(png: Buffer): Promise<{ width: number; height: number }> {
  const meta = await sharp(png).metadata();
  return { width: meta.width!, height: meta.height! };
}

/** Row-normalized attention [1, layers, heads, n, n] over `tokens`. */
function attention(tokens: string[], layers: number, heads: number) {
  const n = tokens.length;
  const data = new Float32Array(layers * heads * n * n);
  for (let o = 0; o < data.length; o += n) for (let c = 0; c < n; c++) data[o + c] = ((o / n + c) % 3) / (n + 1);
  return { tokens: [tokens], lengths: [n], attentions: torch.tensor(data, [1, layers, heads, n, n]) };
}

const tokens = (count: number, label: (i: number) => string) => Array.from({ length: count }, (_, i) => label(i));
const matrix = (rows: number, columns: number) =>
  torch.tensor(
    Float32Array.from({ length: rows * columns }, (_, i) => (i % 5) / 4 - 0.3),
    [rows, columns],
  );

// Each kind, drawn from its text: `long` the 120-character title and 40-character labels,
// `short` a title half as long and labels of 20, to show that the text is not shortened.
const kinds: [string, (title: string, label: (i: number) => string) => Promise<Buffer>][] = [
  ['attentionHeatmap', (title, label) => plot.attentionHeatmap(attention(tokens(9, label), 1, 2), { layer: 0, head: 1, title })],
  ['attentionGrid', (title, label) => plot.attentionGrid(attention(tokens(9, label), 1, 4), { layer: 0, title })],
  ['matrixHeatmap', (title, label) => plot.matrixHeatmap(matrix(3, 5), { title, rowLabels: tokens(3, label), columnLabels: tokens(5, label) })],
  ['tokenAttributionPng', (title, label) => plot.tokenAttributionPng(tokens(6, label), [1, -0.5, 0.2, 0, -1, 0.7], { title, width: 320 })],
];

describe.each(kinds)('%s sizes itself to its text', (_name, draw) => {
  test('a 120-character title and 40-character labels lie inside the picture', async () => {
    expect(await inkAtEdges(await draw(TITLE, LONG))).toEqual([]);
  });

  test('labels and titles are drawn whole, not shortened: longer text, a bigger picture', async () => {
    const short = await size(await draw(TITLE.slice(0, 60), (i) => LONG(i).slice(0, 20)));
    const longLabels = await size(await draw(TITLE.slice(0, 60), LONG));
    const longTitle = await size(await draw(TITLE, (i) => LONG(i).slice(0, 20)));
    // 20 more characters of W and M take well over 60 pixels at any label size used (>= 8 px).
    expect(Math.max(longLabels.width - short.width, longLabels.height - short.height)).toBeGreaterThan(60);
    // 60 more characters of title: a line more, or a wider picture.
    expect(longTitle.width + longTitle.height).toBeGreaterThan(short.width + short.height + 15);
  });
});

test("the demo's patching sweep shows its whole title", async () => {
  const png = await plot.matrixHeatmap(matrix(2, 4), {
    title: 'Head patching: the repeated token restored',
    rowLabels: ['layer 0', 'layer 1'],
    columnLabels: ['head 0', 'head 1', 'head 2', 'head 3'],
  });
  expect(await inkAtEdges(png)).toEqual([]);
});

test('wide glyphs (CJK, emoji) are measured as drawn, not by a width per character', async () => {
  const wide = (i: number) => `${i}漢字漢字漢字漢字😀😀漢字漢字漢字漢字`;
  expect(await inkAtEdges(await plot.matrixHeatmap(matrix(2, 3), { rowLabels: tokens(2, wide), columnLabels: tokens(3, wide) }))).toEqual([]);
  expect(await inkAtEdges(await plot.attentionHeatmap(attention(tokens(5, wide), 1, 1), { layer: 0, head: 0 }))).toEqual([]);
});
