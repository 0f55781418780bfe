// SAE features on a prompt as a PNG heatmap: tokens across (labels turned, below), one row per
// feature (index and label, left), a colour bar. The cells are one raw raster, the text SVG
// rendered by sharp over it (lib/plot/figure.ts), and the picture grows to hold its text.
import { failure } from '../core/errors';
import { boolean, checkOptions, finiteNumber, integer, optionKeys } from '../core/validate';
import { callSite, Colormap, colormapLut, TEXT } from './common';
import { FEATURE_PLOT_LIMITS, FeatureActivationsLike, featureIndices, featureTable, rankFeatures, titleOption } from './features';
import { Figure, frameRect, line } from './figure';
import { colourBar } from './png';
import { measureText } from './text';

/** Options of {@link featureHeatmap}. */
export interface FeatureHeatmapOptions {
  /** The features shown, one row each, in this order. Default: the `top` most active. */
  features?: number[];
  /** How many features, the most active by max activation over the prompt, when `features` is not given. Default 16, at most 256. */
  top?: number;
  /** Default 'reds' (white at 0). */
  colormap?: Colormap;
  /** Top of the colour scale. Default: the largest activation shown. */
  vmax?: number;
  /**
   * Width of a token's column in pixels (rows are as high, and at least 16 px). Default: 720 px
   * shared by the tokens, between 14 and 32 px each (narrower when the prompt would be wider
   * than 16,384 px; the token labels are then thinned out, each kept one showing its position).
   */
  cell?: number;
  /** Print each active cell's value in it, where the values fit. Default true. */
  annotate?: boolean;
  /** Default: 'The N most active SAE features' ('SAE features' with `features`); '' for none. */
  title?: string;
}

const HEATMAP_KEYS = optionKeys<FeatureHeatmapOptions>({ features: true, top: true, colormap: true, vmax: true, cell: true, annotate: true, title: true });

/** The picture's layout constants. */
const LAYOUT = {
  /** Default width shared by the tokens, and a column's bounds. */
  width: 720,
  column: { min: 14, max: 32 },
  /** Widest token axis (cairo renders at most 32,767 px a side). */
  maxWidth: 16_384,
  rowMin: 16,
  label: { size: 11, fill: TEXT.labelFill },
  annotation: { size: 9 },
  bar: { width: 16, minHeight: 120 },
  /** Token positions above the cells. */
  ruler: { size: 9, fill: '#777' },
  /** Wider cells than this get a title starting at the left, where the picture opens. */
  leftTitle: 1000,
} as const;

