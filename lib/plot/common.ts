// Shared pieces of the plots: the structural input type, reading one batch element's
// attention out of the [batch, layers, heads, seq, seq] tensor, colour maps, tick values and
// the constants of the PNGs' text.
import { callSite, CallSite, failure } from '../core/errors';
import { integer, oneOf } from '../core/validate';
import { Tensor } from '../model/tensor';

/**
 * What the plots need from an AttentionResult (lib/methods/attention.ts): real tokens per batch element,
 * their lengths, and attentions [batch, layers, heads, seq, seq] (padding rows/cols ignored).
 */
export interface AttentionLike {
  tokens: string[][];
  lengths?: number[];
  attentions: Tensor;
}

/** One batch element's attention, unpadded: values[((layer * heads + head) * n + row) * n + col]. */
export interface AttentionBlock {
  tokens: string[];
  n: number;
  layers: number;
  heads: number;
  /** Raw values of the whole tensor (a zero-copy view); index with `offset()`. */
  values: ArrayLike<number>;
  /** The padded sequence length of the tensor. */
  seq: number;
  offset(layer: number, head: number): number;
}

export { callSite, CallSite };

/** Validates the result and returns a view of batch element `batch`. */
export function attentionBlock(result: AttentionLike, batch: number, site: CallSite): AttentionBlock {
  if (!result || typeof result !== 'object' || !(result.attentions instanceof Tensor) || !Array.isArray(result.tokens)) {
    throw failure('INVALID_ARGUMENT', 'expected an attention result ({ tokens, lengths, attentions }) from torch.attention()', site);
  }
  const attentions = result.attentions;
  if (attentions.disposed) throw failure('DISPOSED', 'the attention tensor was disposed', site);
  const shape = attentions.shape;
  if (shape.length !== 5 || shape[3] !== shape[4]) {
    throw failure('SHAPE', `attentions must be [batch, layers, heads, seq, seq]; got [${shape}]`, site);
  }
  const [batches, layers, heads, seq] = shape;
  integer(batch, 'batch', { min: 0, max: batches - 1 }, site);
  const device = attentions.device;
  if (device !== 'cpu') {
    throw failure('DEVICE', `attentions are on ${device}; plots read CPU memory: use await attentions.to('cpu')`, site);
  }
  const dtype = attentions.dtype;
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw failure('DTYPE', `attentions must be float32 or float64; got ${dtype}`, site);
  }
  const tokens = result.tokens[batch];
  if (!Array.isArray(tokens)) throw failure('INVALID_ARGUMENT', `no tokens for batch element ${batch}`, site);
  const n = result.lengths?.[batch] ?? tokens.length;
  if (!Number.isInteger(n) || n < 1 || n > seq) {
    throw failure('SHAPE', `batch element ${batch} has length ${n}, outside the attention's sequence length ${seq}`, site);
  }
  if (tokens.length < n) throw failure('SHAPE', `batch element ${batch} has ${tokens.length} tokens for length ${n}`, site);
  const values = attentions.data() as Float32Array | Float64Array;
  const base = batch * layers * heads * seq * seq;
  return {
    tokens: tokens.slice(0, n).map((t) => String(t)),
    n,
    layers,
    heads,
    values,
    seq,
    offset: (layer, head) => base + (layer * heads + head) * seq * seq,
  };
}

/** The n x n matrix of one head, copied out of the padded tensor. */
export function headMatrix(block: AttentionBlock, layer: number, head: number): Float32Array {
  const { n, seq, values } = block;
  const out = new Float32Array(n * n);
  const start = block.offset(layer, head);
  for (let r = 0; r < n; r++) {
    const row = start + r * seq;
    for (let c = 0; c < n; c++) {
      const v = values[row + c];
      out[r * n + c] = v === v && v !== Infinity && v !== -Infinity ? v : 0;
    }
  }
  return out;
}

export function maxOf(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max;
}

// Colour maps: evenly spaced anchor colours, linearly interpolated.
const anchors: Record<string, string[]> = {
  viridis: ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'],
  magma: ['#000004', '#180f3d', '#440f76', '#721f81', '#9e2f7f', '#cd4071', '#f1605d', '#fd9668', '#feca8d', '#fcfdbf'],
  inferno: ['#000004', '#1b0c41', '#4a0c6b', '#781c6d', '#a52c60', '#cf4446', '#ed6925', '#fb9b06', '#f7d13d', '#fcffa4'],
  blues: ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'],
  greys: ['#ffffff', '#000000'],
  // Captum's attribution maps: ColorBrewer greens and reds, and red-white-green for signed values.
  greens: ['#f7fcf5', '#e5f5e0', '#c7e9c0', '#a1d99b', '#74c476', '#41ab5d', '#238b45', '#006d2c', '#00441b'],
  reds: ['#fff5f0', '#fee0d2', '#fcbba1', '#fc9272', '#fb6a4a', '#ef3b2c', '#cb181d', '#a50f15', '#67000d'],
  redwhitegreen: ['#ff0000', '#ffffff', '#008000'],
};

export type Colormap = 'viridis' | 'magma' | 'inferno' | 'blues' | 'greys' | 'greens' | 'reds' | 'redwhitegreen';
export const COLORMAPS = Object.keys(anchors) as Colormap[];

/** A 256-entry RGB lookup table (768 bytes) for the colour map. */
export function colormapLut(name: Colormap, site: CallSite): Uint8Array {
  const stops = anchors[oneOf(name, 'colormap', COLORMAPS, site)];
  const rgb = stops.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (rgb.length - 1);
    const k = Math.min(rgb.length - 2, Math.floor(x));
    const f = x - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(rgb[k][c] * (1 - f) + rgb[k + 1][c] * f);
  }
  return lut;
}

/** 'Nice' tick values from 0 to max (3-6 ticks). */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0];
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = 0; t <= max * (1 + 1e-9); t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

export function formatTick(value: number, ticks: number[]): string {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : Math.abs(value) || 1;
  let decimals = 0;
  while (decimals < 8 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals++;
  return value.toFixed(decimals);
}

/** Escapes text for SVG/XML character data and attribute values; drops XML-invalid control characters. */
export function escapeXml(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
      .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

/**
 * Text of the PNG plots. librsvg picks the font through fontconfig (DejaVu Sans where it is
 * installed, else the system's sans-serif); lib/plot/text.ts measures every string by rendering
 * it, so layouts hold for whichever font is actually used.
 */
export const TEXT = {
  family: 'DejaVu Sans, sans-serif',
  /** Blank margin between the outermost ink and the PNG's edges, in pixels. */
  pad: 14,
  title: { size: 16, bold: true, fill: '#111' },
  /** Axis names ('key (attended to)'). */
  axis: { size: 12, fill: '#555' },
  /** Colour bar ticks. */
  tick: { size: 11, fill: '#222' },
  /** Head names, token and row/column labels (whose size follows the cells). */
  labelFill: '#222',
  /** Titles wrap at the plot's width, but at no less than this many pixels. */
  titleWrap: 480,
  /** Baseline-to-baseline distance of a title's lines, in font sizes. */
  lineHeight: 1.3,
  /** Measuring: each string gets a row this many font sizes high, its baseline 60% down... */
  measureRow: 4,
  /** ...and this many font sizes of width per code point (DejaVu's widest glyphs are ~1 em). */
  measureAdvance: 2,
  /** Largest measuring render, per side: cairo's surfaces stop at 32,767 pixels. */
  measureMaxSide: 16_384,
} as const;
