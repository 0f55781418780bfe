// torch.plot: PNG heatmaps (sharp/librsvg) and the self-contained HTML viewer's text.
// Synthetic attention (row-normalized, a few peaks per row): no model needed.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inflateSync } from 'zlib';
import sharp from 'sharp';

import * as torch from '../lib';
import * as plot from '../lib/plot';
import { escapeXml, niceTicks, formatTick } from '../lib/plot/common';

const TOKENS = ['[CLS]', 'the', 'cat', 'sat', 'on', 'the', 'mat', 'because', 'it', 'was', 'tired', '.', '[SEP]'];

/** Row-normalized attention [batch, layers, heads, seq, seq]; rows of padded positions and padding columns are 0. */
function synthetic(tokens: string[][], layers: number, heads: number, options: { peaks?: number; seed?: number; seq?: number } = {}) {
  let s = options.seed ?? 7;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const seq = options.seq ?? Math.max(...tokens.map((t) => t.length));
  const peaks = options.peaks ?? 2;
  const data = new Float32Array(tokens.length * layers * heads * seq * seq);
  tokens.forEach((toks, b) => {
    const n = toks.length;
    for (let l = 0; l < layers; l++)
      for (let h = 0; h < heads; h++)
        for (let r = 0; r < n; r++) {
          const o = (((b * layers + l) * heads + h) * seq + r) * seq;
          let sum = 0;
          for (let c = 0; c < n; c++) {
            data[o + c] = rnd() ** 6;
          }
          data[o + ((r + h + l) % n)] += 4;
          for (let p = 1; p < peaks; p++) data[o + Math.floor(rnd() * n)] += 2 + 2 * rnd();
          for (let c = 0; c < n; c++) sum += data[o + c];
          for (let c = 0; c < n; c++) data[o + c] /= sum;
        }
  });
  return {
    tokens,
    lengths: tokens.map((t) => t.length),
    attentions: torch.tensor(data, [tokens.length, layers, heads, seq, seq]),
    layers,
    heads,
    source: 'output' as const,
  };
}

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Pixels within `tol` of an RGB colour. */
function count(px: { data: Buffer }, rgb: [number, number, number], tol = 6): number {
  let hits = 0;
  for (let i = 0; i < px.data.length; i += 3) {
    if (Math.abs(px.data[i] - rgb[0]) <= tol && Math.abs(px.data[i + 1] - rgb[1]) <= tol && Math.abs(px.data[i + 2] - rgb[2]) <= tol) hits++;
  }
  return hits;
}

const VIRIDIS_LOW: [number, number, number] = [0x44, 0x01, 0x54];
const VIRIDIS_HIGH: [number, number, number] = [0xfd, 0xe7, 0x25];

