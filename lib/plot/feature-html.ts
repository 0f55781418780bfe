// A self-contained page of SAE features on a prompt: the tokens as text, lit by the selected
// feature's activation; each token's top features; the most active features to pick from. One
// HTML file, inline CSS and script, no network. Only active entries travel, as columns (each
// embedded feature's positions and activations) in one base64 blob of typed arrays, deflated
// when large; a prompt with more active entries than ENTRY_BUDGET keeps the most active
// features whole and says so. Every token and label reaches the page as JSON and the DOM as
// text, never as markup.
import { deflateSync } from 'zlib';

import { checkOptions, integer, optionKeys, string } from '../core/validate';
import { callSite, CallSite, escapeXml } from './common';
import { FEATURE_PLOT_LIMITS, FeatureActivationsLike, featureIndices, featureTable, FeatureTable, rankFeatures, titleOption } from './features';
import { FEATURE_VIEWER_CSS, FEATURE_VIEWER_JS } from './feature-viewer';
import { standalonePage, writePage } from './html';

/** Options of {@link featureHtml} and {@link saveFeatureHtml}. */
export interface FeatureHtmlOptions {
  /** Features listed per token (hover or click a token). Default 10, at most 100. */
  topK?: number;
  /** Feature indices listed first, in this order (the first is selected when the page opens); the rest follow by max activation. */
  features?: number[];
  /** Page title. Default 'SAE features'. */
  title?: string;
}

const HTML_KEYS = optionKeys<FeatureHtmlOptions>({ topK: true, features: true, title: true });

/** Active entries a page holds at most (whole features, the most active first); beyond, the rest of the features are left out. */
const ENTRY_BUDGET = 1 << 20;
/** Activations travel as float32 up to this many entries, beyond as uint16 fractions of each feature's max (5 significant digits). */
const FLOAT_ENTRIES = 1 << 17;
/** Raw blobs larger than this are deflated (the page inflates them with DecompressionStream). */
const DEFLATE_ABOVE = 256 * 1024;

type SectionType = 'uint16' | 'uint32' | 'float32';
type Section = [name: string, type: SectionType, values: Uint16Array | Uint32Array | Float32Array];

/** The sections end to end, each padded to 4 bytes so that every typed array in the page is aligned. */
function pack(sections: Section[]): Buffer {
  const padded = (a: Section[2]) => Math.ceil(a.byteLength / 4) * 4;
  const out = Buffer.alloc(sections.reduce((n, s) => n + padded(s[2]), 0));
  let offset = 0;
  for (const [, , values] of sections) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
    offset += padded(values);
  }
  return out;
}

/** What the page holds: the embedded features' columns and each token's top features. */
function encode(table: FeatureTable, order: number[], pinned: number, topK: number) {
  const { seq, dSae, values, count, max } = table;
  // Whole features in list order while they fit (the pinned ones always).
  const embedded: number[] = [];
  let entries = 0;
  for (let i = 0; i < order.length; i++) {
    const f = order[i];
    if (i >= pinned && entries + count[f] > ENTRY_BUDGET) break;
    embedded.push(f);
    entries += count[f];
  }
  const slot = new Int32Array(dSae).fill(-1);
  const starts = new Uint32Array(embedded.length + 1);
  embedded.forEach((f, i) => {
    slot[f] = i;
    starts[i + 1] = starts[i] + count[f];
  });
  const fill = starts.slice(0, embedded.length);
  const positions = new Uint16Array(entries);
  const activations = new Float32Array(entries);
  // Each token's top features: an insertion list of topK (ties keep the lower index first).
  const topStart = new Uint32Array(seq + 1);
  const topIds = new Uint32Array(seq * topK);
  const topValues = new Float32Array(seq * topK);
  const ids = new Uint32Array(topK);
  const best = new Float64Array(topK);
  let top = 0;
  for (let p = 0; p < seq; p++) {
    const row = p * dSae;
    let kept = 0;
    for (let f = 0; f < dSae; f++) {
      const v = values[row + f];
      if (v === 0) continue;
      const s = slot[f];
      if (s >= 0) {
        positions[fill[s]] = p;
        activations[fill[s]++] = v;
      }
      if (kept === topK && v <= best[topK - 1]) continue;
      let j = kept < topK ? kept++ : topK - 1;
      while (j > 0 && best[j - 1] < v) {
        best[j] = best[j - 1];
        ids[j] = ids[j - 1];
        j--;
      }
      best[j] = v;
      ids[j] = f;
    }
    topIds.set(ids.subarray(0, kept), top);
    topValues.set(best.subarray(0, kept), top);
    top += kept;
    topStart[p + 1] = top;
  }
  let quantized: Uint16Array | undefined;
  if (entries > FLOAT_ENTRIES) {
    const codes = (quantized = new Uint16Array(entries));
    embedded.forEach((f, i) => {
      const scale = 65535 / Math.fround(max[f]);
      // At least 1: an active entry stays active.
      for (let e = starts[i]; e < starts[i + 1]; e++) codes[e] = Math.max(1, Math.min(65535, Math.round(activations[e] * scale)));
    });
  }
  const sections: Section[] = [
    ['ids', 'uint32', Uint32Array.from(embedded)],
    ['max', 'float32', Float32Array.from(embedded, (f) => max[f])],
    ['starts', 'uint32', starts],
    ['l0', 'uint32', table.l0],
    ['topStart', 'uint32', topStart],
    ['topIds', 'uint32', topIds.subarray(0, top)],
    ['topValues', 'float32', topValues.subarray(0, top)],
    ['positions', 'uint16', positions],
    quantized ? ['values', 'uint16', quantized] : ['values', 'float32', activations],
  ];
  return { embedded, entries, sections, topIds: topIds.subarray(0, top), quantized: quantized !== undefined };
}

