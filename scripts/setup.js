#!/usr/bin/env node
// Set-up, offline and without questions. Runs as `npm install`'s install script (when npm runs
// it: npm 11 runs a dependency's only if allowed, and nothing depends on it), as `npm run build`
// / `npx torchscope build` (--rebuild: always compile), and for scripts/prebuild.js
// (--addon-only: compile the addon, nothing else).
//   1. find libtorch, in lib/native/libtorch.ts's search order (the one the addon's loader uses):
//      TORCHSCOPE_LIBTORCH, a Python on PATH with torch, a project .venv; failing all, create
//      .venv here and pip-install torch there;
//   2. with a prebuild for this platform and a libtorch of its version: nothing to compile;
//      otherwise build the addon against the libtorch found with cmake-js (Node-API headers
//      from npm, no download);
//   3. in a development checkout: compile the TypeScript (first: step 1 uses it) and export the
//      test/demo models, an SAE trained on the induction model (scripts/induction_sae.py), the
//      probing demos' models (scripts/probe_models.py), the
//      model zoo (scripts/zoo/) and the Hugging Face LLM fixtures (scripts/llm_fixtures.py:
//      save_pretrained folders traced by scripts/hf_export.py).
// What was found is recorded in .torchscope/config.json (scripts/config.js reads it).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { root, configFile } = require('./config');

const TORCH_VERSION = '2.13.0';
// Python packages the development checkout needs besides torch (export, reference tests).
const DEV_PACKAGES = ['numpy', 'transformers==5.18.0', 'scikit-learn==1.9.1', 'tiktoken==0.14.0', 'datasets==5.0.1', 'pyarrow==25.0.1'];
const venvDir = path.join(root, '.venv');
const venvPython = path.join(venvDir, 'bin', 'python');
const rebuild = process.argv.includes('--rebuild');
const addonOnly = process.argv.includes('--addon-only');
const developing = fs.existsSync(path.join(root, 'tsconfig.json')) && fs.existsSync(path.join(root, 'node_modules', 'typescript'));

function log(message) {
  console.log(`torchscope: ${message}`);
}

