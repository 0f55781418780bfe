// Attribution: which inputs, or which units of a layer, made a prediction what it is. The
// methods and their defaults are Captum's (captum.attr), computed natively
// (native/methods/attribution.h) in batched passes that JS drives a few at a time, so a long run
// reports progress, can be aborted, and never blocks the event loop.
import { callSite, CallSite, failure } from '../core/errors';
import { ATTRIBUTION_METHODS, AttributionMethod, Integration, INTEGRATIONS, NOISE_TYPES, NoiseType, UPSAMPLE_MODES, UpsampleMode } from '../core/names';
import { boolean, finiteNumber, instance, integer, integers, oneOf, optionKeys, requiredOptions } from '../core/validate';
import { NativeAttributionRequest } from '../native/binding';
import { drivePlannedRun, RunProgress } from '../native/planned';
import { Input, Model, normalizeInputs, NumericsOptions, numericsRequest, unwrapInputs } from '../model/model';
import { Tensor } from '../model/tensor';
import { objectiveOf } from './gradients';
import { Objective } from './objective';

/** Captum's NoiseTunnel around a gradient method: the method on noisy copies of the input, combined. */
export interface NoiseOptions {
  type: NoiseType;
  /** Noisy copies per input. Default 5. */
  samples?: number;
  /** Standard deviation of the Gaussian noise, in input units. Default 1.0. */
  stdev?: number;
  /** Seeds the noise (reproducible runs). Default 0. */
  seed?: number;
  /** Copies per pass (memory); default all. */
  samplesBatchSize?: number;
}

export interface AttributeOptions extends NumericsOptions {
  method: AttributionMethod;
  /** output[:, target] of an [N, C] output, Captum's target; an array gives one per batch element. */
  target?: number | number[];
  /** Instead of a target: any objective (lib/methods/objective.ts), e.g. { layer: 'layer4', channel: 3 }. */
  objective?: Objective | Objective[];
  /** Which of forward's arguments is attributed. Default 0. */
  input?: number;
  /** What "absent" means: a number, or a tensor broadcastable to the input. Default 0. */
  baseline?: Tensor | number;
  /** saliency: the gradient's magnitude (Captum's abs). Default true. */
  abs?: boolean;
  /** Integrated gradients: integration steps. Default 50. */
  steps?: number;
  /** Integrated gradients: how the path integral is approximated. Default 'gausslegendre'. */
  integration?: Integration;
  /** Integrated gradients: rows (steps x batch) per pass. Default: all in one pass, fewer when memory would not hold them. */
  internalBatchSize?: number;
  /** Integrated gradients: also return Σ attributions - (F(input) - F(baseline)) per batch element. Default false. */
  convergenceDelta?: boolean;
  /** Integrated gradients: multiply by (input - baseline). Default true. */
  multiplyByInputs?: boolean;
  /** layerIntegratedGradients, layerGradCam: the module whose output is attributed. */
  layer?: string;
  /** layerGradCam: ReLU on the map. Default false (Captum's relu_attributions). */
  relu?: boolean;
  /** layerGradCam: interpolate the map to the input's size (true) or to given sizes. Default false. */
  upsample?: boolean | number[];
  /** layerGradCam: 'nearest' (default, Captum's), 'bilinear' (2-D), 'linear' (1-D). */
  upsampleMode?: UpsampleMode;
  /** occlusion: the occluded block, over every dim past the batch (e.g. [3, 16, 16] for an image). */
  window?: number[];
  /** occlusion: its shift per dim, or one for every dim. Default 1. */
  strides?: number | number[];
  /** featureAblation: integer feature ids, broadcastable to the input (first dim 1 or the batch); default every element alone. */
  featureMask?: Tensor;
  /** Perturbation methods: perturbed copies per forward pass. Default 1. */
  perturbationsPerEval?: number;
  /** Wraps a gradient method in Captum's NoiseTunnel (SmoothGrad, SmoothGrad², VarGrad). */
  noise?: NoiseOptions;
  /** Stops within one pass; the promise then rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called after every pass. */
  onProgress?: (progress: AttributionProgress) => void;
}

export type AttributionProgress = RunProgress;

export interface AttributionResult extends Disposable {
  /** The input's shape (input methods), the layer output's (layerIntegratedGradients), [N, 1, h, w] (layerGradCam). */
  attributions: Tensor;
  /** With convergenceDelta: per batch element (per element and noise sample with noise). */
  convergenceDelta?: number[];
  /** Integrated gradients: the rows per pass it used. */
  internalBatchSize?: number;
  elapsedMs: number;
  dispose(): void;
}

