// Pictures of SAE features on a prompt: the self-contained page in a real headless Chromium (as
// test/browser.test.ts drives it: clicks light the tokens with the data's values, a token's list is
// its top features, hostile tokens and labels stay text, no network), the PNG heatmap (decodes,
// grows with its tokens, rows and labels, nothing at its edges), and the inputs and options refused.
// Synthetic sparse activations: no model needed. The pictures are also written to
// $TMPDIR/torchscope-feature-*.png for a look.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import * as torch from '../lib';
import { formatActivation } from '../lib/plot/features';
import { suiteBrowser } from './helpers/browser';

type Any = any;
// Page-side code in page.evaluate callbacks runs in the browser; the package has no DOM types.
declare const window: Any;
declare const document: Any;
declare const getComputedStyle: Any;

const HOSTILE = ['<script>window.__pwned = 1</script>', '</script><script>window.__pwned = 2</script>', '<img src=x onerror="window.__pwned = 3">'];
const TOKENS = ['<|endoftext|>', 'The', ' cat', ' sat', '\n', HOSTILE[0], ' &amp;', HOSTILE[1], ' the', '', HOSTILE[2], ' cat', '\u2028', '.'];
const LABELS = { 42: HOSTILE[2], 7: 'the "definite" article', 3: '</script><script>window.__pwned = 4</script>' };

/** [seq, dSae] activations: `perToken` random features per token (low indices more often), seeded. */
function sparse(seq: number, dSae: number, perToken: number, seed = 7): Float32Array {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const data = new Float32Array(seq * dSae);
  for (let p = 0; p < seq; p++) for (let k = 0; k < perToken; k++) data[p * dSae + Math.floor(rnd() ** 2 * dSae)] = 0.05 + rnd() * 6;
  return data;
}

function small(): { tokens: string[]; features: torch.Tensor; labels: Record<number, string>; data: Float32Array; dSae: number } {
  const dSae = 64;
  const data = sparse(TOKENS.length, dSae, 8);
  [2, 11].forEach((p) => (data[p * dSae + 42] = 8.5)); // the 'cat' feature
  [1, 8].forEach((p) => (data[p * dSae + 7] = 3.25));
  data[2 * dSae + 10] = data[2 * dSae + 11] = 7; // a tie: the lower index first
  return { tokens: TOKENS, features: torch.tensor(data, [TOKENS.length, dSae]), labels: LABELS, data, dSae };
}

/** Positions p with features[p, f] > 0 and their values, from the data. */
function column(data: Float32Array, dSae: number, f: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < data.length / dSae; p++) if (data[p * dSae + f] > 0) out.push([p, data[p * dSae + f]]);
  return out;
}

/** A token's top features: by activation, ties by index. */
function topFeatures(data: Float32Array, dSae: number, p: number, k: number): [number, number][] {
  const row: [number, number][] = [];
  for (let f = 0; f < dSae; f++) if (data[p * dSae + f] > 0) row.push([f, data[p * dSae + f]]);
  return row.sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, k);
}

/** Features by max activation (descending; ties by index). */
function byMax(data: Float32Array, dSae: number): number[] {
  const max = new Float64Array(dSae);
  for (let i = 0; i < data.length; i++) max[i % dSae] = Math.max(max[i % dSae], data[i]);
  return Array.from({ length: dSae }, (_, f) => f)
    .filter((f) => max[f] > 0)
    .sort((a, b) => max[b] - max[a] || a - b);
}

const browser = suiteBrowser('features', { width: 1280, height: 800 });

interface Opened {
  page: Any;
  errors: string[];
  offsite: () => string[];
  loadMs: number;
}

async function open(html: string, name: string): Promise<Opened> {
  const file = path.join(browser().dir, name);
  fs.writeFileSync(file, html);
  const url = `file://${file}`;
  const page = await browser().context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m: Any) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e: Error) => errors.push(String(e)));
  page.on('request', (r: Any) => requests.push(r.url()));
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 30_000 });
  const loadMs = Date.now() - t0;
  expect(await page.getAttribute('body', 'data-ready')).toBe('1');
  return { page, errors, offsite: () => requests.filter((u) => u !== url && !u.startsWith('data:') && !u.startsWith('blob:')), loadMs };
}

