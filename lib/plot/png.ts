// Attention heatmaps as PNG: the frame (labels, title, colour bar ticks) is SVG text rendered by
// sharp (librsvg, DejaVu Sans); the matrices and the colour bar are raw RGB rasters composited on
// top, so a 512-token head costs one image, not 262,144 rects.
import sharp from 'sharp';

import { failure } from '../errors';
import {
  AttentionBlock,
  AttentionLike,
  attentionBlock,
  callSite,
  CallSite,
  checkIndex,
  Colormap,
  colormapLut,
  escapeXml,
  formatTick,
  headMatrix,
  maxOf,
  niceTicks,
  shorten,
} from './common';

export interface HeatmapOptions {
  layer: number;
  head: number;
  /** Batch element. Default 0. */
  batch?: number;
  /** Side of the matrix in pixels. Default: 28 px per token, between 240 and 640. */
  size?: number;
  /** Default 'viridis'. */
  colormap?: Colormap;
  /** Top of the colour scale. Default: the largest value shown. */
  vmax?: number;
  /** Default 'Layer L, head H'. */
  title?: string;
}

export interface GridOptions {
  layer: number;
  /** Batch element. Default 0. */
  batch?: number;
  /** Side of each head's matrix in pixels. Default: 8 px per token, between 120 and 220. */
  size?: number;
  /** Heads per row. Default: ceil(sqrt(heads)) (all in one row up to 3). */
  columns?: number;
  colormap?: Colormap;
  /** Top of the shared colour scale. Default: the largest value in the layer. */
  vmax?: number;
  title?: string;
}

const FONT = "font-family=\"DejaVu Sans, sans-serif\"";
const CHAR_WIDTH = 0.62; // DejaVu Sans average advance, in em
const MAX_LABEL_CHARS = 14;

interface Labels {
  font: number;
  step: number;
  text: string[];
  /** Widest label, in pixels. */
  width: number;
}

/** Which token labels fit along an axis of n cells of `cell` pixels, and how big. */
function planLabels(tokens: string[], cell: number, minFont: number, maxFont: number): Labels {
  const font = Math.max(minFont, Math.min(maxFont, Math.floor(cell * 0.8)));
  let step = 1;
  if (cell < font * 1.1) {
    const need = (font * 1.2) / cell;
    step = [2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => s >= need) ?? Math.ceil(need);
  }
  const text = tokens.map((token, i) => {
    if (i % step !== 0) return '';
    const label = shorten(token, MAX_LABEL_CHARS);
    return step > 1 ? `${i} ${label}` : label;
  });
  const width = Math.max(0, ...text.map((t) => Array.from(t).length)) * font * CHAR_WIDTH;
  return { font, step, text, width };
}

/** An M x M RGB raster of an n x n matrix: nearest-neighbour up, max-pooling down. */
function heatRaster(matrix: Float32Array, n: number, size: number, vmax: number, lut: Uint8Array): Buffer {
  const out = Buffer.alloc(size * size * 3);
  const lo = new Int32Array(size);
  const hi = new Int32Array(size);
  for (let p = 0; p < size; p++) {
    lo[p] = Math.min(n - 1, Math.floor((p * n) / size));
    hi[p] = Math.max(lo[p] + 1, Math.min(n, Math.floor(((p + 1) * n) / size)));
  }
  const scale = vmax > 0 ? 255 / vmax : 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v = 0;
      for (let r = lo[y]; r < hi[y]; r++) {
        for (let c = lo[x]; c < hi[x]; c++) if (matrix[r * n + c] > v) v = matrix[r * n + c];
      }
      const code = (v * scale + 0.5) | 0;
      const k = (code > 255 ? 255 : code < 0 ? 0 : code) * 3;
      const o = (y * size + x) * 3;
      out[o] = lut[k];
      out[o + 1] = lut[k + 1];
      out[o + 2] = lut[k + 2];
    }
  }
  return out;
}

function colourBar(width: number, height: number, lut: Uint8Array): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const k = Math.round((1 - y / Math.max(1, height - 1)) * 255) * 3;
    for (let x = 0; x < width; x++) out.set(lut.subarray(k, k + 3), (y * width + x) * 3);
  }
  return out;
}

function checkSize(value: unknown, site: CallSite): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 16 || (value as number) > 4096)) {
    throw failure('INVALID_ARGUMENT', `size must be an integer number of pixels in [16, 4096], got ${JSON.stringify(value)}`, site);
  }
}

function resolveVmax(vmax: unknown, fallback: number, site: CallSite): number {
  if (vmax === undefined) return fallback > 0 ? fallback : 1;
  if (typeof vmax !== 'number' || !(vmax > 0) || !Number.isFinite(vmax)) {
    throw failure('INVALID_ARGUMENT', `vmax must be a positive number, got ${JSON.stringify(vmax)}`, site);
  }
  return vmax;
}

