// Which part of a dataset this process collects: given, or read from the array-job variables of the
// schedulers users already run (Kubernetes indexed Jobs, Slurm job arrays, AWS Batch array jobs).
// Worker i of n takes the sequences whose index is i modulo n.
import { CallSite, failure } from '../core/errors';
import { StoreWorker } from './journal';

/** Environment variables naming this worker's index, in the order they are tried. */
export const SHARD_INDEX_VARIABLES = ['TORCHSCOPE_SHARD_INDEX', 'JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID', 'AWS_BATCH_JOB_ARRAY_INDEX'] as const;
/** The worker count: Slurm gives it; Kubernetes and AWS Batch do not, so the job sets TORCHSCOPE_SHARD_COUNT. */
export const SHARD_COUNT_VARIABLES = ['TORCHSCOPE_SHARD_COUNT', 'SLURM_ARRAY_TASK_COUNT'] as const;

function envInteger(env: NodeJS.ProcessEnv, name: string, site: CallSite): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text)) throw failure('INVALID_ARGUMENT', `${name}=${JSON.stringify(text)} is not a non-negative integer`, site);
  return Number(text);
}

function slurmIndex(env: NodeJS.ProcessEnv, id: number, site: CallSite): number {
  // Arrays like --array=1-8:2 number tasks from their minimum by their step.
  const min = envInteger(env, 'SLURM_ARRAY_TASK_MIN', site) ?? 0;
  const step = envInteger(env, 'SLURM_ARRAY_TASK_STEP', site) ?? 1;
  if (id < min || (id - min) % step !== 0) throw failure('INVALID_ARGUMENT', `SLURM_ARRAY_TASK_ID=${id} is not in the array ${min}+${step}k`, site);
  return (id - min) / step;
}

/** This process's worker: `given`, else from the environment, else the only worker. */
export function resolveWorker(given: StoreWorker | undefined, env: NodeJS.ProcessEnv, site: CallSite): StoreWorker & { source: string } {
  let worker: StoreWorker | undefined = given;
  let source = 'the shard option';
  if (worker === undefined) {
    const indexName = SHARD_INDEX_VARIABLES.find((name) => envInteger(env, name, site) !== undefined);
    if (indexName === undefined) return { index: 0, count: 1, source: 'default (one worker)' };
    const countName = SHARD_COUNT_VARIABLES.find((name) => envInteger(env, name, site) !== undefined);
    if (countName === undefined) {
      throw failure(
        'INVALID_ARGUMENT',
        `${indexName} is set, so this is one worker of several: set TORCHSCOPE_SHARD_COUNT to how many (the job's completions or array size)`,
        site,
      );
    }
    const raw = envInteger(env, indexName, site) as number;
    worker = { index: indexName === 'SLURM_ARRAY_TASK_ID' ? slurmIndex(env, raw, site) : raw, count: envInteger(env, countName, site) as number };
    source = `${indexName} and ${countName}`;
  }
  const { index, count } = worker;
  if (!Number.isInteger(count) || count < 1)
    throw failure('INVALID_ARGUMENT', `the shard count must be a positive integer, got ${count} (from ${source})`, site);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw failure('INVALID_ARGUMENT', `the shard index must be an integer in [0, ${count}), got ${index} (from ${source})`, site);
  }
  return { index, count, source };
}
