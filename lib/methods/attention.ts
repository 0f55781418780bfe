// Attention maps of a BERT- or GPT-2-style TorchScript model, as [batch, layers, heads, seq, seq].
//
// Three ways to get them, tried in this order on a model's first call and remembered:
//  - 'output': forward returns them, stacked ([B, L, H, S, S]; models/bert.pt's output[2]).
//  - 'capture': each encoder.layer.N.attention.self returns (context, probs) in the program,
//    as eager transformers does (scripted models; traces whose caller used the probs).
//  - 'recompute': a plain traced Hugging Face BertModel. torch.jit.trace drops submodule
//    outputs nothing uses, so there attention.self returns the context alone and the softmax
//    is not a module output. The probabilities are then recomputed from the captured
//    attention.self.query / .key outputs (softmax(Q K^T / sqrt(d) + mask), as eager
//    attention). The head count is found, and the whole recipe checked, on the first call by
//    rebuilding attention.self's captured context from the recomputed probabilities and the
//    captured .value; a model whose attention differs is refused instead of misreported.
//    A traced Hugging Face GPT-2 is the same case with a causal mask: the probabilities are
//    recomputed from each transformer.h.N.attn.c_attn output (Q, K, V side by side) and checked
//    against the input of attn.c_proj (the heads' context).
import { callSite, CallSite, failure } from '../core/errors';
import { describeValue, integer, optionKeys, requiredOptions } from '../core/validate';
import { INPUT_SUFFIX, Model, ModuleInfo, Value } from '../model/model';
import { disposeValue, Tensor, tensor } from '../model/tensor';
import { BatchEncoding, BertTokenizer, EncodeInput, Encoding } from '../text/bert-tokenizer';
import { Gpt2BatchEncoding, Gpt2Encoding, Gpt2Tokenizer } from '../text/gpt2-tokenizer';
import { activations, run } from './activations';
import { cpuData, projectionPaths, Projections, recompute } from './attention-recompute';

/**
 * A text, a batch (an array whose items are texts or [text, text] pairs; a pair alone is
 * written [[a, b]]), or what BertTokenizer.encode / encodeBatch returned.
 */
export type AttentionInput = string | readonly EncodeInput[] | Encoding | BatchEncoding | Gpt2Encoding | Gpt2BatchEncoding;

export interface AttentionOptions {
  /** Turns text into ids (GPT-2's tokenizer for a GPT-2); needed for the tokens of the result even with encoded input. */
  tokenizer: BertTokenizer | Gpt2Tokenizer;
  /** Longest sequence, special tokens included; longer text is truncated. Default: the tokenizer's. */
  maxLength?: number;
}

export interface AttentionResult {
  /** Per batch element, the real tokens ([CLS] ... [SEP]), without padding. */
  tokens: string[][];
  /** Per batch element, the number of real tokens. */
  lengths: number[];
  /**
   * float32 [batch, layers, heads, seq, seq], seq the padded length: [b, l, h, i, j] is how
   * much token i attends to token j. Rows and columns of padding positions are 0.
   */
  attentions: Tensor;
  layers: number;
  heads: number;
  /** Where the maps came from (see the top of lib/methods/attention.ts). */
  source: 'output' | 'capture' | 'recompute';
}

const ATTENTION_KEYS = optionKeys<AttentionOptions>({ tokenizer: true, maxLength: true });

type Plan =
  | { kind: 'output'; index: number[] }
  | { kind: 'capture'; layers: string[] }
  | { kind: 'recompute'; layers: string[]; heads: number; projections: Projections };

const plans = new WeakMap<Model, Plan>();

interface Batch {
  ids: number[][];
  mask: number[][];
  tokens: string[][];
}

