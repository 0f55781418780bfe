// Activation maximization (feature visualization): the input that makes a channel, neuron,
// direction or logit fire most, optimised natively with libtorch's autograd (native/methods/maximize.h).
import { callSite, CallSite, failure } from '../core/errors';
import { IMAGE_RANGES, ImageRange, Parameterization, PARAMETERIZATIONS, TRANSFORM_KINDS } from '../core/names';
import { streamedRun } from '../core/stream';
import {
  abortSignal,
  array,
  boolean,
  callback,
  checkKeys,
  describeValue,
  finiteNumber,
  instance,
  integer,
  integers,
  isRecord,
  oneOf,
  optionKeys,
  positiveInteger,
  requiredOptions,
} from '../core/validate';
import { NativeMaximizeRequest } from '../native/binding';
import { driveSession } from '../native/session';
import { Model, NumericsOptions, numericsRequest } from '../model/model';
import { Tensor } from '../model/tensor';
import { imageSize } from '../io/image';
import { nativeObjectives, Objective } from './objective';

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
  parameterization?: Parameterization;
  /** How values stay in [0, 1]: 'sigmoid' (fft default), 'clamp' (pixel default: clamped after each step), 'none'. */
  range?: ImageRange;
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
  /** Called every `progressEvery` steps (default 10) and after the last (maximizeIter too, before it yields the same progress). */
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

/** The defaults of maximize's options (Lucid's), in one place. */
export const MAXIMIZE_DEFAULTS = { steps: 256, lr: 0.05, betas: [0.9, 0.999] as [number, number], size: 224, seed: 0, progressEvery: 10 };

const MAXIMIZE_KEYS = optionKeys<MaximizeOptions>({
  channel: true,
  objective: true,
  steps: true,
  lr: true,
  betas: true,
  size: true,
  inputShape: true,
  init: true,
  seed: true,
  parameterization: true,
  range: true,
  decorrelate: true,
  transforms: true,
  regularizers: true,
  normalize: true,
  signal: true,
  onProgress: true,
  progressEvery: true,
  precision: true,
});
const REGULARIZER_KEYS = optionKeys<NonNullable<MaximizeOptions['regularizers']>>({ l1: true, l2: true, tv: true, blur: true });
const NORMALIZATIONS = ['imagenet', false] as const;

function toNativeTransform(transform: TransformSpec, what: string, site: CallSite): NonNullable<NativeMaximizeRequest['transforms']>[number] {
  const usage = 'a transform is one of { pad }, { jitter }, { scale: [...] }, { rotate: [...] }';
  if (!isRecord(transform)) throw failure('INVALID_ARGUMENT', `${usage}; got ${describeValue(transform)}`, site);
  checkKeys(transform, TRANSFORM_KINDS, what, site);
  const keys = Object.keys(transform);
  if (keys.length !== 1) throw failure('INVALID_ARGUMENT', `${usage}; got ${JSON.stringify(transform)}`, site);
  const kind = keys[0] as (typeof TRANSFORM_KINDS)[number];
  const value = (transform as Record<string, unknown>)[kind];
  const name = `${what}.${kind}`;
  // pad and jitter are pixel counts; scale and rotate lists to draw from.
  if (kind === 'pad' || kind === 'jitter') return { kind, values: [integer(value, name, { min: 0 }, site)] };
  const values = array(Array.isArray(value) ? value : [value], name, site, true).map((v, i) =>
    finiteNumber(v, `${name}[${i}]`, kind === 'scale' ? { above: 0 } : {}, site),
  );
  return { kind, values };
}

interface Plan {
  native: NativeMaximizeRequest;
  steps: number;
  progressEvery: number;
}