function fail(message) {
  console.error(`torchscope: ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.status !== 0) fail(`${command} ${args.join(' ')} failed (exit ${result.status})`);
}

// Whether a Python has the packages the development checkout needs.
function hasDevPackages(python) {
  const code = `import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ${JSON.stringify(['torch', 'numpy', 'transformers', 'sklearn', 'tiktoken', 'datasets', 'pyarrow'])}) else 1)`;
  return spawnSync(python, ['-c', code], { timeout: 60000 }).status === 0;
}

function pythonsOnPath() {
  return ['python3', 'python'].filter((name) => spawnSync(name, ['--version'], { timeout: 10000 }).status === 0);
}

// Creates .venv (if needed) and pip-installs packages there. With required false a failure
// (no Python, no index) is reported and false returned, for installs that can go on without it.
function createVenv(packages, required = true) {
  const give = (message) => {
    if (required) fail(message);
    console.warn(`torchscope: warning: ${message}`);
    return false;
  };
  if (!fs.existsSync(venvPython)) {
    log('creating .venv (no libtorch found elsewhere)');
    const base = pythonsOnPath()[0];
    if (!base) return give('no python3 on PATH to create .venv; set TORCHSCOPE_LIBTORCH to a libtorch directory');
    if (spawnSync(base, ['-m', 'venv', venvDir], { stdio: 'inherit' }).status !== 0) return give(`${base} -m venv .venv failed`);
  }
  log(`pip install ${packages.join(' ')} into .venv`);
  // Short timeouts: an unreachable default index must fail fast, not hang set-up.
  const pip = spawnSync(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--timeout', '20', '--retries', '1', ...packages], {
    stdio: 'inherit',
  });
  return pip.status === 0 || give(`pip install ${packages.join(' ')} failed (exit ${pip.status})`);
}

// The libtorch to build against (any version), creating .venv with torch when none is found.
function findOrInstallLibtorch(libtorchApi) {
  const search = libtorchApi.findLibtorch(root);
  if (search.match) return search.match;
  if (process.env.TORCHSCOPE_LIBTORCH) fail(`TORCHSCOPE_LIBTORCH=${process.env.TORCHSCOPE_LIBTORCH}: ${search.probes[0].problem}`);
  createVenv([`torch==${TORCH_VERSION}`, ...(developing ? DEV_PACKAGES : [])]);
  const created = libtorchApi.findLibtorch(root).match;
  if (!created) fail('torch is not usable from .venv after installing it');
  return created;
}

// The Python used to export models and as the tests' reference: it needs torch, numpy,
// transformers, scikit-learn, tiktoken, datasets and pyarrow. A Python on PATH lacking them is left alone; .venv gets them instead.
function developmentPython(libtorch) {
  if (libtorch.python && hasDevPackages(libtorch.python)) return libtorch.python;
  if (!fs.existsSync(venvPython) || !hasDevPackages(venvPython)) createVenv([`torch==${TORCH_VERSION}`, ...DEV_PACKAGES]);
  if (!hasDevPackages(venvPython)) fail('could not set up a Python with torch, numpy, transformers, scikit-learn, tiktoken, datasets and pyarrow in .venv');
  return venvPython;
}

// A CUDA libtorch's CMake config looks for the CUDA toolkit and nvrtc: point it at the toolkit
// (the nvcc wrapper on PATH misleads FindCUDA) and at the nvrtc of the nvidia wheels beside torch,
// and give an architecture list so that it does not probe for a GPU (the addon has no kernels).
function cudaBuildSettings(libtorch) {
  if (!libtorch.cuda) return { env: {}, defines: [] };
  const env = {};
  if (!process.env.CUDA_PATH && fs.existsSync('/usr/local/cuda')) env.CUDA_PATH = '/usr/local/cuda';
  if (!process.env.TORCH_CUDA_ARCH_LIST) env.TORCH_CUDA_ARCH_LIST = '9.0';
  const defines = [];
  const nvidia = path.join(libtorch.dir, '..', 'nvidia');
  for (const sub of fs.existsSync(nvidia) ? fs.readdirSync(nvidia) : []) {
    const lib = path.join(nvidia, sub, 'lib');
    const nvrtc = fs.existsSync(lib) && fs.readdirSync(lib).find((name) => /^libnvrtc\.so\.\d+$/.test(name));
    if (nvrtc) defines.push(`--CDCUDA_nvrtc_LIBRARY=${path.join(lib, nvrtc)}`);
  }
  return { env, defines };
}

function buildAddon(libtorch) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const previous = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : null;
  // A build tree from node-gyp (npm run build:gyp) has no CMakeCache.txt to compile in.
  const changed = !previous || !previous.libtorch || previous.libtorch.dir !== libtorch.dir || !fs.existsSync(path.join(root, 'build', 'CMakeCache.txt'));
  const command = rebuild || changed ? 'rebuild' : 'compile';
  log(`building the addon against libtorch ${libtorch.version} (${command})`);
  const cuda = cudaBuildSettings(libtorch);
  run(process.execPath, [cmakeJs, command, `--CDCMAKE_PREFIX_PATH=${path.join(libtorch.dir, 'share', 'cmake')}`, ...cuda.defines, '--log-level', 'warn'], {
    env: { ...process.env, ...cuda.env },
  });
}

// python: the one for model export and the tests' reference; an addon-only build keeps the recorded one.
function record(libtorch, python) {
  const { route, ...rest } = libtorch;
  if (!python && fs.existsSync(configFile)) python = JSON.parse(fs.readFileSync(configFile, 'utf8')).python;
  fs.mkdirSync(path.dirname(configFile), { recursive: true });
  // Through a rename: tests running meanwhile read it.
  fs.writeFileSync(
    `${configFile}.tmp`,
    JSON.stringify({ libtorch: { ...rest, cmakePrefix: path.join(libtorch.dir, 'share', 'cmake'), source: route }, python: python || null }, null, 2) + '\n',
  );
  fs.renameSync(`${configFile}.tmp`, configFile);
}

function toolchainPresent() {
  return ['cmake', 'c++'].every((tool) => spawnSync(tool, ['--version'], { timeout: 10000 }).status === 0);
}

// Installed as a dependency with a prebuild: find (or install) the libtorch it was built for;
// compile only when the libtorch found is another version and a toolchain is there.
function usePrebuild(libtorchApi, prebuild) {
  const wanted = libtorchApi.addonLibtorchVersion(prebuild);
  let search = libtorchApi.findLibtorch(root, wanted);
  const other = search.probes.find((probe) => probe.found);
  if (!search.match && !other && !process.env.TORCHSCOPE_LIBTORCH && createVenv([`torch==${wanted}`], false)) {
    search = libtorchApi.findLibtorch(root, wanted);
  }
  if (search.match) {
    log(
      `prebuild ${path.relative(root, prebuild)} (libtorch ${wanted}); libtorch ${wanted} at ${search.match.dir} [${search.match.route}]: nothing to compile`,
    );
    record(search.match, search.match.python);
    return true;
  }
  if (other && toolchainPresent()) {
    log(`the prebuild is for libtorch ${wanted} but libtorch ${other.found.version} was found (${other.route}): building from source`);
    return false;
  }
  // Not fatal: the project's install goes on; loading torchscope explains (and doctor).
  console.warn(
    `torchscope: warning: the prebuild is for libtorch ${wanted}, and ${other ? `the libtorch found is ${other.found.version} (${other.route})` : 'none was found'}; ` +
      `install torch==${wanted} or run \`npx torchscope build\` (needs cmake and a C++ compiler). \`npx torchscope doctor\` shows the search.`,
  );
  return true;
}