/** Captum's defaults, in one place. */
export const ATTRIBUTION_DEFAULTS = {
  input: 0,
  baseline: 0,
  abs: true,
  steps: 50,
  integration: 'gausslegendre' as Integration,
  convergenceDelta: false,
  multiplyByInputs: true,
  relu: false,
  upsampleMode: 'nearest' as const,
  perturbationsPerEval: 1,
  noise: { samples: 5, stdev: 1.0, seed: 0 },
};

const ATTRIBUTE_KEYS = optionKeys<AttributeOptions>({
  method: true,
  target: true,
  objective: true,
  input: true,
  baseline: true,
  abs: true,
  steps: true,
  integration: true,
  internalBatchSize: true,
  convergenceDelta: true,
  multiplyByInputs: true,
  layer: true,
  relu: true,
  upsample: true,
  upsampleMode: true,
  window: true,
  strides: true,
  featureMask: true,
  perturbationsPerEval: true,
  noise: true,
  signal: true,
  onProgress: true,
  precision: true,
  upcast: true,
});
const NOISE_KEYS = optionKeys<NoiseOptions>({ type: true, samples: true, stdev: true, seed: true, samplesBatchSize: true });

// Which options each method reads: any other one given is a mistake, said so (noise wraps the
// gradient methods only).
type Option = keyof AttributeOptions;
const COMMON: Option[] = ['method', 'target', 'objective', 'input', 'signal', 'onProgress', 'precision', 'upcast'];
const OPTIONS_OF: Record<AttributionMethod, Option[]> = {
  saliency: ['abs', 'noise'],
  inputXGradient: ['noise'],
  integratedGradients: ['baseline', 'steps', 'integration', 'internalBatchSize', 'convergenceDelta', 'multiplyByInputs', 'noise'],
  layerIntegratedGradients: ['layer', 'baseline', 'steps', 'integration', 'internalBatchSize', 'convergenceDelta', 'multiplyByInputs', 'noise'],
  layerGradCam: ['layer', 'relu', 'upsample', 'upsampleMode', 'noise'],
  occlusion: ['window', 'strides', 'baseline', 'perturbationsPerEval'],
  featureAblation: ['featureMask', 'baseline', 'perturbationsPerEval'],
};

function checkNoise(noise: NoiseOptions, site: CallSite): NoiseOptions {
  const usage = `{ type: ${NOISE_TYPES.map((t) => `'${t}'`).join(' | ')}, samples?, stdev?, seed?, samplesBatchSize? }`;
  requiredOptions(noise, NOISE_KEYS, 'attribute noise', usage, site);
  oneOf(noise.type, 'noise.type', NOISE_TYPES, site);
  return noise;
}

