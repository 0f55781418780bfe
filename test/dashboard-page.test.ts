// The dashboard page (torch.plot.featureDashboard) in a real headless Chromium: 2000 synthetic
// features load, list and open quickly; selecting one (a click, the search box, the keys, the URL's
// #index) shows its panel with its data (max, density, histogram bars, logits, top examples with
// their token lit by value, the intervals "INTERVAL a – b · CONTAINS p%" highest first); hostile
// tokens stay text; no request leaves the page. Then real dashboards (the induction model's SAE,
// with logits; GPT-2's neurons with a tokenizer) rendered at 1280x800: the screenshots are written
// to $TMPDIR/torchscope-dashboard-*.png for a look.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as torch from '../lib';
import { expectTorchscopeError, MODELS, rng } from './helpers';
import { suiteBrowser } from './helpers/browser';
import { repeatedSequences } from './helpers/induction';

type Any = any;
// Page-side code in page.evaluate callbacks runs in the browser; the package has no DOM types.
declare const window: Any;
declare const document: Any;

const FEATURES = 2000;
const CTX = 64;
const HOSTILE = '<img src=x onerror="window.__pwned = 1">';
const WORDS = ['the', ' cat', ' sat', ' on', ' a', ' mat', '.', '\n', ' and', ' dog', HOSTILE, ' ran', ' far', ',', ' then', ' slept'];
const wordTokenizer = { decode: (ids: number[]) => WORDS[ids[0] % WORDS.length] };

/** `count` dashboards of random but well-formed data (what torch.dashboard.features gives). */
function synthetic(count: number): torch.dashboard.FeatureDashboard[] {
  const next = rng(11);
  const window = (row: number, position: number, max: number): torch.dashboard.DashboardExample => {
    const values = Array.from({ length: CTX }, (_, i) => (i === position ? max : next() < 0.2 ? next() * max : 0));
    return { row, position, value: max, start: 0, tokens: Array.from({ length: CTX }, () => Math.floor(next() * WORDS.length)), values };
  };
  return Array.from({ length: count }, (_, index) => {
    const max = 0.5 + next() * 10;
    const rows = 1000;
    const total = rows * CTX;
    const active = Math.floor(next() * total * 0.05) + 1;
    const top = Array.from({ length: 20 }, (_, i) => window(Math.floor(next() * rows), Math.floor(next() * CTX), Math.fround(max * (1 - i * 0.02))));
    const counts = Array.from({ length: 10 }, (_, j) => (j === 0 ? total - active : Math.floor(active / (j + 1))));
    const intervals = counts.map((count, j) => ({
      lower: Math.fround((max * j) / 10),
      upper: Math.fround((max * (j + 1)) / 10),
      count,
      fraction: count / total,
      examples: Array.from({ length: 5 }, () => window(Math.floor(next() * rows), Math.floor(next() * CTX), Math.fround((max * (j + next())) / 10))),
    }));
    const logit = (sign: number) => Array.from({ length: 10 }, (_, i) => ({ id: Math.floor(next() * WORDS.length), logit: sign * (3 - i * 0.2) }));
    return {
      index,
      maxActivation: Math.fround(max),
      active,
      density: active / total,
      rows,
      contextSize: CTX,
      topExamples: top,
      intervals,
      histogram: { min: 0.01, max: Math.fround(max), counts: Array.from({ length: 50 }, (_, i) => Math.floor(1000 * Math.exp(-i / 8))) },
      logits: {
        top: logit(1),
        bottom: logit(-1),
        histogram: { min: -3, max: 3, counts: Array.from({ length: 50 }, (_, i) => Math.floor(400 * Math.exp(-((i - 25) ** 2) / 80))) },
      },
    };
  });
}

const browser = suiteBrowser('dashboard-page', { width: 1280, height: 800 });

