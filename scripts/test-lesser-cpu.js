#!/usr/bin/env node
// `npm run test:lesser-cpu`: the suites whose results depend on the CPU, run again with ATen,
// oneDNN and MKL limited to AVX2 (the Python references inherit the limits), so that a machine
// with AVX-512 proves the AVX2 path too and an AVX2 machine proves itself. Users have laptops
// with AVX2 only; the kernels libtorch picks, and with them bf16 support, prepacking layouts and
// rounding, differ. Extra arguments go to jest.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { AVX2_LIMITS } = require('./cpu-limits');

const SUITES = [
  'cpu',
  'precision',
  'zoo',
  'parity',
  'attribution',
  'maximize',
  'probe',
  'sae-train',
  'store',
  'pt2',
  'optimize-transformers',
  'generate-cached',
].map((name) => `test/${name}.test.ts`);

const root = path.resolve(__dirname, '..');
console.log(
  `torchscope: ${Object.entries(AVX2_LIMITS)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')} jest ${SUITES.join(' ')}`,
);
const jest = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), ...SUITES, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ...AVX2_LIMITS },
});
process.exit(jest.status ?? 1);
