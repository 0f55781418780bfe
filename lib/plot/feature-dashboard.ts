// A self-contained page of feature (or neuron) dashboards over a dataset (torch.dashboard.features),
// SAEDashboard's feature-centric view without Python or a CDN: one HTML file, inline CSS and
// script, no network. The dashboards travel once, in one blob (deflated when large), and the page
// renders one feature at a time on demand: a searchable, virtualized list and one panel, so pages
// of thousands of features stay responsive. Tokens become text once, in a shared table; the
// windows travel as typed arrays (pack); every token reaches the DOM as text, never as markup.
import { deflateSync } from 'zlib';

import { failure } from '../core/errors';
import { array, checkOptions, integer, isRecord, optionKeys, string } from '../core/validate';
import type { DashboardExample, DashboardHistogram, DashboardTokenizer, FeatureDashboard } from '../dashboard/types';
import { tokenText } from '../dashboard/types';
import { callSite, CallSite, escapeXml } from './common';
import { DASHBOARD_VIEWER_CSS, DASHBOARD_VIEWER_JS } from './feature-dashboard-viewer';
import { titleOption } from './features';
import { standalonePage, writePage } from './html';

/** Options of {@link featureDashboard} and {@link saveFeatureDashboard}. */
export interface FeatureDashboardOptions {
  /** Turns token ids into text (torch.Tokenizer, Gpt2Tokenizer...). Default: the ids. */
  tokenizer?: DashboardTokenizer;
  /** Page title. Default 'Feature dashboards'. */
  title?: string;
  /** The word before each index: 'Feature' (default), 'Neuron'... */
  label?: string;
  /** Tokens of each example's window the page keeps on each side of its token; null keeps whole windows. Default 32. */
  context?: number | null;
}

const KEYS = optionKeys<FeatureDashboardOptions>({ tokenizer: true, title: true, label: true, context: true });

/** Tokens kept on each side of an example's token by default. */
const CONTEXT = 32;
/** Blobs above this many bytes are deflated (the page inflates them with DecompressionStream). */
const DEFLATE_ABOVE = 256 * 1024;

/**
 * The page's data, one blob: a uint32 byte length, the JSON of everything but the windows (padded
 * to 4 bytes), the windows' token refs (indices into the JSON's table of texts; uint16 when the
 * table fits, uint32 otherwise; the top value means no token), then their values as int16
 * fractions of each feature's largest |value| (`s`: 4.5 significant digits, for colour and titles;
 * each example's own value travels exactly in the JSON).
 */