describe('attentionHeatmap', () => {
  const result = synthetic([TOKENS], 3, 4);

  test('a PNG of the expected size with the heatmap colours and white margins', async () => {
    const png = await plot.attentionHeatmap(result, { layer: 1, head: 2 });
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    // 13 tokens x 28 px = 364 px matrix, plus labels, title and colour bar.
    expect(meta.width).toBeGreaterThan(364 + 100);
    expect(meta.width).toBeLessThan(364 + 300);
    expect(meta.height).toBeGreaterThan(364 + 80);
    expect(meta.height).toBeLessThan(364 + 300);
    const px = await pixels(png);
    expect(count(px, [255, 255, 255], 0)).toBeGreaterThan(px.width * px.height * 0.2);
    // The max value is the top of the scale (yellow); most cells are near zero (dark purple).
    expect(count(px, VIRIDIS_HIGH)).toBeGreaterThan(28 * 20); // >= one cell, plus the bar's top
    expect(count(px, VIRIDIS_LOW, 12)).toBeGreaterThan(364 * 364 * 0.2);
    // Text was rendered: dark grey glyph pixels outside the matrix.
    expect(count(px, [0x22, 0x22, 0x22], 40)).toBeGreaterThan(500);
  });

  test('size, colormap and vmax options', async () => {
    const png = await plot.attentionHeatmap(result, { layer: 0, head: 0, size: 200, colormap: 'blues', vmax: 1 });
    const px = await pixels(png);
    expect(px.width).toBeLessThan(200 + 300);
    expect(count(px, [0x44, 0x01, 0x54], 12)).toBe(0);
    expect(count(px, [0x08, 0x30, 0x6b], 4)).toBeGreaterThan(0); // the blues bar's top
  });

  test('tokens that are XML markup are escaped', async () => {
    const evil = ['[CLS]', '<', '&', '<&>', '</svg>', '"q"', "'a'", '##s', '\u0001ctl', 'é漢😀', '[SEP]'];
    const r = synthetic([evil], 1, 2);
    const png = await plot.attentionHeatmap(r, { layer: 0, head: 1, title: '<b>title & more</b>' });
    expect((await sharp(png).metadata()).width).toBeGreaterThan(200);
    const grid = await plot.attentionGrid(r, { layer: 0 });
    expect((await sharp(grid).metadata()).format).toBe('png');
    expect(escapeXml('<&>"\'\u0001')).toBe('&lt;&amp;&gt;&quot;&apos;\ufffd');
  });

  test('long inputs thin their labels and stay fast (512 tokens)', async () => {
    const tokens = Array.from({ length: 512 }, (_, i) => (i === 0 ? '[CLS]' : i === 511 ? '[SEP]' : ['the', 'cat', '##s', 'extraordinarily', '<', '.'][i % 6]));
    const r = synthetic([tokens], 1, 2, { peaks: 4 });
    const t0 = Date.now();
    const png = await plot.attentionHeatmap(r, { layer: 0, head: 1 });
    const ms = Date.now() - t0;
    const meta = await sharp(png).metadata();
    expect(meta.width).toBeLessThan(1000);
    expect(meta.height).toBeLessThan(1000);
    expect(ms).toBeLessThan(5000);
    console.log(`heatmap 512 tokens: ${meta.width}x${meta.height}, ${ms} ms, ${png.length} bytes`);
  });

  test('padding is cut at the element length; a bad layer/head/batch is a clear error', async () => {
    const r = synthetic([TOKENS, TOKENS.slice(0, 6)], 2, 2);
    const png = await plot.attentionHeatmap(r, { layer: 1, head: 1, batch: 1 });
    expect((await sharp(png).metadata()).width).toBeGreaterThan(240);
    await expect(plot.attentionHeatmap(r, { layer: 2, head: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('layer'),
    });
    await expect(plot.attentionHeatmap(r, { layer: 0, head: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(plot.attentionHeatmap(r, { layer: 0, head: 0, batch: 2 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(plot.attentionHeatmap(r, { layer: 0, head: 0, colormap: 'rainbow' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const flat = { tokens: [TOKENS], attentions: torch.tensor(new Float32Array(13 * 13), [13, 13]) };
    await expect(plot.attentionHeatmap(flat, { layer: 0, head: 0 })).rejects.toMatchObject({ code: 'SHAPE' });
  });

  test('colour bar ticks are round numbers', () => {
    expect(niceTicks(1)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(0.83).map((t) => formatTick(t, niceTicks(0.83)))).toEqual(['0.00', '0.25', '0.50', '0.75']);
    expect(niceTicks(0.047).map((t) => formatTick(t, niceTicks(0.047)))).toEqual(['0.00', '0.02', '0.04']);
  });
});

describe('attentionGrid', () => {
  test('all heads of a layer on a shared scale', async () => {
    const r = synthetic([TOKENS], 2, 4);
    const png = await plot.attentionGrid(r, { layer: 1 });
    const px = await pixels(png);
    // 4 heads: 2 x 2 tiles of 13 x 8 = 120 px (minimum tile).
    expect(px.width).toBeGreaterThan(2 * 120 + 100);
    expect(px.height).toBeGreaterThan(2 * 120 + 40);
    expect(count(px, VIRIDIS_HIGH)).toBeGreaterThan(0);
    expect(count(px, VIRIDIS_LOW, 12)).toBeGreaterThan(4 * 120 * 120 * 0.2);
  });

  test('12 heads lay out 4 across; 512 tokens', async () => {
    const tokens = Array.from({ length: 512 }, (_, i) => `t${i}`);
    const r = synthetic([tokens], 1, 12, { peaks: 3 });
    const t0 = Date.now();
    const png = await plot.attentionGrid(r, { layer: 0 });
    const meta = await sharp(png).metadata();
    expect(meta.width).toBeGreaterThan(4 * 220);
    expect(meta.width).toBeLessThan(4 * 220 + 400);
    expect(meta.height).toBeGreaterThan(3 * 220);
    console.log(`grid 12 heads x 512 tokens: ${meta.width}x${meta.height}, ${Date.now() - t0} ms`);
  });
});

/** The meta JSON and decoded uint8 values of a viewer page. */
function decodePage(html: string) {
  const meta = JSON.parse(/<script type="application\/json" id="ts-meta">([^<]*)<\/script>/.exec(html)![1]);
  const b64 = /<script type="application\/octet-stream" id="ts-data">([A-Za-z0-9+/=]*)<\/script>/.exec(html)![1];
  const bytes = Buffer.from(b64, 'base64');
  return { meta, values: meta.compressed ? inflateSync(bytes) : bytes };
}

describe('attentionHtml', () => {
  test('self-contained: no network references, inline script, the data blob', () => {
    const r = synthetic([TOKENS], 3, 4);
    const html = plot.attentionHtml(r, { title: 'The cat <sat>' });
    for (const bad of ['http://', 'https://', '<script src', '<link', '@import', 'url(']) expect(html).not.toContain(bad);
    expect(html).toContain('<title>The cat &lt;sat&gt;</title>');
    expect(html).toContain('id="ts-data"');
    const { meta, values } = decodePage(html);
    expect(meta).toMatchObject({ n: 13, layers: 3, heads: 4, tokens: TOKENS, compressed: false });
    expect(values.length).toBe(3 * 4 * 13 * 13);
    // Values round-trip within the sqrt quantization step.
    const src = r.attentions.data() as Float32Array;
    let worst = 0;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(meta.scale * (values[i] / 255) ** 2 - src[i]));
    expect(worst).toBeLessThan((2 * meta.scale) / 255);
    console.log(`html 13 tokens x 3 layers x 4 heads: ${html.length} bytes`);
  });

  test('tokens cannot break out of the page', () => {
    const evil = ['[CLS]', '</script><script>alert(1)</script>', '<!--', '&amp;', '\u2028', '[SEP]'];
    const html = plot.attentionHtml(synthetic([evil], 1, 1));
    expect(html).not.toContain('</script><script>alert');
    expect(html).not.toContain('<!--');
    expect(decodePage(html).meta.tokens).toEqual(evil);
  });

  test('one batch element, unpadded', () => {
    const r = synthetic([TOKENS, TOKENS.slice(0, 5)], 2, 3);
    const { meta, values } = decodePage(plot.attentionHtml(r, { batch: 1 }));
    expect(meta.n).toBe(5);
    expect(meta.tokens).toEqual(TOKENS.slice(0, 5));
    expect(values.length).toBe(2 * 3 * 5 * 5);
    const src = r.attentions.data() as Float32Array;
    const at = (l: number, h: number, i: number, j: number) => src[(((1 * 2 + l) * 3 + h) * 13 + i) * 13 + j];
    expect(meta.scale * (values[((1 * 3 + 2) * 5 + 4) * 5 + 3] / 255) ** 2).toBeCloseTo(at(1, 2, 4, 3), 2);
  });

  test('size scales with layers x heads x tokens^2 and compresses (512 tokens x 12 x 12)', async () => {
    const tokens = Array.from({ length: 512 }, (_, i) => `tok${i}`);
    const r = synthetic([tokens], 12, 12, { peaks: 8 });
    const t0 = Date.now();
    const html = plot.attentionHtml(r);
    const ms = Date.now() - t0;
    const { meta, values } = decodePage(html);
    expect(meta.compressed).toBe(true);
    expect(values.length).toBe(12 * 12 * 512 * 512);
    // At most the uint8 blob in base64 (4/3) plus the page.
    expect(html.length).toBeLessThan((12 * 12 * 512 * 512 * 4) / 3 + 100_000);
    console.log(
      `html 512 tokens x 12 layers x 12 heads: ${(html.length / 1e6).toFixed(1)} MB (raw uint8 ${((12 * 12 * 512 * 512) / 1e6).toFixed(1)} MB), built in ${ms} ms`,
    );
    const file = await plot.saveAttentionHtml(synthetic([TOKENS], 1, 2), `${os.tmpdir()}/torchscope-plot-${process.pid}/a.html`);
    expect(fs.readFileSync(file, 'utf8')).toContain('id="ts-meta"');
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});
