// torch.doctor() / `npx torchscope doctor`: what torchscope found and runs with, and what to
// do about each problem.
import * as fs from 'fs';
import * as path from 'path';

import { addonPath, native, packageRoot } from './native';

export interface DoctorReport {
  /** The addon binary in use. */
  addon: string;
  /** 'build' (built from source here) or 'prebuild' (shipped in prebuilds/). */
  addonKind: 'build' | 'prebuild';
  /** Node-API version of this Node.js, and the one the addon needs. */
  napiVersion: number;
  napiRequired: number;
  libtorch: {
    version: string;
    /** Where set-up found it, and through which route. */
    dir?: string;
    source?: string;
    cudaBuild: boolean;
  };
  cuda: { available: boolean; gpus: number };
  threads: number;
  /** The Python set-up recorded (model export, tests' reference). */
  python?: string;
  problems: string[];
}

interface SetupConfig {
  libtorch?: { dir?: string; version?: string; source?: string };
  python?: string | null;
}

function readSetupConfig(): SetupConfig | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot, '.torchscope', 'config.json'), 'utf8')) as SetupConfig;
  } catch {
    return null;
  }
}

export function doctor(): DoctorReport {
  const build = native.buildInfo();
  const config = readSetupConfig();
  const napiRequired = 8;
  const napiVersion = Number(process.versions.napi);
  const problems: string[] = [];
  if (napiVersion < napiRequired) problems.push(`Node-API ${napiVersion} is older than the ${napiRequired} torchscope needs: use Node.js 18 or newer`);
  if (!config) problems.push('no .torchscope/config.json: set-up did not run here; run `npm run build` in the torchscope package');
  const recorded = config?.libtorch?.version;
  if (recorded && recorded !== build.libtorchVersion) {
    problems.push(`the addon was built for libtorch ${build.libtorchVersion} but set-up found ${recorded}: rebuild with \`npm run build\``);
  }
  if (build.cudaBuild && !build.cudaAvailable) problems.push("libtorch has CUDA but no GPU is visible: models run on the CPU ('cpu' / 'auto')");
  if (config?.python && !fs.existsSync(config.python)) problems.push(`the recorded Python ${config.python} is gone: run \`npm run build\` to find one again`);
  return {
    addon: addonPath,
    addonKind: addonPath.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'build',
    napiVersion,
    napiRequired,
    libtorch: { version: build.libtorchVersion, dir: config?.libtorch?.dir, source: config?.libtorch?.source, cudaBuild: build.cudaBuild },
    cuda: { available: build.cudaAvailable, gpus: build.gpuCount },
    threads: build.threads,
    python: config?.python ?? undefined,
    problems,
  };
}

/** The report as lines for a terminal. */
export function formatDoctor(report: DoctorReport): string {
  const lines = [
    `addon      ${report.addon} (${report.addonKind})`,
    `node-api   ${report.napiVersion} (needs ${report.napiRequired})`,
    `libtorch   ${report.libtorch.version}${report.libtorch.cudaBuild ? ' with CUDA' : ' (CPU)'}${report.libtorch.dir ? ` at ${report.libtorch.dir}` : ''}${report.libtorch.source ? ` [${report.libtorch.source}]` : ''}`,
    `gpus       ${report.cuda.available ? report.cuda.gpus : 'none usable'}`,
    `threads    ${report.threads}`,
    `python     ${report.python ?? 'none recorded'}`,
  ];
  lines.push(report.problems.length ? 'problems:' : 'no problems found');
  for (const problem of report.problems) lines.push(`  - ${problem}`);
  return lines.join('\n');
}
