// The addon must load when lib/ runs from source (ts-jest here, ts-node) as well as from
// dist/lib: every other suite imports '../lib'. No top-level import of lib, so this file reports
// the failure as a test instead of a suite that fails to run.
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');

test('lib/native/addon.ts loads build/Release/torchscope.node from the source tree', () => {
  let loaded: { packageRoot: string; binding(): { buildInfo(): { libtorchVersion: string } } } | undefined;
  let error: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('../lib/native/addon');
  } catch (e) {
    error = e;
  }
  expect(error === undefined ? undefined : String(error)).toBeUndefined();
  expect(loaded!.packageRoot).toBe(ROOT);
  expect(loaded!.binding().buildInfo().libtorchVersion).toMatch(/^2\./);
});

// What makes one binary portable (CMakeLists.txt, binding.gyp): no RPATH/RUNPATH to a build
// machine's libtorch, and only libc10, libtorch_cpu and libtorch of libtorch's libraries, so an
// addon built against a CUDA libtorch asks nothing CUDA of a CPU one of the same version.
test('the addon in use has no RPATH and links only libc10, libtorch_cpu and libtorch of libtorch', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { planAddon } = require('../lib/native/addon') as { planAddon(): { file: string } };
  const readelf = spawnSync('readelf', ['-d', planAddon().file], { encoding: 'utf8' });
  expect(readelf.status).toBe(0);
  expect(readelf.stdout).not.toMatch(/\((RPATH|RUNPATH)\)/);
  const needed = [...readelf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  // The C runtime's libraries, its dynamic loader included (thread-local state read by libtorch's
  // inline dispatcher calls resolves through it), are not libtorch's.
  const torchLibraries = needed.filter((name) => !/^(lib(stdc\+\+|m|gcc_s|c|pthread|dl)\.so|ld-linux)/.test(name));
  expect(torchLibraries.sort()).toEqual(['libc10.so', 'libtorch.so', 'libtorch_cpu.so']);
});