function plan(model: Model, layer: string | null, maybe: MaximizeOptions, what: string, site: CallSite): Plan {
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', `${what}(model, layer, options): model must come from torch.load()`, site);
  const options = requiredOptions(maybe, MAXIMIZE_KEYS, what, '{ channel: 10 }', site);
  const d = MAXIMIZE_DEFAULTS;
  let objectives: Objective[];
  if (options.objective !== undefined) {
    if (options.channel !== undefined) throw failure('INVALID_ARGUMENT', 'give channel or objective, not both', site);
    objectives = Array.isArray(options.objective) ? options.objective : [options.objective];
  } else if (options.channel !== undefined) {
    objectives = [{ channel: options.channel }];
  } else {
    throw failure('INVALID_ARGUMENT', `${what} needs a target: { channel } or { objective }`, site);
  }
  const steps = positiveInteger(options.steps ?? d.steps, 'steps', site);
  const lr = finiteNumber(options.lr ?? d.lr, 'lr', { above: 0 }, site);
  const betas = array(options.betas ?? d.betas, 'betas', site);
  if (betas.length !== 2) throw failure('INVALID_ARGUMENT', `betas is [beta1, beta2], got ${describeValue(betas)}`, site);
  const [beta1, beta2] = betas.map((b, i) => finiteNumber(b, `betas[${i}]`, { min: 0, below: 1 }, site));
  let batch = objectives.length;
  let channels = 3;
  let [height, width] = imageSize(options.size ?? d.size, site);
  if (options.inputShape !== undefined) {
    const shape = integers(options.inputShape, 'inputShape', { min: 1 }, site);
    if (shape.length !== 4) throw failure('INVALID_ARGUMENT', `inputShape is [batch, channels, height, width], got ${describeValue(shape)}`, site);
    const [b, c, h, w] = shape;
    channels = c;
    if (b !== batch && objectives.length === 1) {
      objectives = Array.from({ length: b }, () => objectives[0]);
      batch = b;
    }
    if (b !== batch) throw failure('INVALID_ARGUMENT', `inputShape batch ${b} does not match ${objectives.length} objectives`, site);
    [height, width] = [h, w];
  }
  if (options.init !== undefined) {
    const init = instance(options.init, 'init', Tensor, site);
    const [b, c, h, w] = init.shape;
    if (init.shape.length !== 4 || (options.inputShape && c !== channels))
      throw failure('SHAPE', `init must be [B, ${options.inputShape ? channels : 'C'}, H, W], got [${init.shape}]`, site);
    channels = c;
    if (b !== batch && objectives.length === 1) {
      objectives = Array.from({ length: b }, () => objectives[0]);
      batch = b;
    }
    if (b !== batch) throw failure('SHAPE', `init batch ${b} does not match ${objectives.length} objectives`, site);
    if (options.size !== undefined && (h !== height || w !== width)) throw failure('SHAPE', `init is ${h}x${w} but size is ${height}x${width}`, site);
    [height, width] = [h, w];
  }
  const parameterization = oneOf(options.parameterization ?? 'fft', 'parameterization', PARAMETERIZATIONS, site);
  const range = oneOf(options.range ?? (parameterization === 'fft' ? 'sigmoid' : 'clamp'), 'range', IMAGE_RANGES, site);
  const transforms = options.transforms ?? 'standard';
  if (transforms !== 'standard' && !Array.isArray(transforms))
    throw failure('INVALID_ARGUMENT', `transforms is 'standard' or an array ([] for none), got ${describeValue(transforms)}`, site);
  const given = requiredOptions(options.regularizers ?? {}, REGULARIZER_KEYS, `${what} regularizers`, '{ l1, l2, tv, blur }', site);
  const regularizers = Object.fromEntries(
    Object.entries(given)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => [key, finiteNumber(value, `regularizer ${key}`, {}, site)]),
  );
  // ImageNet's normalization and colour decorrelation are for RGB images.
  const normalize = oneOf(options.normalize ?? (channels === 3 ? 'imagenet' : false), 'normalize', NORMALIZATIONS, site);
  if (normalize === 'imagenet' && channels !== 3) throw failure('INVALID_ARGUMENT', `normalize 'imagenet' needs 3 channels; the image has ${channels}`, site);
  const decorrelate = boolean(options.decorrelate ?? (parameterization === 'fft' && channels === 3), 'decorrelate', site);
  if (decorrelate && channels !== 3) throw failure('INVALID_ARGUMENT', `decorrelate needs 3 channels; the image has ${channels}`, site);
  const seed = integer(options.seed ?? d.seed, 'seed', { min: 0 }, site);
  abortSignal(options.signal, site);
  if (options.onProgress !== undefined) callback(options.onProgress, 'onProgress', site);
  const objectiveSpec = nativeObjectives(model, objectives, layer ?? '', site);
  const progressEvery = positiveInteger(options.progressEvery ?? d.progressEvery, 'progressEvery', site);
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
      transforms: transforms === 'standard' ? undefined : transforms.map((t, i) => toNativeTransform(t, `${what} transforms[${i}]`, site)),
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

async function* drive(
  model: Model,
  layer: string | null,
  options: MaximizeOptions,
  what: string,
  site: CallSite,
): AsyncGenerator<MaximizeProgress, MaximizeResult> {
  const { native, steps, progressEvery } = plan(model, layer, options, what, site);
  const handle = model.native(site);
  const start = performance.now();
  const objective: number[] = [];
  // Aborted, the result is the best image so far.
  const session = driveSession(
    () => handle.maximize(native),
    options.signal,
    { nextChunk: () => Math.min(progressEvery, steps - objective.length), resultArgument: (aborted) => aborted },
    what,
    site,
  );
  for (;;) {
    const next = await session.next();
    if (next.done) {
      const final = next.value.result!;
      return {
        image: new Tensor(final.image),
        input: new Tensor(final.input),
        objective,
        steps: objective.length,
        elapsedMs: performance.now() - start,
        aborted: next.value.aborted,
      };
    }
    objective.push(...next.value.objectives);
    if (next.value.objectives.length > 0) {
      const progress = { step: objective.length, steps, objective: objective[objective.length - 1], elapsedMs: performance.now() - start };
      options.onProgress?.(progress);
      yield progress;
    }
  }
}

/**
 * Optimises an image to maximize an objective of `layer` (null for logit objectives).
 * Resolves with the image in [0, 1], what the model saw, and the objective per step.
 */
export async function maximize(model: Model, layer: string | null, options: MaximizeOptions): Promise<MaximizeResult> {
  const site = callSite(maximize);
  const run = drive(model, layer, options, 'maximize', site);
  for (;;) {
    const next = await run.next();
    if (next.done) return next.value;
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
  return streamedRun(drive(model, layer, options, 'maximizeIter', site), stopped, 'a maximize run', site);
}
