// torch.sae.train: a sparse autoencoder trained natively as SAELens 6.18 trains one
// (native/sae/trainer.h), fed batches of activations from any iterable (an activation store's),
// driven as a native session a chunk of batches at a time, saved in SAELens's format and
// returned as a loaded Sae.
import * as path from 'path';

import { callSite, CallSite, failure } from '../core/errors';
import { streamedRun } from '../core/stream';
import { FLOAT_DTYPES, HostTensor } from '../io/host-tensor';
import { Tensor } from '../model/tensor';
import { binding } from '../native/addon';
import { NativeSession, NativeTensor } from '../native/binding';
import { driveSession } from '../native/session';
import { parseSaeLensConfig } from './config';
import { nativeSettings, SaeFiles } from './load';
import { SAE_TENSOR_NAMES, SaeTensorName } from './names';
import { NativeSae } from './native';
import { Sae } from './sae';
import { NativeSaeTrainSettings, planTraining, SaeInitialWeights, SaeTrainOptions, SaeTrainPlan, SaeTrainProgress, SaeTrainStats } from './train-options';
import { SavedSae, savedConfig, writeSaeFolder } from './train-save';

declare module '../native/binding' {
  interface NativeBinding {
    trainSae(request: NativeSaeTrainRequest): Promise<NativeSession<NativeSaeTrainProgress, NativeSaeTrainResult>>;
  }
}

/** What native/bindings/sae_train.cpp reads. */
interface NativeSaeTrainRequest extends NativeSaeTrainSettings {
  dIn: number;
  /** The steps the schedules are planned over. */
  trainingSteps: number;
  initialWeights?: Partial<Record<keyof SaeInitialWeights, NativeTensor>>;
}

/** The saved form (native/sae/trainer.h): the tensors as SAELens saves them, on the CPU. */
interface NativeSavedSae {
  tensors: Partial<Record<SaeTensorName, NativeTensor>>;
  sparsity: NativeTensor | null;
  device: string;
}

interface NativeSaeTrainProgress {
  estimated: number;
  trained: number;
  trainedTokens: number;
  stats?: SaeTrainStats;
  checkpoint?: NativeSavedSae;
}

interface NativeSaeTrainResult {
  saved: NativeSavedSae;
  params: Record<string, NativeTensor>;
  scalingFactor: number | null;
  trained: number;
  trainedTokens: number;
  topkThreshold?: number;
}

export interface SaeTrainResult {
  /** The trained SAE, as torch.sae.load(out) loads it (its weights on the training device). */
  sae: Sae;
  /** Steps trained (fewer than asked when aborted). */
  steps: number;
  trainedTokens: number;
  aborted: boolean;
  elapsedMs: number;
  /** The last reported step's statistics; null when none was. */
  stats: SaeTrainStats | null;
  /** normalizeActivations 'expected_average_only_in': the scale the batches were trained at (folded into the SAE); else null. */
  scalingFactor: number | null;
  /** batchtopk: the threshold it is saved with (a jumprelu's, on every latent); else null. */
  topkThreshold: number | null;
  /** The parameters as trained, before the saved form's folding: W_enc, W_dec, b_enc, b_dec (and jumprelu's log_threshold), on the CPU. */
  parameters: Record<string, Tensor>;
  /** The folder written (`out`), or null. */
  out: string | null;
}

/** A training run in progress: iterate for progress, await `result` for the outcome. */
export interface SaeTrainRun extends AsyncIterable<SaeTrainProgress> {
  readonly result: Promise<SaeTrainResult>;
}

/** Pulls the batches, checking each: a float Tensor [tokens, dIn], dIn set by the first. */
class BatchFeed {
  private readonly iterator: AsyncIterator<unknown> | Iterator<unknown>;
  private readonly held: Tensor[] = [];
  private pulled = 0;
  private ended = false;
  dIn = 0;

  constructor(
    source: AsyncIterable<Tensor> | Iterable<Tensor>,
    private readonly site: CallSite,
  ) {
    this.iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  }

  /** The first batch, kept for the first chunk; null when there is none. */
  async first(): Promise<Tensor | null> {
    const batch = await this.pull();
    if (batch) this.held.push(batch);
    return batch;
  }

  /** `count` batches; INVALID_ARGUMENT when the iterable ends first (`needed` says how many the run takes). */
  async take(count: number, needed: string): Promise<Tensor[]> {
    const out = this.held.splice(0, count);
    while (out.length < count) {
      const batch = await this.pull();
      if (!batch) throw failure('INVALID_ARGUMENT', `batches ended after ${this.pulled}; the run takes ${needed}`, this.site);
      out.push(batch);
    }
    return out;
  }

  async close(): Promise<void> {
    if (!this.ended) await this.iterator.return?.();
  }