async function open(html: string, name: string, hash = ''): Promise<{ page: Any; errors: string[]; offsite: () => string[]; readyMs: number }> {
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
  await page.goto(url + hash);
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 60_000 });
  const readyMs = Date.now() - t0;
  expect(await page.getAttribute('body', 'data-ready')).toBe('1');
  return { page, errors, offsite: () => requests.filter((u) => !u.startsWith(url) && !u.startsWith('data:') && !u.startsWith('blob:')), readyMs };
}

const fmt = (v: number) => (v === 0 ? '0' : String(Number(v.toPrecision(4))));
const pct = (f: number) => `${(100 * f).toFixed(3)}%`;

/** What the panel shows: title, stats, group captions, and each group's examples (value text, the lit token's text and title). */
const panel = (page: Any) =>
  page.evaluate(() => ({
    title: document.querySelector('#fd-panel h2')?.textContent,
    stats: document.querySelector('#fd-panel .stats')?.textContent,
    captions: Array.from(document.querySelectorAll('#fd-panel .group > .cap')).map((c: Any) => c.textContent),
    groups: Array.from(document.querySelectorAll('#fd-panel .group')).map((g: Any) =>
      Array.from(g.querySelectorAll('.ex')).map((x: Any) => ({
        value: x.querySelector('.val').textContent,
        token: x.querySelector('.tok.q').textContent,
        title: x.querySelector('.tok.q').title,
        lit: x.querySelector('.tok.q').style.backgroundColor,
      })),
    ),
    bars: Array.from(document.querySelectorAll('#fd-panel .card svg')).map((s: Any) => s.querySelectorAll('rect').length),
    logits: Array.from(document.querySelectorAll('#fd-panel .logits table')).map((t: Any) =>
      Array.from(t.querySelectorAll('tr')).map((r: Any) => r.textContent),
    ),
  }));