function isEncodeInput(value: unknown): value is EncodeInput {
  return typeof value === 'string' || (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string');
}

function checkEncoded(ids: unknown, mask: unknown, tokens: unknown, what: string, site: CallSite): void {
  const ok = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
  if (!ok(ids)) throw failure('INVALID_ARGUMENT', `attention: ${what}.ids must be an array of token ids`, site);
  const n = (ids as number[]).length;
  if (n === 0) throw failure('INVALID_ARGUMENT', `attention: ${what} holds no tokens`, site);
  if (!ok(mask) || (mask as number[]).length !== n || (mask as number[]).some((m) => m !== 0 && m !== 1)) {
    throw failure('INVALID_ARGUMENT', `attention: ${what}.attentionMask must be ${n} zeros and ones, one per id`, site);
  }
  if (!Array.isArray(tokens) || tokens.length !== n) {
    throw failure('INVALID_ARGUMENT', `attention: ${what}.tokens must hold ${n} tokens, one per id`, site);
  }
}

function toBatch(input: AttentionInput, options: AttentionOptions, site: CallSite): Batch {
  const { tokenizer, maxLength } = options;
  if (typeof input === 'string' || Array.isArray(input)) {
    const texts = typeof input === 'string' ? [input] : (input as readonly unknown[]);
    if (texts.length === 0) throw failure('INVALID_ARGUMENT', 'attention: the batch is empty', site);
    texts.forEach((t, i) => {
      if (!isEncodeInput(t)) {
        throw failure('INVALID_ARGUMENT', `attention: input[${i}] must be a string or a [string, string] pair, got ${describeValue(t)}`, site);
      }
    });
    let enc: BatchEncoding | Gpt2BatchEncoding;
    try {
      if (tokenizer instanceof Gpt2Tokenizer) {
        if (!texts.every((t) => typeof t === 'string')) throw new Error('GPT-2 takes texts, not [text, text] pairs');
        enc = tokenizer.encodeBatch(texts as string[], maxLength === undefined ? {} : { maxLength });
      } else {
        enc = tokenizer.encodeBatch(texts as EncodeInput[], maxLength === undefined ? {} : { maxLength });
      }
    } catch (error) {
      throw failure('INVALID_ARGUMENT', `attention: ${(error as Error).message}`, site);
    }
    return { ids: enc.ids, mask: enc.attentionMask, tokens: enc.tokens };
  }
  if (input !== null && typeof input === 'object' && 'ids' in input && Array.isArray(input.ids)) {
    if (maxLength !== undefined) {
      throw failure('INVALID_ARGUMENT', 'attention: maxLength applies to text; encoded input is used as it is', site);
    }
    if (input.ids.length > 0 && Array.isArray(input.ids[0])) {
      const enc = input as BatchEncoding;
      if (
        !Array.isArray(enc.attentionMask) ||
        !Array.isArray(enc.tokens) ||
        enc.attentionMask.length !== enc.ids.length ||
        enc.tokens.length !== enc.ids.length
      ) {
        throw failure('INVALID_ARGUMENT', 'attention: a BatchEncoding needs ids, tokens and attentionMask for every element', site);
      }
      const width = enc.ids[0].length;
      enc.ids.forEach((ids, b) => {
        checkEncoded(ids, enc.attentionMask[b], enc.tokens[b], `input[${b}]`, site);
        if (ids.length !== width)
          throw failure('INVALID_ARGUMENT', `attention: input.ids[${b}] has ${ids.length} ids, input.ids[0] ${width}: pad the batch`, site);
      });
      return { ids: enc.ids, mask: enc.attentionMask, tokens: enc.tokens };
    }
    const enc = input as Encoding;
    checkEncoded(enc.ids, enc.attentionMask, enc.tokens, 'input', site);
    return { ids: [enc.ids], mask: [enc.attentionMask], tokens: [enc.tokens] };
  }
  throw failure(
    'INVALID_ARGUMENT',
    `attention(model, input, options): input must be a string, an array of strings or [string, string] pairs, or an Encoding / BatchEncoding; got ${describeValue(input)}`,
    site,
  );
}

/** attention.self modules in layer order. */
function selfAttentionLayers(modules: ModuleInfo[]): string[] {
  return modules.filter((m) => m.path !== '' && (m.type === 'BertSelfAttention' || /(^|\.)attention\.self$/.test(m.path))).map((m) => m.path);
}

/** GPT-2's attention modules (an attn holding c_attn and c_proj), in layer order. */
function gpt2AttentionLayers(modules: ModuleInfo[]): string[] {
  const names = new Set(modules.map((m) => m.path));
  return modules.filter((m) => /(^|\.)attn$/.test(m.path) && names.has(`${m.path}.c_attn`) && names.has(`${m.path}.c_proj`)).map((m) => m.path);
}

/** Where in forward's output a [B, L, H, S, S] tensor is, if anywhere (top level or one level down). */
function findStacked(output: Value, B: number, S: number, L: number | undefined): number[] | undefined {
  const fits = (v: Value) => {
    if (!(v instanceof Tensor) || v.dtype !== 'float32') return false;
    const s = v.shape;
    return s.length === 5 && s[0] === B && s[3] === S && s[4] === S && (L === undefined || s[1] === L);
  };
  if (fits(output)) return [];
  if (Array.isArray(output)) {
    for (let i = 0; i < output.length; i++) {
      if (fits(output[i])) return [i];
      const inner = output[i];
      if (Array.isArray(inner)) for (let j = 0; j < inner.length; j++) if (fits(inner[j])) return [i, j];
    }
  }
  return undefined;
}

function at(output: Value, index: number[]): Tensor {
  let v = output;
  for (const i of index) v = (v as Value[])[i];
  return v as Tensor;
}

/** The probabilities of a capture of attention.self: [B, H, S, S] alone or in a tuple. */
function probsOf(value: Value, B: number, S: number): Tensor | undefined {
  const items = Array.isArray(value) ? value : [value];
  for (const v of items) {
    if (v instanceof Tensor && v.dtype === 'float32') {
      const s = v.shape;
      if (s.length === 4 && s[0] === B && s[2] === S && s[3] === S) return v;
    }
  }
  return undefined;
}

/** Zeroes rows and columns of padding positions, in place. data is [B, L*H, S, S]. */
function zeroPadding(data: Float32Array, mask: number[][], LH: number, S: number): void {
  const SS = S * S;
  mask.forEach((m, b) => {
    if (m.every((x) => x === 1)) return;
    const pads = m.flatMap((x, i) => (x === 0 ? [i] : []));
    for (let k = 0; k < LH; k++) {
      const base = (b * LH + k) * SS;
      for (let i = 0; i < S; i++) {
        const row = base + i * S;
        if (m[i] === 0) data.fill(0, row, row + S);
        else for (const j of pads) data[row + j] = 0;
      }
    }
  });
}

/** Whether forward takes an attention mask after the ids (a model traced on ids alone does not). */
function takesMask(model: Model): boolean {
  return model.inputs.length >= 2;
}

/**
 * Attention probabilities of every layer and head of a BERT- or GPT-2-style model for text
 * (tokenized with options.tokenizer; a batch is padded to its longest element) or encoded
 * input. forward takes (input_ids, attention_mask), both int64 [batch, seq], or input_ids
 * alone (then a batch may be padded only on the right of a causal model, where no real token
 * sees the padding).
 */
export async function attention(model: Model, input: AttentionInput, given: AttentionOptions): Promise<AttentionResult> {
  const site = callSite(attention);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'attention(model, input, options): model must come from torch.load()', site);
  const options = requiredOptions(given, ATTENTION_KEYS, 'attention', '{ tokenizer }', site);
  if (!(options.tokenizer instanceof BertTokenizer) && !(options.tokenizer instanceof Gpt2Tokenizer)) {
    throw failure(
      'INVALID_ARGUMENT',
      'attention: options.tokenizer must be a BertTokenizer (BertTokenizer.fromVocab(path)) or a Gpt2Tokenizer (await Gpt2Tokenizer.load())',
      site,
    );
  }
  // BERT's shortest sequence holds [CLS] and [SEP].
  if (options.maxLength !== undefined) integer(options.maxLength, 'maxLength', { min: options.tokenizer instanceof Gpt2Tokenizer ? 1 : 2 }, site);
  const batch = toBatch(input, options, site);
  const B = batch.ids.length;
  const S = batch.ids[0].length;
  const flatIds = new BigInt64Array(B * S);
  const flatMask = new BigInt64Array(B * S);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < S; i++) {
      flatIds[b * S + i] = BigInt(batch.ids[b][i]);
      flatMask[b * S + i] = BigInt(batch.mask[b][i]);
    }
  }
  const tokens = batch.tokens.map((row, b) => row.filter((_, i) => batch.mask[b][i] === 1));
  const lengths = tokens.map((t) => t.length);
  if (lengths.some((n) => n === 0)) throw failure('INVALID_ARGUMENT', 'attention: every batch element needs at least one real token (attention mask 1)', site);
  if (!takesMask(model) && batch.mask.some((m) => m.some((x) => x === 0))) {
    const causal = gpt2AttentionLayers(model.modules()).length > 0;
    const rightPadded = batch.mask.every((m) => m.every((x, i) => x === 1 || m.slice(i).every((y) => y === 0)));
    if (!(causal && rightPadded)) {
      throw failure(
        'INVALID_ARGUMENT',
        `attention: ${model.path}'s forward takes no attention mask, so padding would be attended to` +
          (causal ? ": pad on the right (paddingSide: 'right')" : ': pass texts of one length, or one at a time'),
        site,
      );
    }
  }
  const ids = tensor(flatIds, [B, S], 'int64');
  const mask = tensor(flatMask, [B, S], 'int64');
  const inputs = takesMask(model) ? [ids, mask] : [ids];
  try {
    const done = (attentions: Tensor, source: AttentionResult['source']): AttentionResult => {
      const [, layers, heads] = attentions.shape;
      zeroPadding(attentions.data() as Float32Array, batch.mask, layers * heads, S);
      return { tokens, lengths, attentions, layers, heads, source };
    };
    const plan = plans.get(model);
    if (plan === undefined) {
      const found = await choosePlan(model, inputs, B, S, batch.mask, site);
      plans.set(model, found.plan);
      return done(found.attentions, found.plan.kind);
    }
    if (plan.kind === 'output') {
      const output = await model.forward(...inputs);
      const stacked = findStacked(output, B, S, undefined);
      if (stacked === undefined || stacked.join() !== plan.index.join()) {
        throw failure('RUNTIME', `attention: ${model.path} no longer returns attentions at output[${plan.index.join('][')}]`, site);
      }
      const attentions = at(output, plan.index);
      disposeValue(output, attentions);
      return done(attentions, 'output');
    }
    if (plan.kind === 'capture') {
      const captured = await activations(model, plan.layers, ...inputs);
      return done(
        await stackCaptures(
          plan.layers.map((l) => captured[l]),
          B,
          S,
          site,
          model.path,
        ),
        'capture',
      );
    }
    return done(await recompute(model, plan, inputs, B, S, batch.mask, false, site), 'recompute');
  } finally {
    ids.dispose();
    mask.dispose();
  }
}