  private async pull(): Promise<Tensor | null> {
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return null;
    }
    const batch = next.value;
    const name = `batches[${this.pulled}]`;
    this.pulled += 1;
    if (!(batch instanceof Tensor)) throw failure('INVALID_ARGUMENT', `${name} must be a Tensor [tokens, dIn]`, this.site);
    if (batch.disposed) throw failure('DISPOSED', `${name} has been disposed`, this.site);
    if (!(FLOAT_DTYPES as readonly string[]).includes(batch.dtype)) throw failure('DTYPE', `${name} must be floating point, got ${batch.dtype}`, this.site);
    const [tokens, dIn] = batch.shape;
    if (this.dIn === 0) this.dIn = dIn;
    if (batch.shape.length !== 2 || tokens < 1 || dIn !== this.dIn) {
      throw failure('SHAPE', `${name} is [${batch.shape}]; every batch is [tokens, ${this.dIn || 'dIn'}]`, this.site);
    }
    return batch;
  }
}

function checkWeightShapes(weights: SaeInitialWeights, dIn: number, dSae: number, site: CallSite): void {
  const shapes: Record<keyof SaeInitialWeights, number[]> = { W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn], threshold: [dSae] };
  for (const [key, shape] of Object.entries(shapes)) {
    const t = weights[key as keyof SaeInitialWeights];
    if (t && (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])))
      throw failure('SHAPE', `initialWeights.${key} is [${t.shape}]; with dIn ${dIn} and dSae ${dSae} it is [${shape}]`, site);
  }
}

/** A CPU float32 native tensor's data, copied (the handle may go). */
function hostCopy(t: NativeTensor): HostTensor {
  return { dtype: 'float32', shape: t.shape(), data: (t.data() as Float32Array).slice() };
}

function savedForm(saved: NativeSavedSae, cfg: Record<string, unknown>): SavedSae {
  const tensors: SavedSae['tensors'] = {};
  for (const name of SAE_TENSOR_NAMES) if (saved.tensors[name]) tensors[name] = hostCopy(saved.tensors[name]);
  return { cfg, tensors, sparsity: saved.sparsity ? hostCopy(saved.sparsity) : null };
}

function disposeSaved(saved: NativeSavedSae | undefined): void {
  if (!saved) return;
  for (const t of Object.values(saved.tensors)) t?.dispose();
  saved.sparsity?.dispose();
}

/** The Sae of a saved form, as torch.sae.load would make it of the folder. */
async function loadedSae(saved: SavedSae, native: NativeSavedSae, location: string, site: CallSite): Promise<Sae> {
  const cfg = parseSaeLensConfig(saved.cfg, path.join(location, 'cfg.json'), undefined, site);
  const hookName = typeof cfg.metadata.hook_name === 'string' && cfg.metadata.hook_name !== '' ? cfg.metadata.hook_name : null;
  const files: SaeFiles = {
    format: 'saelens',
    path: location,
    cfg,
    architecture: cfg.architecture,
    dIn: cfg.d_in,
    dSae: cfg.d_sae,
    dOut: cfg.d_in,
    dtype: cfg.dtype,
    hookName,
    hookNameOut: null,
    hookPoint: null,
    hookPointOut: null,
    spec: nativeSettings(cfg),
    tensors: saved.tensors,
    sparsity: saved.sparsity,
  };
  const placed: NativeTensor[] = [];
  let handle: NativeSae;
  try {
    const tensors = Object.fromEntries(SAE_TENSOR_NAMES.map((name) => [name, undefined])) as Record<SaeTensorName, NativeTensor | undefined>;
    for (const [name, t] of Object.entries(native.tensors)) {
      const on = native.device === 'cpu' ? t : await t.to(native.device);
      if (on !== t) placed.push(on);
      tensors[name as SaeTensorName] = on;
    }
    handle = await binding().SaeHandle.create({ ...files.spec, tensors });
  } finally {
    for (const t of placed) t.dispose();
  }
  return new Sae(files, handle);
}