describe('featureDashboard in Chromium', () => {
  test('2000 features: ready quickly, a virtual list, one panel whose content is the selected feature', async () => {
    const dashboards = synthetic(FEATURES);
    const t0 = Date.now();
    const html = torch.plot.featureDashboard(dashboards, { tokenizer: wordTokenizer, title: 'Synthetic dashboards', context: null });
    const buildMs = Date.now() - t0;
    expect(html).not.toMatch(/<img/);
    const { page, errors, offsite, readyMs } = await open(html, 'synthetic.html');
    // Generous: Chromium on a loaded 2-core machine; the page parses ~10 MB of data.
    expect(readyMs).toBeLessThan(20_000);
    const loadMs = Number(await page.getAttribute('body', 'data-load-ms'));
    console.log(`2000 features: ${(html.length / 1e6).toFixed(1)} MB page built in ${buildMs} ms, ready in ${readyMs} ms (data ${loadMs} ms)`);
    expect(await page.textContent('#fd-count')).toBe('2,000');
    expect(await page.evaluate(() => document.querySelectorAll('.row').length)).toBeLessThan(60);
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-dashboard-synthetic.png'), await page.screenshot());

    // The first feature opens; its panel is its data.
    expect(await page.getAttribute('body', 'data-selected')).toBe('0');
    const check = async (index: number) => {
      const d = dashboards[index];
      const shown = await panel(page);
      expect(shown.title).toBe(`Feature ${index}`);
      expect(shown.stats).toBe(
        `max ${fmt(d.maxActivation)} · density ${pct(d.density)} (${d.active.toLocaleString('en-US')} of ${(d.rows * CTX).toLocaleString('en-US')} tokens above 0)`,
      );
      const intervals = [...d.intervals].reverse();
      expect(shown.captions).toEqual([
        `TOP ACTIVATIONS · MAX = ${fmt(d.maxActivation)}`,
        ...intervals.map((q) => `INTERVAL ${fmt(q.lower)} – ${fmt(q.upper)} · CONTAINS ${pct(q.fraction)}`),
      ]);
      const groups = [d.topExamples, ...intervals.map((q) => q.examples)];
      expect(shown.groups.map((g: Any[]) => g.length)).toEqual(groups.map((g) => g.length));
      groups.forEach((g, i) =>
        g.forEach((e, j) => {
          const s = shown.groups[i][j];
          expect(s.value).toBe(fmt(e.value));
          expect(s.token).toBe(WORDS[e.tokens![e.position - e.start]].replace(/\n/g, '\\n'));
          expect(s.title).toContain(`#${e.position}: ${fmt(e.value)}`);
        }),
      );
      // The max lights its token fully (0.85 of the colour), a lower value less.
      expect(shown.groups[0][0].lit).toBe('rgba(255, 112, 0, 0.85)');
      expect(shown.bars).toEqual([d.histogram!.counts.filter((c) => c > 0).length, d.logits!.histogram.counts.filter((c) => c > 0).length]);
      expect(shown.logits[1]).toEqual(d.logits!.top.map((t) => `${WORDS[t.id].replace(/\n/g, '\\n')}+${fmt(t.logit)}`));
    };
    await check(0);

    // A click in the list.
    await page.click('.row[data-feature="3"]');
    expect(await page.getAttribute('body', 'data-selected')).toBe('3');
    await check(3);
    // The search box: a prefix filters, Enter opens the first.
    await page.fill('#fd-search', '1234');
    expect(await page.textContent('#fd-count')).toBe('1 of 2,000');
    const t1 = Date.now();
    await page.press('#fd-search', 'Enter');
    await page.waitForSelector('body[data-selected="1234"]');
    const selectMs = Date.now() - t1;
    expect(selectMs).toBeLessThan(5_000);
    await check(1234);
    // '>x': max above x; sorting by max puts the largest first.
    await page.fill('#fd-search', '>10');
    const above = dashboards.filter((d) => d.maxActivation > 10).map((d) => d.index);
    expect(await page.evaluate(() => window.torchscopeDashboard.listed())).toEqual(above);
    await page.fill('#fd-search', '');
    await page.selectOption('#fd-order', 'max');
    const byMax = [...dashboards].sort((a, b) => b.maxActivation - a.maxActivation || a.index - b.index).map((d) => d.index);
    expect(await page.evaluate(() => window.torchscopeDashboard.listed())).toEqual(byMax);
    // Keys move along the list (the sort kept 1234 in view: back to the top first).
    await page.evaluate((i: number) => window.torchscopeDashboard.select(i), byMax[0]);
    await page.click(`.row[data-feature="${byMax[0]}"]`);
    await page.press('#fd-list', 'ArrowDown');
    expect(await page.getAttribute('body', 'data-selected')).toBe(String(byMax[1]));
    // A click on an example shows its whole window, and again its crop.
    const tokens = () => page.evaluate(() => document.querySelectorAll('#fd-panel .group[data-group="t"] .ex')[0].querySelectorAll('.tok').length);
    const cropped = await tokens();
    await page.click('#fd-panel .group[data-group="t"] .ex >> nth=0');
    expect(await tokens()).toBe(CTX);
    expect(cropped).toBeLessThanOrEqual(25);
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-dashboard-synthetic-max.png'), await page.screenshot());

    expect(await page.evaluate(() => [window.__pwned, document.querySelectorAll('#fd-panel img').length])).toEqual([undefined, 0]);
    expect(offsite()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();

    // The URL's #index opens that feature.
    const second = await open(html, 'synthetic.html', '#1999');
    expect(await second.page.getAttribute('body', 'data-selected')).toBe('1999');
    await second.page.close();
  }, 120_000);

  test('real dashboards at 1280x800: the induction SAE with its logits, GPT-2 neurons with their tokens', async () => {
    const model = await torch.load(path.join(MODELS, 'induction.pt'));
    const sae = await torch.sae.load(path.join(MODELS, 'sae', 'induction-blocks.0'));
    const source = torch.dashboard.modelSource(model, 'blocks.0', repeatedSequences(128, 5, 16, 64), { batchSize: 32 });
    const saeDashboards = await torch.dashboard.features(source, { sae, logits: { model, layer: 'unembed' } });
    const tokenizer = { idToToken: (id: number) => (id === 0 ? '<bos>' : ` t${id}`) };
    const html = torch.plot.featureDashboard(saeDashboards, { tokenizer, title: 'induction.pt · blocks.0 SAE' });
    const { page, errors } = await open(html, 'induction.html');
    // The feature that fires most often (a token detector): a full panel.
    const busiest = [...saeDashboards].sort((a, b) => b.density - a.density)[0].index;
    await page.evaluate((i: number) => window.torchscopeDashboard.select(i), busiest);
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-dashboard-induction.png'), await page.screenshot());
    const shown = await panel(page);
    expect(shown.title).toBe(`Feature ${busiest}`);
    expect(shown.logits.map((t: string[]) => t.length)).toEqual([10, 10]);
    expect(errors).toEqual([]);
    await page.close();

    const gpt2 = await torch.load(path.join(MODELS, 'llm', 'gpt2.pt'));
    const text = await torch.Tokenizer.fromPretrained(path.join(MODELS, 'llm', 'gpt2'));
    const prose = 'The cat sat on the mat. The dog ran far and then it slept by the fire, warm and still. '.repeat(40);
    const ids = text.encode(prose).ids;
    const rows = Array.from({ length: 48 }, (_, r) => ids.slice(r * 7, r * 7 + 32));
    const neurons = await torch.dashboard.features(torch.dashboard.modelSource(gpt2, 'transformer.h.0.mlp.act', rows, { batchSize: 16 }), { buffer: [5, 5] });
    const page2 = (
      await open(torch.plot.featureDashboard(neurons, { tokenizer: text, title: 'GPT-2 fixture · h.0 MLP neurons', label: 'Neuron' }), 'neurons.html')
    ).page;
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-dashboard-neurons.png'), await page2.screenshot());
    expect((await panel(page2)).title).toBe('Neuron 0');
    await page2.close();
    torch.dispose([model, gpt2]);
    sae.dispose();
  }, 120_000);

  test('examples without tokens show a dot per position; an empty page says so', async () => {
    const bare = synthetic(3).map((d) => ({ ...d, topExamples: d.topExamples.map((e) => ({ ...e, tokens: null })), intervals: [] }));
    const { page, errors } = await open(torch.plot.featureDashboard(bare, { context: 2 }), 'bare.html');
    const first = bare[0].topExamples[0];
    const shown = await page.evaluate(() =>
      Array.from(document.querySelectorAll('#fd-panel .ex')[0].querySelectorAll('.tok')).map((t: Any) => [t.textContent, t.title]),
    );
    const kept = Array.from({ length: CTX }, (_, p) => p).filter((p) => Math.abs(p - first.position) <= 2);
    expect(shown.map((t: string[]) => t[0])).toEqual(kept.map(() => '·'));
    expect(shown.find((t: string[]) => t[1].startsWith(`#${first.position}:`))[1]).toBe(`#${first.position}: ${fmt(first.value)}`);
    expect(errors).toEqual([]);
    await page.close();
    const empty = await open(torch.plot.featureDashboard([]), 'empty.html');
    expect(await empty.page.textContent('#fd-panel')).toBe('No feature selected.');
    await empty.page.close();
  });

  test('inputs that are not dashboards, and unknown options, are refused', async () => {
    await expectTorchscopeError(() => torch.plot.featureDashboard([{ index: 1 }] as never), 'INVALID_ARGUMENT', /FeatureDashboard/);
    await expectTorchscopeError(() => torch.plot.featureDashboard([], { titel: 'x' } as never), 'INVALID_ARGUMENT', /did you mean 'title'/);
    const file = path.join(browser().dir, 'empty', 'page.html');
    await torch.plot.saveFeatureDashboard([], file);
    expect(fs.readFileSync(file, 'utf8')).toContain('fd-meta');
  });
});
