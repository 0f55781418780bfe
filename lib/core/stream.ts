// A run consumed once, either way a Node user expects: `for await` over its progress, or
// `await run.result` for the outcome (maximizeIter, generate). Driven by an async generator
// whose yields are the progress and whose return value is the result.
import { CallSite, failure } from './errors';

export interface StreamedRun<T, R> extends AsyncIterable<T> {
  readonly result: Promise<R>;
}

/**
 * `generator` as a StreamedRun. When the loop stops early (break), `stoppedEarly` gives the
 * result, or throws what the result rejects with. `what` names the run in the error for a
 * second consumption.
 */
export function streamedRun<T, R>(generator: AsyncGenerator<T, R>, stoppedEarly: () => R, what: string, site: CallSite): StreamedRun<T, R> {
  let settle!: (result: R) => void;
  let fail!: (error: unknown) => void;
  const outcome = new Promise<R>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  outcome.catch(() => undefined); // also surfaced through iteration; not an unhandled rejection
  let started = false;
  const next = async (): Promise<IteratorResult<T>> => {
    try {
      const item = await generator.next();
      if (item.done) {
        settle(item.value);
        return { done: true, value: undefined };
      }
      return { done: false, value: item.value };
    } catch (error) {
      fail(error);
      throw error;
    }
  };
  return {
    // Awaiting the result without iterating runs to the end.
    get result(): Promise<R> {
      if (!started) {
        started = true;
        void (async () => {
          while (!(await next().catch(() => ({ done: true }))).done);
        })();
      }
      return outcome;
    },
    [Symbol.asyncIterator](): AsyncIterator<T> {
      if (started) throw failure('INVALID_ARGUMENT', `${what} is consumed once: iterate it, or await its result`, site);
      started = true;
      return {
        next,
        async return(): Promise<IteratorResult<T>> {
          await generator.return(undefined as never);
          try {
            settle(stoppedEarly());
          } catch (error) {
            fail(error);
          }
          return { done: true, value: undefined };
        },
      };
    },
  };
}
