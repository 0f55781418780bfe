// One column of a store as an [examples, features] matrix, the input of a probe: one position of
// each sequence, the mean over positions, every token, or each row flattened.
import { CallSite, failure } from '../core/errors';
import { integer } from '../core/validate';
import { castHost } from '../io/host-tensor';
import { ReadValues } from './read';

/**
 * Which vectors of each row: a position (negative counts from the end: -1 is the last token),
 * 'mean' (over every dimension after the first: a sequence's tokens, a conv map's pixels),
 * 'all' (every position is an example: [rows x positions, d]), or 'flatten' (the row as one vector).
 */
export type MatrixPosition = number | 'mean' | 'all' | 'flatten';

export interface MatrixLayout {
  /** Vectors per row. */
  perRow: number;
  /** Values per vector. */
  width: number;
}

/** How `position` reads a row of `shape`. Rows of rank 1 are vectors already. */
export function matrixLayout(shape: readonly number[], position: MatrixPosition | undefined, site: CallSite): MatrixLayout {
  const size = shape.reduce((a, b) => a * b, 1);
  if (shape.length === 1 && (position === undefined || position === 'flatten')) return { perRow: 1, width: size };
  if (position === undefined)
    throw failure('INVALID_ARGUMENT', `rows are [${shape}]: say which vectors make the matrix with position (an index, 'mean', 'all' or 'flatten')`, site);
  if (position === 'flatten') return { perRow: 1, width: size };
  if (shape.length === 1) throw failure('INVALID_ARGUMENT', `rows are vectors [${shape}]: position must be 'flatten' or left out`, site);
  if (position === 'mean') return { perRow: 1, width: shape[shape.length === 2 ? 1 : 0] };
  if (position === 'all') {
    if (shape.length !== 2) throw failure('INVALID_ARGUMENT', `position 'all' reads [positions, d] rows; these are [${shape}]`, site);
    return { perRow: shape[0], width: shape[1] };
  }
  if (shape.length !== 2) throw failure('INVALID_ARGUMENT', `a position index reads [positions, d] rows; these are [${shape}]`, site);
  integer(position, 'position', { min: -shape[0], max: shape[0] - 1 }, site);
  return { perRow: 1, width: shape[1] };
}

/** The vectors of `rows` rows of `shape` as float32, by `position`. */
export function matrixRows(
  values: ReadValues,
  dtype: 'float32' | 'float16' | 'float64',
  rows: number,
  shape: readonly number[],
  position: MatrixPosition | undefined,
): Float32Array {
  const data = dtype === 'float32' ? (values as Float32Array) : (castHost({ data: values, dtype, shape: [values.length] }, 'float32').data as Float32Array);
  const size = shape.reduce((a, b) => a * b, 1);
  if (position === undefined || position === 'flatten' || position === 'all') return data.slice(0, rows * size);
  if (position === 'mean') {
    // [positions, d] rows average their positions; [C, ...] rows average each channel's map.
    const [groups, width, stride] = shape.length === 2 ? [shape[0], shape[1], 1] : [size / shape[0], shape[0], size / shape[0]];
    const out = new Float32Array(rows * width);
    for (let r = 0; r < rows; r++) {
      const row = data.subarray(r * size, (r + 1) * size);
      for (let c = 0; c < width; c++) {
        let sum = 0;
        for (let g = 0; g < groups; g++) sum += shape.length === 2 ? row[g * width + c] : row[c * stride + g];
        out[r * width + c] = sum / groups;
      }
    }
    return out;
  }
  const [positions, width] = shape;
  const at = position < 0 ? positions + position : position;
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * size + at * width, r * size + (at + 1) * width), r * width);
  return out;
}
