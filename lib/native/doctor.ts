// torch.doctor() / `npx torchscope doctor`: what torchscope found and runs with, and what to
// do about each problem. Works when the addon cannot load: that is when it is needed most.
import * as fs from 'fs';
import * as path from 'path';

import { binding, packageRoot, planAddon } from './addon';
import { LibtorchProbe } from './libtorch';

export interface DoctorReport {
  /** The addon binary in use (or that would be), and whether it is a source build or a prebuild. */
  addon?: string;
  addonKind?: 'build' | 'prebuild';
  /** The libtorch version the addon was compiled against. */
  builtFor?: string;
  /** Node-API version of this Node.js, and the one the addon needs. */
  napiVersion: number;
  napiRequired: number;
  /** The libtorch the addon loads with, and how it was found. */
  libtorch?: { version: string; dir: string; route: string; cudaBuild: boolean };
  /** Every place searched for libtorch, in order (lib/native/libtorch.ts). */
  searched: LibtorchProbe[];
  /** Only when the addon loaded. */
  cuda?: { available: boolean; gpus: number };
  threads?: number;
  /** The Python set-up recorded (model export, tests' reference). */
  python?: string;
  /** The addon loaded and works. */
  ok: boolean;
  /** What to fix, each with how. */
  problems: string[];
  /** Worth knowing, nothing to fix (a CUDA libtorch without a GPU, say). */
  notes: string[];
}

function recordedPython(): string | undefined {
  try {
    const python = JSON.parse(fs.readFileSync(path.join(packageRoot, '.torchscope', 'config.json'), 'utf8'))?.python;
    return typeof python === 'string' ? python : undefined;
  } catch {
    return undefined;
  }
}

export function doctor(): DoctorReport {
  const plan = planAddon();
  // package.json's binary.napi_versions is the one place the Node-API version is set.
  const napiRequired = (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { binary: { napi_versions: number[] } }).binary
    .napi_versions[0];
  const napiVersion = Number(process.versions.napi);
  const problems: string[] = [];
  const notes: string[] = [];
  if (napiVersion < napiRequired) problems.push(`Node-API ${napiVersion} is older than the ${napiRequired} torchscope needs: use Node.js 18 or newer`);
  const report: DoctorReport = {
    addon: plan.file,
    addonKind: plan.kind,
    builtFor: plan.builtFor,
    napiVersion,
    napiRequired,
    searched: plan.search?.probes ?? [],
    python: recordedPython(),
    ok: false,
    problems,
    notes,
  };
  const match = plan.search?.match;
  if (match) report.libtorch = { version: match.version, dir: match.dir, route: match.route, cudaBuild: match.cuda };
  try {
    const build = binding().buildInfo();
    report.ok = true;
    report.cuda = { available: build.cudaAvailable, gpus: build.gpuCount };
    report.threads = build.threads;
    if (report.libtorch) report.libtorch.cudaBuild = build.cudaBuild;
    if (build.cudaBuild && !build.cudaAvailable) notes.push("libtorch has CUDA but no GPU is visible: models run on the CPU ('cpu' / 'auto')");
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (report.python && !fs.existsSync(report.python)) problems.push(`the recorded Python ${report.python} is gone: run \`npm run build\` to find one again`);
  return report;
}

/** The report as lines for a terminal. */
export function formatDoctor(report: DoctorReport): string {
  const lt = report.libtorch;
  const lines = [
    `addon      ${report.addon ? `${report.addon} (${report.addonKind}, built for libtorch ${report.builtFor ?? 'unknown'})` : 'none for this platform'}`,
    `node-api   ${report.napiVersion} (needs ${report.napiRequired})`,
    `libtorch   ${lt ? `${lt.version}${lt.cudaBuild ? ' with CUDA' : ' (CPU)'} at ${lt.dir} [${lt.route}]` : 'none usable'}`,
    ...report.searched.map((probe) => `           searched ${probe.route}: ${probe.found ? `${probe.found.version} at ${probe.found.dir}` : probe.problem}`),
    `gpus       ${report.cuda?.available ? report.cuda.gpus : 'none usable'}`,
    `threads    ${report.threads ?? '-'}`,
    `python     ${report.python ?? 'none recorded'}`,
  ];
  lines.push(report.problems.length ? 'problems:' : 'no problems found');
  // The search a loading error lists is printed above already.
  for (const problem of report.problems) lines.push(`  - ${problem.split(' Looked at:')[0].replace(/\n/g, '\n    ')}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}
