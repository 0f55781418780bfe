// The logit lens (native/methods/logit_lens.h): each layer's value read through the model's own
// head. This file is the method's whole lib/ side, its native signature included (merged into
// NativeModel below): with native/methods/logit_lens.{h,cpp} and
// native/bindings/methods/logit_lens.cpp, one of the three places a method lives in
// (docs/architecture.md, "Adding a method").
import { callSite, failure } from '../core/errors';
import { array, integer, optionKeys, requiredOptions } from '../core/validate';
import { NativeCancelToken, NativeNumerics, NativeTensor, NativeValue } from '../native/binding';
import { cancellable } from '../native/signal';
import { Input, Model, normalizeInputs, NumericsOptions, numericsRequest, unwrapInputs } from '../model/model';
import { Tensor } from '../model/tensor';
import { SpliceOptions } from './activations';
import { NativeSaeSplice, splices } from '../sae/splice';

declare module '../native/binding' {
  interface NativeModel {
    /** [async] (native/bindings/methods/logit_lens.cpp) */
    logitLens(inputs: NativeValue[], request: NativeLensRequest, cancel?: NativeCancelToken): Promise<{ logits: NativeTensor; indices?: NativeTensor }>;
  }
}

/** What native/bindings/methods/logit_lens.cpp reads. */
interface NativeLensRequest extends NativeNumerics {
  saes?: NativeSaeSplice[];
  layers: string[];
  head: string[];
  /** 0: every logit */
  topK: number;
}

export interface LogitLensOptions extends NumericsOptions, SpliceOptions {
  /** Hook points read (module outputs, or 'path:input' for the residual stream entering a block). */
  layers: string[];
  /** The modules applied in order to each layer's value, e.g. ['transformer.ln_f', 'lm_head']. */
  head: string[];
  /** Keep only the k largest logits per position (memory: [layers, batch, seq, k]). */
  topK?: number;
  signal?: AbortSignal;
}

export interface LogitLensResult extends Disposable {
  /** [layers, ...the head's output] (e.g. [layers, batch, seq, vocab]), or the top k. */
  logits: Tensor;
  /** With topK: the vocabulary indices of `logits`. */
  indices?: Tensor;
  dispose(): void;
}

const LOGIT_LENS_KEYS = optionKeys<LogitLensOptions>({
  layers: true,
  head: true,
  topK: true,
  signal: true,
  precision: true,
  upcast: true,
  saes: true,
  errorTerm: true,
});

/** What the model would predict from each layer's value: the head applied to it. */
export async function logitLens(model: Model, inputs: Input | Input[], given: LogitLensOptions): Promise<LogitLensResult> {
  const site = callSite(logitLens);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'logitLens(model, inputs, options): model must come from torch.load()', site);
  const options = requiredOptions(given, LOGIT_LENS_KEYS, 'logitLens', "{ layers, head: ['transformer.ln_f', 'lm_head'] }", site);
  const spliced = splices(options.saes, options.errorTerm, model, site);
  const layers = (array(options.layers, 'layers', site, true) as string[]).map(spliced.layerName);
  const head = array(options.head, 'head', site, true) as string[];
  model.checkLayers([...layers, ...spliced.points], site);
  model.checkLayers(head, site, false); // the head's modules are called, not hooked
  // 0: every logit.
  const topK = integer(options.topK ?? 0, 'topK', { min: 0 }, site);
  const handle = model.native(site);
  const request = { layers, head, topK, saes: spliced.native, ...numericsRequest(model, options, site) };
  const result = await cancellable(options.signal, site, (cancel) => handle.logitLens(unwrapInputs(normalizeInputs(inputs)), request, cancel));
  const logits = new Tensor(result.logits);
  const indices = result.indices ? new Tensor(result.indices) : undefined;
  const dispose = () => {
    logits.dispose();
    indices?.dispose();
  };
  return { logits, ...(indices ? { indices } : {}), dispose, [Symbol.dispose]: dispose };
}
