// Activation maximization (feature visualization): the input that makes a channel, neuron,
// direction or logit fire most, optimised natively with libtorch's autograd (native/methods/maximize.h).
import { callSite, CallSite, failure, settle } from './errors';
import { Model, NumericsOptions, numericsRequest } from './model';
import { NativeMaximizeRequest, NativeMaximizeSession } from './native';
import { nativeObjectives, Objective } from './objective';
import { Tensor } from './tensor';
import { streamedRun } from './stream';

export type TransformSpec = { pad: number } | { jitter: number } | { scale: number[] } | { rotate: number[] };

/** `precision`: the forward and backward of every step at this precision (the image stays float32). */
export interface MaximizeOptions extends Pick<NumericsOptions, 'precision'> {
  /** Shorthand for `objective: { channel }`. */
  channel?: number;
  /** What to maximize; an array gives one objective per batch element (several channels at once). */
  objective?: Objective | Objective[];
  /** Optimisation steps. Default 256. */
  steps?: number;
  /** Adam's learning rate. Default 0.05. */
  lr?: number;
  /** Adam's betas. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Image size: a number for a square or [height, width]. Default 224. */
  size?: number | [number, number];
  /** [batch, channels, height, width]; the batch must match the number of objectives. Channels default to 3. */
  inputShape?: [number, number, number, number];
  /** Start image [B, C, H, W] in [0, 1] (fixes the start for reproducibility and parity). */
  init?: Tensor;
  /** Seeds the start image and the random transforms. Default 0. */
  seed?: number;
  /** 'fft' (default): a decorrelated 1/f spectrum, as Lucid; 'pixel': the pixels themselves. */
  parameterization?: 'pixel' | 'fft';
  /** How values stay in [0, 1]: 'sigmoid' (fft default), 'clamp' (pixel default: clamped after each step), 'none'. */
  range?: 'sigmoid' | 'clamp' | 'none';
  /** Colour decorrelation (3 channels only). Default: true for fft with 3 channels, else false. */
  decorrelate?: boolean;
  /** Random transforms each step: 'standard' (default: Lucid's pad, jitter, scale, rotate, jitter) or a list; [] for none. */
  transforms?: 'standard' | TransformSpec[];
  /** Penalty weights on the image; {} (default) for none. */
  regularizers?: { l1?: number; l2?: number; tv?: number; blur?: number };
  /** ImageNet normalization between the image and the model, inside the loop (3 channels only). Default 'imagenet' for 3 channels, else false. */
  normalize?: 'imagenet' | false;
  /** Stops within one step; the promise then resolves with the best image so far and `aborted: true`. */
  signal?: AbortSignal;
  /** Called every `progressEvery` steps (default 10) and after the last. */
  onProgress?: (progress: MaximizeProgress) => void;
  progressEvery?: number;
}

export interface MaximizeProgress {
  step: number;
  steps: number;
  objective: number;
  elapsedMs: number;
}

export interface MaximizeResult {
  /** [B, C, H, W] in [0, 1]: the final image, or the best one so far when aborted. */
  image: Tensor;
  /** What the model saw for `image` (normalized, without the random transforms). */
  input: Tensor;
  /** The objective at each step, computed before that step's update. */
  objective: number[];
  steps: number;
  elapsedMs: number;
  aborted: boolean;
}

const transformKinds = ['pad', 'jitter', 'scale', 'rotate'] as const;

function isNonNegativeInteger(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0;
}

function toNativeTransform(transform: TransformSpec, site: CallSite): NonNullable<NativeMaximizeRequest['transforms']>[number] {
  const keys = Object.keys(transform ?? {});
  const kind = keys[0] as (typeof transformKinds)[number];
  if (keys.length !== 1 || !transformKinds.includes(kind)) {
    throw failure('INVALID_ARGUMENT', `a transform is one of { pad }, { jitter }, { scale: [...] }, { rotate: [...] }; got ${JSON.stringify(transform)}`, site);
  }
  const value = (transform as Record<string, unknown>)[kind];
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0 || !values.every((v) => Number.isFinite(v))) throw failure('INVALID_ARGUMENT', `transform ${kind} needs finite numbers`, site);
  if ((kind === 'pad' || kind === 'jitter') && !isNonNegativeInteger(values[0])) throw failure('INVALID_ARGUMENT', `${kind} is a pixel count`, site);
  if (kind === 'scale' && !values.every((v) => (v as number) > 0)) throw failure('INVALID_ARGUMENT', 'scales must be positive', site);
  return { kind, values: values as number[] };
}

