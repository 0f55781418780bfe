// The fresh-consumer test: `npm pack` (with the prebuild), install the tarball into a new
// project whose PATH has node, npm, npx and sh only (no compiler, no cmake, no Python unless a case
// adds one), then load a model and capture activations there, with libtorch found through
// each route lib/native/libtorch.ts supports, and the documented errors when it is missing or of
// another version. The values must be the ones this checkout's own build computes.
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { modelPath, removeDir, ROOT, scratchDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readConfig } = require('../scripts/config.js') as { readConfig(): { libtorch: { dir: string; version: string } } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { LIMIT_VARIABLES } = require('../scripts/cpu-limits.js') as { LIMIT_VARIABLES: string[] };

const MODEL = modelPath('resnet18.pt');
const LAYER = 'layer4';
const libtorch = readConfig().libtorch;
// The venv that holds it (<venv>/lib/python3.X/site-packages/torch): the Python and venv routes use it.
const venv = path.resolve(libtorch.dir, '..', '..', '..', '..');

let work: string | undefined;
let project: string;
let bin: string;
let tarball: string;
let packedBytes: number;
let installMs: number;

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, ...options });
}

// The consumer's environment: nothing of this process's but HOME (npm's cache and registry
// settings live there), a PATH of `dirs`, and the CPU limits this process runs under (they
// stand for the machine: `npm run test:lesser-cpu`), so that both compute with the same kernels.
function consumerEnv(dirs: string[], extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const cpuLimits = Object.fromEntries(LIMIT_VARIABLES.filter((name) => process.env[name] !== undefined).map((name) => [name, process.env[name]]));
  return { HOME: process.env.HOME, PATH: dirs.join(path.delimiter), ...cpuLimits, ...extra };
}

// A PATH directory with links to the real node/npm/npx/sh (npm runs scripts with sh).
function toolDir(dir: string, python?: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const real = run('sh', ['-c', `command -v ${tool}`], { cwd: ROOT }).stdout.trim();
    fs.symlinkSync(fs.realpathSync(real), path.join(dir, tool));
  }
  // A wrapper, not a link: a venv's python finds its venv from its own path.
  if (python) fs.writeFileSync(path.join(dir, 'python3'), `#!/bin/sh\nexec ${python} "$@"\n`, { mode: 0o755 });
  return dir;
}

interface AppResult {
  ok: boolean;
  code?: string;
  message?: string;
  shape?: number[];
  values?: string;
  addon?: string;
  addonKind?: string;
  libtorch?: { version: string; dir: string; route: string };
}

function runApp(env: NodeJS.ProcessEnv, cwd = project): AppResult {
  const result = run(path.join(bin, 'node'), ['app.js', MODEL, LAYER], { cwd, env });
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout.trim().split('\n').pop() as string) as AppResult;
}

// A libtorch directory that says it is another version: its lib/ is the real one, its
// version header another (the check reads the header before loading anything).
function otherVersionLibtorch(version: string): string {
  const dir = path.join(work!, `libtorch-${version}`);
  const header = path.join(dir, 'include', 'torch', 'headeronly', 'version.h');
  fs.mkdirSync(path.dirname(header), { recursive: true });
  fs.writeFileSync(header, `#pragma once\n#define TORCH_VERSION "${version}"\n`);
  fs.symlinkSync(path.join(libtorch.dir, 'lib'), path.join(dir, 'lib'));
  return dir;
}

let expected: Float32Array;

