// A planned native run (native/methods/stepped_job.h: attribution, patching sweeps) driven as a
// session (./session.ts): one pass per step, progress after each, ABORTED on abort.
import { CallSite, failure } from '../core/errors';
import { callback } from '../core/validate';
import { NativePlannedRun } from './binding';
import { driveSession } from './session';

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
export async function drivePlannedRun<R>(
  start: () => Promise<NativePlannedRun<R>>,
  options: DriveOptions,
  what: string,
  site: CallSite,
): Promise<{ result: R; elapsedMs: number }> {
  if (options.onProgress !== undefined) callback(options.onProgress, 'onProgress', site);
  const began = performance.now();
  let last = { done: 0, total: 0 };
  const run = driveSession(
    start,
    options.signal,
    { nextChunk: (p) => (p === undefined || p.done < p.total ? 1 : 0), resultArgument: (aborted) => (aborted ? null : undefined) },
    what,
    site,
  );
  for (;;) {
    const next = await run.next();
    if (next.done) {
      if (next.value.aborted) throw failure('ABORTED', `${what} was aborted after ${last.done} of ${last.total} passes`, site);
      return { result: next.value.result as R, elapsedMs: performance.now() - began };
    }
    last = next.value;
    if (!next.value.aborted) options.onProgress?.({ step: last.done, steps: last.total, elapsedMs: performance.now() - began });
  }
}
