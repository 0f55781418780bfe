// The browser for test/browser.test.ts: CHROMIUM_PATH when set (an explicit binary, e.g. a
// system Chromium: the only way a system browser is used), otherwise the Chromium
// (chrome-headless-shell, Linux x64) that the @sparticuz/chromium devDependency ships inside its
// npm package, so `npm install && npm test` needs no system browser; of the system it needs only
// glibc, libnss3, libnspr4 and libexpat1. Its brotli-packed binary (64 MB; 200 MB unpacked with
// the SwiftShader libraries and the Open Sans fonts) is unpacked once into
// $TMPDIR/torchscope-chromium-<version>-<uid>/ (about 2 s; later runs reuse it; delete that
// folder to unpack afresh).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

type Any = any;

// The test's own switches: no network chatter, software raster for the 2D canvases.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// @sparticuz/chromium's recommended switches (chromium.args) are tuned for AWS Lambda; these are
// left out, the rest (--disable-domain-reliability, --no-pings, --font-render-hinting=none, ...) kept.
const DROPPED = new Set([
  // playwright-core passes --headless (headless: true) and --no-sandbox itself; the package's
  // --headless='shell' means nothing more to chrome-headless-shell.
  '--headless',
  '--no-sandbox',
  '--disable-setuid-sandbox',
  // Lambda workarounds (prctl fails there): one process for all pages is not needed here.
  '--single-process',
  '--no-zygote',
  // Chromium keeps the last of repeated switches: these would replace playwright-core's own
  // --disable-features list, which turns off startup network requests among others.
  '--disable-features',
  '--enable-features',
  // The viewer is tested under normal page security, as a user's browser opens it.
  '--disable-web-security',
  '--allow-running-insecure-content',
  '--disable-site-isolation-trials',
  // The test's --disable-gpu decides the graphics, as with a system Chromium. (The package's GPU on
  // SwiftShader moves the canvas raster off the main thread, so the page reports ready sooner,
  // but screenshots of the 512-token page then wait on it for over 30 s, and thin lines come out
  // lighter.)
  '--ignore-gpu-blocklist',
  '--in-process-gpu',
  '--use-gl',
  '--use-angle',
  '--enable-unsafe-swiftshader',
  '--disable-webgl',
]);
const switchName = (arg: string) => arg.split('=')[0];

export interface Browser {
  executablePath: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  source: string;
}

