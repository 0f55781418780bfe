// Attention heatmaps as PNG: the frame (labels, title, colour bar ticks) is SVG text rendered by
// sharp (librsvg); the matrices and the colour bar are raw RGB rasters composited under it, so a
// 512-token head costs one image, not 262,144 rects. The picture grows to hold its text.

import { finiteNumber, integer, optionKeys, positiveInteger, requiredOptions } from '../core/validate';
import {
  AttentionBlock,
  AttentionLike,
  attentionBlock,
  callSite,
  CallSite,
  Colormap,
  colormapLut,
  formatTick,
  headMatrix,
  maxOf,
  niceTicks,
  TEXT,
} from './common';
import { Figure, frameRect, line } from './figure';
import { Extent, measureText } from './text';

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

interface Labels {
  font: number;
  step: number;
  /** Per token: its label, or '' where thinned out. */
  text: string[];
  extents: Extent[];
}

/** Which token labels fit along an axis of n cells of `cell` pixels, how big, and their ink boxes. */
async function planLabels(tokens: string[], cell: number, minFont: number, maxFont: number): Promise<Labels> {
  const font = Math.max(minFont, Math.min(maxFont, Math.floor(cell * 0.8)));
  let step = 1;
  if (cell < font * 1.1) {
    const need = (font * 1.2) / cell;
    step = [2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => s >= need) ?? Math.ceil(need);
  }
  const text = tokens.map((token, i) => (i % step !== 0 ? '' : step > 1 ? `${i} ${token}` : token));
  return { font, step, text, extents: await measureText(text, { size: font }) };
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

function barRaster(width: number, height: number, lut: Uint8Array): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const k = Math.round((1 - y / Math.max(1, height - 1)) * 255) * 3;
    for (let x = 0; x < width; x++) out.set(lut.subarray(k, k + 3), (y * width + x) * 3);
  }
  return out;
}

const HEATMAP_KEYS = optionKeys<HeatmapOptions>({ layer: true, head: true, batch: true, size: true, colormap: true, vmax: true, title: true });
const GRID_KEYS = optionKeys<GridOptions>({ layer: true, batch: true, size: true, columns: true, colormap: true, vmax: true, title: true });

/** A matrix's side in pixels, when given. */
function checkSize(value: unknown, site: CallSite): void {
  if (value !== undefined) integer(value, 'size', { min: 16, max: 4096 }, site);
}

/** The top of the colour scale: `vmax`, or the largest value shown (1 when nothing is above 0). */
function resolveVmax(vmax: unknown, fallback: number, site: CallSite): number {
  if (vmax === undefined) return fallback > 0 ? fallback : 1;
  return finiteNumber(vmax, 'vmax', { above: 0 }, site);
}

/**
 * The y labels (right-aligned left of the matrix) and x labels (turned, hanging below it) of the
 * matrix at (left, top); returns the leftmost and lowest ink, where the axis names go.
 */
function axisLabels(
  figure: Figure,
  labels: Labels,
  cell: number,
  left: number,
  top: number,
  size: number,
  axes: { x: boolean; y: boolean },
): { x0: number; y1: number } {
  const { font, text, extents } = labels;
  const style = { size: font, fill: TEXT.labelFill };
  const tick = labels.step > 1 ? 3 : 0;
  const edges = { x0: left, y1: top + size };
  for (let i = 0; i < text.length; i++) {
    if (!text[i]) continue;
    const e = extents[i];
    const centre = (i + 0.5) * cell;
    if (axes.y) {
      const y = top + centre;
      const x = left - 4 - tick - e.right;
      figure.text(text[i], e, x, y + font * 0.35, style);
      edges.x0 = Math.min(edges.x0, x + e.left);
      if (tick) figure.shape(...line(left - tick, y, left, y, '#444'));
    }
    if (axes.x) {
      const x = left + centre;
      const y = top + size + 4 + tick + e.right;
      figure.text(text[i], e, x + font * 0.35, y, { ...style, rotated: true });
      edges.y1 = Math.max(edges.y1, y - e.left);
      if (tick) figure.shape(...line(x, top + size, x, top + size + tick, '#444'));
    }
  }
  return edges;
}

/** The colour bar at (x, top), framed, with its ticks; returns the right edge of the tick labels. */
export async function colourBar(figure: Figure, x: number, top: number, width: number, height: number, vmax: number, lut: Uint8Array): Promise<number> {
  figure.raster(barRaster(width, height, lut), x, top, width, height);
  figure.shape(...frameRect(x, top, width, height));
  const ticks = niceTicks(vmax);
  const text = ticks.map((t) => formatTick(t, ticks));
  const extents = await measureText(text, TEXT.tick);
  let right = x + width;
  ticks.forEach((t, i) => {
    const y = top + height * (1 - t / vmax);
    figure.shape(...line(x + width, y, x + width + 4, y));
    figure.text(text[i], extents[i], x + width + 7, y + 4, TEXT.tick);
    right = Math.max(right, x + width + 7 + extents[i].right);
  });
  return right;
}

