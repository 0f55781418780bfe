// Driving a native session (native/bindings/session_handle.h: attribution runs, patching sweeps,
// maximization, SAE training) from JS, the one loop for all of them: chunks of steps with progress
// between them (and the inputs a chunk takes, fetched before it), an AbortSignal that stops the
// session within one step, the session freed however it ends.
import { CallSite, failure, settle } from '../core/errors';
import { abortSignal } from '../core/validate';
import { NativeSession, NativeTensor } from './binding';

export interface SessionPlan<P> {
  /** Steps of the next chunk after `previous` (undefined before the first); 0 ends the stepping. */
  nextChunk(previous: (P & { aborted: boolean }) | undefined): number;
  /**
   * Once the stepping ended (`aborted` or not): result()'s argument, or null to end without a
   * result (a planned run stopped part way has none).
   */
  resultArgument(aborted: boolean): boolean | undefined | null;
  /** The inputs a chunk of `steps` takes (SAE training's batches), fetched before it runs. */
  inputs?(steps: number): Promise<NativeTensor[]>;
}

/**
 * Starts the session and runs it chunk by chunk, yielding each chunk's progress; returns the
 * result (undefined where `plan.resultArgument` said null) and whether it was aborted. Rejects
 * ABORTED, naming `what`, when `signal` fired before the session started.
 */
export async function* driveSession<P, R>(
  start: () => Promise<NativeSession<P, R>>,
  signal: AbortSignal | undefined,
  plan: SessionPlan<P>,
  what: string,
  site: CallSite,
): AsyncGenerator<P & { aborted: boolean }, { result: R | undefined; aborted: boolean }> {
  abortSignal(signal, site);
  if (signal?.aborted) throw failure('ABORTED', `the signal was aborted before ${what} started`, site);
  const session = await settle(start, site);
  const onAbort = () => session.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) session.abort(); // aborted while the session was being set up
    let aborted = false;
    let steps = plan.nextChunk(undefined);
    while (steps > 0) {
      const chunk = steps;
      const inputs = plan.inputs ? await plan.inputs(chunk) : undefined;
      const progress = await settle(() => session.steps(chunk, inputs), site);
      yield progress;
      aborted = progress.aborted;
      steps = aborted ? 0 : plan.nextChunk(progress);
    }
    const argument = plan.resultArgument(aborted);
    const result = argument === null ? undefined : await settle(() => session.result(argument), site);
    return { result, aborted };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    session.dispose();
  }
}
