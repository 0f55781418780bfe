#!/usr/bin/env node
// Build settings for binding.gyp, computed from the same places the CMake build uses:
//   - the sources: every .cpp under native/ (CMakeLists.txt globs them the same way);
//   - libtorch: .torchscope/config.json, written by scripts/setup.js (libtorch.dir, .libDir, .cuda);
//     the compile definitions and TORCH_CXX_FLAGS that find_package(Torch) would add are read
//     from the libtorch's own CMake files, so both builds get the same ones.
//
//   node scripts/libtorch-flags.js <what>
//     sources | include_dirs | defines | cflags | ldflags | libraries | libdir   (one per line,
//     for binding.gyp's "<!@(...)"), or json (everything, for humans and CI).
//
// binding.gyp splits the output on whitespace: paths must not contain spaces.
'use strict';
const fs = require('fs');
const path = require('path');
const { root, configFile, readConfig } = require('./config');

function fail(message) {
  process.stderr.write(`torchscope (libtorch-flags): ${message}\n`);
  process.exit(1);
}

// Every .cpp under native/, relative to the root and sorted, as CMakeLists.txt globs them.
function sources() {
  const files = fs.readdirSync(path.join(root, 'native'), { recursive: true }).filter((name) => name.endsWith('.cpp'));
  return files.map((name) => path.posix.join('native', ...name.split(path.sep))).sort();
}

function libtorch() {
  const config = readConfig();
  const found = config && config.libtorch;
  if (!found || !found.dir) {
    fail(`no libtorch recorded in ${path.relative(root, configFile)}: run \`node scripts/setup.js\` (npm install) first`);
  }
  const dir = found.dir;
  const libDir = found.libDir || path.join(dir, 'lib');
  if (!fs.existsSync(path.join(libDir, 'libtorch.so')) && !fs.existsSync(path.join(libDir, 'libtorch.dylib'))) {
    fail(`${libDir} has no libtorch shared library; re-run \`node scripts/setup.js\``);
  }
  return { dir, libDir, cuda: Boolean(found.cuda) };
}

// The targets CMake's ${TORCH_LIBRARIES} brings in (c10 and torch_cpu through the torch target's
// interface, and the CUDA ones in a CUDA libtorch): their compile definitions apply.
function torchTargets(lt) {
  return ['torch', 'torch_cpu', 'c10', ...(lt.cuda ? ['torch_cuda', 'c10_cuda'] : [])];
}

// What is linked, as CMakeLists.txt links it: libtorch always (in a CUDA libtorch it pulls in
// libtorch_cuda), libtorch_cpu and libc10 as needed; no CUDA library, so that an addon built
// against a CUDA libtorch runs with a CPU one of the same version.
function linked(lt) {
  const file = (name) => path.join(lt.libDir, `lib${name}.so`);
  return [`-Wl,--no-as-needed,${file('torch')},--as-needed`, file('torch_cpu'), file('c10')];
}

// What find_package(Torch) adds to the compile line besides include directories:
//   - TORCH_CXX_FLAGS, when this libtorch's TorchConfig.cmake sets it (older releases set
//     -D_GLIBCXX_USE_CXX11_ABI=0/1; 2.7+ wheels set nothing, the ABI being the compiler's default);
//   - the literal INTERFACE_COMPILE_DEFINITIONS of the linked targets in Caffe2Targets.cmake
//     (e.g. USE_DISTRIBUTED;USE_C10D_GLOO;USE_RPC;USE_TENSORPIPE on torch_cpu).
function torchCmakeFlags(lt) {
  const cmakeDir = path.join(lt.dir, 'share', 'cmake');
  const read = (file) => {
    try {
      return fs.readFileSync(path.join(cmakeDir, file), 'utf8');
    } catch {
      return '';
    }
  };
  const cxxFlags = [];
  const config = read(path.join('Torch', 'TorchConfig.cmake'));
  for (const match of config.matchAll(/^\s*set\(TORCH_CXX_FLAGS\s+"([^"]*)"\s*\)/gm)) {
    cxxFlags.push(...match[1].split(/\s+/).filter(Boolean));
  }
  const defines = [];
  const targets = new Set(['headeronly', ...torchTargets(lt)]);
  const exported = read(path.join('Caffe2', 'Caffe2Targets.cmake'));
  for (const block of exported.matchAll(/set_target_properties\((\S+) PROPERTIES\n([\s\S]*?)\n\)/g)) {
    if (!targets.has(block[1])) continue;
    const value = /INTERFACE_COMPILE_DEFINITIONS "([^"]*)"/.exec(block[2]);
    if (!value) continue;
    for (const define of value[1].split(';')) {
      // Generator expressions only forward other targets' definitions, which are read directly.
      if (define && !define.includes('$<') && !defines.includes(define)) defines.push(define);
    }
  }
  return { cxxFlags: [...new Set(cxxFlags)], defines };
}

function nodeAddonApiDir() {
  // The directory CMakeLists.txt gets from node-addon-api's `include` (absolute, unquoted).
  return path.dirname(require.resolve('node-addon-api/napi.h', { paths: [root] }));
}

function settings() {
  const lt = libtorch();
  const torch = torchCmakeFlags(lt);
  // package.json's binary.napi_versions is the one place the Node-API version is set.
  const napiVersion = require(path.join(root, 'package.json')).binary.napi_versions[0];
  return {
    sources: sources(),
    // The -I directories; libtorch's come as -isystem in cflags, as CMake passes imported
    // targets' include directories (no -Wall noise from libtorch headers).
    // native/ first: sources include each other by their path under it ("program/program.h").
    include_dirs: [path.join(root, 'native'), path.join(root, 'native', 'third_party'), nodeAddonApiDir()],
    defines: [`NAPI_VERSION=${napiVersion}`, 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_CPP_EXCEPTIONS_ALL', 'NODE_ADDON_API_DISABLE_DEPRECATED', ...torch.defines],
    cflags: [
      // gnu++20: what CMake's CXX_STANDARD 20 (extensions on by default) gives.
      '-std=gnu++20',
      '-fexceptions',
      '-frtti',
      '-Wall',
      '-Wno-unused-parameter',
      ...torch.cxxFlags,
      '-isystem',
      path.join(lt.dir, 'include'),
      '-isystem',
      path.join(lt.dir, 'include', 'torch', 'csrc', 'api', 'include'),
    ],
    // As CMakeLists.txt: --as-needed and no rpath (lib/native/libtorch.ts finds libtorch at run time).
    ldflags: ['-Wl,--as-needed'],
    // Full paths, as CMake links imported targets: no -L search that could pick up another libtorch.
    libraries: linked(lt),
    libdir: [lt.libDir],
  };
}

function main() {
  const what = process.argv[2];
  if (what === 'sources') {
    // No libtorch needed to list the sources.
    process.stdout.write(sources().join('\n') + '\n');
    return;
  }
  const all = settings();
  if (what === 'json') {
    process.stdout.write(JSON.stringify(all, null, 2) + '\n');
  } else if (what && Object.prototype.hasOwnProperty.call(all, what)) {
    process.stdout.write(all[what].join('\n') + '\n');
  } else {
    fail(`usage: node scripts/libtorch-flags.js <${[...Object.keys(all), 'json'].join('|')}>`);
  }
}

if (require.main === module) main();
module.exports = { sources, settings };