/** A token as an axis label: control characters and whitespace-only tokens made visible. */
function tokenLabel(token: string): string {
  const visible = token.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5').replace(/\r/g, '\u240d');
  if (visible === '') return '\u2205';
  // Whitespace alone: spaces as open boxes, other spaces (U+2028, U+00A0...) by their code.
  return visible.trim() === '' ? Array.from(visible, (c) => (c === ' ' ? '\u2423' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('') : visible;
}

function clip(text: string, chars: number): string {
  const points = Array.from(text);
  return points.length > chars ? `${points.slice(0, chars - 1).join('')}\u2026` : text;
}

/** An activation in a cell: two significant digits. */
function cellText(v: number): string {
  return String(Number(v.toPrecision(2)));
}

/**
 * A PNG heatmap of SAE features on a prompt: the prompt's tokens across, the chosen features
 * down (by default the most active, by max activation over the prompt), and a colour bar.
 */
export async function featureHeatmap(acts: FeatureActivationsLike, given?: FeatureHeatmapOptions): Promise<Buffer> {
  const site = callSite(featureHeatmap);
  const options = checkOptions(given, HEATMAP_KEYS, 'featureHeatmap', site);
  if (options.features !== undefined && options.top !== undefined) throw failure('INVALID_ARGUMENT', 'featureHeatmap: give features or top, not both', site);
  const top = integer(options.top ?? FEATURE_PLOT_LIMITS.top.default, 'top', { min: 1, max: FEATURE_PLOT_LIMITS.top.max }, site);
  const lut = colormapLut(options.colormap ?? 'reds', site);
  const annotateWanted = boolean(options.annotate ?? true, 'annotate', site);
  const table = featureTable(acts, site);
  const { seq, dSae, values } = table;
  if (seq > LAYOUT.maxWidth)
    throw failure('SHAPE', `featureHeatmap draws at most ${LAYOUT.maxWidth} tokens (a pixel each); got ${seq}: slice the prompt, or use featureHtml`, site);
  const rows = options.features === undefined ? rankFeatures(table).slice(0, top) : featureIndices(options.features, dSae, site);
  let shownMax = 0;
  for (const f of rows) shownMax = Math.max(shownMax, table.max[f]);
  const vmax = options.vmax === undefined ? shownMax || 1 : finiteNumber(options.vmax, 'vmax', { above: 0 }, site);
  const fitted = Math.floor(LAYOUT.width / seq);
  const width =
    options.cell === undefined
      ? Math.min(Math.max(LAYOUT.column.min, Math.min(LAYOUT.column.max, fitted)), Math.floor(LAYOUT.maxWidth / seq))
      : integer(options.cell, 'cell', { min: 1, max: Math.min(256, Math.floor(LAYOUT.maxWidth / seq)) }, site);
  const height = Math.max(width, LAYOUT.rowMin);
  const title = titleOption(
    options.title,
    options.features !== undefined ? 'SAE features' : rows.length ? `The ${rows.length} most active SAE features` : 'No SAE feature fires on this prompt',
    site,
  );

  // Token labels: as large as the columns allow (7 to 11 px); every step-th where they do not fit.
  const font = Math.max(7, Math.min(11, Math.floor(width * 0.8)));
  const need = (font * 1.2) / width;
  const step = width >= font * 1.1 ? 1 : ([2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => s >= need) ?? Math.ceil(need));
  const tokenText = table.tokens.map((t, i) => (i % step !== 0 ? '' : step > 1 ? `${i} ${tokenLabel(t)}` : tokenLabel(t)));
  const rowText = rows.map((f) => {
    const label = table.labels.get(f);
    return clip(label ? `${f}  ${label}` : String(f), FEATURE_PLOT_LIMITS.labelChars);
  });
  const cells = annotateWanted
    ? rows.flatMap((f) => Array.from({ length: seq }, (_, p) => (values[p * dSae + f] > 0 ? cellText(values[p * dSae + f]) : '')))
    : [];
  const tokenStyle = { size: font, fill: TEXT.labelFill };
  // Positions above the cells, every 1, 5, 10, 20, 50, 100... tokens, so that the numbers keep apart.
  const widest = (await measureText([String(seq - 1)], LAYOUT.ruler))[0];
  const every = [1, ...[1, 10, 100, 1000, 10_000].flatMap((e) => [5 * e, 10 * e, 20 * e])].find((k) => k * width >= widest.right + 10) ?? seq;
  const rulerText = Array.from({ length: Math.ceil(seq / every) }, (_, i) => String(i * every));
  const [tokenExtents, rowExtents, cellExtents, axisExtents, rulerExtents] = await Promise.all([
    measureText(tokenText, tokenStyle),
    measureText(rowText, LAYOUT.label),
    measureText(cells, LAYOUT.annotation),
    measureText(['token', 'feature', 'activation'], TEXT.axis),
    measureText(rulerText, LAYOUT.ruler),
  ]);
  const annotate = annotateWanted && height >= LAYOUT.annotation.size * 1.6 && cellExtents.every((e) => e.right - e.left + 4 <= width);

  // The cells at (0, 0); the figure moves everything into the picture.
  const figure = new Figure();
  const matrixW = seq * width;
  // No feature fires: one empty row, under the title that says so.
  const matrixH = Math.max(1, rows.length) * height;
  const raster = Buffer.alloc(matrixW * matrixH * 3);
  if (!rows.length) for (let i = 0; i < matrixW * matrixH; i++) raster.set(lut.subarray(0, 3), i * 3);
  const scale = 255 / vmax;
  const colour = (v: number) => Math.min(255, Math.max(0, Math.round(v * scale))) * 3;
  rows.forEach((f, r) => {
    for (let p = 0; p < seq; p++) {
      const k = colour(values[p * dSae + f]);
      for (let x = p * width; x < (p + 1) * width; x++) raster.set(lut.subarray(k, k + 3), (r * height * matrixW + x) * 3);
    }
    // The row's first line of pixels, repeated down the row.
    const first = r * height * matrixW * 3;
    for (let y = 1; y < height; y++) raster.copy(raster, first + y * matrixW * 3, first, first + matrixW * 3);
  });
  figure.raster(raster, 0, 0, matrixW, matrixH);
  figure.shape(...frameRect(0, 0, matrixW, matrixH, '#999'));
  let left = 0;
  rows.forEach((_, r) => {
    const e = rowExtents[r];
    const x = -6 - e.right;
    figure.text(rowText[r], e, x, (r + 0.5) * height + 4, LAYOUT.label);
    left = Math.min(left, x + e.left);
  });
  const tick = step > 1 ? 3 : 0;
  let bottom = matrixH;
  tokenText.forEach((t, p) => {
    if (!t) return;
    const e = tokenExtents[p];
    const x = (p + 0.5) * width;
    const y = matrixH + 4 + tick + e.right;
    figure.text(t, e, x + font * 0.35, y, { ...tokenStyle, rotated: true });
    bottom = Math.max(bottom, y - e.left);
    if (tick) figure.shape(...line(x, matrixH, x, matrixH + tick, '#444'));
  });
  if (annotate) {
    rows.forEach((f, r) => {
      for (let p = 0; p < seq; p++) {
        const i = r * seq + p;
        if (!cells[i]) continue;
        const k = colour(values[p * dSae + f]);
        // Dark text on light cells, light on dark ones.
        const fill = 0.299 * lut[k] + 0.587 * lut[k + 1] + 0.114 * lut[k + 2] < 128 ? '#fff' : '#000';
        const e = cellExtents[i];
        figure.text(cells[i], e, (p + 0.5) * width - (e.left + e.right) / 2, (r + 0.5) * height + 3, { ...LAYOUT.annotation, fill });
      }
    });
  }
  // Axis names: 'token' under the token labels, 'feature' turned, left of the row labels.
  const [tokenAxis, featureAxis, barAxis] = axisExtents;
  figure.text('token', tokenAxis, matrixW / 2 - (tokenAxis.left + tokenAxis.right) / 2, bottom + 8 - tokenAxis.top, TEXT.axis);
  if (rows.length) {
    figure.text('feature', featureAxis, left - 8 - featureAxis.bottom, matrixH / 2 + (featureAxis.left + featureAxis.right) / 2, {
      ...TEXT.axis,
      rotated: true,
    });
  }

  // The colour bar, right of the cells, with its ticks and name.
  const barX = matrixW + 20;
  const barH = Math.max(matrixH, LAYOUT.bar.minHeight);
  const tickRight = await colourBar(figure, barX, 0, LAYOUT.bar.width, barH, vmax, lut);
  figure.text('activation', barAxis, tickRight + 8 - barAxis.top, barH / 2 + (barAxis.left + barAxis.right) / 2, { ...TEXT.axis, rotated: true });
  let rulerTop = 0;
  rulerText.forEach((t, i) => {
    const e = rulerExtents[i];
    const x = (i * every + 0.5) * width;
    figure.shape(...line(x, -3, x, 0, '#999'));
    figure.text(t, e, x - (e.left + e.right) / 2, -6, LAYOUT.ruler);
    rulerTop = Math.min(rulerTop, -6 + e.top);
  });
  const wide = matrixW > LAYOUT.leftTitle;
  await figure.title(title, wide ? { x: left, bottom: rulerTop, align: 'left' } : { x: matrixW / 2, bottom: rulerTop });
  return figure.render();
}
