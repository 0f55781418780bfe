#!/usr/bin/env node
// `npm install` set-up, offline and without questions:
//   1. find libtorch: TORCHSCOPE_LIBTORCH, a Python on PATH that imports torch, the project's
//      .venv; failing all three, create .venv and pip-install torch there;
//   2. build the addon against it with cmake-js (Node-API headers from npm, no download);
//   3. in a development checkout: compile the TypeScript and export the test/demo models.
// What was found is recorded in .torchscope/config.json (scripts/config.js reads it).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { root, configFile } = require('./config');

const TORCH_VERSION = '2.13.0';
// Python packages the development checkout needs besides torch (export, reference tests).
const DEV_PACKAGES = ['numpy', 'transformers==5.18.0'];
const venvDir = path.join(root, '.venv');
const venvPython = path.join(venvDir, 'bin', 'python');
const rebuild = process.argv.includes('--rebuild');
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

// What a Python knows about its torch, or null when it has none.
function probePython(python) {
  const code = [
    'import json, os, importlib.util as u',
    'import torch',
    'import sys',
    'print(json.dumps({"dir": os.path.dirname(torch.__file__), "version": torch.__version__, "python": sys.executable,',
    '  "cuda": torch.version.cuda, "dev": all(u.find_spec(m) for m in ("numpy", "transformers"))}))',
  ].join('\n');
  const result = spawnSync(python, ['-c', code], { encoding: 'utf8', timeout: 60000 });
  if (result.status !== 0) return null;
  try {
    return JSON.parse(result.stdout.trim().split('\n').pop());
  } catch {
    return null;
  }
}

// A libtorch directory (unzipped libtorch, or a torch wheel's package dir) described from its files.
function describeLibtorch(dir, source, python) {
  const cmakeDir = path.join(dir, 'share', 'cmake', 'Torch');
  if (!fs.existsSync(path.join(cmakeDir, 'TorchConfig.cmake'))) return null;
  // The header moved between libtorch releases.
  const header = [
    path.join(dir, 'include', 'torch', 'headeronly', 'version.h'),
    path.join(dir, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
  ].find((file) => fs.existsSync(file) && /#define TORCH_VERSION\s/.test(fs.readFileSync(file, 'utf8')));
  const match = header && /#define TORCH_VERSION\s+(?:\\\s*)?"([^"]+)"/.exec(fs.readFileSync(header, 'utf8'));
  const libDir = path.join(dir, 'lib');
  return {
    dir,
    libDir,
    cmakePrefix: path.join(dir, 'share', 'cmake'),
    version: match ? match[1] : 'unknown',
    cuda: fs.existsSync(path.join(libDir, 'libtorch_cuda.so')),
    source,
    python: python || null,
  };
}

function pythonsOnPath() {
  return ['python3', 'python'].filter((name) => spawnSync(name, ['--version'], { timeout: 10000 }).status === 0);
}

function createVenv(packages) {
  if (!fs.existsSync(venvPython)) {
    log('creating .venv (no libtorch found elsewhere)');
    const base = pythonsOnPath()[0];
    if (!base) fail('no python3 on PATH to create .venv; set TORCHSCOPE_LIBTORCH to a libtorch directory');
    run(base, ['-m', 'venv', venvDir]);
  }
  log(`pip install ${packages.join(' ')} into .venv`);
  // Short timeouts: an unreachable default index must fail fast, not hang set-up.
  run(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--timeout', '20', '--retries', '1', ...packages]);
}

function findLibtorch() {
  const fromEnv = process.env.TORCHSCOPE_LIBTORCH;
  if (fromEnv) {
    const found = describeLibtorch(path.resolve(fromEnv), 'TORCHSCOPE_LIBTORCH');
    if (!found) fail(`TORCHSCOPE_LIBTORCH=${fromEnv} is not a libtorch directory (no share/cmake/Torch/TorchConfig.cmake)`);
    return found;
  }
  for (const python of pythonsOnPath()) {
    const probe = probePython(python);
    // The interpreter's absolute path: later runs (tests, export) may not have this PATH.
    if (probe) return describeLibtorch(probe.dir, `python on PATH (${python})`, probe.python);
  }
  if (fs.existsSync(venvPython)) {
    const probe = probePython(venvPython);
    if (probe) return describeLibtorch(probe.dir, '.venv', venvPython);
  }
  createVenv([`torch==${TORCH_VERSION}`, ...(developing ? DEV_PACKAGES : [])]);
  const probe = probePython(venvPython);
  if (!probe) fail('torch did not import from .venv after installing it');
  return describeLibtorch(probe.dir, '.venv (created)', venvPython);
}

// The Python used to export models and as the tests' reference: it needs torch, numpy and
// transformers. A Python on PATH lacking them is left alone; .venv gets them instead.
function developmentPython(libtorch) {
  if (libtorch.python) {
    const probe = probePython(libtorch.python);
    if (probe && probe.dev) return libtorch.python;
  }
  let probe = fs.existsSync(venvPython) ? probePython(venvPython) : null;
  if (!probe || !probe.dev) {
    createVenv([`torch==${TORCH_VERSION}`, ...DEV_PACKAGES]);
    probe = probePython(venvPython);
  }
  if (!probe || !probe.dev) fail('could not set up a Python with torch, numpy and transformers in .venv');
  return venvPython;
}

function buildAddon(libtorch) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const previous = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : null;
  const changed = !previous || !previous.libtorch || previous.libtorch.dir !== libtorch.dir;
  const command = rebuild || changed ? 'rebuild' : 'compile';
  log(`building the addon against libtorch ${libtorch.version} (${command})`);
  run(process.execPath, [cmakeJs, command, `--CDCMAKE_PREFIX_PATH=${libtorch.cmakePrefix}`, '--log-level', 'warn']);
}

function main() {
  const libtorch = findLibtorch();
  log(`libtorch ${libtorch.version}${libtorch.cuda ? ' (CUDA)' : ' (CPU)'} at ${libtorch.dir} [${libtorch.source}]`);
  const python = developing ? developmentPython(libtorch) : libtorch.python;
  buildAddon(libtorch);
  fs.mkdirSync(path.dirname(configFile), { recursive: true });
  fs.writeFileSync(configFile, JSON.stringify({ libtorch, python }, null, 2) + '\n');
  if (developing) {
    log('compiling TypeScript');
    run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json']);
    log('exporting models to models/');
    run(python, [path.join('scripts', 'export-models.py')]);
    // After the export: a seeded (non-pretrained) export removes a stale bert-vocab.txt.
    run(process.execPath, [path.join('scripts', 'convert-vocab.js')]);
  }
  log('ready');
}

main();
