// One source of truth for what native/ and lib/ share: the error codes, the patch operator's
// modes, the ':input' suffix of layer names, every enumeration whose names cross the boundary
// (native/core/names.h: precisions, dtypes, attribution methods, integrations, noise types,
// upsample modes, maximize parameterizations / ranges / transform kinds, sweep methods, objective
// kinds) and the Node-API version (package.json's binary.napi_versions, which CMakeLists.txt,
// scripts/libtorch-flags.js and lib/native/doctor.ts read). The addon reports what it was compiled with.
import * as fs from 'fs';
import * as path from 'path';

import { NATIVE_ERROR_CODES } from '../lib/core/errors';
import {
  ATTRIBUTION_METHODS,
  DTYPES,
  IMAGE_RANGES,
  INTEGRATIONS,
  JUMPRELU_SPARSITY_LOSSES,
  LR_SCHEDULERS,
  NOISE_TYPES,
  OBJECTIVE_KINDS,
  SAE_STAGES,
  PARAMETERIZATIONS,
  PRECISIONS,
  PROBE_KINDS,
  PROBE_MULTICLASS,
  SAE_TRAIN_ARCHITECTURES,
  SWEEP_METHODS,
  TRANSFORM_KINDS,
  UPSAMPLE_MODES,
} from '../lib/core/names';
import { PATCH_MODES } from '../lib/methods/patch';
import { INPUT_SUFFIX, NODE_SEPARATOR, PATTERN_SUFFIX } from '../lib/model/model';
import { NATIVE_NORMALIZATIONS, SAE_ARCHITECTURES } from '../lib/sae/names';
import { binding } from '../lib/native/addon';
import * as torch from '../lib';

const ROOT = path.resolve(__dirname, '..');
const packageJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

test('error codes: the addon raises exactly the codes lib/core/errors.ts lists', () => {
  expect([...binding().constants().errorCodes].sort()).toEqual([...NATIVE_ERROR_CODES].sort());
});

test('patch modes: the same numbers on both sides', () => {
  expect(binding().constants().patchModes).toEqual(PATCH_MODES);
});

test("a module input's layer-name suffix: the same on both sides", () => {
  expect(binding().constants().inputSuffix).toBe(INPUT_SUFFIX);
  expect(binding().constants().patternSuffix).toBe(PATTERN_SUFFIX);
  expect(binding().constants().nodeSeparator).toBe(NODE_SEPARATOR);
  expect(binding().constants().saeStages).toEqual([...SAE_STAGES]);
});

test("load()'s precisions: the same names on both sides", () => {
  expect(binding().constants().precisions).toEqual([...PRECISIONS]);
});

const sorted = (names: readonly string[]) => [...names].sort();
test.each([
  ['dtypes', DTYPES],
  ['attributionMethods', ATTRIBUTION_METHODS],
  ['integrations', INTEGRATIONS],
  ['noiseTypes', NOISE_TYPES],
  ['upsampleModes', UPSAMPLE_MODES],
  ['parameterizations', PARAMETERIZATIONS],
  ['imageRanges', IMAGE_RANGES],
  ['transformKinds', TRANSFORM_KINDS],
  ['sweepMethods', SWEEP_METHODS],
  ['objectiveKinds', OBJECTIVE_KINDS],
  ['saeArchitectures', SAE_ARCHITECTURES],
  ['saeNormalizations', NATIVE_NORMALIZATIONS],
  ['probeKinds', PROBE_KINDS],
  ['probeMulticlass', PROBE_MULTICLASS],
  ['saeTrainArchitectures', SAE_TRAIN_ARCHITECTURES],
  ['lrSchedulers', LR_SCHEDULERS],
  ['jumpReluSparsityLosses', JUMPRELU_SPARSITY_LOSSES],
] as const)('%s: the names the addon parses are the ones lib/ accepts', (table, names) => {
  expect(sorted(binding().constants()[table])).toEqual(sorted(names));
});

test("Node-API version: the addon was built for package.json's, which doctor requires", () => {
  expect(packageJson.binary.napi_versions).toHaveLength(1);
  expect(binding().constants().napiVersion).toBe(packageJson.binary.napi_versions[0]);
  expect(torch.doctor().napiRequired).toBe(packageJson.binary.napi_versions[0]);
  // Nobody writes the number down again.
  for (const file of ['CMakeLists.txt', 'scripts/libtorch-flags.js', 'binding.gyp']) {
    expect({ file, pinned: /NAPI_VERSION=\d/.test(fs.readFileSync(path.join(ROOT, file), 'utf8')) }).toEqual({ file, pinned: false });
  }
});