interface Plan {
  native: NativeMaximizeRequest;
  steps: number;
  progressEvery: number;
}

function plan(model: Model, layer: string | null, options: MaximizeOptions, site: CallSite): Plan {
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'maximize(model, layer, options): model must come from torch.load()', site);
  if (options === null || typeof options !== 'object') throw failure('INVALID_ARGUMENT', 'maximize needs options, e.g. { channel: 10 }', site);
  let objectives: Objective[];
  if (options.objective !== undefined) {
    if (options.channel !== undefined) throw failure('INVALID_ARGUMENT', 'give channel or objective, not both', site);
    objectives = Array.isArray(options.objective) ? options.objective : [options.objective];
  } else if (options.channel !== undefined) {
    objectives = [{ channel: options.channel }];
  } else {
    throw failure('INVALID_ARGUMENT', 'maximize needs a target: { channel } or { objective }', site);
  }
  const steps = options.steps ?? 256;
  if (!Number.isInteger(steps) || steps <= 0) throw failure('INVALID_ARGUMENT', `steps must be a positive integer, got ${steps}`, site);
  const lr = options.lr ?? 0.05;
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw failure('INVALID_ARGUMENT', `lr must be a positive finite number, got ${lr}`, site);
  const [beta1, beta2] = options.betas ?? [0.9, 0.999];
  if (![beta1, beta2].every((b) => typeof b === 'number' && b >= 0 && b < 1)) throw failure('INVALID_ARGUMENT', 'betas must be in [0, 1)', site);
  let batch = objectives.length;
  let channels = 3;
  let [height, width] = typeof options.size === 'number' ? [options.size, options.size] : options.size ?? [224, 224];
  if (options.inputShape) {
    const [b, c, h, w] = options.inputShape;
    if (!Number.isInteger(c) || c < 1) throw failure('INVALID_ARGUMENT', 'inputShape is [batch, channels, height, width]', site);
    channels = c;
    if (b !== batch && objectives.length === 1) {
      objectives = Array.from({ length: b }, () => objectives[0]);
      batch = b;
    }
    if (b !== batch) throw failure('INVALID_ARGUMENT', `inputShape batch ${b} does not match ${objectives.length} objectives`, site);
    [height, width] = [h, w];
  }
  if (options.init !== undefined) {
    if (!(options.init instanceof Tensor)) throw failure('INVALID_ARGUMENT', 'init must be a Tensor [B, C, H, W]', site);
    const [b, c, h, w] = options.init.shape;
    if (options.init.shape.length !== 4 || (options.inputShape && c !== channels)) throw failure('SHAPE', `init must be [B, ${options.inputShape ? channels : 'C'}, H, W], got [${options.init.shape}]`, site);
    channels = c;
    if (b !== batch && objectives.length === 1) {
      objectives = Array.from({ length: b }, () => objectives[0]);
      batch = b;
    }
    if (b !== batch) throw failure('SHAPE', `init batch ${b} does not match ${objectives.length} objectives`, site);
    if (options.size !== undefined && (h !== height || w !== width)) throw failure('SHAPE', `init is ${h}x${w} but size is ${height}x${width}`, site);
    [height, width] = [h, w];
  }
  if (![height, width].every((n) => Number.isInteger(n) && n > 0)) throw failure('INVALID_ARGUMENT', `size must be positive integers, got ${height}x${width}`, site);
  const parameterization = options.parameterization ?? 'fft';
  if (parameterization !== 'fft' && parameterization !== 'pixel') throw failure('INVALID_ARGUMENT', `parameterization is 'fft' or 'pixel', got ${String(parameterization)}`, site);
  const range = options.range ?? (parameterization === 'fft' ? 'sigmoid' : 'clamp');
  if (!['sigmoid', 'clamp', 'none'].includes(range)) throw failure('INVALID_ARGUMENT', `range is 'sigmoid', 'clamp' or 'none', got ${String(range)}`, site);
  const transforms = options.transforms ?? 'standard';
  if (transforms !== 'standard' && !Array.isArray(transforms)) throw failure('INVALID_ARGUMENT', "transforms is 'standard' or an array ([] for none)", site);
  const regularizers = options.regularizers ?? {};
  for (const [key, value] of Object.entries(regularizers)) {
    if (!['l1', 'l2', 'tv', 'blur'].includes(key)) throw failure('INVALID_ARGUMENT', `unknown regularizer '${key}' (l1, l2, tv, blur)`, site);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw failure('INVALID_ARGUMENT', `regularizer ${key} must be a finite number`, site);
  }
  // ImageNet's normalization and colour decorrelation are for RGB images.
  const normalize = options.normalize ?? (channels === 3 ? 'imagenet' : false);
  if (normalize !== 'imagenet' && normalize !== false) throw failure('INVALID_ARGUMENT', "normalize is 'imagenet' or false", site);
  if (normalize === 'imagenet' && channels !== 3) throw failure('INVALID_ARGUMENT', `normalize 'imagenet' needs 3 channels; the image has ${channels}`, site);
  const decorrelate = options.decorrelate ?? (parameterization === 'fft' && channels === 3);
  if (decorrelate && channels !== 3) throw failure('INVALID_ARGUMENT', `decorrelate needs 3 channels; the image has ${channels}`, site);
  const seed = options.seed ?? 0;
  if (!isNonNegativeInteger(seed)) throw failure('INVALID_ARGUMENT', 'seed must be a non-negative integer', site);
  const objectiveSpec = nativeObjectives(model, objectives, layer ?? '', site);
  const progressEvery = options.progressEvery ?? 10;
  if (!Number.isInteger(progressEvery) || progressEvery <= 0) throw failure('INVALID_ARGUMENT', 'progressEvery must be a positive integer', site);
  return {
    steps,
    progressEvery,
    native: {
      layer: objectiveSpec.layer,
      objectives: objectiveSpec.objectives,
      image: {
        parameterization,
        range,
        decorrelate,
        channels,
        height,
        width,
        decayPower: 1,
        init: options.init?.handle,
      },
      transforms: transforms === 'standard' ? undefined : transforms.map((t) => toNativeTransform(t, site)),
      regularizers,
      normalize: normalize === 'imagenet',
      lr,
      beta1,
      beta2,
      seed,
      precision: numericsRequest(model, { precision: options.precision }, site).precision,
    },
  };
}

