// A labelled heatmap of any [rows, columns] matrix as PNG: a patching sweep's layers x positions
// (or heads), induction scores per layer and head. Signed values get a diverging scale centred
// on 0; the frame is SVG text rendered by sharp, the cells one raw raster composited on it.
import sharp from 'sharp';

import { failure } from '../errors';
import { Tensor } from '../tensor';
import { callSite, Colormap, colormapLut, escapeXml, shorten } from './common';

export interface MatrixHeatmapOptions {
  title?: string;
  rowLabels?: string[];
  columnLabels?: string[];
  /** Default: 'redwhitegreen' centred on 0 when values have both signs, else 'viridis'. */
  colormap?: Colormap;
  /** The scale's ends. Default: symmetric about 0 for signed values, else [min, max]. */
  vmin?: number;
  vmax?: number;
  /** Cell side in pixels. Default: 40, less for big matrices. */
  cell?: number;
  /** Print each cell's value in it. Default: when the matrix has at most 200 cells. */
  annotate?: boolean;
}

const FONT = 'font-family="DejaVu Sans, sans-serif"';

/** PNG heatmap of a 2-D tensor. */
export async function matrixHeatmap(matrix: Tensor, options: MatrixHeatmapOptions = {}): Promise<Buffer> {
  const site = callSite(matrixHeatmap);
  if (!(matrix instanceof Tensor) || matrix.shape.length !== 2) throw failure('SHAPE', `matrixHeatmap takes a [rows, columns] tensor, got ${matrix instanceof Tensor ? `[${matrix.shape}]` : typeof matrix}`, site);
  if (matrix.dtype !== 'float32' && matrix.dtype !== 'float64') throw failure('DTYPE', `matrixHeatmap takes float values, got ${matrix.dtype}`, site);
  const [rows, columns] = matrix.shape;
  const values = Array.from(matrix.data() as Float32Array);
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(0, ...finite);
  const signed = lo < 0 && hi > 0;
  const extent = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const vmin = options.vmin ?? (signed ? -extent : Math.min(...finite));
  const vmax = options.vmax ?? (signed ? extent : Math.max(...finite));
  if (!(vmax > vmin)) throw failure('INVALID_ARGUMENT', `the scale's ends must differ, got vmin ${vmin}, vmax ${vmax}`, site);
  const lut = colormapLut(options.colormap ?? (signed ? 'redwhitegreen' : 'viridis'), site);
  const rowLabels = options.rowLabels ?? Array.from({ length: rows }, (_, i) => String(i));
  const columnLabels = options.columnLabels ?? Array.from({ length: columns }, (_, i) => String(i));
  if (rowLabels.length !== rows || columnLabels.length !== columns) {
    throw failure('SHAPE', `${rowLabels.length} row and ${columnLabels.length} column labels for a [${rows}, ${columns}] matrix`, site);
  }
  const cell = options.cell ?? Math.max(8, Math.min(40, Math.floor(720 / Math.max(rows, columns))));
  const annotate = options.annotate ?? rows * columns <= 200;
  const font = 11;
  const rowText = rowLabels.map((l) => shorten(l, 28));
  const columnText = columnLabels.map((l) => shorten(l, 16));
  const left = 16 + Math.ceil(Math.max(...rowText.map((t) => t.length)) * font * 0.62);
  const top = 44;
  const labelHeight = 10 + Math.ceil(Math.max(...columnText.map((t) => t.length)) * font * 0.62);
  const barX = left + columns * cell + 20;
  const width = barX + 16 + 70;
  const height = top + rows * cell + labelHeight + 16;
  const raster = Buffer.alloc(rows * cell * columns * cell * 3);
  const bar = Buffer.alloc(16 * rows * cell * 3);
  const code = (v: number) => Math.max(0, Math.min(255, Math.round(((v - vmin) / (vmax - vmin)) * 255))) * 3;
  for (let r = 0; r < rows * cell; r++) {
    for (let c = 0; c < columns * cell; c++) {
      const v = values[Math.floor(r / cell) * columns + Math.floor(c / cell)];
      raster.set(Number.isFinite(v) ? lut.subarray(code(v), code(v) + 3) : [128, 128, 128], (r * columns * cell + c) * 3);
    }
    const k = Math.round((1 - r / Math.max(1, rows * cell - 1)) * 255) * 3;
    for (let x = 0; x < 16; x++) bar.set(lut.subarray(k, k + 3), (r * 16 + x) * 3);
  }
  const parts = [
    `<text x="${left}" y="26" ${FONT} font-size="15" font-weight="bold" fill="#111">${escapeXml(options.title ?? '')}</text>`,
    ...rowText.map((t, i) => `<text x="${left - 6}" y="${top + (i + 0.5) * cell + 4}" text-anchor="end" ${FONT} font-size="${font}" fill="#222">${escapeXml(t)}</text>`),
    ...columnText.map((t, i) => {
      const x = left + (i + 0.5) * cell + 4;
      return `<text transform="translate(${x},${top + rows * cell + 6}) rotate(-90)" text-anchor="end" ${FONT} font-size="${font}" fill="#222">${escapeXml(t)}</text>`;
    }),
    `<text x="${barX + 20}" y="${top + 10}" ${FONT} font-size="11" fill="#222">${vmax.toPrecision(3)}</text>`,
    `<text x="${barX + 20}" y="${top + rows * cell}" ${FONT} font-size="11" fill="#222">${vmin.toPrecision(3)}</text>`,
  ];
  if (annotate && cell >= 24) {
    values.forEach((v, i) => {
      const x = left + ((i % columns) + 0.5) * cell;
      const y = top + (Math.floor(i / columns) + 0.5) * cell + 3;
      parts.push(`<text x="${x}" y="${y}" text-anchor="middle" ${FONT} font-size="9" fill="#000">${Number.isFinite(v) ? v.toFixed(2) : '-'}</text>`);
    });
  }
  const frame = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#ffffff"/></svg>`;
  const labels = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
  return sharp(Buffer.from(frame))
    .composite([
      { input: raster, raw: { width: columns * cell, height: rows * cell, channels: 3 }, left, top },
      { input: bar, raw: { width: 16, height: rows * cell, channels: 3 }, left: barX, top },
      { input: Buffer.from(labels), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}