function request(model: Model, args: Input[], given: AttributeOptions, site: CallSite): NativeAttributionRequest {
  const options = requiredOptions(given, ATTRIBUTE_KEYS, 'attribute', "{ method: 'saliency', target: 3 }", site);
  const method = options.method;
  if (!ATTRIBUTION_METHODS.includes(method))
    throw failure('INVALID_ARGUMENT', `unknown attribution method ${JSON.stringify(method)} (${ATTRIBUTION_METHODS.join(', ')})`, site);
  const allowed: Option[] = [...COMMON, ...OPTIONS_OF[method]];
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && !allowed.includes(key as Option)) {
      throw failure('INVALID_ARGUMENT', `${method} takes no option '${key}' (it takes ${allowed.filter((k) => k !== 'method').join(', ')})`, site);
    }
  }
  const d = ATTRIBUTION_DEFAULTS;
  const input = integer(options.input ?? d.input, 'input', { min: 0 }, site);
  if (input >= args.length) throw failure('INVALID_ARGUMENT', `input ${input}: forward was given ${args.length} input(s)`, site);
  const baseline = options.baseline ?? d.baseline;
  if (!(baseline instanceof Tensor) && !(typeof baseline === 'number' && Number.isFinite(baseline))) {
    throw failure('INVALID_ARGUMENT', 'baseline must be a finite number or a Tensor broadcastable to the input', site);
  }
  const layerMethod = method === 'layerIntegratedGradients' || method === 'layerGradCam';
  if (layerMethod) {
    if (typeof options.layer !== 'string' || options.layer === '') throw failure('INVALID_ARGUMENT', `${method} needs a layer`, site);
    model.checkLayers([options.layer], site);
  }
  const steps = integer(options.steps ?? d.steps, 'steps', { min: 1 }, site);
  const integration = oneOf(options.integration ?? d.integration, 'integration', INTEGRATIONS, site);
  if (integration !== 'gausslegendre' && steps < 2) throw failure('INVALID_ARGUMENT', `${integration} needs steps >= 2`, site);
  let upsample: number[] = [];
  if (options.upsample === true) {
    const x = args[input];
    if (!(x instanceof Tensor) || x.shape.length < 3)
      throw failure('INVALID_ARGUMENT', 'upsample: true needs a [N, C, ...] tensor input to take the size from', site);
    upsample = x.shape.slice(2);
  } else if (options.upsample !== undefined && options.upsample !== false) {
    upsample = integers(options.upsample, 'upsample', { min: 1 }, site);
  }
  if (method === 'occlusion' && options.window === undefined)
    throw failure('INVALID_ARGUMENT', 'occlusion needs a window, e.g. [3, 16, 16] for an image', site);
  if (options.featureMask !== undefined) instance(options.featureMask, 'featureMask', Tensor, site);
  const noise = options.noise === undefined ? undefined : checkNoise(options.noise, site);
  for (const flag of ['abs', 'convergenceDelta', 'multiplyByInputs', 'relu'] as const) {
    if (options[flag] !== undefined) boolean(options[flag], flag, site);
  }
  const strides = options.strides;
  return {
    method,
    objective: objectiveOf(model, options, site),
    input,
    baseline: baseline instanceof Tensor ? baseline.handle : undefined,
    baselineValue: baseline instanceof Tensor ? 0 : baseline,
    abs: options.abs ?? d.abs,
    multiplyByInputs: options.multiplyByInputs ?? d.multiplyByInputs,
    steps,
    integration,
    internalBatchSize: options.internalBatchSize === undefined ? 0 : integer(options.internalBatchSize, 'internalBatchSize', { min: 1 }, site),
    convergenceDelta: options.convergenceDelta ?? d.convergenceDelta,
    layer: options.layer ?? '',
    relu: options.relu ?? d.relu,
    upsample,
    upsampleMode: oneOf(options.upsampleMode ?? d.upsampleMode, 'upsampleMode', UPSAMPLE_MODES, site),
    window: options.window === undefined ? [] : integers(options.window, 'window', { min: 1 }, site),
    strides: strides === undefined ? [] : integers(typeof strides === 'number' ? [strides] : strides, 'strides', { min: 1 }, site),
    featureMask: options.featureMask?.handle,
    perturbationsPerEval: integer(options.perturbationsPerEval ?? d.perturbationsPerEval, 'perturbationsPerEval', { min: 1 }, site),
    noise: noise?.type ?? '',
    samples: integer(noise?.samples ?? d.noise.samples, 'noise.samples', { min: 1 }, site),
    samplesBatchSize: noise?.samplesBatchSize === undefined ? 0 : integer(noise.samplesBatchSize, 'noise.samplesBatchSize', { min: 1 }, site),
    stdev: finiteNumber(noise?.stdev ?? d.noise.stdev, 'noise.stdev', { min: 0 }, site),
    seed: integer(noise?.seed ?? d.noise.seed, 'noise.seed', { min: 0 }, site),
    ...numericsRequest(model, options, site),
  };
}

/**
 * Attributes an objective (a `target` class, or any objective) to the input, or to a layer,
 * with one of Captum's methods: same definitions, same defaults, same numbers.
 */
export async function attribute(model: Model, inputs: Input | Input[], options: AttributeOptions): Promise<AttributionResult> {
  const site = callSite(attribute);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'attribute(model, inputs, options): model must come from torch.load()', site);
  const args = normalizeInputs(inputs);
  const native = request(model, args, options, site);
  const handle = model.native(site);
  const { result, elapsedMs } = await drivePlannedRun(() => handle.attribute(unwrapInputs(args), native), options, 'the attribution', site);
  const attributions = new Tensor(result.attributions);
  const dispose = () => attributions.dispose();
  return {
    attributions,
    ...(result.convergenceDelta ? { convergenceDelta: result.convergenceDelta } : {}),
    ...(result.internalBatchSize ? { internalBatchSize: result.internalBatchSize } : {}),
    elapsedMs,
    dispose,
    [Symbol.dispose]: dispose,
  };
}

/**
 * One score per token from a layer attribution [N, S, H] (a token's embedding): the sum over
 * its hidden units, Captum's recipe for text. `batch` picks the batch element.
 */
export function tokenScores(attributions: Tensor, batch = 0): number[] {
  const site = callSite(tokenScores);
  const shape = attributions.shape;
  if (shape.length !== 3) throw failure('SHAPE', `token scores come from [batch, tokens, hidden] attributions; got [${shape}]`, site);
  const [batches, tokens, hidden] = shape;
  integer(batch, 'batch', { min: 0, max: batches - 1 }, site);
  const data = attributions.data() as Float32Array | Float64Array;
  return Array.from({ length: tokens }, (_, t) => {
    let sum = 0;
    for (let h = 0; h < hidden; h++) sum += data[(batch * tokens + t) * hidden + h];
    return sum;
  });
}

export type { AttributionMethod, Integration, NoiseType, UpsampleMode };
