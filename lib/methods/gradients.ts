// Gradients as a primitive: d(objective)/d(input) and d(objective)/d(layer output) in one
// native forward and backward (native/methods/gradients.h). A layer's gradient is what PyTorch's
// register_full_backward_hook gets as grad_output.
import { callSite, CallSite, failure } from '../core/errors';
import { optionKeys, requiredOptions } from '../core/validate';
import { NativeObjectiveSpec, NativeTensor } from '../native/binding';
import { cancellable } from '../native/signal';
import { Input, Model, normalizeInputs, NumericsOptions, numericsRequest, unwrapInputs } from '../model/model';
import { disposeValue, Tensor } from '../model/tensor';
import { Calls, callsOption, SpliceOptions } from './activations';
import { nativeObjectives, Objective } from './objective';
import { nativePatches, patchedLayers, PatchSpec } from './patch';
import { splices } from '../sae/splice';

export interface GradientsOptions extends NumericsOptions, SpliceOptions {
  /**
   * What is differentiated, per batch element: an objective on the model's output
   * ({ target }, { logit }) or on a layer ({ layer: 'layer4', channel: 3 }: the forward then
   * stops at that layer); an array gives one per batch element. The gradient is that of the
   * sum over the batch, which for a model in eval mode is each element's own.
   */
  objective?: Objective | Objective[];
  /** Shorthand for objective { target }: output[:, target] of an [N, C] output; an array gives one per batch element. */
  target?: number | number[];
  /**
   * What to differentiate with respect to: 'input' (forward's first argument), 'input:N' (its
   * N-th, from 0), and layer paths (the gradient with respect to that module's output).
   */
  wrt: string | string[];
  /** Patches applied during the forward, as in torch.run; gradients flow through them. */
  patch?: Record<string, PatchSpec>;
  /** For a layer called several times: 'last' (default) or 'all' (one gradient per call). */
  calls?: Calls;
  /** Aborts the call while it waits behind other calls. */
  signal?: AbortSignal;
}

export interface GradientsResult extends Disposable {
  /** The objective's value per batch element. */
  objective: number[];
  /** By `wrt` entry: a Tensor shaped like that input or layer output; an array of them per call with calls: 'all'. */
  gradients: Record<string, Tensor | Tensor[]>;
  /** By layer `wrt` entry: the value the gradient is of (gradient x value: an SAE's ':features' attribution), shaped as `gradients`. */
  values: Record<string, Tensor | Tensor[]>;
  /** Frees every gradient tensor now. */
  dispose(): void;
}

/** The objective of `options`: its objective, or its target as { target }. */
export function objectiveOf(model: Model, options: { objective?: Objective | Objective[]; target?: number | number[] }, site: CallSite): NativeObjectiveSpec {
  if ((options.objective === undefined) === (options.target === undefined)) {
    throw failure('INVALID_ARGUMENT', 'give an objective or a target (output[:, target]), one of the two', site);
  }
  const objectives: Objective[] =
    options.target !== undefined
      ? (Array.isArray(options.target) ? options.target : [options.target]).map((target) => ({ target }))
      : Array.isArray(options.objective)
        ? options.objective
        : [options.objective as Objective];
  return nativeObjectives(model, objectives, null, site);
}

const INPUT = /^input(?::(\d+))?$/;
const GRADIENTS_KEYS = optionKeys<GradientsOptions>({
  objective: true,
  target: true,
  wrt: true,
  patch: true,
  calls: true,
  signal: true,
  precision: true,
  upcast: true,
  saes: true,
  errorTerm: true,
});

/** The gradient of an objective with respect to inputs and layers' outputs. */
export async function gradients(model: Model, inputs: Input | Input[], given: GradientsOptions): Promise<GradientsResult> {
  const site = callSite(gradients);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'gradients(model, inputs, options): model must come from torch.load()', site);
  const options = requiredOptions(given, GRADIENTS_KEYS, 'gradients', "{ target: 3, wrt: 'input' }", site);
  const wrt = typeof options.wrt === 'string' ? [options.wrt] : options.wrt;
  if (!Array.isArray(wrt) || wrt.length === 0 || !wrt.every((w) => typeof w === 'string')) {
    throw failure('INVALID_ARGUMENT', "wrt names what to differentiate with respect to: 'input', 'input:N' or layer paths", site);
  }
  if (new Set(wrt).size !== wrt.length) throw failure('INVALID_ARGUMENT', `wrt lists an entry twice: ${JSON.stringify(wrt)}`, site);
  const calls = callsOption(options.calls, site);
  const args = normalizeInputs(inputs);
  const inputIndices: number[] = [];
  const layers: string[] = [];
  for (const entry of wrt) {
    const match = INPUT.exec(entry);
    if (!match) {
      layers.push(entry);
      continue;
    }
    const index = match[1] === undefined ? 0 : Number(match[1]);
    if (index >= args.length) throw failure('INVALID_ARGUMENT', `'${entry}': forward was given ${args.length} input(s)`, site);
    if (inputIndices.includes(index)) throw failure('INVALID_ARGUMENT', `wrt names input ${index} twice`, site);
    inputIndices.push(index);
  }
  const spliced = splices(options.saes, options.errorTerm, model, site);
  const native = layers.map(spliced.layerName);
  const patch = options.patch && Object.fromEntries(Object.entries(options.patch).map(([layer, spec]) => [spliced.layerName(layer), spec]));
  const objective = objectiveOf(model, options, site);
  model.checkLayers([...native, ...patchedLayers(patch), ...spliced.points], site);
  const handle = model.native(site);
  const request = {
    objective,
    inputs: inputIndices,
    layers: native,
    patch: nativePatches(patch, site),
    saes: spliced.native,
    ...numericsRequest(model, options, site),
  };
  const result = await cancellable(options.signal, site, (cancel) => handle.gradients(unwrapInputs(args), request, cancel));
  const out: Record<string, Tensor | Tensor[]> = {};
  const values: Record<string, Tensor | Tensor[]> = {};
  const pick = (handles: NativeTensor[]) => {
    const perCall = handles.map((handle) => new Tensor(handle));
    if (calls === 'last') perCall.slice(0, -1).forEach((t) => t.dispose());
    return calls === 'all' ? perCall : perCall[perCall.length - 1];
  };
  let next = 0;
  for (const entry of wrt) {
    if (INPUT.test(entry)) {
      out[entry] = new Tensor(result.inputs[next++]);
    } else {
      const layer = spliced.layerName(entry);
      out[entry] = pick(result.layers[layer]);
      values[entry] = pick(result.values[layer]);
    }
  }
  const dispose = () => disposeValue([out, values]);
  return { objective: result.objective, gradients: out, values, dispose, [Symbol.dispose]: dispose };
}
