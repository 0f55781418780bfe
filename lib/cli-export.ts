// `torchscope export <folder-or-hub-id> --out model.pt`: runs scripts/hf_export.py (transformers
// loads the model, torch traces it) with a Python that has both: the one set-up recorded or the
// project's .venv, else one on PATH.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { parseArgs } from 'util';

import { MANIFEST_TASKS } from './model/manifest';
import { packageRoot } from './native/addon';

/** The exporter's script, shipped in the package ("files"). */
const EXPORT_SCRIPT = path.join(packageRoot, 'scripts', 'hf_export.py');
/** What the exporter imports. */
const EXPORT_MODULES = ['torch', 'transformers'];
/** Pythons tried after the recorded one, in order. */
const PATH_PYTHONS = ['python3', 'python'];
/** Importing torch and transformers takes seconds on a cold cache. */
const PROBE_TIMEOUT_MS = 120_000;

export const exportUsage = `torchscope export <folder-or-hub-id> --out FILE.pt [--task auto|${MANIFEST_TASKS.join('|')}] [--no-check] [--no-decode-step]`;

interface Probe {
  python: string;
  /** Why it cannot export; undefined when it can. */
  problem?: string;
}

/** The recorded Python (scripts/config.js: set-up's, else the project's .venv), then those on PATH. */
function candidates(): string[] {
  let recorded: string | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    recorded = (require(path.join(packageRoot, 'scripts', 'config.js')) as { pythonPath(): string }).pythonPath();
  } catch {
    recorded = undefined;
  }
  return [...new Set([...(recorded ? [recorded] : []), ...PATH_PYTHONS])];
}

function probe(python: string): Probe {
  const code = `import importlib.util as u, sys; missing = [m for m in ${JSON.stringify(EXPORT_MODULES)} if u.find_spec(m) is None]; print(' '.join(missing)); sys.exit(1 if missing else 0)`;
  const result = spawnSync(python, ['-c', code], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  if (result.error) return { python, problem: (result.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : result.error.message };
  if (result.status !== 0) return { python, problem: result.stdout.trim() ? `has no ${result.stdout.trim().split(' ').join(', ')}` : `exits ${result.status}` };
  return { python };
}

/** The first Python that can export, or every problem found. */
export function exportPython(): { python?: string; probes: Probe[] } {
  const probes: Probe[] = [];
  for (const python of candidates()) {
    const found = probe(python);
    probes.push(found);
    if (!found.problem) return { python, probes };
  }
  return { probes };
}

export function exportCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, task: { type: 'string' }, 'no-check': { type: 'boolean' }, 'no-decode-step': { type: 'boolean' } },
  });
  if (positionals.length !== 1 || !values.out) {
    console.error(`usage: ${exportUsage}`);
    return 2;
  }
  const { python, probes } = exportPython();
  if (!python) {
    console.error(
      'torchscope export needs a Python with torch and transformers, and found none:\n' +
        probes.map((p) => `  - ${p.python}: ${p.problem}`).join('\n') +
        '\nInstall them (`pip install torch transformers`) in the Python on PATH, or run `npx torchscope build` in a checkout to set up .venv.',
    );
    return 1;
  }
  const forwarded = [
    positionals[0],
    '--out',
    values.out,
    ...(values.task ? ['--task', values.task] : []),
    ...(values['no-check'] ? ['--no-check'] : []),
    ...(values['no-decode-step'] ? ['--no-decode-step'] : []),
  ];
  const result = spawnSync(python, [EXPORT_SCRIPT, ...forwarded], { stdio: 'inherit' });
  if (result.error) {
    console.error(`torchscope export: could not run ${python}: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}
