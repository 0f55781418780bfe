// Typed errors. Native code rejects with { code, message }; this module turns that into a
// TorchscopeError whose stack points at the user's call, not at an event-loop tick.

/** The codes native code raises (native/core/errors.h lists the same; test/constants.test.ts compares). */
export const NATIVE_ERROR_CODES = [
  'MODEL_LOAD',
  'UNKNOWN_LAYER',
  // A submodule no hook point reaches (never called by forward, picked from a container at run time...).
  'UNHOOKABLE_LAYER',
  // A hooked layer whose call sites this forward did not reach (a branch not taken).
  'LAYER_NOT_RUN',
  'SHAPE',
  'DTYPE',
  'DEVICE',
  'DISPOSED',
  'INVALID_ARGUMENT',
  'OUT_OF_MEMORY',
  'ABORTED',
  'RUNTIME',
  'INTERNAL',
] as const;

/** Codes raised while loading the addon, before any native code runs. */
export const LOADER_ERROR_CODES = [
  // No libtorch found, one of another version than the addon's, or the addon itself.
  'LIBTORCH_NOT_FOUND',
  'LIBTORCH_MISMATCH',
  'ADDON_LOAD',
] as const;

/** @useDeclaredType */
export type ErrorCode = [...typeof NATIVE_ERROR_CODES, ...typeof LOADER_ERROR_CODES][number];

export class TorchscopeError extends Error {
  readonly code: ErrorCode;
  /** The TorchScript traceback of the failing op, when the error came from inside a model. */
  readonly torchscriptTrace?: string;
  /** Closest valid names, for UNKNOWN_LAYER and an unknown option (INVALID_ARGUMENT). */
  readonly suggestions?: string[];

  constructor(code: ErrorCode, message: string, extra: { torchscriptTrace?: string; suggestions?: string[] } = {}) {
    super(message);
    this.name = 'TorchscopeError';
    this.code = code;
    if (extra.torchscriptTrace) this.torchscriptTrace = extra.torchscriptTrace;
    if (extra.suggestions) this.suggestions = extra.suggestions;
  }
}

/** A call site captured before an async native call, so a later rejection can point at it. */
export interface CallSite {
  stack?: string;
}

export function callSite(caller: (...args: never[]) => unknown): CallSite {
  const site: CallSite = {};
  Error.captureStackTrace(site, caller);
  return site;
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && /^[A-Z_]+$/.test(value);
}

/** Converts anything native code threw into a TorchscopeError with the caller's stack. */
export function toTorchscopeError(error: unknown, site?: CallSite): TorchscopeError {
  let result: TorchscopeError;
  if (error instanceof TorchscopeError) {
    result = error;
  } else {
    const source = error as { code?: unknown; message?: unknown; torchscriptTrace?: unknown };
    const code = isErrorCode(source?.code) ? source.code : 'INTERNAL';
    const message = typeof source?.message === 'string' ? source.message : String(error);
    const trace = typeof source?.torchscriptTrace === 'string' ? source.torchscriptTrace : undefined;
    result = new TorchscopeError(code, message, { torchscriptTrace: trace });
  }
  if (site?.stack) {
    const frames = site.stack.split('\n').slice(1).join('\n');
    result.stack = `${result.name} [${result.code}]: ${result.message}\n${frames}`;
  }
  return result;
}

/** Awaits a native promise, converting its rejection. */
export async function settle<T>(promise: () => Promise<T>, site: CallSite): Promise<T> {
  try {
    return await promise();
  } catch (error) {
    throw toTorchscopeError(error, site);
  }
}

/** Runs a synchronous native call, converting what it throws. */
export function guard<T>(fn: () => T, site?: CallSite): T {
  try {
    return fn();
  } catch (error) {
    throw toTorchscopeError(error, site);
  }
}

export function failure(code: ErrorCode, message: string, site?: CallSite, suggestions?: string[]): TorchscopeError {
  return toTorchscopeError(new TorchscopeError(code, message, { suggestions }), site);
}

export function invalid(message: string, site?: CallSite): TorchscopeError {
  return failure('INVALID_ARGUMENT', message, site);
}