/** CHROMIUM_PATH, else the Chromium packed in @sparticuz/chromium, unpacked once per version and user. */
export async function browser(): Promise<Browser> {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) {
    if (!fs.existsSync(explicit)) {
      throw new Error(
        `CHROMIUM_PATH=${explicit} does not exist: point it at a Chromium binary, or unset it to use the Chromium of the @sparticuz/chromium devDependency. The viewer's browser test cannot run without a browser.`,
      );
    }
    return { executablePath: explicit, args: ARGS, source: `CHROMIUM_PATH=${explicit}` };
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `The Chromium in @sparticuz/chromium is a Linux x64 build; on ${process.platform} ${process.arch} set CHROMIUM_PATH to a Chromium or Chrome binary. The viewer's browser test cannot run without a browser.`,
    );
  }
  let chromium: Any;
  let version: string;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    chromium = require('@sparticuz/chromium');
    // The package's exports hide package.json; it sits two folders above build/cjs/index.cjs.
    version = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve('@sparticuz/chromium')), '..', '..', 'package.json'), 'utf8')).version;
  } catch (e) {
    throw new Error(
      `@sparticuz/chromium is not installed (${(e as Error).message}): npm install (it is a devDependency), or set CHROMIUM_PATH to a Chromium binary. The viewer's browser test cannot run without a browser.`,
      { cause: e },
    );
  }
  // The package unpacks into os.tmpdir() itself (chromium, the SwiftShader libraries beside it,
  // fonts/) and reuses whatever file is at <tmpdir>/chromium, complete or not, of any version.
  // Here a child process unpacks it with TMPDIR set to a private staging folder (jest's sandboxed
  // process.env does not reach os.tmpdir()), renamed into place when complete: an interrupted
  // unpack is never reused, and another version unpacks anew.
  const uid = process.getuid?.() ?? 0;
  const cache = path.join(os.tmpdir(), `torchscope-chromium-${version}-${uid}`);
  const bin = path.join(cache, 'chromium');
  if (!fs.existsSync(bin)) {
    for (const name of fs.readdirSync(path.dirname(cache))) {
      const m = name.startsWith(`${path.basename(cache)}.partial-`) && /\.partial-(\d+)$/.exec(name);
      if (m && !alive(Number(m[1]))) fs.rmSync(path.join(path.dirname(cache), name), { recursive: true, force: true });
    }
    const staging = `${cache}.partial-${process.pid}`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging);
    const unpack = spawnSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(require.resolve('@sparticuz/chromium'))}).executablePath().then((p) => process.stdout.write(p))`],
      { env: { ...process.env, TMPDIR: staging }, encoding: 'utf8', timeout: 50_000 },
    );
    if (unpack.status !== 0 || unpack.stdout !== path.join(staging, 'chromium') || !fs.existsSync(path.join(staging, 'chromium'))) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw new Error(
        `@sparticuz/chromium ${version} did not unpack into ${staging} (exit ${unpack.status ?? unpack.signal}, printed ${JSON.stringify(unpack.stdout)}): ${unpack.stderr || unpack.error?.message}`,
      );
    }
    // Only the packaged fonts (Open Sans): the same drawing whatever fonts the machine has, if any.
    fs.writeFileSync(
      path.join(staging, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${cache}/fonts/fonts</dir>\n  <cachedir>${cache}/fonts-cache</cachedir>\n</fontconfig>\n`,
    );
    try {
      fs.renameSync(staging, cache);
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      // Another process renamed its complete copy into place first, or the folder is damaged.
      if (!fs.existsSync(bin))
        throw new Error(`cannot put the unpacked Chromium at ${cache} (${(e as Error).message}): delete that folder and rerun`, { cause: e });
    }
  }
  chromium.setGraphicsMode = false; // no SwiftShader flags (see DROPPED)
  const own = (chromium.args as string[]).filter((a) => !DROPPED.has(switchName(a)) && !ARGS.some((b) => switchName(b) === switchName(a)));
  const args = [...own, ...ARGS];
  return {
    executablePath: bin,
    args,
    env: { ...process.env, FONTCONFIG_FILE: path.join(cache, 'fonts.conf') },
    source: `@sparticuz/chromium ${version} (${cache})`,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Shared libraries the binary needs that the machine lacks (ldd's "not found" lines), if ldd runs. */
export function missingLibraries(bin: string): string[] {
  const ldd = spawnSync('ldd', [bin], { encoding: 'utf8' });
  return (ldd.stdout ?? '')
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(' ')[0]);
}

/**
 * A headless Chromium context (playwright-core's persistent context) in a fresh profile under
 * `dir`, with `viewport`; why not, said clearly (a missing package, missing shared libraries).
 */
export async function launchContext(dir: string, viewport: { width: number; height: number }): Promise<{ context: Any; source: string; unpackMs: number }> {
  let playwright: Any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    playwright = require('playwright-core');
  } catch {
    throw new Error("playwright-core is not installed: npm install (it is a devDependency). The viewer's browser test cannot run without it.");
  }
  const t0 = Date.now();
  const b = await browser();
  const unpackMs = Date.now() - t0;
  try {
    const context = await playwright.chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: b.executablePath,
      headless: true,
      args: b.args,
      env: b.env,
      viewport,
    });
    return { context, source: b.source, unpackMs };
  } catch (e) {
    const missing = missingLibraries(b.executablePath);
    throw new Error(
      `Chromium from ${b.source} did not start${missing.length ? `; missing shared libraries ${missing.join(', ')} (install the system packages that provide them)` : ''}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/**
 * One browser context for a suite's pages at `viewport`, in a fresh folder under the OS temp
 * dir: launched before the suite's tests, closed and removed after them. The getter gives the
 * context and the folder pages are written to.
 */
export function suiteBrowser(prefix: string, viewport: { width: number; height: number }): () => { context: Any; dir: string } {
  let context: Any;
  let dir = '';
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `torchscope-${prefix}-`));
    context = (await launchContext(dir, viewport)).context;
  }, 60_000);
  afterAll(async () => {
    await context?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => ({ context, dir });
}