function page(acts: FeatureActivationsLike, given: FeatureHtmlOptions | undefined, what: string, site: CallSite): string {
  const options = checkOptions(given, HTML_KEYS, what, site);
  const topK = integer(options.topK ?? FEATURE_PLOT_LIMITS.topK.default, 'topK', { min: 1, max: FEATURE_PLOT_LIMITS.topK.max }, site);
  const title = titleOption(options.title, 'SAE features', site);
  const table = featureTable(acts, site);
  const pinned = options.features === undefined ? [] : featureIndices(options.features, table.dSae, site);
  const order = rankFeatures(table, pinned);
  const { embedded, entries, sections, topIds, quantized } = encode(table, order, pinned.length, topK);
  const raw = pack(sections);
  const compressed = raw.length > DEFLATE_ABOVE;
  const blob = compressed ? deflateSync(raw, { level: 6 }) : raw;
  // Labels of every feature the page names: the embedded ones and those in the tokens' top lists.
  const labels: Record<number, string> = {};
  for (const f of [...embedded, ...topIds]) {
    const label = table.labels.get(f);
    if (label !== undefined) labels[f] = label;
  }
  const meta = {
    version: 1,
    tokens: table.tokens,
    seq: table.seq,
    dSae: table.dSae,
    topK,
    pinned: pinned.length,
    active: order.length - pinned.filter((f) => table.count[f] === 0).length,
    nnz: table.nnz,
    embedded: embedded.length,
    entries,
    budget: ENTRY_BUDGET,
    values: quantized ? 'uint16' : 'float32',
    compressed,
    sections: sections.map(([name, type, values]) => [name, type, values.length]),
    labels,
  };
  const heading = escapeXml(title);
  const body = `<header>${heading ? `<h1>${heading}</h1>` : ''}<span class="info" id="fx-info"></span></header>
<main>
  <section id="fx-left">
    <div id="fx-feature" class="panel"><div id="fx-feature-name">Loading…</div><div id="fx-feature-stats"></div>
      <div class="legend"><span>0</span><span class="ramp"></span><span id="fx-legend-max"></span></div></div>
    <div id="fx-tokens"></div>
  </section>
  <aside id="fx-right">
    <div id="fx-token" class="panel"></div>
    <div id="fx-list-head"><input id="fx-filter" type="search" placeholder="Filter features: index or label" aria-label="Filter features"><span id="fx-count"></span></div>
    <table id="fx-list"><thead><tr><th>Feature</th><th>Label</th><th class="num">Max</th><th class="bar"></th><th class="num">Tokens</th></tr></thead><tbody></tbody></table>
    <button id="fx-more" hidden>Show more</button>
  </aside>
</main>`;
  return standalonePage({ title: title || 'SAE features', css: FEATURE_VIEWER_CSS, body, prefix: 'fx', meta, data: blob, js: FEATURE_VIEWER_JS });
}

/**
 * A self-contained HTML page (no network) of SAE features on a prompt: the prompt's tokens as
 * text, each lit by the selected feature's activation; hover or click a token for its top
 * features; click a feature (in the list of the most active, by max activation over the prompt,
 * or in a token's list) to light the tokens by it, with its max activation and label.
 */
export function featureHtml(acts: FeatureActivationsLike, options?: FeatureHtmlOptions): string {
  return page(acts, options, 'featureHtml', callSite(featureHtml));
}

/** Writes {@link featureHtml}'s page to `file` (directories created). Returns the path. */
export async function saveFeatureHtml(acts: FeatureActivationsLike, file: string, options?: FeatureHtmlOptions): Promise<string> {
  const site = callSite(saveFeatureHtml);
  string(file, 'file', site);
  return writePage(file, page(acts, options, 'saveFeatureHtml', site));
}
