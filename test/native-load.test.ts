// The addon must load when lib/ runs from source (ts-jest here, ts-node) as well as from
// dist/lib: every other suite imports '../lib'. No top-level import of lib, so this file reports
// the failure as a test instead of a suite that fails to run.
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');

test('lib/native.ts loads build/Release/torchscope.node from the source tree', () => {
  let loaded: { packageRoot: string; binding(): { buildInfo(): { libtorchVersion: string } } } | undefined;
  let error: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('../lib/native');
  } catch (e) {
    error = e;
  }
  expect(error === undefined ? undefined : String(error)).toBeUndefined();
  expect(loaded!.packageRoot).toBe(ROOT);
  expect(loaded!.binding().buildInfo().libtorchVersion).toMatch(/^2\./);
});
