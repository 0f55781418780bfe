#!/usr/bin/env node
// `npm run build:prebuild`: prebuilds/<platform>-<arch>/torchscope.glibc.node, made by prebuildify
// from the one CMake build (prebuildify only knows node-gyp, so it is handed this script as its
// node-gyp: called back with `rebuild ...`, it builds with CMake through scripts/setup.js and
// hands over the result). Node-API: one binary serves every Node version; node-gyp-build picks
// it at run time. The addon has no RPATH and carries the libtorch version it was built for
// (lib/native/libtorch.ts reads both), so the prebuild works wherever libtorch of that version is.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { root } = require('./config');

const built = path.join(root, 'build', 'Release', 'torchscope.node');

function fail(message) {
  console.error(`torchscope (prebuild): ${message}`);
  process.exit(1);
}

// Called by prebuildify in place of node-gyp, in its staging directory (the working directory).
function buildForPrebuildify() {
  const setup = spawnSync(process.execPath, [path.join(__dirname, 'setup.js'), '--addon-only'], { stdio: 'inherit', cwd: root });
  if (setup.status !== 0) process.exit(setup.status ?? 1);
  // A copy: prebuildify moves what it finds, and build/Release stays the development build.
  fs.mkdirSync(path.join('build', 'Release'), { recursive: true });
  fs.copyFileSync(built, path.join('build', 'Release', 'torchscope.node'));
}

function main() {
  if (!fs.existsSync(path.join(root, 'dist', 'lib', 'native', 'libtorch.js'))) fail('dist/lib is missing: run `npm run build:ts` first');
  // Staging inside the package (not build/: a CMake rebuild empties it): prebuildify renames
  // its result into prebuilds/, which fails across file systems.
  const stage = path.join(root, '.torchscope', 'prebuild-stage');
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  const prebuildify = require('prebuildify');
  prebuildify(
    {
      cwd: stage,
      out: root,
      name: 'torchscope',
      napi: true,
      strip: true,
      tagLibc: true,
      nodeGyp: __filename,
    },
    (error) => {
      fs.rmSync(stage, { recursive: true, force: true });
      if (error) fail(error.message);
      const { addonLibtorchVersion } = require('../dist/lib/native/libtorch.js');
      const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
      for (const name of fs.readdirSync(dir)) {
        const file = path.join(dir, name);
        console.log(`torchscope: ${path.relative(root, file)}: ${fs.statSync(file).size} bytes, built for libtorch ${addonLibtorchVersion(file)}`);
      }
    },
  );
}

if (process.argv[2] === 'rebuild') buildForPrebuildify();
else main();
