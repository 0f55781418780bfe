// The HTML viewer in a real headless Chromium driven by playwright-core: no console errors, no
// network, the controls change the drawing, and a 512-token x 12 x 12 page loads and stays
// responsive (bounds generous enough for a loaded 2-core machine; the times are printed). The
// browser: CHROMIUM_PATH, else the Chromium inside the @sparticuz/chromium devDependency
// (test/helpers/browser.ts), so `npm install && npm test` needs no system browser. No browser is
// a failure, never a skip.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import * as torch from '../lib';
import * as plot from '../lib/plot';
import { launchContext } from './helpers/browser';

const TOKENS = ['[CLS]', 'the', 'cat', 'sat', 'on', 'the', 'mat', 'because', 'it', 'was', 'tired', '<&>', '[SEP]'];

function synthetic(tokens: string[], layers: number, heads: number, peaks = 2) {
  let s = 11;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const n = tokens.length;
  const data = new Float32Array(layers * heads * n * n);
  for (let l = 0; l < layers; l++)
    for (let h = 0; h < heads; h++)
      for (let r = 0; r < n; r++) {
        const o = ((l * heads + h) * n + r) * n;
        let sum = 0;
        for (let c = 0; c < n; c++) data[o + c] = rnd() ** 6;
        data[o + ((r + 3 * h + l) % n)] += 4;
        for (let p = 1; p < peaks; p++) data[o + ((rnd() * n) | 0)] += 2 + 2 * rnd();
        for (let c = 0; c < n; c++) sum += data[o + c];
        for (let c = 0; c < n; c++) data[o + c] /= sum;
      }
  return { tokens: [tokens], lengths: [n], attentions: torch.tensor(data, [1, layers, heads, n, n]) };
}

type Any = any;
// Page-side code in page.evaluate callbacks runs in the browser; the package has no DOM types.
declare const window: Any;
declare const document: Any;
declare const Event: Any;
let context: Any;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-browser-'));
  const t1 = Date.now();
  const launched = await launchContext(dir, { width: 1200, height: 900 });
  context = launched.context;
  console.log(
    `browser: ${launched.source}, ${context.browser()?.version() ?? '?'}; found/unpacked in ${launched.unpackMs} ms, launched in ${Date.now() - t1 - launched.unpackMs} ms`,
  );
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  page: Any;
  errors: string[];
  requests: string[];
  url: string;
  loadMs: number;
}

async function open(html: string, name: string): Promise<Opened> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, html);
  const url = `file://${file}`;
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m: Any) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e: Error) => errors.push(String(e)));
  page.on('request', (r: Any) => requests.push(r.url()));
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 30_000 });
  const loadMs = Date.now() - t0;
  expect(await page.getAttribute('body', 'data-ready')).toBe('1');
  return { page, errors, requests, url, loadMs };
}

function offsite(o: Opened): string[] {
  return o.requests.filter((u) => u !== o.url && !u.startsWith('data:') && !u.startsWith('blob:'));
}

async function raw(png: Buffer) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Fraction of pixels that differ between two same-size screenshots. */
async function difference(a: Buffer, b: Buffer): Promise<number> {
  const [x, y] = [await raw(a), await raw(b)];
  if (x.width !== y.width || x.height !== y.height) return 1;
  let diff = 0;
  for (let i = 0; i < x.data.length; i += 3) {
    if (Math.abs(x.data[i] - y.data[i]) + Math.abs(x.data[i + 1] - y.data[i + 1]) + Math.abs(x.data[i + 2] - y.data[i + 2]) > 30) diff++;
  }
  return diff / (x.width * x.height);
}

function nonWhite(px: { data: Buffer }): number {
  let hits = 0;
  for (let i = 0; i < px.data.length; i += 3) if (px.data[i] < 240 || px.data[i + 1] < 240 || px.data[i + 2] < 240) hits++;
  return hits / (px.data.length / 3);
}

/** Pixels close to a hue-ish colour (within tol per channel). */
function near(px: { data: Buffer }, rgb: number[], tol: number): number {
  let hits = 0;
  for (let i = 0; i < px.data.length; i += 3) {
    if (Math.abs(px.data[i] - rgb[0]) <= tol && Math.abs(px.data[i + 1] - rgb[1]) <= tol && Math.abs(px.data[i + 2] - rgb[2]) <= tol) hits++;
  }
  return hits;
}

function tinted(px: { data: Buffer }, test: (r: number, g: number, b: number) => boolean): number {
  let hits = 0;
  for (let i = 0; i < px.data.length; i += 3) if (test(px.data[i], px.data[i + 1], px.data[i + 2])) hits++;
  return hits;
}

async function drawn(page: Any, before: number): Promise<void> {
  await page.waitForFunction((n: number) => Number(document.body.getAttribute('data-draws')) > n, before);
}
const draws = async (page: Any) => Number(await page.getAttribute('body', 'data-draws'));

