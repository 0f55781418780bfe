// The store's manifest (torchscope-store.json): which layer each column came from, the per-row
// shapes, dtype and worker count. Every worker checks it before adding to a store, so two
// collects that disagree on any of these never mix in one dataset.
import { promises as fs } from 'fs';
import * as path from 'path';
import { MAX_SAE_CONFIG_BYTES } from '../core/limits';
import { STORE_DTYPES, STORE_FORMAT_VERSION, STORE_MANIFEST, StoreDType, writeFileAtomic } from './format';

export const STORE_FORMAT_NAME = 'torchscope-activation-store';

export interface StoreColumn {
  /** The column's name in its dataset (e.g. a SAELens hook name). */
  column: string;
  /** The model's layer (hook point) it was captured at. */
  layer: string;
  /** Its folder, relative to the store. */
  folder: string;
  /** One row's shape: [contextSize, d] for sequences. */
  shape: number[];
}

export interface StoreManifest {
  format: typeof STORE_FORMAT_NAME;
  version: number;
  columns: StoreColumn[];
  dtype: StoreDType;
  /** Whether every folder has a token_ids column. */
  tokens: boolean;
  /** Workers that fill the store (each writes the sequences with index = worker mod count). */
  workers: number;
}

function isManifest(value: unknown): value is StoreManifest {
  const m = value as StoreManifest;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.format === STORE_FORMAT_NAME &&
    m.version === STORE_FORMAT_VERSION &&
    (STORE_DTYPES as readonly string[]).includes(m.dtype) &&
    typeof m.tokens === 'boolean' &&
    Number.isInteger(m.workers) &&
    m.workers > 0 &&
    Array.isArray(m.columns) &&
    m.columns.length > 0 &&
    m.columns.every(
      (c) =>
        typeof c?.column === 'string' &&
        typeof c.layer === 'string' &&
        typeof c.folder === 'string' &&
        // A folder is one segment inside the store: never a path out of it.
        c.folder === encodeURIComponent(c.column) &&
        Array.isArray(c.shape) &&
        c.shape.every((d) => Number.isInteger(d) && d > 0),
    )
  );
}

/** The manifest of the store at `dir`, or undefined when there is none. Untrusted: checked field by field. */
export async function readManifest(dir: string): Promise<StoreManifest | undefined> {
  const file = path.join(dir, STORE_MANIFEST);
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat === undefined) return undefined;
  if (stat.size > MAX_SAE_CONFIG_BYTES) throw new Error(`${file} is ${stat.size} bytes, more than a store manifest can be`);
  const parsed: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
  if (!isManifest(parsed)) throw new Error(`${file} is not a torchscope store manifest (format ${STORE_FORMAT_NAME} version ${STORE_FORMAT_VERSION})`);
  return parsed;
}

export async function writeManifest(dir: string, manifest: StoreManifest): Promise<void> {
  await writeFileAtomic(path.join(dir, STORE_MANIFEST), JSON.stringify(manifest, null, 2));
}

/** What differs between a store's manifest and the one a collect would write ('' when they agree). */
export function manifestDifference(have: StoreManifest, want: StoreManifest): string {
  const describe = (m: StoreManifest) =>
    JSON.stringify({ columns: m.columns.map((c) => [c.column, c.layer, c.shape]), dtype: m.dtype, tokens: m.tokens, workers: m.workers });
  return describe(have) === describe(want) ? '' : `the store has ${describe(have)}; this collect would write ${describe(want)}`;
}
