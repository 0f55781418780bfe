// A self-contained attention viewer: one HTML file with inline CSS and vanilla JS, no network.
// The attention of one batch element travels as a base64 blob of uint8 values (sqrt-companded,
// value = scale * (q / 255)^2), deflated when large and inflated in the page with the browser's
// DecompressionStream. The page draws on canvases: the head view (bertviz-style lines between two
// token columns, selected layer and heads only, lines under a threshold skipped, batched by
// opacity) and the model view (layers x heads thumbnails, rendered progressively).
import { promises as fs } from 'fs';
import * as path from 'path';
import { deflateSync } from 'zlib';

import { boolean, checkOptions, finiteNumber, optionKeys, string } from '../core/validate';
import { AttentionBlock, AttentionLike, attentionBlock, callSite, CallSite, colormapLut, escapeXml } from './common';
import { VIEWER_CSS, VIEWER_JS } from './viewer';

export interface HtmlOptions {
  /** Batch element. Default 0. */
  batch?: number;
  /** Page title. Default 'Attention'. */
  title?: string;
  /**
   * Deflate the data blob (the page inflates it with DecompressionStream, which every current
   * browser has). Default: when the raw blob is over 256 KiB.
   */
  compress?: boolean;
  /** Initial line threshold in the head view. Default: 0 up to 64 tokens, else 0.02. */
  threshold?: number;
}

const HTML_KEYS = optionKeys<HtmlOptions>({ batch: true, title: true, compress: true, threshold: true });

/**
 * uint8 codes of one batch element's attention, [layers, heads, n, n] without padding:
 * q = round(255 * sqrt(v / scale)), scale = the largest value (finer steps near 0, where most
 * attention is).
 */
function quantize(block: AttentionBlock): { bytes: Uint8Array; scale: number } {
  const { n, layers, heads, seq } = block;
  const values = block.values as Float32Array;
  let scale = 0;
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const start = block.offset(l, h);
      for (let r = 0; r < n; r++) {
        const row = start + r * seq;
        for (let c = 0; c < n; c++) if (values[row + c] > scale) scale = values[row + c];
      }
    }
  }
  if (!(scale > 0) || !Number.isFinite(scale)) scale = 1;
  // Math.* hoisted: a global lookup per value is slow in some hosts (jest's vm contexts: 30x).
  const sqrt = Math.sqrt;
  const k = 255 / sqrt(scale);
  const bytes = new Uint8Array(layers * heads * n * n);
  let o = 0;
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const start = block.offset(l, h);
      for (let r = 0; r < n; r++) {
        const row = start + r * seq;
        for (let c = 0; c < n; c++) {
          const v = values[row + c];
          const code = v > 0 ? (k * sqrt(v) + 0.5) | 0 : 0;
          bytes[o++] = code > 255 ? 255 : code;
        }
      }
    }
  }
  return { bytes, scale };
}

/** The HTML text of the viewer. */
export function attentionHtml(result: AttentionLike, options?: HtmlOptions): string {
  return html(result, options, 'attentionHtml', callSite(attentionHtml));
}

function html(result: AttentionLike, given: HtmlOptions | undefined, what: string, site: CallSite): string {
  const options = checkOptions(given, HTML_KEYS, what, site);
  const block = attentionBlock(result, options.batch ?? 0, site);
  const { n, layers, heads } = block;
  const threshold = finiteNumber(options.threshold ?? (n > 64 ? 0.02 : 0), 'threshold', { min: 0, below: 1 }, site);
  const raw = quantize(block);
  const scale = raw.scale;
  const compress = boolean(options.compress ?? raw.bytes.length > 256 * 1024, 'compress', site);
  const blob = compress ? deflateSync(raw.bytes, { level: 6 }) : Buffer.from(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
  const lut = colormapLut('viridis', site);
  const meta = {
    version: 1,
    tokens: block.tokens,
    n,
    layers,
    heads,
    scale,
    encoding: 'uint8-sqrt',
    compressed: compress,
    threshold,
    colormap: Buffer.from(lut).toString('base64'),
  };
  const body = `<header>
  <h1>${escapeXml(options.title ?? 'Attention')}</h1>
  <span class="info" id="ts-info"></span>
  <nav><button id="ts-tab-head" class="active">Head view</button><button id="ts-tab-model">Model view</button></nav>
</header>
<section id="ts-controls">
  <label>Layer <select id="ts-layer"></select></label>
  <label>Threshold <input id="ts-threshold" type="range" min="0" max="0.2" step="0.005"> <span id="ts-threshold-value"></span></label>
  <span id="ts-heads"></span>
  <button id="ts-all">All heads</button><button id="ts-none">None</button>
</section>
<main>
  <div id="ts-head-view"><div id="ts-status">Loading…</div><canvas id="ts-canvas"></canvas></div>
  <div id="ts-model-view" hidden><div id="ts-model-grid"></div></div>
</main>`;
  return standalonePage({ title: options.title ?? 'Attention', css: VIEWER_CSS, body, prefix: 'ts', meta, data: blob, js: VIEWER_JS });
}

/**
 * A page that needs nothing from outside: its content security policy lets no request leave it,
 * and its data travel inside it, `meta` as JSON in #<prefix>-meta ('<' escaped, so no token or
 * label in it can close the element) and `data` as base64 in #<prefix>-data, for `js` to read.
 */
export function standalonePage(page: { title: string; css: string; body: string; prefix: string; meta: unknown; data: Buffer; js: string }): string {
  const metaJson = JSON.stringify(page.meta)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src data: blob:">
<title>${escapeXml(page.title)}</title>
<style>${page.css}</style>
</head>
<body>
${page.body}
<script type="application/json" id="${page.prefix}-meta">${metaJson}</script>
<script type="application/octet-stream" id="${page.prefix}-data">${page.data.toString('base64')}</script>
<script>${page.js}</script>
</body>
</html>
`;
}

/** Writes a page to `file` (directories created). Returns the path. */
export async function writePage(file: string, page: string): Promise<string> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await fs.writeFile(file, page, 'utf8');
  return file;
}

/** Writes the viewer to `file` (directories created). Returns the path. */
export async function saveAttentionHtml(result: AttentionLike, file: string, options?: HtmlOptions): Promise<string> {
  const site = callSite(saveAttentionHtml);
  string(file, 'file', site);
  return writePage(file, html(result, options, 'saveAttentionHtml', site));
}