async function stackCaptures(values: Value[], B: number, S: number, site: CallSite, file: string): Promise<Tensor> {
  const probs = values.map((v) => probsOf(v, B, S));
  const L = values.length;
  const H = probs[0]!.shape[1];
  const block = H * S * S;
  const out = new Float32Array(B * L * block);
  for (let l = 0; l < L; l++) {
    const p = probs[l];
    if (!p || p.shape[1] !== H) throw failure('RUNTIME', `attention: layer ${l} of ${file} gave no [${B}, ${H}, ${S}, ${S}] probabilities`, site);
    const data = await cpuData(p);
    for (let b = 0; b < B; b++) out.set(data.subarray(b * block, (b + 1) * block), (b * L + l) * block);
  }
  disposeValue(values);
  return tensor(out, [B, L, H, S, S], 'float32');
}

async function choosePlan(
  model: Model,
  inputs: Tensor[],
  B: number,
  S: number,
  masks: number[][],
  site: CallSite,
): Promise<{ plan: Plan; attentions: Tensor }> {
  const modules = model.modules();
  const gpt2 = gpt2AttentionLayers(modules);
  const projections: Projections = gpt2.length > 0 ? 'fused-causal' : 'separate';
  const layers = gpt2.length > 0 ? gpt2 : selfAttentionLayers(modules);
  // One forward for both: the output (in case it holds the maps) and every attention module.
  const result =
    layers.length > 0 ? await run(model, inputs, { capture: layers }) : { output: await model.forward(...inputs), activations: {} as Record<string, Value> };
  const index = findStacked(result.output, B, S, layers.length > 0 ? layers.length : undefined);
  if (index !== undefined) {
    const attentions = at(result.output, index);
    disposeValue(result.output, attentions);
    disposeValue(result.activations);
    return { plan: { kind: 'output', index }, attentions };
  }
  disposeValue(result.output);
  if (layers.length === 0) {
    throw failure(
      'INVALID_ARGUMENT',
      `attention: ${model.path} returns no [batch, layers, heads, seq, seq] attentions and has no attention modules ` +
        "(BERT's attention.self, GPT-2's attn with c_attn and c_proj) to capture them from",
      site,
    );
  }
  const values = layers.map((l) => result.activations[l]);
  if (values.every((v) => probsOf(v, B, S) !== undefined)) {
    return { plan: { kind: 'capture', layers }, attentions: await stackCaptures(values, B, S, site, model.path) };
  }
  disposeValue(values);
  const names = new Set(modules.map((m) => m.path));
  const needed = layers.flatMap((l) => projectionPaths(l, projections, true)).map((p) => (p.endsWith(INPUT_SUFFIX) ? p.slice(0, -INPUT_SUFFIX.length) : p));
  const missing = needed.filter((n) => !names.has(n));
  if (missing.length > 0) {
    throw failure(
      'INVALID_ARGUMENT',
      `attention: ${model.path} returns no attentions, its attention modules return no probabilities, and '${missing[0]}' is missing to recompute them`,
      site,
    );
  }
  const attentions = await recompute(model, { layers, heads: 0, projections }, inputs, B, S, masks, true, site);
  return { plan: { kind: 'recompute', layers, heads: attentions.shape[2], projections }, attentions };
}
