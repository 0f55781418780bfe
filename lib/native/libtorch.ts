// Finding libtorch on this machine, at run time and at set-up (scripts/setup.js uses this
// module from dist/lib), and loading it before the addon.
//
// The addon carries no RPATH (CMakeLists.txt, binding.gyp): where libtorch lives is only known
// here. Search order, first libtorch whose version is the addon's wins:
//   1. TORCHSCOPE_LIBTORCH: a libtorch directory (unzipped libtorch, or a torch wheel's torch/);
//      when set, nothing else is considered;
//   2. a Python on PATH (python3, then python) that has torch installed;
//   3. a project venv: .venv in torchscope's own directory (set-up creates it there), in the
//      project that depends on torchscope (the directory holding node_modules/), or in the
//      working directory;
//   4. the libtorch set-up recorded in .torchscope/config.json.
// Then libc10, libtorch_cpu and libtorch are loaded from that directory (RTLD_NODELETE, so they
// stay loaded): the dynamic loader matches the addon's DT_NEEDED entries to these by soname.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * A libtorch found on this machine.
 * @inline
 */
export interface Libtorch {
  /** The libtorch directory: holds include/, lib/ and share/cmake/. */
  dir: string;
  libDir: string;
  /** TORCH_VERSION from its headers, e.g. '2.13.0'. */
  version: string;
  /** libtorch_cuda is present. */
  cuda: boolean;
  /** How it was found: 'TORCHSCOPE_LIBTORCH', 'python3 on PATH', '<dir>/.venv', ... */
  route: string;
  /** The Python that owns it, when it came from one. */
  python?: string;
}

/**
 * One place the search looked, and what it found there.
 * @inline
 */
export interface LibtorchProbe {
  route: string;
  found?: Libtorch;
  /** Why nothing usable was there. */
  problem?: string;
}

export interface LibtorchSearch {
  /** The libtorch to load: the first of `wanted`'s version, or the first found without a wanted version. */
  match?: Libtorch;
  probes: LibtorchProbe[];
}