/** A maximization in progress: iterate for progress, await `result` for the outcome. */
export interface MaximizeRun extends AsyncIterable<MaximizeProgress> {
  readonly result: Promise<MaximizeResult>;
}

async function* drive(model: Model, layer: string | null, options: MaximizeOptions, site: CallSite): AsyncGenerator<MaximizeProgress, MaximizeResult> {
  const { native, steps, progressEvery } = plan(model, layer, options, site);
  const signal = options.signal;
  if (signal?.aborted) throw failure('ABORTED', 'aborted before the first step', site);
  const handle = model.native(site);
  const session: NativeMaximizeSession = await settle(() => handle.maximize(native), site);
  // Aborts a chunk in flight; dispose() in `finally` frees the image and Adam's state at once.
  const onAbort = () => session.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) session.abort(); // aborted while the session was being set up
  const start = performance.now();
  const objective: number[] = [];
  let aborted = false;
  try {
    while (objective.length < steps && !aborted) {
      const chunk = await settle(() => session.steps(Math.min(progressEvery, steps - objective.length)), site);
      objective.push(...chunk.objectives);
      aborted = chunk.aborted;
      if (chunk.objectives.length > 0) {
        yield { step: objective.length, steps, objective: objective[objective.length - 1], elapsedMs: performance.now() - start };
      }
    }
    const final = await settle(() => session.result(aborted), site);
    return { image: new Tensor(final.image), input: new Tensor(final.input), objective, steps: objective.length, elapsedMs: performance.now() - start, aborted };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    session.dispose();
  }
}

/**
 * Optimises an image to maximize an objective of `layer` (null for logit objectives).
 * Resolves with the image in [0, 1], what the model saw, and the objective per step.
 */
export async function maximize(model: Model, layer: string | null, options: MaximizeOptions): Promise<MaximizeResult> {
  const site = callSite(maximize);
  const run = drive(model, layer, options, site);
  for (;;) {
    const next = await run.next();
    if (next.done) return next.value;
    options.onProgress?.(next.value);
  }
}

/**
 * The same as maximize(), as a stream: `for await (const p of run)` gives progress every
 * `progressEvery` steps; `await run.result` gives the outcome.
 */
export function maximizeIter(model: Model, layer: string | null, options: MaximizeOptions): MaximizeRun {
  const site = callSite(maximizeIter);
  const stopped = () => {
    throw failure('ABORTED', 'iteration stopped before the run finished', site);
  };
  return streamedRun(drive(model, layer, options, site), stopped, 'a maximize run', site);
}
