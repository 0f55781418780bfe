// Attribution pictures, as Captum's visualization draws them without matplotlib or a notebook:
// a heat map blended over the image in grey (visualize_image_attr's 'blended_heat_map': values
// summed over channels, scaled by the 98th percentile of their cumulative sum, a diverging map
// for signed values and sequential ones otherwise), and tokens coloured by their attribution
// (visualize_text's colours), as a self-contained HTML page or a PNG.
import sharp from 'sharp';

import { failure } from '../core/errors';
import { boolean, checkOptions, finiteNumber, instance, integer, optionKeys } from '../core/validate';
import { Tensor } from '../model/tensor';
import { callSite, CallSite, colormapLut, escapeXml } from './common';
import { Figure } from './figure';
import { measureText } from './text';

/** Which values a map shows, Captum's `sign`: |a| (default), a signed, a > 0, a < 0. */
export type AttributionSign = 'absolute' | 'all' | 'positive' | 'negative';

export interface OverlayOptions {
  /** Default 'absolute': |attributions| on a sequential blue scale; 'all': signed, red-white-green. */
  sign?: AttributionSign;
  /** The top percent of the attribution mass clipped, Captum's outlier_perc. Default 2. */
  outlierPercent?: number;
  /** Opacity of the heat map over the grey image. Default 0.5. */
  alpha?: number;
  /** Batch element. Default 0. */
  batch?: number;
  /** Width of the PNG in pixels (small images are enlarged, pixels kept sharp). Default: the image's, at least 256. */
  size?: number;
}

export interface TokenOptions {
  /** Divide the scores by their largest magnitude first (Captum leaves that to the caller). Default true. */
  normalize?: boolean;
  /** Page or picture title. Default 'Token attributions'. */
  title?: string;
}

/** tokenAttributionPng: the picture's width in pixels. Default 720. */
export interface TokenPngOptions extends TokenOptions {
  width?: number;
}

const SIGN_COLORMAP = { absolute: 'blues', positive: 'greens', negative: 'reds', all: 'redwhitegreen' } as const;
const OVERLAY_KEYS = optionKeys<OverlayOptions>({ sign: true, outlierPercent: true, alpha: true, batch: true, size: true });
const TOKEN_KEYS = optionKeys<TokenOptions>({ normalize: true, title: true });
const TOKEN_PNG_KEYS = optionKeys<TokenPngOptions>({ normalize: true, title: true, width: true });

/** [H, W] of batch element `batch`, summed over channels (Captum sums channel-last attributions). */
function channelSum(t: Tensor, batch: number, what: string, site: CallSite): { values: Float64Array; height: number; width: number } {
  instance(t, what, Tensor, site);
  if (t.disposed) throw failure('DISPOSED', `${what} was disposed`, site);
  if (t.device !== 'cpu') throw failure('DEVICE', `${what} is on ${t.device}: plots read CPU memory`, site);
  const shape = t.shape;
  const dims = shape.length === 4 ? shape : shape.length === 3 ? [1, ...shape] : shape.length === 2 ? [1, 1, ...shape] : null;
  if (!dims) throw failure('SHAPE', `${what} must be [N, C, H, W], [C, H, W] or [H, W]; got [${shape}]`, site);
  const [batches, channels, height, width] = dims;
  integer(batch, 'batch', { min: 0, max: batches - 1 }, site);
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw failure('DTYPE', `${what} must be float32 or float64, got ${t.dtype}`, site);
  const data = t.data() as Float32Array | Float64Array;
  const values = new Float64Array(height * width);
  const plane = height * width;
  const base = batch * channels * plane;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) values[i] += data[base + c * plane + i];
  }
  return { values, height, width };
}

/**
 * Captum's _normalize_attr: the chosen sign, divided by the value at which the cumulative sum
 * of the sorted magnitudes reaches (100 - outlierPercent)% of their total, clipped to [-1, 1].
 */