/** TORCH_VERSION as the headers define it; the header moved between releases. */
function headerVersion(dir: string): string | undefined {
  for (const header of [
    path.join(dir, 'include', 'torch', 'headeronly', 'version.h'),
    path.join(dir, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
  ]) {
    let text: string;
    try {
      text = fs.readFileSync(header, 'utf8');
    } catch {
      continue;
    }
    const match = /#define TORCH_VERSION\s+(?:\\\s*)?"([^"]+)"/.exec(text);
    if (match) return match[1];
  }
  return undefined;
}

/** A libtorch directory described from its files, or why it is not one. */
export function describeLibtorch(dir: string, route: string, python?: string): Libtorch | string {
  const libDir = path.join(dir, 'lib');
  if (!fs.existsSync(path.join(libDir, 'libtorch_cpu.so'))) return `${dir} has no lib/libtorch_cpu.so`;
  const version = headerVersion(dir);
  if (!version) return `${dir} has no include/torch/.../version.h to read its version from`;
  return { dir, libDir, version, cuda: fs.existsSync(path.join(libDir, 'libtorch_cuda.so')), route, ...(python ? { python } : {}) };
}

// Where a Python's torch package is, without importing it (an import costs seconds).
const FIND_TORCH =
  'import importlib.util as u, json, sys; s = u.find_spec("torch"); print(json.dumps([sys.executable, s and list(s.submodule_search_locations)[0]]))';

function probePython(name: string): LibtorchProbe {
  const route = `${name} on PATH`;
  const result = spawnSync(name, ['-c', FIND_TORCH], { encoding: 'utf8', timeout: 30000 });
  if (result.error || result.status !== 0)
    return { route, problem: result.error ? `no ${name} on PATH` : `${name} failed: ${result.stderr.trim().split('\n').pop()}` };
  let executable: string;
  let torchDir: string | null;
  try {
    [executable, torchDir] = JSON.parse(result.stdout.trim().split('\n').pop() as string) as [string, string | null];
  } catch {
    return { route, problem: `${name} printed no answer (${result.stdout.trim().slice(0, 80)})` };
  }
  if (!torchDir) return { route, problem: `${executable} has no torch` };
  const found = describeLibtorch(torchDir, route, executable);
  return typeof found === 'string' ? { route, problem: found } : { route, found };
}

function probeVenv(venv: string): LibtorchProbe {
  const route = venv;
  const libRoot = path.join(venv, 'lib');
  let versions: string[];
  try {
    versions = fs.readdirSync(libRoot).filter((name) => /^python3/.test(name));
  } catch {
    return { route, problem: 'no venv there' };
  }
  for (const version of versions) {
    const torchDir = path.join(libRoot, version, 'site-packages', 'torch');
    if (!fs.existsSync(torchDir)) continue;
    const python = path.join(venv, 'bin', 'python');
    const found = describeLibtorch(torchDir, route, fs.existsSync(python) ? python : undefined);
    return typeof found === 'string' ? { route, problem: found } : { route, found };
  }
  return { route, problem: 'the venv has no torch' };
}

/** The venvs searched, in order: torchscope's own, the dependent project's, the working directory's. */
export function projectVenvs(packageRoot: string): string[] {
  const roots = [packageRoot];
  const parts = packageRoot.split(path.sep);
  const modules = parts.lastIndexOf('node_modules');
  if (modules > 0) roots.push(parts.slice(0, modules).join(path.sep) || path.sep);
  roots.push(process.cwd());
  return [...new Set(roots.map((root) => path.join(path.resolve(root), '.venv')))];
}

function recordedLibtorch(packageRoot: string): LibtorchProbe {
  const route = 'recorded by set-up (.torchscope/config.json)';
  let dir: unknown;
  try {
    dir = JSON.parse(fs.readFileSync(path.join(packageRoot, '.torchscope', 'config.json'), 'utf8'))?.libtorch?.dir;
  } catch {
    return { route, problem: 'set-up has not run' };
  }
  if (typeof dir !== 'string') return { route, problem: 'nothing recorded' };
  const found = describeLibtorch(dir, route);
  return typeof found === 'string' ? { route, problem: found } : { route, found };
}

/**
 * Searches in order and stops at the first libtorch of version `wanted` (any version when
 * `wanted` is undefined). Every place looked at is in `probes`, for error messages and doctor.
 */
export function findLibtorch(packageRoot: string, wanted?: string): LibtorchSearch {
  const probes: LibtorchProbe[] = [];
  const fromEnv = process.env.TORCHSCOPE_LIBTORCH;
  const searches: (() => LibtorchProbe)[] = fromEnv
    ? [
        () => {
          const found = describeLibtorch(path.resolve(fromEnv), 'TORCHSCOPE_LIBTORCH');
          return typeof found === 'string' ? { route: 'TORCHSCOPE_LIBTORCH', problem: found } : { route: 'TORCHSCOPE_LIBTORCH', found };
        },
      ]
    : [
        () => probePython('python3'),
        () => probePython('python'),
        ...projectVenvs(packageRoot).map((venv) => () => probeVenv(venv)),
        () => recordedLibtorch(packageRoot),
      ];
  const seen = new Set<string>();
  for (const search of searches) {
    const probe = search();
    if (probe.found) {
      const real = fs.realpathSync(probe.found.dir);
      // The same libtorch reached twice (python3 is the venv's python, say) is listed once.
      if (seen.has(real)) continue;
      seen.add(real);
    }
    probes.push(probe);
    if (probe.found && (wanted === undefined || probe.found.version === wanted)) return { match: probe.found, probes };
  }
  return { probes };
}

/** The libtorch version an addon binary was built against (native/core/device.cpp stamps it). */
export function addonLibtorchVersion(addonFile: string): string | undefined {
  const match = /TORCHSCOPE_BUILD libtorch=([^;\0]+);/.exec(fs.readFileSync(addonFile).toString('latin1'));
  return match ? match[1] : undefined;
}

// Not in os.constants.dlopen; glibc's value. Without it Node's dlclose after "did not
// self-register" would unload the library again.
const RTLD_NODELETE = 0x1000;

/** Loads libtorch's libraries so that the addon's DT_NEEDED entries resolve to them. */
export function preloadLibtorch(libtorch: Libtorch): void {
  for (const name of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so']) {
    const file = path.join(libtorch.libDir, name);
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file, os.constants.dlopen.RTLD_NOW | RTLD_NODELETE);
    } catch (error) {
      // A plain library is not a Node module: this error means it loaded.
      if (!/did not self-register/.test((error as Error).message)) throw error;
    }
  }
}
