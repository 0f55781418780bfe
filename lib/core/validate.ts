// What callers pass, checked in one place. Every check throws INVALID_ARGUMENT saying
// "<name> must be <what>, got <value>", and every options object rejects a key it does not know,
// naming the closest one it does: a misspelt option would otherwise be dropped, and the call
// would run as if it had never been asked.
import { distance } from 'fastest-levenshtein';

import { CallSite, failure } from './errors';

/** A wrong value, for a message: a primitive as written, anything else by its kind ('an array of 3'). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null || typeof value !== 'object') return String(value);
  const kind = (value as object).constructor?.name;
  return kind && kind !== 'Object' ? article(kind) : 'an object';
}

function article(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;
}

/** The names a few edits from `name`, closest first: suggestions for a misspelt layer or option. */
export function closestNames(name: string, names: readonly string[], count = 3): string[] {
  return (
    names
      .map((candidate) => ({ candidate, d: distance(name, candidate) }))
      // Up to 3 edits, or a third of a long name; never every character (that is another word).
      .filter(({ candidate, d }) => d <= Math.max(3, Math.ceil(Math.max(name.length, candidate.length) / 3)) && d < Math.max(name.length, candidate.length))
      .sort((a, b) => a.d - b.d || a.candidate.localeCompare(b.candidate))
      .slice(0, count)
      .map(({ candidate }) => candidate)
  );
}

/**
 * The keys of an options type, listed once next to it. The literal is typed
 * `Record<keyof T, true>`, so the compiler rejects a list that misses a key of T or adds one.
 */
export function optionKeys<T>(keys: Record<keyof T, true>): readonly string[] {
  return Object.keys(keys);
}

/**
 * Rejects the first key of `options` outside `keys`: "what: unknown option 'captrue' (did you mean
 * 'capture'?); expected one of: ...". A key whose value is undefined counts as not given, as an
 * optional option does everywhere.
 */
export function checkKeys(options: object, keys: readonly string[], what: string, site?: CallSite): void {
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || keys.includes(key)) continue;
    const near = closestNames(key, keys, 1);
    throw failure(
      'INVALID_ARGUMENT',
      `${what}: unknown option '${key}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; expected one of: ${keys.join(', ')}`,
      site,
      near.length ? near : undefined,
    );
  }
}

/** Optional options with these keys: undefined is {}. */
export function checkOptions<T extends object>(options: T | undefined, keys: readonly string[], what: string, site?: CallSite): T {
  return options === undefined ? ({} as T) : requiredOptions(options, keys, what, '', site);
}

/** Options a call cannot do without; `example` shows some in the message when they are missing. */
export function requiredOptions<T extends object>(options: T, keys: readonly string[], what: string, example: string, site?: CallSite): T {
  if (!isRecord(options))
    throw failure('INVALID_ARGUMENT', `${what}: options must be an object${example ? ` such as ${example}` : ''}, got ${describeValue(options)}`, site);
  checkKeys(options, keys, what, site);
  return options;
}

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function reject(name: string, expected: string, value: unknown, site?: CallSite): never {
  throw failure('INVALID_ARGUMENT', `${name} must be ${expected}, got ${describeValue(value)}`, site);
}

/** Bounds of a number: `min` / `max` inclusive, `above` / `below` exclusive. */
export interface Range {
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}

function describeRange({ min, max, above, below }: Range): string {
  const low = min !== undefined ? `[${min}` : above !== undefined ? `(${above}` : undefined;
  const high = max !== undefined ? `${max}]` : below !== undefined ? `${below})` : undefined;
  if (low !== undefined && high !== undefined) return ` in ${low}, ${high}`;
  if (low !== undefined) return min !== undefined ? ` >= ${min}` : ` > ${above}`;
  if (high !== undefined) return max !== undefined ? ` <= ${max}` : ` < ${below}`;
  return '';
}

function inRange(value: number, { min, max, above, below }: Range): boolean {
  return !(value < (min ?? -Infinity) || value > (max ?? Infinity) || (above !== undefined && value <= above) || (below !== undefined && value >= below));
}

/** An integer in `range`: "steps must be an integer >= 1, got 0". */
export function integer(value: unknown, name: string, range: Range = {}, site?: CallSite): number {
  if (!Number.isSafeInteger(value) || !inRange(value as number, range)) reject(name, `an integer${describeRange(range)}`, value, site);
  return value as number;
}

/** A count or a length, at least 1: "maxLength must be a positive integer, got 0". */
export function positiveInteger(value: unknown, name: string, site?: CallSite): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) reject(name, 'a positive integer', value, site);
  return value as number;
}

/** A non-empty array of integers in `range`: "channels must be integers, got 1.5". */
export function integers(value: unknown, name: string, range: Range = {}, site?: CallSite): number[] {
  if (!Array.isArray(value) || value.length === 0) reject(name, `a non-empty array of integers${describeRange(range)}`, value, site);
  for (const item of value as unknown[]) {
    if (!Number.isSafeInteger(item) || !inRange(item as number, range)) reject(name, `integers${describeRange(range)}`, item, site);
  }
  return value as number[];
}

/** A finite number in `range`: "lr must be a finite number > 0, got NaN". */
export function finiteNumber(value: unknown, name: string, range: Range = {}, site?: CallSite): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !inRange(value, range)) reject(name, `a finite number${describeRange(range)}`, value, site);
  return value;
}

export function boolean(value: unknown, name: string, site?: CallSite): boolean {
  if (typeof value !== 'boolean') reject(name, 'a boolean', value, site);
  return value as boolean;
}

/** A non-empty string. */
export function string(value: unknown, name: string, site?: CallSite): string {
  if (typeof value !== 'string' || value === '') reject(name, 'a non-empty string', value, site);
  return value as string;
}

/** An array, non-empty when `nonEmpty` (its items are checked where they are read). */
export function array(value: unknown, name: string, site?: CallSite, nonEmpty = false): unknown[] {
  if (!Array.isArray(value) || (nonEmpty && value.length === 0)) reject(name, nonEmpty ? 'a non-empty array' : 'an array', value, site);
  return value as unknown[];
}

/** One of `allowed`: "precision must be 'fp32', 'bf16', 'fp16', got \"int8\"". */
export function oneOf<T>(value: unknown, name: string, allowed: readonly T[], site?: CallSite): T {
  if (!allowed.includes(value as T)) reject(name, allowed.map((a) => (typeof a === 'string' ? `'${a}'` : String(a))).join(', '), value, site);
  return value as T;
}

/** An instance of `kind`, named in the message: "set must be a Tensor, got a Float32Array". */
export function instance<T>(value: unknown, name: string, kind: abstract new (...args: never[]) => T, site?: CallSite): T {
  if (!(value instanceof kind)) reject(name, article(kind.name), value, site);
  return value as T;
}

/** A callback option (onProgress). */
export function callback(value: unknown, name: string, site?: CallSite): (...args: never[]) => unknown {
  if (typeof value !== 'function') reject(name, 'a function', value, site);
  return value as (...args: never[]) => unknown;
}

/** A call's AbortSignal, when it has one. */
export function abortSignal(value: unknown, site?: CallSite): AbortSignal | undefined {
  return value === undefined ? undefined : instance(value, 'signal', AbortSignal, site);
}
