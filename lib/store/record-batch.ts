// Arrow record batches over tensors' memory without copying: a row-major [rows, ...shape] array
// is datasets' nested-list storage with regular offsets, and a fixed-size list is a flat array.
import * as A from 'apache-arrow';

export type ColumnValues = Float32Array | Uint16Array | Int32Array;

function flat(type: A.DataType, values: ColumnValues): A.Data {
  return A.makeData({ type, length: values.length, data: values } as never);
}

/** `rows` rows of `values`, each of `shape`, as Arrow data of `type` (nested List or FixedSizeList). */
function columnData(type: A.DataType, values: ColumnValues, rows: number, shape: readonly number[]): A.Data {
  if (type instanceof A.FixedSizeList) return A.makeData({ type, length: rows, child: flat(type.children[0].type, values) });
  if (!(type instanceof A.List)) return flat(type, values);
  const [first, ...rest] = shape;
  const childType = type.children[0].type as A.DataType;
  const child = childType instanceof A.List ? columnData(childType, values, rows * first, rest) : flat(childType, values);
  const valueOffsets = new Int32Array(rows + 1);
  for (let i = 0; i <= rows; i++) valueOffsets[i] = i * first;
  return A.makeData({ type, length: rows, valueOffsets, child });
}

/** A record batch of `rows` rows; `shapes[i]` is column i's per-row shape. */
export function recordBatch(schema: A.Schema, columns: readonly ColumnValues[], shapes: readonly (readonly number[])[], rows: number): A.RecordBatch {
  const children = schema.fields.map((field, i) => columnData(field.type, columns[i], rows, shapes[i]));
  return new A.RecordBatch(schema, A.makeData({ type: new A.Struct(schema.fields), length: rows, children }));
}
