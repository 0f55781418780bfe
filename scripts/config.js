// Where set-up recorded what it found (libtorch, a Python with torch); read by tests,
// benchmarks and the demo so they all use the same libtorch and Python.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
// Outside build/: cmake-js wipes that directory when a build fails.
const configFile = path.join(root, '.torchscope', 'config.json');

function readConfig() {
  try {
    return JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch {
    return null;
  }
}

// The Python that imports torch (used for model export and as the test reference).
function pythonPath() {
  const config = readConfig();
  if (config && config.python) return config.python;
  const venv = path.join(root, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

module.exports = { root, configFile, readConfig, pythonPath };
