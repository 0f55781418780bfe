// Driving a planned native run (native/methods/planned_run.h) from JS: one pass per step, progress
// after each, an AbortSignal that stops within one pass, the run freed however it ends.
import { CallSite, failure, settle } from './errors';
import { NativePlannedRun } from './native';

export interface RunProgress {
  /** Passes done and planned. */
  step: number;
  steps: number;
  elapsedMs: number;
}

export interface DriveOptions {
  signal?: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
}

/** What `what` (e.g. 'the attribution') resolves with once every pass ran; ABORTED on abort. */
export async function drivePlannedRun<R>(start: () => Promise<NativePlannedRun<R>>, options: DriveOptions, what: string, site: CallSite): Promise<{ result: R; elapsedMs: number }> {
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw failure('INVALID_ARGUMENT', 'signal must be an AbortSignal', site);
  if (signal?.aborted) throw failure('ABORTED', `the signal was aborted before ${what} started`, site);
  const began = performance.now();
  const run = await settle(start, site);
  const onAbort = () => run.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) run.abort(); // aborted while the run was being planned
    for (;;) {
      const progress = await settle(() => run.steps(1), site);
      if (progress.aborted) throw failure('ABORTED', `${what} was aborted after ${progress.done} of ${progress.total} passes`, site);
      options.onProgress?.({ step: progress.done, steps: progress.total, elapsedMs: performance.now() - began });
      if (progress.done === progress.total) break;
    }
    const result = await settle(() => run.result(), site);
    return { result, elapsedMs: performance.now() - began };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    run.dispose();
  }
}
