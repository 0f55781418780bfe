// torch.info().cpu reports what this process's kernels run, not only what cpuid says: the limits
// ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA set (CI runs the CPU-dependent suites again under
// AVX2 limits) must take effect in torchscope and in the Python reference alike. Each case runs
// in a child process, since the libraries read their limits once. oneDNN's own verbose log
// (ONEDNN_VERBOSE) says which instruction set it dispatches to; that is checked against ours.
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';

import * as torch from '../lib';
import { modelPath, python, ROOT } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { LIMIT_VARIABLES: LIMITS } = require('../scripts/cpu-limits.js') as { LIMIT_VARIABLES: string[] };

// oneDNN's verbose names of the instruction sets this suite can see on the CPUs it runs on.
const VERBOSE_NAMES: Record<string, string> = {
  SSE41: 'Intel SSE4.1',
  AVX: 'Intel AVX',
  AVX2: 'Intel AVX2',
  AVX512_CORE: 'Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions',
  AVX512_CORE_VNNI: 'Intel AVX-512 with Intel DL Boost',
  AVX512_CORE_BF16: 'Intel AVX-512 with Intel DL Boost and bfloat16 support',
};

interface ChildReport {
  cpu: torch.Info['cpu'];
  /** oneDNN's "isa:" line from its verbose log, after a convolution it ran. */
  onednnVerbose: string | null;
  /** TORCHSCOPE_EMULATED_PRECISION warnings on loading a bf16 model. */
  emulatedWarnings: number;
}

/** torch.info().cpu and oneDNN's verbose ISA line in a fresh process with `env` (over the limits cleared). */
function childReport(env: Record<string, string>): ChildReport {
  const script = `
    const torch = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
    let warnings = 0;
    process.on('warning', (w) => { if (w.code === 'TORCHSCOPE_EMULATED_PRECISION') warnings++; });
    (async () => {
      const model = await torch.load(${JSON.stringify(modelPath('resnet18.pt'))}, { precision: 'bf16', upcast: true });
      await torch.run(model, [torch.tensor(new Float32Array(3 * 64 * 64), [1, 3, 64, 64])], { precision: 'fp32' });
      await new Promise((resolve) => setImmediate(resolve));
      process.stderr.write('REPORT ' + JSON.stringify({ cpu: torch.info().cpu, warnings }) + '\\n');
    })();`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !LIMITS.includes(k)));
  const child = spawnSync(process.execPath, ['-e', script], { env: { ...clean, ONEDNN_VERBOSE: '1', ...env }, encoding: 'utf8', timeout: 120_000 });
  const report = child.stderr.split('\n').find((line) => line.startsWith('REPORT '));
  if (child.status !== 0 || !report) throw new Error(`child failed (${child.status}): ${child.stderr.slice(-2000)}`);
  const { cpu, warnings } = JSON.parse(report.slice('REPORT '.length));
  const isa = child.stdout.split('\n').find((line) => line.startsWith('onednn_verbose') && line.includes(',isa:'));
  return { cpu, onednnVerbose: isa ? isa.slice(isa.indexOf(',isa:') + 5) : null, emulatedWarnings: warnings };
}

/** PyTorch's own reading of ATen's capability under `env`. */
function pythonCapability(env: Record<string, string>): string {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !LIMITS.includes(k)));
  const child = spawnSync(python(), ['-c', 'import torch; print(torch.backends.cpu.get_cpu_capability())'], {
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (child.status !== 0) throw new Error(child.stderr);
  return child.stdout.trim();
}

const x86 = os.arch() === 'x64';
let unlimited: ChildReport;

beforeAll(() => {
  unlimited = childReport({});
}, 180_000);

test('this process: what info() reports is what a fresh process with the same limits reports', () => {
  const here = torch.info().cpu;
  const limits = Object.fromEntries(LIMITS.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
  expect(childReport(limits).cpu).toEqual(here);
});

describe(x86 ? 'x86-64: oneDNN dispatches to the instruction set info() names' : 'not x86-64: no oneDNN instruction set is named', () => {
  test("no limit: the CPU's own instruction set, as oneDNN logs it", () => {
    if (!x86) {
      expect(unlimited.cpu.onednn).toBe('');
      return;
    }
    expect(unlimited.onednnVerbose).not.toBeNull();
    const known = VERBOSE_NAMES[unlimited.cpu.onednn];
    // A CPU beyond this table (AMX, AVX2-VNNI): at least not one of the lesser sets.
    if (known) expect(unlimited.onednnVerbose).toBe(known);
    else expect(Object.values(VERBOSE_NAMES)).not.toContain(unlimited.onednnVerbose);
    // bf16 natively exactly where oneDNN runs AVX-512 BF16 or above; no warning then.
    const nativeLevels = ['AVX512_CORE_BF16', 'AVX512_CORE_FP16', 'AVX512_CORE_AMX', 'AVX512_CORE_AMX_FP16'];
    expect(unlimited.cpu.bf16).toBe(nativeLevels.includes(unlimited.cpu.onednn));
    expect(unlimited.emulatedWarnings).toBe(unlimited.cpu.bf16 ? 0 : 1);
  }, 180_000);

  test.each([['AVX2'], ['avx2'], ['SSE41']])(
    'ONEDNN_MAX_CPU_ISA=%s (any case, as oneDNN reads it): oneDNN runs that set, bf16 is emulated and warns',
    (limit) => {
      const report = childReport({ ONEDNN_MAX_CPU_ISA: limit });
      if (!x86) {
        expect(report.cpu).toEqual(unlimited.cpu);
        return;
      }
      expect(report.cpu).toMatchObject({ onednn: limit.toUpperCase(), bf16: false, fp16: false, capability: unlimited.cpu.capability });
      expect(report.onednnVerbose).toBe(VERBOSE_NAMES[limit.toUpperCase()]);
      expect(report.emulatedWarnings).toBe(1);
    },
    180_000,
  );

  test('DNNL_MAX_CPU_ISA (the older name) limits too; an unknown value is ignored, as oneDNN ignores it', () => {
    if (!x86) return expect(childReport({ DNNL_MAX_CPU_ISA: 'AVX2' }).cpu).toEqual(unlimited.cpu);
    expect(childReport({ DNNL_MAX_CPU_ISA: 'AVX2' })).toMatchObject({ cpu: { onednn: 'AVX2' }, onednnVerbose: VERBOSE_NAMES.AVX2 });
    expect(childReport({ ONEDNN_MAX_CPU_ISA: 'NO_SUCH_ISA' })).toMatchObject({ cpu: unlimited.cpu, onednnVerbose: unlimited.onednnVerbose });
  }, 180_000);

  test('a limit above the CPU changes nothing', () => {
    expect(childReport({ ONEDNN_MAX_CPU_ISA: 'AVX512_CORE_AMX_FP16' }).cpu).toEqual(unlimited.cpu);
  }, 180_000);
});

test.each([
  ['avx2', 'AVX2'],
  ['default', 'DEFAULT'],
])(
  'ATEN_CPU_CAPABILITY=%s: ATen runs %s kernels here and in the Python reference',
  (value, name) => {
    const report = childReport({ ATEN_CPU_CAPABILITY: value });
    expect(report.cpu.capability).toBe(x86 || value === 'default' ? name : unlimited.cpu.capability);
    expect(pythonCapability({ ATEN_CPU_CAPABILITY: value })).toBe(report.cpu.capability);
    // oneDNN is limited by its own variable only.
    expect(report.cpu.onednn).toBe(unlimited.cpu.onednn);
  },
  180_000,
);