function pack(dashboards: FeatureDashboard[], tokenizer: DashboardTokenizer | undefined, context: number | null): Buffer {
  const table: string[] = [];
  const seen: number[] = []; // token id -> its place in the table
  const ref = (id: number) => {
    let at = seen[id];
    if (at === undefined) {
      at = seen[id] = table.length;
      table.push(tokenText(id, tokenizer));
    }
    return at;
  };
  // Each example's kept span of its window: [from, to).
  const span = (e: DashboardExample) => {
    const at = e.position - e.start;
    return context === null ? [0, e.values.length] : [Math.max(0, at - context), Math.min(e.values.length, at + context + 1)];
  };
  const examplesOf = (d: FeatureDashboard) => [...d.topExamples, ...d.intervals.flatMap((q) => q.examples)];
  let length = 0;
  for (const d of dashboards) for (const e of examplesOf(d)) length += span(e)[1] - span(e)[0];
  const refs = new Uint32Array(length);
  const values = new Int16Array(length);
  // Math.* hoisted: a global lookup per value is slow in some hosts (jest's vm contexts).
  const { abs, round } = Math;
  let offset = 0;
  const features = dashboards.map((d) => {
    let scale = abs(d.maxActivation);
    for (const e of examplesOf(d)) for (const v of e.values) if (abs(v) > scale) scale = abs(v);
    const factor = scale > 0 ? 32767 / scale : 0;
    const example = (e: DashboardExample) => {
      const [from, to] = span(e);
      const { tokens, values: window } = e;
      for (let i = from, o = offset; i < to; i++, o++) {
        refs[o] = tokens ? ref(tokens[i]) : 0xffffffff;
        values[o] = round(window[i] * factor);
      }
      offset += to - from;
      return [e.row, e.position, e.value, e.start + from, to - from];
    };
    const histogram = (h: DashboardHistogram | null) => (h ? [h.min, h.max, h.counts] : null);
    return {
      i: d.index,
      m: d.maxActivation,
      a: d.active,
      n: d.rows * d.contextSize,
      s: scale,
      h: histogram(d.histogram),
      l: d.logits
        ? { t: d.logits.top.map((t) => [ref(t.id), t.logit]), b: d.logits.bottom.map((t) => [ref(t.id), t.logit]), h: histogram(d.logits.histogram) }
        : null,
      x: d.topExamples.map(example),
      q: d.intervals.map((q) => [q.lower, q.upper, q.count, q.fraction, q.examples.map(example)]),
    };
  });
  // No token is the largest ref: 0xffffffff, or 0xffff once narrowed (modulo 2^16).
  const wide = table.length >= 0xffff;
  const tokens = wide ? refs : new Uint16Array(refs);
  const json = Buffer.from(JSON.stringify({ tokens: table, wide, length, features }), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length);
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const tokenBytes = Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength);
  return Buffer.concat([head, json, pad(json.length), tokenBytes, pad(tokenBytes.length), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

function page(dashboards: FeatureDashboard[], given: FeatureDashboardOptions | undefined, what: string, site: CallSite): string {
  const options = checkOptions(given, KEYS, what, site);
  array(dashboards, 'dashboards', site);
  dashboards.forEach((d, i) => {
    if (!isRecord(d) || !Array.isArray(d.topExamples) || !Array.isArray(d.intervals))
      throw failure('INVALID_ARGUMENT', `dashboards[${i}] is not a FeatureDashboard (torch.dashboard.features)`, site);
  });
  const title = titleOption(options.title, 'Feature dashboards', site);
  const label = options.label === undefined ? 'Feature' : string(options.label, 'label', site);
  const context = options.context === null ? null : integer(options.context ?? CONTEXT, 'context', { min: 0 }, site);
  const blob = pack(dashboards, options.tokenizer, context);
  const compressed = blob.length > DEFLATE_ABOVE;
  const meta = { version: 1, count: dashboards.length, label, compressed };
  const heading = escapeXml(title);
  const body = `<header>${heading ? `<h1>${heading}</h1>` : ''}<span class="info" id="fd-info">Loading…</span></header>
<main>
  <aside id="fd-side">
    <input id="fd-search" type="search" placeholder="Find: index, or &gt;0.5 for max above" aria-label="Find a feature">
    <div id="fd-sort"><label>Sort <select id="fd-order"><option value="index">index</option><option value="max">max activation</option><option value="density">density</option></select></label><span id="fd-count"></span></div>
    <div id="fd-list" tabindex="0"><div id="fd-rows"></div></div>
  </aside>
  <section id="fd-panel"></section>
</main>`;
  return standalonePage({
    title: title || 'Feature dashboards',
    css: DASHBOARD_VIEWER_CSS,
    body,
    prefix: 'fd',
    meta,
    data: compressed ? deflateSync(blob, { level: 6 }) : blob,
    js: DASHBOARD_VIEWER_JS,
  });
}

/**
 * A self-contained HTML page (no network) of dashboards from torch.dashboard.features: a list to
 * search and sort (by index, max activation, density), and the selected feature's panel: its max
 * and density, the histogram of its activations, its logit tables and histogram, its top
 * examples with each token lit by its activation, and each interval ("INTERVAL a - b CONTAINS
 * p%") with its sample. `#42` in the URL opens feature 42.
 */
export function featureDashboard(dashboards: FeatureDashboard[], options?: FeatureDashboardOptions): string {
  return page(dashboards, options, 'featureDashboard', callSite(featureDashboard));
}

/** Writes {@link featureDashboard}'s page to `file` (directories created). Returns the path. */
export async function saveFeatureDashboard(dashboards: FeatureDashboard[], file: string, options?: FeatureDashboardOptions): Promise<string> {
  const site = callSite(saveFeatureDashboard);
  string(file, 'file', site);
  return writePage(file, page(dashboards, options, 'saveFeatureDashboard', site));
}