beforeAll(async () => {
  work = scratchDir('consumer');
  // The prebuild set-up made (npm install / npm run build / npm run build:prebuild) from the
  // CMake build; building it here would swap build/ under the other suites' feet.
  const prebuild = path.join(ROOT, 'prebuilds', 'linux-x64', 'torchscope.glibc.node');
  const sources = [
    path.join(ROOT, 'CMakeLists.txt'),
    ...(fs.readdirSync(path.join(ROOT, 'native'), { recursive: true }) as string[]).map((name) => path.join(ROOT, 'native', name)),
  ];
  const newest = Math.max(...sources.map((file) => fs.statSync(file).mtimeMs));
  const stale = !fs.existsSync(prebuild) ? 'missing' : fs.statSync(prebuild).mtimeMs < newest ? 'older than native/' : '';
  expect(stale ? `${prebuild} is ${stale}: run \`npm run build:prebuild\`` : '').toBe('');
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  expect(pack.status).toBe(0);
  const packed = JSON.parse(pack.stdout)[0] as { filename: string; size: number; files: { path: string }[] };
  tarball = path.join(work, packed.filename);
  packedBytes = packed.size;
  const files = packed.files.map((f) => f.path);
  expect(files).toContain('prebuilds/linux-x64/torchscope.glibc.node');
  expect(files).toContain('dist/lib/index.d.ts');
  // Nothing only for development: tests, benchmarks, the demo, model export, sources of lib/.
  expect(files.filter((f) => /^(test|lib|scripts\/bench|dist\/scripts|models|assets)\/|export-models|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);

  bin = toolDir(path.join(work, 'bin'));
  project = path.join(work, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  fs.copyFileSync(path.join(__dirname, 'consumer', 'app.js'), path.join(project, 'app.js'));
  const started = Date.now();
  // npm 11 runs no dependency install script unless allowed: none runs here.
  const install = run(path.join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project, env: consumerEnv([bin]) });
  installMs = Date.now() - started;
  expect(install.status).toBe(0);
  console.log(`fresh consumer: packed tarball ${(packedBytes / 1e6).toFixed(2)} MB, npm install ${(installMs / 1000).toFixed(1)} s`);

  const model = await torch.load(MODEL);
  const input = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 0.01);
  expected = ((await torch.activations(model, LAYER, torch.tensor(input, [1, 3, 224, 224]))) as torch.Tensor).data() as Float32Array;
  model.dispose();
}, 600_000);

afterAll(() => removeDir(work));

function expectCapture(result: AppResult, route: string): void {
  expect(result.message).toBeUndefined();
  expect(result.ok).toBe(true);
  expect(result.addonKind).toBe('prebuild');
  expect(result.addon).toBe(path.join(fs.realpathSync(project), 'node_modules', 'torchscope', 'prebuilds', 'linux-x64', 'torchscope.glibc.node'));
  expect(result.libtorch!.route).toBe(route);
  expect(result.libtorch!.version).toBe(libtorch.version);
  expectSameValues(result);
}

