// Loading the addon: finding its binary (a source build or a prebuild), the libtorch it was built
// for (lib/native/libtorch.ts), then both, on first use.
import * as fs from 'fs';
import * as path from 'path';
import { isMainThread } from 'worker_threads';

import { TorchscopeError } from '../core/errors';
import { NativeBinding } from './binding';
import { addonLibtorchVersion, findLibtorch, LibtorchSearch, preloadLibtorch } from './libtorch';

// The package root holds package.json: one level up from lib/ (sources, as jest runs them),
// two from dist/lib/ (compiled).
function findPackageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`torchscope: no package.json above ${__dirname}`);
  }
}

export const packageRoot = findPackageRoot();

/** The command that builds the addon from source against the libtorch found (lib/cli.ts). */
export const rebuildCommand = 'npx torchscope build';

// node-gyp-build finds build/Release (source builds) or prebuilds/<platform>-<arch>.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = require('node-gyp-build');

/** What loading the addon needs: its file, the libtorch it was built for, the libtorch found. */
export interface AddonPlan {
  /** The addon binary, or undefined when there is neither a build nor a prebuild for this platform. */
  file?: string;
  kind?: 'build' | 'prebuild';
  /** The libtorch version the addon was compiled against. */
  builtFor?: string;
  search?: LibtorchSearch;
  /** Why it cannot load, as the error binding() throws. */
  error?: TorchscopeError;
}

function describeSearch(search: LibtorchSearch): string {
  return search.probes
    .map((probe) => `  - ${probe.route}: ${probe.found ? `libtorch ${probe.found.version} at ${probe.found.dir}` : probe.problem}`)
    .join('\n');
}

/** Finds the addon and a libtorch for it without loading either (doctor reports this). */
export function planAddon(): AddonPlan {
  let file: string;
  try {
    file = nodeGypBuild.resolve(packageRoot);
  } catch {
    return {
      error: new TorchscopeError(
        'ADDON_LOAD',
        `torchscope has no addon for ${process.platform}-${process.arch}: neither a prebuild in prebuilds/ nor a build in build/Release. Build it from source (needs cmake and a C++ compiler): ${rebuildCommand}`,
      ),
    };
  }
  const kind = file.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'build';
  const builtFor = addonLibtorchVersion(file);
  if (!builtFor) {
    return {
      file,
      kind,
      error: new TorchscopeError(
        'ADDON_LOAD',
        `${file} carries no libtorch version stamp: it is not a torchscope addon of this release; rebuild it: ${rebuildCommand}`,
      ),
    };
  }
  const search = findLibtorch(packageRoot, builtFor);
  if (search.match) return { file, kind, builtFor, search };
  const other = search.probes.find((probe) => probe.found)?.found;
  const install = `pip install torch==${builtFor} (into a Python on PATH or a venv at ./.venv), or set TORCHSCOPE_LIBTORCH to a libtorch ${builtFor} directory`;
  const error = other
    ? new TorchscopeError(
        'LIBTORCH_MISMATCH',
        `torchscope's ${kind} (${file}) was built for libtorch ${builtFor}, but the libtorch found is ${other.version} (${other.dir}, via ${other.route}). ` +
          `Rebuild the addon from source against libtorch ${other.version} (needs cmake and a C++ compiler): ${rebuildCommand}\n` +
          `or make libtorch ${builtFor} findable: ${install}. Looked at:\n${describeSearch(search)}`,
      )
    : new TorchscopeError(
        'LIBTORCH_NOT_FOUND',
        `torchscope needs libtorch ${builtFor} and found none. Install it: ${install}. Looked at:\n${describeSearch(search)}`,
      );
  return { file, kind, builtFor, search, error };
}

let loaded: NativeBinding | undefined;

/** The addon, loaded on first use after libtorch (lib/native/libtorch.ts); throws a TorchscopeError when it cannot be. */
export function binding(): NativeBinding {
  if (loaded) return loaded;
  const plan = planAddon();
  if (plan.error) throw plan.error;
  try {
    preloadLibtorch(plan.search!.match!);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(plan.file!) as NativeBinding;
    // exit() would run libtorch's static destructors under a call in flight (native/bindings/async_work.h).
    const binding = loaded;
    if (isMainThread) process.once('exit', (code) => binding.stopComputeThread(code));
  } catch (error) {
    throw new TorchscopeError(
      'ADDON_LOAD',
      `could not load ${plan.file} with libtorch ${plan.builtFor} at ${plan.search!.match!.dir}: ${(error as Error).message}`,
    );
  }
  return loaded;
}