export function normalizeAttribution(values: ArrayLike<number>, sign: AttributionSign, outlierPercent: number): Float64Array {
  const picked = Float64Array.from(values, (v) =>
    sign === 'absolute' ? Math.abs(v) : sign === 'positive' ? Math.max(v, 0) : sign === 'negative' ? Math.min(v, 0) : v,
  );
  const sorted = Float64Array.from(picked, Math.abs).sort();
  let total = 0;
  for (const v of sorted) total += v;
  let threshold = sorted[sorted.length - 1] ?? 0;
  let running = 0;
  for (const v of sorted) {
    running += v;
    if (running >= total * 0.01 * (100 - outlierPercent)) {
      threshold = v;
      break;
    }
  }
  if (!(threshold > 0)) return new Float64Array(picked.length);
  if (sign === 'negative') threshold = -threshold;
  return picked.map((v) => Math.max(-1, Math.min(1, v / threshold)) + 0); // + 0: no -0
}

/** Bilinear resampling of an [h, w] map to [height, width] (half-pixel centres, as align_corners=false). */
function resample(values: Float64Array, h: number, w: number, height: number, width: number): Float64Array {
  if (h === height && w === width) return values;
  const out = new Float64Array(height * width);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / height - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / width - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      const top = values[y0 * w + x0] * (1 - fx) + values[y0 * w + x1] * fx;
      const bottom = values[y1 * w + x0] * (1 - fx) + values[y1 * w + x1] * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * A PNG of the attributions over the image: the image in grey, the normalised attribution map
 * blended on top. The map is resampled to the image's size when it is smaller (Grad-CAM).
 */
export async function attributionOverlay(image: Tensor, attributions: Tensor, given?: OverlayOptions): Promise<Buffer> {
  const site = callSite(attributionOverlay);
  const options = checkOptions(given, OVERLAY_KEYS, 'attributionOverlay', site);
  const batch = options.batch ?? 0;
  const sign = options.sign ?? 'absolute';
  if (!Object.keys(SIGN_COLORMAP).includes(sign))
    throw failure('INVALID_ARGUMENT', `sign is 'absolute', 'all', 'positive' or 'negative', got ${JSON.stringify(sign)}`, site);
  const outlier = finiteNumber(options.outlierPercent ?? 2, 'outlierPercent', { min: 0, below: 100 }, site);
  const alpha = finiteNumber(options.alpha ?? 0.5, 'alpha', { min: 0, max: 1 }, site);
  const picture = channelSum(image, batch, 'image', site);
  const map = channelSum(attributions, batch, 'attributions', site);
  const { height, width } = picture;
  const normalized = resample(normalizeAttribution(map.values, sign, outlier), map.height, map.width, height, width);
  // The grey image, scaled to its own range as matplotlib's grey imshow does.
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of picture.values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi > lo ? hi - lo : 1;
  const lut = colormapLut(SIGN_COLORMAP[sign], site);
  const rgb = Buffer.alloc(height * width * 3);
  for (let i = 0; i < height * width; i++) {
    const grey = (255 * (picture.values[i] - lo)) / span;
    const t = sign === 'all' ? (normalized[i] + 1) / 2 : normalized[i]; // 'negative' is in [0, 1] already
    const k = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round((1 - alpha) * grey + alpha * lut[k + c]);
  }
  const size = integer(options.size ?? Math.max(256, width), 'size', { min: 16, max: 8192 }, site);
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize({ width: size, kernel: size >= width * 2 ? 'nearest' : 'lanczos3' })
    .png()
    .toBuffer();
}

/** Captum's visualize_text colour: green for positive, red for negative, white at 0 (v in [-1, 1]). */
export function tokenColor(value: number): string {
  const v = Math.max(-1, Math.min(1, value));
  return v > 0 ? `hsl(120, 75%, ${100 - Math.trunc(50 * v)}%)` : `hsl(0, 75%, ${100 - Math.trunc(-40 * v)}%)`;
}

function checkTokens(tokens: string[], scores: ArrayLike<number> | Tensor, options: TokenOptions, site: CallSite): number[] {
  if (!Array.isArray(tokens)) throw failure('INVALID_ARGUMENT', 'tokens must be an array of strings', site);
  const values = Array.from(scores instanceof Tensor ? (scores.data() as Float32Array) : scores, Number);
  if (values.length !== tokens.length) throw failure('SHAPE', `${tokens.length} tokens but ${values.length} scores`, site);
  if (!values.every(Number.isFinite)) throw failure('INVALID_ARGUMENT', 'scores must be finite numbers', site);
  if (!boolean(options.normalize ?? true, 'normalize', site)) return values;
  const top = Math.max(0, ...values.map(Math.abs));
  return top > 0 ? values.map((v) => v / top) : values;
}

/**
 * One self-contained HTML page (no script, no network: a CSP forbids both) with each token on a
 * background coloured by its score, the score in its tooltip, and a legend.
 */
export function tokenAttributionHtml(tokens: string[], scores: ArrayLike<number> | Tensor, given?: TokenOptions): string {
  const site = callSite(tokenAttributionHtml);
  const options = checkOptions(given, TOKEN_KEYS, 'tokenAttributionHtml', site);
  const values = checkTokens(tokens, scores, options, site);
  const title = escapeXml(options.title ?? 'Token attributions');
  const cells = tokens
    .map((token, i) => `<mark style="background:${tokenColor(values[i])}" title="${values[i].toFixed(4)}">${escapeXml(String(token))}</mark>`)
    .join(' ');
  const legend = [-1, 0, 1].map((v) => `<mark style="background:${tokenColor(v)}">${v < 0 ? 'negative' : v > 0 ? 'positive' : 'neutral'}</mark>`).join(' ');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${title}</title>
<style>body{font:16px/2.2 "DejaVu Sans",sans-serif;margin:2em;max-width:60em}mark{padding:.15em .3em;border-radius:.25em;color:#000}h1{font-size:1.2em;overflow-wrap:anywhere}.legend{font-size:.8em;color:#555}</style>
</head><body><h1>${title}</h1><p>${cells}</p><p class="legend">${legend}</p></body></html>
`;
}

/**
 * The same as a PNG (SVG rendered by sharp): tokens wrapped in lines `width` pixels wide (default
 * 720), under the title, itself wrapped to that width. A token wider than a line widens the picture.
 */
export async function tokenAttributionPng(tokens: string[], scores: ArrayLike<number> | Tensor, given?: TokenPngOptions): Promise<Buffer> {
  const site = callSite(tokenAttributionPng);
  const options = checkOptions(given, TOKEN_PNG_KEYS, 'tokenAttributionPng', site);
  const values = checkTokens(tokens, scores, options, site);
  const width = integer(options.width ?? 720, 'width', { min: 120, max: 8192 }, site);
  const style = { size: 16, fill: '#000' };
  const line = 30;
  const margin = 16;
  const text = tokens.map(String);
  const extents = await measureText(text, style);
  // Tokens flow from (margin, 0); the title goes above them.
  const figure = new Figure();
  let x = margin;
  let y = 0;
  text.forEach((token, i) => {
    const e = extents[i];
    const inset = 5 - Math.min(0, e.left);
    const w = Math.ceil(inset + e.right) + 5;
    if (x + w > width - margin && x > margin) {
      x = margin;
      y += line;
    }
    figure.shape(`<rect x="${x}" y="${y}" width="${w}" height="${line - 6}" rx="4" fill="${tokenColor(values[i])}"/>`, {
      x0: x,
      y0: y,
      x1: x + w,
      y1: y + line - 6,
    });
    figure.text(token, e, x + inset, y + style.size + 1, style);
    x += w + 4;
  });
  await figure.title(options.title ?? 'Token attributions', { x: margin, bottom: 0, align: 'left', width: width - 2 * margin });
  return figure.render({ x0: 0, y0: 0, x1: width, y1: 0 });
}