// Bit for bit what this checkout's build gives: the same code on the same libtorch.
function expectSameValues(result: AppResult): void {
  expect(result.shape).toEqual([1, 512, 7, 7]);
  expect(Buffer.from(result.values!, 'base64').equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(true);
}

test('the install compiled nothing and needs no install script: the prebuild is used as shipped', () => {
  const installed = path.join(project, 'node_modules', 'torchscope');
  expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
  expect(fs.existsSync(path.join(installed, 'prebuilds', 'linux-x64', 'torchscope.glibc.node'))).toBe(true);
  expect(packedBytes).toBeGreaterThan(0);
  expect(installMs).toBeGreaterThan(0);
});

test('libtorch through TORCHSCOPE_LIBTORCH', () => {
  expectCapture(runApp(consumerEnv([bin], { TORCHSCOPE_LIBTORCH: libtorch.dir })), 'TORCHSCOPE_LIBTORCH');
});

test('libtorch through a Python on PATH that has torch', () => {
  const withPython = toolDir(path.join(work!, 'bin-python'), path.join(venv, 'bin', 'python'));
  expectCapture(runApp(consumerEnv([withPython])), 'python3 on PATH');
});

// A link to the venv stands for one made in place: the search looks at the path, not its contents.
test.each([
  ["the project's .venv", () => path.join(project, '.venv')],
  ["torchscope's own .venv (where set-up creates one when it finds none)", () => path.join(project, 'node_modules', 'torchscope', '.venv')],
])('libtorch through %s', (_name, where) => {
  const link = where();
  fs.symlinkSync(venv, link);
  try {
    expectCapture(runApp(consumerEnv([bin])), link);
  } finally {
    fs.unlinkSync(link);
  }
});

test('no libtorch anywhere: LIBTORCH_NOT_FOUND says what to install and where it looked; doctor says the same and exits 1', () => {
  const result = runApp(consumerEnv([bin]));
  expect(result.ok).toBe(false);
  expect(result.code).toBe('LIBTORCH_NOT_FOUND');
  expect(result.message).toContain(`torchscope needs libtorch ${libtorch.version} and found none`);
  expect(result.message).toContain(`pip install torch==${libtorch.version}`);
  expect(result.message).toContain('TORCHSCOPE_LIBTORCH');
  expect(result.message).toContain('python3 on PATH: no python3 on PATH');
  expect(result.message).toContain(`${path.join(fs.realpathSync(project), '.venv')}: no venv there`);
  const doctor = run(path.join(bin, 'npx'), ['torchscope', 'doctor'], { cwd: project, env: consumerEnv([bin]) });
  expect(doctor.status).toBe(1);
  expect(doctor.stdout).toContain('(prebuild, built for libtorch');
  expect(doctor.stdout).toContain('libtorch   none usable');
  expect(doctor.stdout).toContain('found none');
});

const others: [string, () => string, string][] = [['a libtorch whose headers say 2.12.0', () => otherVersionLibtorch('2.12.0'), '2.12.0']];
// CI installs the CUDA libtorch 2.14.1 for its CUDA build (.ci/run); a real other version then.
const other = process.env.TORCHSCOPE_OTHER_LIBTORCH;
if (other) {
  // A torch wheel's version.py says what it is independently of the headers lib/native/libtorch.ts reads.
  const version = /__version__\s*=\s*'([^'+]+)/.exec(fs.readFileSync(path.join(other, 'version.py'), 'utf8'))![1];
  others.push([`torch ${version} at TORCHSCOPE_OTHER_LIBTORCH`, () => other, version]);
}

test.each(others)('another libtorch version (%s): LIBTORCH_MISMATCH names both versions and the rebuild command', (_name, dir, version) => {
  const result = runApp(consumerEnv([bin], { TORCHSCOPE_LIBTORCH: dir() }));
  expect(result.ok).toBe(false);
  expect(result.code).toBe('LIBTORCH_MISMATCH');
  expect(result.message).toContain(`was built for libtorch ${libtorch.version}, but the libtorch found is ${version}`);
  expect(result.message).toContain('npx torchscope build');
});

test('with the install script allowed and no compiler on PATH, set-up uses the prebuild and compiles nothing', () => {
  const withPython = toolDir(path.join(work!, 'bin-setup'), path.join(venv, 'bin', 'python'));
  const second = path.join(work!, 'project-scripts');
  fs.mkdirSync(second);
  // npm 11: a project allows a dependency's install script in package.json.
  fs.writeFileSync(
    path.join(second, 'package.json'),
    JSON.stringify({ name: 'consumer2', version: '1.0.0', private: true, allowScripts: { torchscope: true } }),
  );
  const install = run(path.join(withPython, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball], {
    cwd: second,
    env: consumerEnv([withPython]),
  });
  expect(install.status).toBe(0);
  expect(install.stdout).toContain('nothing to compile');
  expect(fs.existsSync(path.join(second, 'node_modules', 'torchscope', 'build'))).toBe(false);
  // What set-up found is recorded: with no Python on PATH any more, that record is the route.
  fs.copyFileSync(path.join(__dirname, 'consumer', 'app.js'), path.join(second, 'app.js'));
  const result = runApp(consumerEnv([bin]), second);
  expect(result.message).toBeUndefined();
  expect(result.libtorch!.route).toBe('recorded by set-up (.torchscope/config.json)');
  expectSameValues(result);
});
