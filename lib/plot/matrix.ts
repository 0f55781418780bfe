// A labelled heatmap of any [rows, columns] matrix as PNG: a patching sweep's layers x positions
// (or heads), induction scores per layer and head. Signed values get a diverging scale centred
// on 0; the cells are one raw raster, the text SVG rendered by sharp over it, and the picture
// grows to hold the text.
import { failure } from '../core/errors';
import { array, boolean, checkOptions, finiteNumber, integer, optionKeys } from '../core/validate';
import { Tensor } from '../model/tensor';
import { callSite, Colormap, colormapLut, TEXT } from './common';
import { Figure } from './figure';
import { measureText } from './text';

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
  /** Print each cell's value in it, where the values fit in the cells. Default: when the matrix has at most 200 cells. */
  annotate?: boolean;
}

const GREY = Uint8Array.of(128, 128, 128); // non-finite cells
const MATRIX_KEYS = optionKeys<MatrixHeatmapOptions>({
  title: true,
  rowLabels: true,
  columnLabels: true,
  colormap: true,
  vmin: true,
  vmax: true,
  cell: true,
  annotate: true,
});

/** PNG heatmap of a 2-D tensor. */
export async function matrixHeatmap(matrix: Tensor, given?: MatrixHeatmapOptions): Promise<Buffer> {
  const site = callSite(matrixHeatmap);
  const options = checkOptions(given, MATRIX_KEYS, 'matrixHeatmap', site);
  if (!(matrix instanceof Tensor) || matrix.shape.length !== 2)
    throw failure('SHAPE', `matrixHeatmap takes a [rows, columns] tensor, got ${matrix instanceof Tensor ? `[${matrix.shape}]` : typeof matrix}`, site);
  if (matrix.dtype !== 'float32' && matrix.dtype !== 'float64') throw failure('DTYPE', `matrixHeatmap takes float values, got ${matrix.dtype}`, site);
  const [rows, columns] = matrix.shape;
  const values = Array.from(matrix.data() as Float32Array);
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(0, ...finite);
  const signed = lo < 0 && hi > 0;
  const extent = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const vmin = options.vmin === undefined ? (signed ? -extent : Math.min(...finite)) : finiteNumber(options.vmin, 'vmin', {}, site);
  const vmax = options.vmax === undefined ? (signed ? extent : Math.max(...finite)) : finiteNumber(options.vmax, 'vmax', {}, site);
  if (!(vmax > vmin)) throw failure('INVALID_ARGUMENT', `the scale's ends must differ, got vmin ${vmin}, vmax ${vmax}`, site);
  const lut = colormapLut(options.colormap ?? (signed ? 'redwhitegreen' : 'viridis'), site);
  const rowLabels = (options.rowLabels === undefined ? Array.from({ length: rows }, (_, i) => i) : array(options.rowLabels, 'rowLabels', site)).map(String);
  const columnLabels = (
    options.columnLabels === undefined ? Array.from({ length: columns }, (_, i) => i) : array(options.columnLabels, 'columnLabels', site)
  ).map(String);
  if (rowLabels.length !== rows || columnLabels.length !== columns) {
    throw failure('SHAPE', `${rowLabels.length} row and ${columnLabels.length} column labels for a [${rows}, ${columns}] matrix`, site);
  }
  const cell =
    options.cell === undefined
      ? Math.max(8, Math.min(40, Math.floor(720 / Math.max(rows, columns))))
      : integer(options.cell, 'cell', { min: 1, max: 1024 }, site);
  const labelStyle = { size: 11, fill: TEXT.labelFill };
  const annotation = { size: 9 };
  const ends = [vmax.toPrecision(3), vmin.toPrecision(3)];
  const cellText = values.map((v) => (Number.isFinite(v) ? v.toFixed(2) : '-'));
  const wanted = boolean(options.annotate ?? rows * columns <= 200, 'annotate', site);
  const [rowExtents, columnExtents, endExtents, cellExtents] = await Promise.all([
    measureText(rowLabels, labelStyle),
    measureText(columnLabels, labelStyle),
    measureText(ends, TEXT.tick),
    measureText(wanted ? cellText : [], annotation),
  ]);
  // Values are printed where they fit in their cells, with 2 px to spare on each side.
  const annotate = wanted && cell >= annotation.size * 1.6 && cellExtents.every((e) => e.right - e.left + 4 <= cell);

  const raster = Buffer.alloc(rows * cell * columns * cell * 3);
  const bar = Buffer.alloc(16 * rows * cell * 3);
  const code = (v: number) => Math.max(0, Math.min(255, Math.round(((v - vmin) / (vmax - vmin)) * 255))) * 3;
  const colour = (v: number) => (Number.isFinite(v) ? lut.subarray(code(v), code(v) + 3) : GREY);
  for (let r = 0; r < rows * cell; r++) {
    for (let c = 0; c < columns * cell; c++) raster.set(colour(values[Math.floor(r / cell) * columns + Math.floor(c / cell)]), (r * columns * cell + c) * 3);
    const k = Math.round((1 - r / Math.max(1, rows * cell - 1)) * 255) * 3;
    for (let x = 0; x < 16; x++) bar.set(lut.subarray(k, k + 3), (r * 16 + x) * 3);
  }

  // The cells at (0, 0); the figure moves everything into the picture.
  const figure = new Figure();
  const width = columns * cell;
  const height = rows * cell;
  const barX = width + 20;
  figure.raster(raster, 0, 0, width, height);
  figure.raster(bar, barX, 0, 16, height);
  rowLabels.forEach((t, i) => figure.text(t, rowExtents[i], -6 - rowExtents[i].right, (i + 0.5) * cell + 4, labelStyle));
  columnLabels.forEach((t, i) => figure.text(t, columnExtents[i], (i + 0.5) * cell + 4, height + 6 + columnExtents[i].right, { ...labelStyle, rotated: true }));
  figure.text(ends[0], endExtents[0], barX + 20, 10, TEXT.tick);
  figure.text(ends[1], endExtents[1], barX + 20, height, TEXT.tick);
  if (annotate) {
    values.forEach((v, i) => {
      const e = cellExtents[i];
      const [red, green, blue] = colour(v);
      // Dark text on light cells, light on dark ones.
      const fill = 0.299 * red + 0.587 * green + 0.114 * blue < 128 ? '#fff' : '#000';
      const x = ((i % columns) + 0.5) * cell - (e.left + e.right) / 2;
      figure.text(cellText[i], e, x, (Math.floor(i / columns) + 0.5) * cell + 3, { ...annotation, fill });
    });
  }
  await figure.title(options.title ?? '', { x: width / 2, bottom: 0 });
  return figure.render();
}
