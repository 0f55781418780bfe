// The data side of torch.probe.fit, on the host: labels read and checked, the classes they
// name, the seeded held-out split and the control task's labels (Hewitt & Liang 2019).
import { CallSite, failure } from '../core/errors';
import { describeValue } from '../core/validate';
import { random } from '../methods/generate';
import { Tensor, tensor } from '../model/tensor';

/** Class ids (integers from 0) or, for a linear probe, real targets: one per row of x. */
export type ProbeLabels = number[] | Int32Array | Float32Array | Float64Array | Tensor;
/** What each example is an instance of for the control task (e.g. its token id): one per row. */
export type ProbeTypes = number[] | Int32Array;

const INTEGER_DTYPES = ['int8', 'uint8', 'int16', 'int32', 'int64', 'bool'];

/**
 * The values of `labels`, checked: `count` of them, class ids (integers >= 0) when `classes`,
 * finite numbers otherwise. A tensor is 1-D (copied from its device when not on the CPU).
 */
export async function hostLabels(labels: unknown, name: string, count: number, classes: boolean, site: CallSite): Promise<Float64Array> {
  let values: ArrayLike<number | bigint>;
  if (labels instanceof Tensor) {
    if (labels.disposed) throw failure('DISPOSED', `${name} has been disposed`, site);
    if (labels.shape.length !== 1) throw failure('SHAPE', `${name} must be 1-D (one per row of x), got shape [${labels.shape}]`, site);
    if (classes && !INTEGER_DTYPES.includes(labels.dtype))
      throw failure('DTYPE', `${name} must hold integer class ids, got ${labels.dtype} (a linear probe takes real targets)`, site);
    if (labels.dtype === 'float16' || labels.dtype === 'bfloat16') throw failure('DTYPE', `${name}: ${labels.dtype} targets are not read; use float32`, site);
    const cpu = labels.device === 'cpu' ? labels : await labels.to('cpu');
    values = cpu.data() as ArrayLike<number | bigint>;
    if (cpu !== labels) cpu.dispose();
  } else if (Array.isArray(labels) || labels instanceof Int32Array || labels instanceof Float32Array || labels instanceof Float64Array) {
    values = labels as ArrayLike<number>;
  } else {
    throw failure('INVALID_ARGUMENT', `${name} must be a number[], Int32Array, Float32Array, Float64Array or a Tensor, got ${describeValue(labels)}`, site);
  }
  if (values.length !== count) throw failure('INVALID_ARGUMENT', `x has ${count} rows but ${name} has ${values.length} values`, site);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const value = values[i];
    const number = typeof value === 'bigint' ? Number(value) : value;
    const valid = typeof number === 'number' && (classes ? Number.isSafeInteger(number) && number >= 0 : Number.isFinite(number));
    if (!valid)
      throw failure(
        'INVALID_ARGUMENT',
        `${name}[${i}] must be ${classes ? 'a class id (an integer >= 0)' : 'a finite number'}, got ${describeValue(value)}`,
        site,
      );
    out[i] = number;
  }
  return out;
}

/** Host labels as the native probe reads them: int32 class ids, or float64 targets. */
export function labelTensor(values: Float64Array, classes: boolean): Tensor {
  return classes ? tensor(Int32Array.from(values), [values.length], 'int32') : tensor(values, [values.length], 'float64');
}

/** Examples per class of `labels` over `rows` (all rows without). */
export function classCounts(labels: Float64Array, rows?: Int32Array): number[] {
  const counts: number[] = [];
  const count = rows ? rows.length : labels.length;
  for (let i = 0; i < count; i++) {
    const label = labels[rows ? rows[i] : i];
    while (counts.length <= label) counts.push(0);
    counts[label]++;
  }
  return counts;
}

/**
 * The number of classes C: one more than the largest label of any row. Each class needs an
 * example among the rows fitted on (all rows without `rows`), and C >= 2. `what` names the labels.
 */
export function checkedClasses(labels: Float64Array, rows: Int32Array | undefined, what: string, site: CallSite): number {
  const classes = classCounts(labels).length;
  const counts = classCounts(labels, rows);
  while (counts.length < classes) counts.push(0);
  const where = rows ? ' among the training rows' : '';
  if (counts.filter((c) => c > 0).length < 2) throw failure('INVALID_ARGUMENT', `${what} hold one class only${where}: a probe needs two`, site);
  const missing = counts.indexOf(0);
  if (missing >= 0) {
    throw failure(
      'INVALID_ARGUMENT',
      `${what}: class ${missing} has no example${where}, but class ids run 0..${classes - 1}: number the classes from 0 without gaps`,
      site,
    );
  }
  return classes;
}

export interface Split {
  /** Rows of x fitted on, ascending. */
  train: Int32Array;
  /** Rows of x held out, ascending. */
  validation: Int32Array;
}

/**
 * The held-out split: a Fisher-Yates shuffle of the rows driven by mulberry32(seed), its first
 * ceil(fraction * n) rows held out; both sets in row order.
 */
export function split(n: number, fraction: number, seed: number, site: CallSite): Split {
  // 12 significant digits first: 0.3 * 10 is 3.0000000000000004, which is 3 rows, not 4.
  const held = Math.ceil(Number((fraction * n).toPrecision(12)));
  if (held < 1 || held > n - 1)
    throw failure('INVALID_ARGUMENT', `validation.fraction ${fraction} of ${n} rows holds out ${held}: it must leave at least one row on each side`, site);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const next = random(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const sorted = (rows: Int32Array) => rows.sort();
  return { validation: sorted(order.slice(0, held)), train: sorted(order.slice(held)) };
}

/**
 * The control task's labels: each type gets one label, drawn from the empirical distribution of
 * `labels` (all rows of x) by mulberry32(seed), types taken in order of first appearance over
 * `types` and then `heldOutTypes`; every example takes its type's label. A null type list makes
 * each example its own type.
 */
export function controlLabels(
  labels: Float64Array,
  types: ArrayLike<number> | null,
  heldOutTypes: ArrayLike<number> | null,
  heldOutCount: number,
  seed: number,
): { labels: Int32Array; heldOut: Int32Array } {
  const cumulative: number[] = [];
  classCounts(labels).forEach((count, c) => cumulative.push((cumulative[c - 1] ?? 0) + count));
  const next = random(seed);
  const draw = () => {
    const point = next() * labels.length;
    return cumulative.findIndex((upTo) => point < upTo);
  };
  const byType = new Map<number, number>();
  const assign = (count: number, typeList: ArrayLike<number> | null) =>
    Int32Array.from({ length: count }, (_, i) => {
      if (typeList === null) return draw();
      const type = typeList[i];
      if (!byType.has(type)) byType.set(type, draw());
      return byType.get(type)!;
    });
  const own = assign(labels.length, types);
  return { labels: own, heldOut: assign(heldOutCount, heldOutTypes) };
}

/** Type ids, one per row: integers. */
export function checkedTypes(types: unknown, name: string, count: number, site: CallSite): ArrayLike<number> {
  if (!(Array.isArray(types) || types instanceof Int32Array))
    throw failure('INVALID_ARGUMENT', `${name} must be a number[] or an Int32Array (a type id per row), got ${describeValue(types)}`, site);
  if (types.length !== count) throw failure('INVALID_ARGUMENT', `${name} has ${types.length} values for ${count} rows`, site);
  for (let i = 0; i < count; i++) {
    if (!Number.isSafeInteger(types[i])) throw failure('INVALID_ARGUMENT', `${name}[${i}] must be an integer type id, got ${describeValue(types[i])}`, site);
  }
  return types;
}