/** Every token span: its position, text, shown activation (data-act) and whether it is lit. */
const tokenState = (page: Any) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll('.tok')).map((s: Any) => ({
      pos: Number(s.getAttribute('data-pos')),
      text: s.textContent,
      act: s.getAttribute('data-act'),
      lit: getComputedStyle(s).backgroundColor !== 'rgba(0, 0, 0, 0)',
    })),
  );

/** The token panel's rows: [feature, shown activation, kept in the page]. */
const tokenPanel = (page: Any) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll('#fx-token-features tr')).map((tr: Any) => [
      Number(tr.getAttribute('data-feature')),
      tr.children[2].textContent,
      !tr.classList.contains('absent'),
    ]),
  );

describe('featureHtml in Chromium', () => {
  test('a click lights the tokens by the feature, with its values; a token lists its top features; hostile text stays text', async () => {
    const acts = small();
    const silent = Array.from({ length: acts.dSae }, (_, f) => f).find((f) => column(acts.data, acts.dSae, f).length === 0)!;
    const html = torch.plot.featureHtml(acts, { topK: 5, features: [7, silent], title: HOSTILE[0] });
    expect(html).not.toMatch(/<script>window|<img/); // nothing hostile as markup, anywhere in the file
    const o = await open(html, 'small.html');
    const { page } = o;
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-feature-page.png'), await page.screenshot({ fullPage: true }));
    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(await page.evaluate(() => [document.querySelectorAll('img').length, document.scripts.length])).toEqual([0, 3]);
    expect(await page.textContent('h1')).toBe(HOSTILE[0]);
    const shown = TOKENS.map((t) => t.replace(/\n/g, '\\n'));
    expect((await tokenState(page)).map((t: Any) => t.text)).toEqual(shown);

    // The list: the pinned features first (the first selected), then the rest by max activation.
    const listed = await page.evaluate(() => window.torchscopeFeatures.listed());
    expect(listed).toEqual([7, silent, ...byMax(acts.data, acts.dSae).filter((f) => f !== 7)]);
    expect(await page.getAttribute('body', 'data-selected')).toBe('7');
    await page.click(`#fx-list tr[data-feature="${silent}"]`);
    expect(await page.textContent('#fx-feature-stats')).toBe('does not fire on this prompt');
    expect((await tokenState(page)).filter((t: Any) => t.lit)).toEqual([]);

    // Click feature 42: exactly its tokens light up, showing the data's values.
    for (const f of [42, listed[5]]) {
      await page.click(`#fx-list tr[data-feature="${f}"]`);
      expect(await page.getAttribute('body', 'data-selected')).toBe(String(f));
      const expected = column(acts.data, acts.dSae, f);
      const tokens = await tokenState(page);
      expect(tokens.filter((t: Any) => t.lit).map((t: Any) => [t.pos, t.act])).toEqual(expected.map(([p, v]) => [p, formatActivation(v)]));
      expect(tokens.filter((t: Any) => t.act !== null).length).toBe(expected.length);
      const max = Math.max(...expected.map(([, v]) => v));
      const stats = await page.textContent('#fx-feature-stats');
      expect(stats).toContain(`max ${formatActivation(max)} at`);
      expect(stats).toContain(`fires on ${expected.length} of ${TOKENS.length} tokens`);
    }
    await page.click('#fx-list tr[data-feature="42"]');
    expect(await page.textContent('#fx-feature-name')).toBe(`Feature 42 \u00b7 ${LABELS[42]}`);

    // Hover a token: its top 5 features, ties by index; click one of them to select it.
    await page.hover('.tok[data-pos="2"]');
    const top = topFeatures(acts.data, acts.dSae, 2, 5);
    expect(await tokenPanel(page)).toEqual(top.map(([f, v]) => [f, formatActivation(v), true]));
    expect(top.map(([f]) => f)).toContain(10);
    // Click the token to keep its list; moving over other tokens leaves it.
    await page.click('.tok[data-pos="2"]');
    await page.hover('.tok[data-pos="8"]');
    expect((await tokenPanel(page)).map((r: Any) => r[0])).toEqual(top.map(([f]) => f));
    await page.click(`#fx-token-features tr[data-feature="${top[3][0]}"]`);
    expect(await page.getAttribute('body', 'data-selected')).toBe(String(top[3][0]));

    // The filter finds features by label and by index.
    await page.fill('#fx-filter', 'definite');
    expect(await page.evaluate(() => window.torchscopeFeatures.listed())).toEqual([7]);
    await page.fill('#fx-filter', '42');
    expect(await page.evaluate(() => window.torchscopeFeatures.listed())).toEqual([42]);

    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(o.errors).toEqual([]);
    expect(o.offsite()).toEqual([]);
    await page.close();
  });

  test('512 tokens x 24,576 features: only active entries embedded, loads and responds in well under a second', async () => {
    const [seq, dSae] = [512, 24_576];
    const data = sparse(seq, dSae, 64, 11);
    const features = torch.tensor(data, [seq, dSae]);
    const tokens = Array.from({ length: seq }, (_, i) => [' the', ' cat', ' sat', ' on', ' a', ' mat', '.', '\n'][i % 8]);
    const t0 = Date.now();
    const html = torch.plot.featureHtml({ tokens, features });
    const buildMs = Date.now() - t0;
    const o = await open(html, 'large.html');
    const { page } = o;
    const meta = await page.evaluate(() => window.torchscopeFeatures.meta);
    const nnz = data.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
    expect(meta).toMatchObject({ seq, dSae, nnz, entries: nnz, values: 'float32', embedded: byMax(data, dSae).length });
    const listed = await page.evaluate(() => window.torchscopeFeatures.listed());
    const f = listed[100];
    const clickMs = await page.evaluate((feature: number) => {
      const t = performance.now();
      document.querySelector(`#fx-list tr[data-feature="${feature}"]`).click();
      return performance.now() - t;
    }, f);
    const tokensNow = await tokenState(page);
    expect(tokensNow.filter((t: Any) => t.lit).map((t: Any) => [t.pos, t.act])).toEqual(column(data, dSae, f).map(([p, v]) => [p, formatActivation(v)]));
    const h0 = Date.now();
    await page.hover('.tok[data-pos="300"]');
    expect((await tokenPanel(page)).map((r: Any) => r[0])).toEqual(topFeatures(data, dSae, 300, 10).map(([g]) => g));
    const hoverMs = Date.now() - h0;
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-feature-page-512.png'), await page.screenshot());
    console.log(
      `512 x 24,576 (${nnz} active): page ${(html.length / 1e6).toFixed(2)} MB built in ${buildMs} ms; goto..ready ${o.loadMs} ms ` +
        `(in page ${await page.getAttribute('body', 'data-load-ms')} ms); feature click ${clickMs.toFixed(1)} ms; hover..panel ${hoverMs} ms`,
    );
    expect(html.length).toBeLessThan(2e6);
    expect(o.loadMs).toBeLessThan(20_000);
    expect(clickMs).toBeLessThan(1000);
    expect(o.errors).toEqual([]);
    expect(o.offsite()).toEqual([]);
    await page.close();
  }, 120_000);

  test('dense activations: the most active features kept whole, uint16 values, deflated; the rest marked', async () => {
    const [seq, dSae] = [300, 4096];
    const data = new Float32Array(seq * dSae);
    let s = 3;
    for (let i = 0; i < data.length; i++) data[i] = 0.01 + (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    const html = torch.plot.featureHtml({ tokens: Array.from({ length: seq }, (_, i) => `t${i}`), features: torch.tensor(data, [seq, dSae]) });
    expect(html.length).toBeLessThan(12e6);
    const o = await open(html, 'dense.html');
    const { page } = o;
    const meta = await page.evaluate(() => window.torchscopeFeatures.meta);
    expect(meta).toMatchObject({ values: 'uint16', compressed: true, active: dSae, nnz: seq * dSae });
    expect(meta.embedded).toBe(Math.floor(meta.budget / seq));
    expect(await page.textContent('#fx-info')).toContain(`keeps the ${meta.embedded.toLocaleString('en-US')} most active`);
    const order = byMax(data, dSae);
    const kept = new Set(order.slice(0, meta.embedded));
    const f = order[7];
    const got = await page.evaluate((g: number) => window.torchscopeFeatures.column(g), f);
    const want = column(data, dSae, f);
    expect(got.positions).toEqual(want.map(([p]) => p));
    const max = Math.max(...want.map(([, v]) => v));
    got.values.forEach((v: number, i: number) => expect(Math.abs(v - want[i][1])).toBeLessThanOrEqual(max / 65535));
    await page.hover('.tok[data-pos="17"]');
    const rows = await tokenPanel(page);
    expect(rows.map((r: Any) => [r[0], r[1], r[2]])).toEqual(topFeatures(data, dSae, 17, 10).map(([g, v]) => [g, formatActivation(v), kept.has(g)]));
    expect(o.errors).toEqual([]);
    await page.close();
  }, 120_000);
});

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Whether the outermost `margin` pixels on every side are white (nothing cut at an edge). */
function clearEdges(px: { data: Buffer; width: number; height: number }, margin: number): boolean {
  for (let y = 0; y < px.height; y++) {
    for (let x = 0; x < px.width; x++) {
      if (x >= margin && x < px.width - margin && y >= margin && y < px.height - margin) continue;
      const o = (y * px.width + x) * 3;
      if (px.data[o] < 250 || px.data[o + 1] < 250 || px.data[o + 2] < 250) return false;
    }
  }
  return true;
}

describe('featureHeatmap', () => {
  test('decodes; grows with tokens, rows and labels; nothing at its edges; the top activation in the darkest colour', async () => {
    const acts = small();
    const png = await torch.plot.featureHeatmap(acts);
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-feature-heatmap.png'), png);
    const base = await pixels(png);
    expect(clearEdges(base, 8)).toBe(true);
    // 'reds' ends in #67000d: the two cells of feature 42 (8.5, the largest), 32 x 32 px each, and the bar's top.
    let dark = 0;
    for (let i = 0; i < base.data.length; i += 3) if (Math.abs(base.data[i] - 0x67) + base.data[i + 1] + Math.abs(base.data[i + 2] - 0x0d) < 12) dark++;
    expect(dark).toBeGreaterThanOrEqual(2 * 32 * 32 * 0.8);

    const twice = {
      ...acts,
      tokens: [...TOKENS, ...TOKENS],
      features: torch.tensor(new Float32Array([...acts.data, ...acts.data]), [2 * TOKENS.length, acts.dSae]),
    };
    const wider = await pixels(await torch.plot.featureHeatmap(twice));
    expect(wider.width).toBeGreaterThan(base.width + 200);
    const fewer = await pixels(await torch.plot.featureHeatmap(acts, { top: 4 }));
    expect(fewer.height).toBeLessThan(base.height - 200);
    const longLabel = { ...acts, labels: { ...LABELS, 42: 'a feature with a long label, that fires on cats and other felines in prose' } };
    const labelled = await pixels(await torch.plot.featureHeatmap(longLabel, { top: 4 }));
    expect(labelled.width).toBeGreaterThan(fewer.width + 100);
    expect(clearEdges(labelled, 8)).toBe(true);
    const chosen = await pixels(await torch.plot.featureHeatmap(acts, { features: [3, 7], title: '' }));
    expect(chosen.height).toBeLessThan(fewer.height);

    // 512 tokens: 14 px columns, every label kept, the picture as wide as they are.
    const [seq, dSae] = [512, 1024];
    const tokens = Array.from({ length: seq }, (_, i) => ` w${i % 10}`);
    const long = await torch.plot.featureHeatmap({ tokens, features: torch.tensor(sparse(seq, dSae, 16), [seq, dSae]) });
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-feature-heatmap-512.png'), long);
    const longPx = await pixels(long);
    expect(longPx.width).toBeGreaterThan(seq * 14);
    expect(clearEdges(longPx, 8)).toBe(true);
  });
});

describe('bad inputs and options', () => {
  const acts = () => small();
  const calls: [string, (a: Any, o?: Any) => unknown][] = [
    ['featureHtml', (a, o) => torch.plot.featureHtml(a, o)],
    ['saveFeatureHtml', (a, o) => torch.plot.saveFeatureHtml(a, path.join(browser().dir, 'never-written.html'), o)],
    ['featureHeatmap', (a, o) => torch.plot.featureHeatmap(a, o)],
  ];
  const rejects = async (call: () => unknown, code: string, message?: RegExp) => {
    const error = await (async () => call())().then(
      () => undefined,
      (e: Any) => e,
    );
    expect(error).toBeInstanceOf(torch.TorchscopeError);
    expect(error).toMatchObject({ code });
    if (message) expect(error.message).toMatch(message);
  };

  test.each(calls)('%s refuses bad activations with typed errors', async (_, call) => {
    const a = acts();
    await rejects(() => call(null), 'INVALID_ARGUMENT', /expected feature activations/);
    await rejects(() => call({ tokens: a.tokens, features: a.data }), 'INVALID_ARGUMENT');
    await rejects(() => call({ ...a, features: torch.tensor(new Float32Array(2 * 14 * 4), [2, 14, 4]) }), 'SHAPE', /one prompt/);
    await rejects(() => call({ ...a, features: torch.tensor(new Float32Array(14), [14]) }), 'SHAPE');
    await rejects(() => call({ ...a, tokens: a.tokens.slice(1) }), 'SHAPE', /13 tokens for features of 14 positions/);
    await rejects(() => call({ ...a, tokens: [...a.tokens.slice(1), 5] }), 'INVALID_ARGUMENT', /token 13 is 5/);
    await rejects(() => call({ ...a, features: torch.tensor(new Int32Array(14 * 4), [14, 4]) }), 'DTYPE');
    for (const bad of [-1, NaN, Infinity]) {
      const data = new Float32Array(14 * 4);
      data[2 * 4 + 3] = bad;
      await rejects(() => call({ ...a, features: torch.tensor(data, [14, 4]), labels: undefined }), 'INVALID_ARGUMENT', /at position 2, feature 3/);
    }
    await rejects(() => call({ ...a, labels: { 64: 'out of range' } }), 'INVALID_ARGUMENT', /not a feature index in \[0, 64\)/);
    await rejects(() => call({ ...a, labels: { x: 'no index' } }), 'INVALID_ARGUMENT');
    await rejects(() => call({ ...a, labels: { 3: 5 } }), 'INVALID_ARGUMENT', /label must be a string/);
    const disposed = torch.tensor(new Float32Array(14 * 4), [14, 4]);
    disposed.dispose();
    await rejects(() => call({ ...a, features: disposed }), 'DISPOSED');
    // [1, seq, d_sae] and labels as an array are fine.
    await (async () => call({ ...a, features: torch.tensor(a.data, [1, 14, a.dSae]), labels: ['zero', 'one'] }))();
  });

  test.each(calls)('%s refuses unknown and bad options', async (name, call) => {
    const a = acts();
    await rejects(() => call(a, { topk: 3, top: 3 }), 'INVALID_ARGUMENT', new RegExp(`${name}: unknown option 'topk' \\(did you mean 'top`));
    await rejects(() => call(a, 5), 'INVALID_ARGUMENT', /options must be an object/);
    await rejects(() => call(a, { features: [64] }), 'INVALID_ARGUMENT', /features must be an integer in \[0, 63\]/);
    await rejects(() => call(a, { features: [3, 3] }), 'INVALID_ARGUMENT', /twice/);
    await rejects(() => call(a, { features: [] }), 'INVALID_ARGUMENT');
    await rejects(() => call(a, { title: 5 }), 'INVALID_ARGUMENT', /title must be a string/);
  });

  test('option values of each picture', async () => {
    const a = acts();
    for (const topK of [0, 101, 2.5]) await rejects(() => torch.plot.featureHtml(a, { topK }), 'INVALID_ARGUMENT', /topK must be an integer in \[1, 100\]/);
    await rejects(() => torch.plot.featureHeatmap(a, { features: [1], top: 2 }), 'INVALID_ARGUMENT', /features or top, not both/);
    await rejects(() => torch.plot.featureHeatmap(a, { top: 0 }), 'INVALID_ARGUMENT');
    await rejects(() => torch.plot.featureHeatmap(a, { vmax: 0 }), 'INVALID_ARGUMENT');
    await rejects(() => torch.plot.featureHeatmap(a, { cell: 0 }), 'INVALID_ARGUMENT');
    await rejects(() => torch.plot.featureHeatmap(a, { colormap: 'rainbow' as never }), 'INVALID_ARGUMENT');
    await rejects(() => torch.plot.featureHeatmap(a, { annotate: 'yes' as never }), 'INVALID_ARGUMENT');
    await rejects(() => torch.plot.saveFeatureHtml(a, '' as never), 'INVALID_ARGUMENT');
    const file = path.join(browser().dir, 'saved', 'features.html');
    expect(await torch.plot.saveFeatureHtml(a, file, { title: 'T' })).toBe(file);
    expect(fs.readFileSync(file, 'utf8')).toBe(torch.plot.featureHtml(a, { title: 'T' }));
  });
});