function prebuildFile() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const file = fs.existsSync(dir) && fs.readdirSync(dir).find((name) => name.endsWith('.node'));
  return file ? path.join(dir, file) : null;
}

// Runs a set-up step, saying how long it took (set-up time is what a newcomer waits through).
function timed(what, step) {
  const started = Date.now();
  step();
  log(`${what} (${seconds(started)})`);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(0)} s`;
}

function main() {
  const started = Date.now();
  if (developing && !addonOnly) {
    // First: the libtorch search below runs from dist/lib.
    log('compiling TypeScript');
    run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json']);
  }
  const libtorchApi = require('../dist/lib/native/libtorch.js');
  const prebuild = prebuildFile();
  if (!rebuild && !addonOnly && !developing && prebuild && usePrebuild(libtorchApi, prebuild)) return;
  const libtorch = findOrInstallLibtorch(libtorchApi);
  log(`libtorch ${libtorch.version}${libtorch.cuda ? ' (CUDA)' : ' (CPU)'} at ${libtorch.dir} [${libtorch.route}] (${seconds(started)} so far)`);
  const python = developing && !addonOnly ? developmentPython(libtorch) : libtorch.python;
  // The model exports do not run beside the compiler: tried, the two slowed each other so much
  // on 2 cores (the induction model's training 62 -> 275 s) that set-up took longer.
  timed('addon built', () => buildAddon(libtorch));
  record(libtorch, python);
  if (developing && !addonOnly) {
    log('exporting models to models/');
    timed('models exported', () => run(python, [path.join('scripts', 'export-models.py')]));
    log("training the induction model's SAE into models/sae/");
    timed('SAE trained', () => run(python, [path.join('scripts', 'induction_sae.py')]));
    log("training the probing demos' diffusion model and bracket counter into models/probes/");
    timed('probe models trained', () => run(python, [path.join('scripts', 'probe_models.py')]));
    log('exporting the model zoo to models/zoo/');
    timed('model zoo exported', () => run(python, [path.join('scripts', 'zoo')]));
    log('exporting the torch.export (.pt2) models to models/pt2/');
    timed('.pt2 models exported', () => run(python, [path.join('scripts', 'export_pt2.py')]));
    log('exporting the Hugging Face LLM fixtures to models/llm/');
    timed('LLM fixtures exported', () => run(python, [path.join('scripts', 'llm_fixtures.py')]));
    // After the export: a seeded (non-pretrained) export removes a stale bert-vocab.txt.
    run(process.execPath, [path.join('scripts', 'convert-vocab.js')]);
    // The prebuild npm pack ships and test/consumer.test.ts installs; from the build just made.
    log('making the prebuild');
    run(process.execPath, [path.join('scripts', 'prebuild.js')]);
  }
  log(`ready (${seconds(started)})`);
}

main();
