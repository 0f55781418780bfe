// torch.doctor() and `torchscope doctor` describe what is really loaded.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';

const root = path.resolve(__dirname, '..');

test('doctor() reports the addon in use, the libtorch it runs with and no problems on a working set-up', () => {
  const report = torch.doctor();
  expect(fs.existsSync(report.addon!)).toBe(true);
  expect(report.addon!.endsWith('torchscope.node')).toBe(true);
  expect(report.addonKind).toBe('build');
  expect(report.ok).toBe(true);
  expect(report.builtFor).toBe(torch.info().libtorchVersion);
  expect(report.libtorch!.version).toBe(torch.info().libtorchVersion);
  expect(report.libtorch!.cudaBuild).toBe(torch.info().cudaBuild);
  expect(report.cuda!.available).toBe(torch.cuda.isAvailable());
  expect(report.napiVersion).toBeGreaterThanOrEqual(report.napiRequired);
  expect(fs.existsSync(report.libtorch!.dir)).toBe(true);
  // The search stops at the libtorch it uses, which is the last place listed.
  expect(report.searched[report.searched.length - 1].found!.dir).toBe(report.libtorch!.dir);
  expect(report.python && fs.existsSync(report.python)).toBe(true);
  expect(report.problems).toEqual([]);
  const text = torch.formatDoctor(report);
  expect(text).toContain(`libtorch   ${report.libtorch!.version}`);
  expect(text).toContain('no problems found');
});

test('`torchscope doctor` prints the same report and exits 0', () => {
  const result = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli.js'), 'doctor'], { encoding: 'utf8' });
  expect(result.status).toBe(0);
  expect(result.stdout).toContain(torch.formatDoctor(torch.doctor()));
});