/** PNG heatmap of one head: attention[batch, layer, head, :len, :len], queries down, keys across. */
export async function attentionHeatmap(result: AttentionLike, given: HeatmapOptions): Promise<Buffer> {
  const site = callSite(attentionHeatmap);
  const options = requiredOptions(given, HEATMAP_KEYS, 'attentionHeatmap', '{ layer, head }', site);
  const block = attentionBlock(result, options.batch ?? 0, site);
  const layer = integer(options.layer, 'layer', { min: 0, max: block.layers - 1 }, site);
  const head = integer(options.head, 'head', { min: 0, max: block.heads - 1 }, site);
  checkSize(options.size, site);
  const lut = colormapLut(options.colormap ?? 'viridis', site);
  const { n, tokens } = block;
  const matrix = headMatrix(block, layer, head);
  const vmax = resolveVmax(options.vmax, maxOf(matrix), site);
  const size = options.size ?? Math.max(240, Math.min(640, n * 28));
  const cell = size / n;
  const labels = await planLabels(tokens, cell, 8, 12);

  // The matrix at (0, 0); the figure moves everything into the picture.
  const figure = new Figure();
  figure.raster(heatRaster(matrix, n, size, vmax, lut), 0, 0, size, size);
  figure.shape(...frameRect(0, 0, size, size));
  const edges = axisLabels(figure, labels, cell, 0, 0, size, { x: true, y: true });
  const names = ['key (attended to)', 'query (attending from)'];
  const [key, query] = await measureText(names, TEXT.axis);
  figure.text(names[0], key, size / 2 - (key.left + key.right) / 2, edges.y1 + 6 - key.top, TEXT.axis);
  figure.text(names[1], query, edges.x0 - 6 - query.bottom, size / 2 + (query.left + query.right) / 2, { ...TEXT.axis, rotated: true });
  await colourBar(figure, size + 22, 0, 16, size, vmax, lut);
  const title = options.title ?? `Layer ${layer}, head ${head}${options.batch ? ` (batch ${options.batch})` : ''}`;
  await figure.title(title, { x: size / 2, bottom: 0 });
  return figure.render();
}

/** PNG grid of every head of one layer, on a shared colour scale. */
export async function attentionGrid(result: AttentionLike, given: GridOptions): Promise<Buffer> {
  const site = callSite(attentionGrid);
  const options = requiredOptions(given, GRID_KEYS, 'attentionGrid', '{ layer }', site);
  const block: AttentionBlock = attentionBlock(result, options.batch ?? 0, site);
  const layer = integer(options.layer, 'layer', { min: 0, max: block.layers - 1 }, site);
  checkSize(options.size, site);
  const lut = colormapLut(options.colormap ?? 'viridis', site);
  const { n, tokens, heads } = block;
  const columns = positiveInteger(options.columns ?? (heads <= 3 ? heads : Math.ceil(Math.sqrt(heads))), 'columns', site);
  const rows = Math.ceil(heads / columns);
  const matrices = Array.from({ length: heads }, (_, h) => headMatrix(block, layer, h));
  const vmax = resolveVmax(options.vmax, Math.max(...matrices.map(maxOf)), site);
  const size = options.size ?? Math.max(120, Math.min(220, n * 8));
  const cell = size / n;
  const labels = await planLabels(tokens, cell, 7, 10);
  const showLabels = cell * labels.step >= 6 && labels.font * 1.2 <= cell * labels.step;
  const headStyle = { size: TEXT.axis.size, fill: TEXT.labelFill };
  const names = Array.from({ length: heads }, (_, h) => `head ${h}`);
  const nameExtents = await measureText(names, headStyle);

  const headTitle = 18;
  const gap = 12;
  // Tiles as wide as their names, so that names never run into each other.
  const tileW = Math.max(size, ...nameExtents.map((e) => e.right - e.left)) + gap;
  const tileH = headTitle + size + gap;
  const figure = new Figure();
  for (let h = 0; h < heads; h++) {
    const col = h % columns;
    const x = col * tileW;
    const y = Math.floor(h / columns) * tileH + headTitle;
    const e = nameExtents[h];
    figure.text(names[h], e, x + size / 2 - (e.left + e.right) / 2, y - 5, headStyle);
    figure.raster(heatRaster(matrices[h], n, size, vmax, lut), x, y, size, size);
    figure.shape(...frameRect(x, y, size, size));
    const lastInColumn = h + columns >= heads;
    if (showLabels && (col === 0 || lastInColumn)) axisLabels(figure, labels, cell, x, y, size, { x: lastInColumn, y: col === 0 });
  }
  const gridRight = columns * tileW - gap;
  await colourBar(figure, gridRight + 22, headTitle, 16, Math.min(rows * tileH - gap - headTitle, 320), vmax, lut);
  const title = options.title ?? `Layer ${layer}, all ${heads} heads${options.batch ? ` (batch ${options.batch})` : ''}`;
  await figure.title(title, { x: gridRight / 2, bottom: 0 });
  return figure.render();
}