async function* drive(options: SaeTrainOptions, what: string, site: CallSite): AsyncGenerator<SaeTrainProgress, SaeTrainResult> {
  const plan: SaeTrainPlan = planTraining(options, what, site);
  const native = plan.native;
  const start = performance.now();
  const feed = new BatchFeed(plan.batches, site);
  let result: NativeSaeTrainResult | undefined;
  let handedOver = false; // the result's parameters, once they are the caller's
  let session: AsyncGenerator<NativeSaeTrainProgress & { aborted: boolean }, { result: NativeSaeTrainResult | undefined; aborted: boolean }> | undefined;
  try {
    const first = await feed.first();
    if (!first) throw failure('INVALID_ARGUMENT', 'batches is empty', site);
    const dIn = feed.dIn;
    const tokens = first.shape[0];
    if (plan.initialWeights) checkWeightShapes(plan.initialWeights, dIn, native.dSae, site);
    // SAELens runs while fewer than training_tokens were trained; its schedules span training_tokens // batch.
    const steps = plan.steps ?? Math.ceil(plan.trainingTokens! / tokens);
    const trainingSteps = plan.steps ?? Math.floor(plan.trainingTokens! / tokens);
    if (trainingSteps < 1) throw failure('INVALID_ARGUMENT', `trainingTokens (${plan.trainingTokens}) is less than one batch (${tokens} tokens)`, site);
    const estimate = native.normEstimateBatches;
    const needed = `${estimate + steps} (${estimate ? `${estimate} for the norm estimate, then ` : ''}${steps} steps)`;
    const request: NativeSaeTrainRequest = { ...native, dIn, trainingSteps };
    if (plan.initialWeights) request.initialWeights = Object.fromEntries(Object.entries(plan.initialWeights).map(([key, t]) => [key, (t as Tensor).handle]));

    const every = native.checkpointEvery;
    let stats: SaeTrainStats | null = null;
    let trained = 0;
    session = driveSession(
      () => binding().trainSae(request),
      options.signal,
      {
        // The norm estimate's batches, then steps in chunks ending at each progress report and checkpoint.
        nextChunk: (previous) => {
          const estimated = previous?.estimated ?? 0;
          const done = previous?.trained ?? 0;
          if (estimated < estimate) return Math.min(estimate - estimated, plan.progressEvery);
          let chunk = Math.min(steps - done, plan.progressEvery - (done % plan.progressEvery));
          if (every) chunk = Math.min(chunk, every - (done % every));
          return chunk;
        },
        inputs: async (count) => (await feed.take(count, needed)).map((t) => t.handle),
        resultArgument: () => true,
      },
      what,
      site,
    );
    for (;;) {
      const next = await session.next();
      if (next.done) {
        result = next.value.result;
        const aborted = next.value.aborted;
        const cfg = savedConfig(native, dIn, result!.saved.device, plan.metadata);
        const saved = savedForm(result!.saved, cfg);
        if (plan.out && !aborted) await writeSaeFolder(plan.out, saved);
        const sae = await loadedSae(saved, result!.saved, plan.out ?? '(trained in memory)', site);
        handedOver = true;
        return {
          sae,
          steps: result!.trained,
          trainedTokens: result!.trainedTokens,
          aborted,
          elapsedMs: performance.now() - start,
          stats,
          scalingFactor: result!.scalingFactor,
          topkThreshold: result!.topkThreshold ?? null,
          parameters: Object.fromEntries(Object.entries(result!.params).map(([name, t]) => [name, new Tensor(t)])),
          out: plan.out && !aborted ? plan.out : null,
        };
      }
      const progress = next.value;
      try {
        if (progress.checkpoint && plan.checkpointDir) {
          const cfg = savedConfig(native, dIn, progress.checkpoint.device, plan.metadata);
          await writeSaeFolder(path.join(plan.checkpointDir, String(progress.trainedTokens)), savedForm(progress.checkpoint, cfg));
        }
      } finally {
        disposeSaved(progress.checkpoint);
      }
      if (progress.stats && progress.trained > trained) {
        stats = progress.stats;
        const report: SaeTrainProgress = {
          step: progress.trained,
          steps,
          trainedTokens: progress.trainedTokens,
          ...stats,
          elapsedMs: performance.now() - start,
        };
        options.onProgress?.(report);
        yield report;
      }
      trained = progress.trained;
    }
  } finally {
    // A stream stopped early (trainIter, break) ends the session now, not at garbage collection.
    await session?.return({ result: undefined, aborted: true });
    disposeSaved(result?.saved);
    if (!handedOver) for (const t of Object.values(result?.params ?? {})) t.dispose();
    await feed.close();
  }
}

/**
 * Trains a sparse autoencoder on `batches` of activations as SAELens 6.18 trains one (its
 * architectures' losses, initialisation, Adam with gradients clipped to norm 1, schedules, dead
 * latents and activation scaling), natively. Resolves with the trained Sae, written to `out`
 * in SAELens's format when given.
 */
export async function train(options: SaeTrainOptions): Promise<SaeTrainResult> {
  const site = callSite(train);
  const run = drive(options, 'sae.train', site);
  for (;;) {
    const next = await run.next();
    if (next.done) return next.value;
  }
}

/**
 * The same as train(), as a stream: `for await (const p of run)` gives progress every
 * `progressEvery` steps; `await run.result` gives the outcome.
 */
export function trainIter(options: SaeTrainOptions): SaeTrainRun {
  const site = callSite(trainIter);
  const stopped = () => {
    throw failure('ABORTED', 'iteration stopped before the training finished', site);
  };
  return streamedRun(drive(options, 'sae.trainIter', site), stopped, 'an SAE training run', site);
}
