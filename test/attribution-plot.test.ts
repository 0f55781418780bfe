// Attribution pictures: Captum's normalisation (98th percentile of the cumulative magnitude),
// its text colours, the overlay PNG (resampling, colours), the token page and picture, and
// `npx torchscope attribute` end to end.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

import * as torch from '../lib';
import { expectTorchscopeError, modelPath, removeDir, ROOT, scratchDir } from './helpers';

describe("Captum's normalisation (visualization._normalize_attr)", () => {
  test('divides by the value where the sorted magnitudes reach 98% of their sum, clips to [-1, 1]', () => {
    // 1..10 sum to 55; 80% of it (outlier 20) is 44, first reached at 9 (1+...+9 = 45).
    const values = Array.from({ length: 10 }, (_, i) => i + 1);
    expect(Array.from(torch.plot.normalizeAttribution(values, 'absolute', 20))).toEqual(values.map((v) => Math.min(1, v / 9)));
    // The default 2%: 98% of 55 is 53.9, reached only at 10.
    expect(Array.from(torch.plot.normalizeAttribution(values, 'absolute', 2))).toEqual(values.map((v) => v / 10));
  });
  test("signs: 'all' keeps the sign, 'positive' and 'negative' keep one side, both in [0, 1]", () => {
    const values = [-4, -1, 0, 2, 3];
    expect(Array.from(torch.plot.normalizeAttribution(values, 'all', 0))).toEqual([-1, -0.25, 0, 0.5, 0.75]);
    expect(Array.from(torch.plot.normalizeAttribution(values, 'positive', 0))).toEqual([0, 0, 0, 2 / 3, 1]);
    expect(Array.from(torch.plot.normalizeAttribution(values, 'negative', 0))).toEqual([1, 0.25, 0, 0, 0]);
    expect(Array.from(torch.plot.normalizeAttribution([0, 0], 'all', 2))).toEqual([0, 0]);
  });
});

test("token colours are visualize_text's (_get_color): green up, red down, white at 0", () => {
  expect(torch.plot.tokenColor(0.33)).toBe('hsl(120, 75%, 84%)');
  expect(torch.plot.tokenColor(1)).toBe('hsl(120, 75%, 50%)');
  expect(torch.plot.tokenColor(2)).toBe('hsl(120, 75%, 50%)');
  expect(torch.plot.tokenColor(-0.5)).toBe('hsl(0, 75%, 80%)');
  expect(torch.plot.tokenColor(0)).toBe('hsl(0, 75%, 100%)');
});

describe('token attributions as a page and a picture', () => {
  test('one self-contained page: no script, no network (CSP), tokens escaped, scores scaled by the largest', () => {
    const html = torch.plot.tokenAttributionHtml(['[CLS]', '<script>', 'cat'], [0.5, -1, 0.25], { title: 'a & b' });
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/<script>/);
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('<title>a &amp; b</title>');
    expect(html).toContain(`background:${torch.plot.tokenColor(-1)}`);
    expect(html).toContain(`background:${torch.plot.tokenColor(0.5)}" title="0.5000">[CLS]`);
    const raw = torch.plot.tokenAttributionHtml(['a'], [0.3], { normalize: false });
    expect(raw).toContain(`background:${torch.plot.tokenColor(0.3)}`);
  });
  test('a PNG that wraps long inputs onto more lines', async () => {
    const short = await sharp(await torch.plot.tokenAttributionPng(['a', 'b'], [1, -1])).metadata();
    const long = await sharp(await torch.plot.tokenAttributionPng(Array(60).fill('token'), Array(60).fill(0.5))).metadata();
    expect(short.width).toBe(720);
    expect(long.height!).toBeGreaterThan(short.height! + 60);
  });
  test('a score per token, or SHAPE', async () => {
    await expectTorchscopeError(() => torch.plot.tokenAttributionHtml(['a', 'b'], [1]), 'SHAPE', /2 tokens but 1 scores/);
  });
  test('tokenScores sums each token over its hidden units', () => {
    const attributions = torch.tensor(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), [2, 2, 3]);
    expect(torch.tokenScores(attributions, 1)).toEqual([7 + 8 + 9, 10 + 11 + 12]);
  });
});

describe('attributionOverlay', () => {
  const grey = () => torch.tensor(new Float32Array(3 * 8 * 8).fill(0.5), [1, 3, 8, 8]);

  test('a hot spot of a smaller map lands where it belongs, in the sign colour map', async () => {
    const map = new Float32Array(4 * 4);
    map[0] = 1; // top-left cell of a 4x4 map over an 8x8 image
    const png = await torch.plot.attributionOverlay(grey(), torch.tensor(map, [1, 1, 4, 4]), { sign: 'positive', size: 64 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([64, 64]);
    const pixel = (x: number, y: number) => Array.from(data.subarray((y * 64 + x) * info.channels, (y * 64 + x) * info.channels + 3));
    // Greens' darkest (#00441b) half over a black grey (a constant image scales to 0).
    expect(pixel(0, 0)).toEqual([0, 34, 14]);
    // Far from it: greens' lightest (#f7fcf5) at half.
    expect(pixel(63, 63)).toEqual([124, 126, 123]);
  });
  test('bad inputs are typed errors', async () => {
    await expectTorchscopeError(() => torch.plot.attributionOverlay(grey(), torch.zeros([2, 2, 2, 2, 2])), 'SHAPE', /\[N, C, H, W\]/);
    await expectTorchscopeError(
      () => torch.plot.attributionOverlay(grey(), torch.zeros([1, 1, 8, 8]), { sign: 'both' as never }),
      'INVALID_ARGUMENT',
      /sign is/,
    );
    await expectTorchscopeError(() => torch.plot.attributionOverlay(grey(), torch.zeros([1, 1, 8, 8]), { batch: 1 }), 'INVALID_ARGUMENT', /batch/);
  });
});

test('npx torchscope attribute: a PNG over the image, with a progress bar', async () => {
  const dir = scratchDir('attribute-cli');
  try {
    const input = path.join(dir, 'in.png');
    await sharp({ create: { width: 40, height: 40, channels: 3, background: '#8040c0' } })
      .png()
      .toFile(input);
    const out = path.join(dir, 'ig.png');
    const result = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'dist', 'lib', 'cli.js'),
        'attribute',
        '--model',
        modelPath('resnet-tiny.pt'),
        '--image',
        input,
        '--target',
        '3',
        '--method',
        'integratedGradients',
        '--steps',
        '8',
        '--size',
        '32',
        '--out',
        out,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/wrote .*ig\.png \(integratedGradients, target 3/);
    expect((await sharp(out).metadata()).width).toBe(256);
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'lib', 'cli.js'), 'attribute', '--model', modelPath('resnet-tiny.pt')], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/torchscope attribute --model FILE --image FILE --target N/);
  } finally {
    removeDir(dir);
  }
  expect(fs.existsSync(dir)).toBe(false);
});
