// Activation stores: collect a model's activations over a dataset to disk, read them back.
export { collect, COLLECT_DEFAULTS, CollectOptions, CollectProgress, CollectResult } from './collect';
export {
  openStore,
  Store,
  STORE_READ_DEFAULTS,
  StoreColumnInfo,
  StoreSequences,
  SequencesOptions,
  TokenBatchesOptions,
  MatrixOptions,
  StoreMatrix,
} from './store';
export { MatrixPosition } from './matrix';
export { CollectInput, CollectTokenizer, SpecialToken } from './sequences';
export { STORE_DTYPES, StoreDType } from './format';
export { StoreWorker } from './journal';
export type { StoreManifest, StoreColumn } from './manifest';
export { SHARD_INDEX_VARIABLES, SHARD_COUNT_VARIABLES } from './workers';