/** SVG for the y labels (right-aligned at x) and x labels (rotated, hanging below y0). */
function axisLabels(labels: Labels, cell: number, left: number, top: number, size: number, axes: { x: boolean; y: boolean }): string {
  const parts: string[] = [];
  const { font, text } = labels;
  const tick = labels.step > 1 ? 3 : 0;
  for (let i = 0; i < text.length; i++) {
    if (!text[i]) continue;
    const centre = (i + 0.5) * cell;
    const label = escapeXml(text[i]);
    if (axes.y) {
      const y = top + centre;
      parts.push(`<text x="${(left - 4 - tick).toFixed(1)}" y="${(y + font * 0.35).toFixed(1)}" text-anchor="end">${label}</text>`);
      if (tick) parts.push(`<line x1="${left - tick}" y1="${y.toFixed(1)}" x2="${left}" y2="${y.toFixed(1)}" stroke="#444"/>`);
    }
    if (axes.x) {
      const x = left + centre;
      const y0 = top + size;
      parts.push(`<text transform="translate(${(x + font * 0.35).toFixed(1)},${(y0 + 4 + tick).toFixed(1)}) rotate(-90)" text-anchor="end">${label}</text>`);
      if (tick) parts.push(`<line x1="${x.toFixed(1)}" y1="${y0}" x2="${x.toFixed(1)}" y2="${y0 + tick}" stroke="#444"/>`);
    }
  }
  return `<g ${FONT} font-size="${font}" fill="#222">${parts.join('')}</g>`;
}

/** Colour bar frame and ticks (the gradient itself is composited). */
function colourBarTicks(x: number, top: number, width: number, height: number, vmax: number): string {
  const ticks = niceTicks(vmax);
  const parts = [`<rect x="${x - 0.5}" y="${top - 0.5}" width="${width + 1}" height="${height + 1}" fill="none" stroke="#333"/>`];
  for (const t of ticks) {
    const y = top + height * (1 - t / vmax);
    parts.push(`<line x1="${x + width}" y1="${y.toFixed(1)}" x2="${x + width + 4}" y2="${y.toFixed(1)}" stroke="#333"/>`);
    parts.push(`<text x="${x + width + 7}" y="${(y + 4).toFixed(1)}">${formatTick(t, ticks)}</text>`);
  }
  return `<g ${FONT} font-size="11" fill="#222">${parts.join('')}</g>`;
}

interface Layer {
  input: Buffer;
  left: number;
  top: number;
  width: number;
  height: number;
}

async function render(svg: string, layers: Layer[]): Promise<Buffer> {
  return sharp(Buffer.from(svg))
    .composite(layers.map((l) => ({ input: l.input, raw: { width: l.width, height: l.height, channels: 3 as const }, left: l.left, top: l.top })))
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
}

