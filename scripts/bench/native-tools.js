// The benchmark's native tools (scripts/bench/CMakeLists.txt): a plain C++ libtorch forward and
// the arithmetic peak probe, built once into build/bench against set-up's libtorch.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { root, readConfig } = require('../config');

/** The path of a built tool ('plain_forward', 'peak'), configured once and rebuilt when its source changed. */
function benchTool(name) {
  const dir = path.join(root, 'build', 'bench');
  const binary = path.join(dir, name);
  const config = readConfig();
  if (!config) throw new Error('run `npm install` first (no .torchscope/config.json)');
  const steps = [['cmake', ['--build', dir, '--target', name]]];
  if (!fs.existsSync(path.join(dir, 'CMakeCache.txt'))) {
    steps.unshift(['cmake', ['-S', path.join(root, 'scripts', 'bench'), '-B', dir, `-DCMAKE_PREFIX_PATH=${config.libtorch.cmakePrefix}`]]);
  }
  for (const [command, args] of steps) {
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed`);
  }
  if (!fs.existsSync(binary)) throw new Error(`build/bench has no ${name} after building`);
  return binary;
}

module.exports = { benchTool };