describe('viewer in Chromium', () => {
  test('13 tokens: no errors, no network, controls and hover change the drawing', async () => {
    const o = await open(plot.attentionHtml(synthetic(TOKENS, 3, 4), { title: 'The cat sat' }), 'small.html');
    const { page } = o;
    const canvas = page.locator('#ts-canvas');
    const initial: Buffer = await canvas.screenshot();
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-viewer-head.png'), await page.screenshot({ fullPage: true }));
    const px = await raw(initial);
    expect(nonWhite(px)).toBeGreaterThan(0.03);
    // Lines in the head colours, translucent on white: head 0 blue (#1f77b4), head 1 orange (#ff7f0e).
    expect(tinted(px, (r, g, b) => b > r + 40 && b > g + 10)).toBeGreaterThan(50);
    expect(tinted(px, (r, g, b) => r > b + 60 && r > g + 20)).toBeGreaterThan(50);

    // Another layer.
    let n = await draws(page);
    await page.selectOption('#ts-layer', '2');
    await drawn(page, n);
    const layer2: Buffer = await canvas.screenshot();
    expect(await difference(initial, layer2)).toBeGreaterThan(0.005);

    // One head only.
    n = await draws(page);
    await page.click('#ts-none');
    await page.check('#ts-head-2');
    await drawn(page, n);
    const head2: Buffer = await canvas.screenshot();
    expect(await difference(layer2, head2)).toBeGreaterThan(0.005);
    const head2px = await raw(head2);
    expect(tinted(head2px, (r, g, b) => g > r + 30 && g > b + 30)).toBeGreaterThan(20); // head 2 is green
    expect(tinted(head2px, (r, g, b) => b > r + 40 && b > g + 10)).toBe(0); // no head 0 lines

    // Hover a token: its lines only, and the status names it.
    n = await draws(page);
    const at = await page.evaluate(() => window.torchscopeViewer.tokenPosition('left', 2));
    await page.mouse.move(at.x, at.y);
    await drawn(page, n);
    const hovered: Buffer = await canvas.screenshot();
    expect(await difference(head2, hovered)).toBeGreaterThan(0.002);
    expect(await page.textContent('#ts-status')).toContain('"cat" (2) attends to');
    n = await draws(page);
    await page.mouse.move(1, 1);
    await drawn(page, n);
    expect(await difference(head2, await canvas.screenshot())).toBeLessThan(0.001);

    // Model view: thumbnails, a click selects the head in the head view.
    await page.click('#ts-tab-model');
    await page.waitForSelector('body[data-thumbs="done"]', { state: 'attached' });
    const grid: Buffer = await page.locator('#ts-model-grid').screenshot();
    fs.writeFileSync(path.join(os.tmpdir(), 'torchscope-viewer-model.png'), await page.screenshot({ fullPage: true }));
    const gridPx = await raw(grid);
    expect(near(gridPx, [0x44, 0x01, 0x54], 20)).toBeGreaterThan(1000); // viridis low
    expect(near(gridPx, [0xfd, 0xe7, 0x25], 30)).toBeGreaterThan(100); // viridis high
    await page.click('canvas[data-layer="1"][data-head="3"]');
    const state = await page.evaluate(() => {
      const v = window.torchscopeViewer;
      return { layer: v.state.layer, heads: v.state.heads, view: v.state.view, hidden: document.getElementById('ts-head-view').hidden };
    });
    expect(state).toEqual({ layer: 1, heads: [false, false, false, true], view: 'head', hidden: false });
    expect(await page.inputValue('#ts-layer')).toBe('1');

    expect(o.errors).toEqual([]);
    expect(offsite(o)).toEqual([]);
    await page.close();
  });

  test('512 tokens x 12 layers x 12 heads loads and renders in seconds', async () => {
    const tokens = Array.from({ length: 512 }, (_, i) => (i === 0 ? '[CLS]' : i === 511 ? '[SEP]' : ['the', 'cat', '##s', 'sat', '<', '.'][i % 6]));
    const result = synthetic(tokens, 12, 12, 8);
    const html = plot.attentionHtml(result);
    const o = await open(html, 'large.html');
    const { page } = o;
    const t0 = Date.now();
    await page.waitForSelector('body[data-thumbs="done"]', { state: 'attached', timeout: 30_000 });
    const thumbsMs = Date.now() - t0;
    const inPage = Number(await page.getAttribute('body', 'data-load-ms'));
    const drawMs = await page.evaluate(() => {
      const t = performance.now();
      window.torchscopeViewer.draw();
      return performance.now() - t;
    });
    const layerMs = await page.evaluate(() => {
      const t = performance.now();
      const s = document.getElementById('ts-layer');
      s.value = '7';
      s.dispatchEvent(new Event('change'));
      return performance.now() - t;
    });
    console.log(
      `512x12x12 page: ${(html.length / 1e6).toFixed(1)} MB; goto..ready ${o.loadMs} ms (decode+first draw in page ${inPage} ms), ` +
        `all 144 thumbnails +${thumbsMs} ms, redraw all heads ${drawMs.toFixed(0)} ms, layer switch ${layerMs.toFixed(0)} ms`,
    );
    expect(o.loadMs).toBeLessThan(30_000);
    expect(drawMs).toBeLessThan(3000);
    const shot = await raw(await page.screenshot());
    expect(nonWhite(shot)).toBeGreaterThan(0.05);
    // Hover stays responsive.
    const n = await draws(page);
    const at = await page.evaluate(() => window.torchscopeViewer.tokenPosition('right', 5));
    const h0 = Date.now();
    await page.mouse.move(at.x, at.y);
    await drawn(page, n);
    expect(Date.now() - h0).toBeLessThan(5000);
    expect(await page.textContent('#ts-status')).toContain('is attended by');
    expect(o.errors).toEqual([]);
    expect(offsite(o)).toEqual([]);
    await page.close();
  }, 120_000);
});