function svgDocument(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="100%" height="100%" fill="#ffffff"/>${body}</svg>`;
}

/** PNG heatmap of one head: attention[batch, layer, head, :len, :len], queries down, keys across. */
export async function attentionHeatmap(result: AttentionLike, options: HeatmapOptions): Promise<Buffer> {
  const site = callSite(attentionHeatmap);
  if (!options || typeof options !== 'object') throw failure('INVALID_ARGUMENT', 'options { layer, head } are required', site);
  const block = attentionBlock(result, options.batch ?? 0, site);
  const layer = checkIndex('layer', options.layer, block.layers, site);
  const head = checkIndex('head', options.head, block.heads, site);
  checkSize(options.size, site);
  const lut = colormapLut(options.colormap ?? 'viridis', site);
  const { n, tokens } = block;
  const matrix = headMatrix(block, layer, head);
  const vmax = resolveVmax(options.vmax, maxOf(matrix), site);
  const size = options.size ?? Math.max(240, Math.min(640, n * 28));
  const cell = size / n;
  const labels = planLabels(tokens, cell, 8, 12);

  const pad = 14;
  const titleHeight = 34;
  const axisTitle = 18;
  const tick = labels.step > 1 ? 3 : 0;
  const left = Math.ceil(pad + axisTitle + labels.width + 6 + tick);
  const top = pad + titleHeight;
  const barX = left + size + 22;
  const barWidth = 16;
  const width = Math.ceil(barX + barWidth + 60);
  const height = Math.ceil(top + size + 6 + tick + labels.width + axisTitle + pad);

  const title = options.title ?? `Layer ${layer}, head ${head}${options.batch ? ` (batch ${options.batch})` : ''}`;
  const body = [
    `<text x="${left + size / 2}" y="${pad + 18}" text-anchor="middle" ${FONT} font-size="16" font-weight="bold" fill="#111">${escapeXml(title)}</text>`,
    `<rect x="${left - 0.5}" y="${top - 0.5}" width="${size + 1}" height="${size + 1}" fill="none" stroke="#333"/>`,
    axisLabels(labels, cell, left, top, size, { x: true, y: true }),
    `<text x="${left + size / 2}" y="${height - pad}" text-anchor="middle" ${FONT} font-size="12" fill="#555">key (attended to)</text>`,
    `<text transform="translate(${pad + 10},${top + size / 2}) rotate(-90)" text-anchor="middle" ${FONT} font-size="12" fill="#555">query (attending from)</text>`,
    colourBarTicks(barX, top, barWidth, size, vmax),
  ].join('');
  return render(svgDocument(width, height, body), [
    { input: heatRaster(matrix, n, size, vmax, lut), left, top, width: size, height: size },
    { input: colourBar(barWidth, size, lut), left: barX, top, width: barWidth, height: size },
  ]);
}

/** PNG grid of every head of one layer, on a shared colour scale. */
export async function attentionGrid(result: AttentionLike, options: GridOptions): Promise<Buffer> {
  const site = callSite(attentionGrid);
  if (!options || typeof options !== 'object') throw failure('INVALID_ARGUMENT', 'options { layer } are required', site);
  const block: AttentionBlock = attentionBlock(result, options.batch ?? 0, site);
  const layer = checkIndex('layer', options.layer, block.layers, site);
  checkSize(options.size, site);
  const lut = colormapLut(options.colormap ?? 'viridis', site);
  const { n, tokens, heads } = block;
  const columns = options.columns ?? (heads <= 3 ? heads : Math.ceil(Math.sqrt(heads)));
  if (!Number.isInteger(columns) || columns < 1) throw failure('INVALID_ARGUMENT', `columns must be a positive integer, got ${columns}`, site);
  const rows = Math.ceil(heads / columns);
  const matrices = Array.from({ length: heads }, (_, h) => headMatrix(block, layer, h));
  const vmax = resolveVmax(options.vmax, Math.max(...matrices.map(maxOf)), site);
  const size = options.size ?? Math.max(120, Math.min(220, n * 8));
  const cell = size / n;
  const labels = planLabels(tokens, cell, 7, 10);
  const showLabels = cell * labels.step >= 6 && labels.font * 1.2 <= cell * labels.step;

  const pad = 14;
  const titleHeight = 34;
  const headTitle = 18;
  const gap = 12;
  const tick = labels.step > 1 ? 3 : 0;
  const labelSpace = showLabels ? Math.ceil(labels.width + 6 + tick) : 0;
  const left = pad + labelSpace;
  const top = pad + titleHeight;
  const tileW = size + gap;
  const tileH = headTitle + size + gap;
  const gridRight = left + columns * tileW - gap;
  const barX = gridRight + 22;
  const barWidth = 16;
  const barHeight = Math.min(rows * tileH - gap - headTitle, 320);
  const width = Math.ceil(barX + barWidth + 60);
  const height = Math.ceil(top + rows * tileH - gap + labelSpace + pad);

  const title = options.title ?? `Layer ${layer}, all ${heads} heads${options.batch ? ` (batch ${options.batch})` : ''}`;
  const body: string[] = [
    `<text x="${(left + gridRight) / 2}" y="${pad + 18}" text-anchor="middle" ${FONT} font-size="16" font-weight="bold" fill="#111">${escapeXml(title)}</text>`,
  ];
  const layers: Layer[] = [];
  for (let h = 0; h < heads; h++) {
    const row = Math.floor(h / columns);
    const col = h % columns;
    const x = left + col * tileW;
    const y = top + row * tileH + headTitle;
    body.push(`<text x="${x + size / 2}" y="${y - 5}" text-anchor="middle" ${FONT} font-size="12" fill="#222">head ${h}</text>`);
    body.push(`<rect x="${x - 0.5}" y="${y - 0.5}" width="${size + 1}" height="${size + 1}" fill="none" stroke="#333"/>`);
    const lastInColumn = h + columns >= heads;
    if (showLabels && (col === 0 || lastInColumn)) {
      body.push(axisLabels(labels, cell, x, y, size, { x: lastInColumn, y: col === 0 }));
    }
    layers.push({ input: heatRaster(matrices[h], n, size, vmax, lut), left: x, top: y, width: size, height: size });
  }
  const barTop = top + headTitle;
  body.push(colourBarTicks(barX, barTop, barWidth, barHeight, vmax));
  layers.push({ input: colourBar(barWidth, barHeight, lut), left: barX, top: barTop, width: barWidth, height: barHeight });
  return render(svgDocument(width, height, body.join('')), layers);
}
