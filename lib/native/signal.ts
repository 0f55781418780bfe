// AbortSignal for native calls: a call still queued behind others when its signal aborts
// rejects with ABORTED and never runs; a call already running finishes (native/bindings/async_work.h).
import { CallSite, failure, settle } from '../core/errors';
import { abortSignal } from '../core/validate';
import { binding } from './addon';
import { NativeCancelToken } from './binding';

export async function cancellable<T>(given: AbortSignal | undefined, site: CallSite, call: (cancel?: NativeCancelToken) => Promise<T>): Promise<T> {
  const signal = abortSignal(given, site);
  if (signal === undefined) return settle(() => call(), site);
  if (signal.aborted) throw failure('ABORTED', 'the signal was aborted before the call started', site);
  const token = new (binding().CancelToken)();
  const onAbort = () => token.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await settle(() => call(token), site);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
