// Attention maps of any transformer, as [batch, layers, heads, seq, seq], without naming its
// architecture. Two ways to get them, tried in this order on a model's first call and remembered:
//  - 'output': forward returns them, stacked ([B, L, H, S, S]; models/bert.pt's output[2]).
//  - 'pattern': each attention module's pattern, the probabilities of the softmax in its forward
//    ('<module>:pattern', an operation-level hook point: native/torchscript/module_nodes.h),
//    captured in one run. The attention modules are those of the manifest `torchscope export`
//    wrote, else every module whose forward has exactly one softmax, in order. They hold
//    masking, soft-capping, sliding windows and grouped-query attention's shared keys as the
//    model computes them. A model whose attention is one fused kernel (SDPA) has no pattern:
//    it is refused, naming the export setting that gives one (eager attention).
// On the first call the recipe is checked: every real token's row of every map sums to 1.
import { callSite, CallSite, failure } from '../core/errors';
import { describeValue, integer, optionKeys, requiredOptions } from '../core/validate';
import { Model, PATTERN_SUFFIX, Value } from '../model/model';
import { disposeValue, Tensor, tensor } from '../model/tensor';
import { BertTokenizer, EncodeInput } from '../text/bert-tokenizer';
import { activations, run } from './activations';

/** What attention needs of a tokenizer: BertTokenizer, Gpt2Tokenizer and Tokenizer all have it. */
export interface AttentionTokenizer {
  encodeBatch(texts: string[], options?: { maxLength?: number }): { ids: number[][]; attentionMask: number[][]; tokens: string[][] };
  idToToken?(id: number): string | undefined;
  decode?(ids: number[]): string;
}

/** Ids and their mask, as a tokenizer's encode / encodeBatch gives them (tokens optional). */
export interface EncodedInput {
  ids: number[] | number[][];
  attentionMask?: number[] | number[][];
  tokens?: string[] | string[][];
}

/**
 * A text, a batch (an array whose items are texts or, for BERT, [text, text] pairs; a pair
 * alone is written [[a, b]]), what a tokenizer's encode / encodeBatch returned, or token ids
 * (an int64 tensor [batch, seq] or [seq], or arrays of numbers).
 */
export type AttentionInput = string | readonly EncodeInput[] | EncodedInput | Tensor | number[] | number[][];

export interface AttentionOptions {
  /** Turns text into ids, and ids into the tokens of the result; without one, tokens are the ids as strings. */
  tokenizer?: AttentionTokenizer;
  /** Longest sequence, special tokens included; longer text is truncated. Default: the tokenizer's. */
  maxLength?: number;
}

export interface AttentionResult {
  /** Per batch element, the real tokens, without padding. */
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
  /** The attention modules read, in layer order ('pattern'); [] for 'output'. */
  modules: string[];
  /** Where the maps came from (see the top of lib/methods/attention.ts). */
  source: 'output' | 'pattern';
}

const ATTENTION_KEYS = optionKeys<AttentionOptions>({ tokenizer: true, maxLength: true });
// How far from 1 a probability row may sum (float32 softmax over a few thousand keys).
const ROW_SUM_TOLERANCE = 1e-3;

type Plan = { kind: 'output'; index: number[] } | { kind: 'pattern'; modules: string[] };

const plans = new WeakMap<Model, Plan>();

interface Batch {
  ids: number[][];
  mask: number[][];
  tokens: string[][];
}

const isIdRow = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
const isTextInput = (v: unknown): v is EncodeInput =>
  typeof v === 'string' || (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string');

function tokensOf(ids: number[], tokenizer: AttentionTokenizer | undefined): string[] {
  return ids.map((id) => tokenizer?.idToToken?.(id) ?? tokenizer?.decode?.([id]) ?? String(id));
}

function fromIds(
  ids: number[][],
  mask: number[][] | undefined,
  tokens: string[][] | undefined,
  tokenizer: AttentionTokenizer | undefined,
  site: CallSite,
): Batch {
  const width = ids[0].length;
  ids.forEach((row, b) => {
    if (!isIdRow(row)) throw failure('INVALID_ARGUMENT', `attention: ids[${b}] must be a non-empty array of token ids`, site);
    if (row.length !== width) throw failure('INVALID_ARGUMENT', `attention: ids[${b}] has ${row.length} ids, ids[0] ${width}: pad the batch`, site);
    const m = mask?.[b];
    if (mask && (!Array.isArray(m) || m.length !== width || m.some((x) => x !== 0 && x !== 1))) {
      throw failure('INVALID_ARGUMENT', `attention: attentionMask[${b}] must be ${width} zeros and ones, one per id`, site);
    }
    if (tokens && (!Array.isArray(tokens[b]) || tokens[b].length !== width)) {
      throw failure('INVALID_ARGUMENT', `attention: tokens[${b}] must hold ${width} tokens, one per id`, site);
    }
  });
  return { ids, mask: mask ?? ids.map((row) => row.map(() => 1)), tokens: tokens ?? ids.map((row) => tokensOf(row, tokenizer)) };
}

function toBatch(input: AttentionInput, options: AttentionOptions, site: CallSite): Batch {
  const { tokenizer, maxLength } = options;
  if (input instanceof Tensor) {
    const { shape, dtype } = input;
    if (dtype !== 'int64' || (shape.length !== 1 && shape.length !== 2) || shape.some((n) => n === 0)) {
      throw failure('INVALID_ARGUMENT', `attention: ids must be an int64 tensor [batch, seq] or [seq], got ${dtype} [${shape}]`, site);
    }
    const flat = Array.from(input.data() as BigInt64Array, Number);
    const S = shape[shape.length - 1];
    return fromIds(
      Array.from({ length: flat.length / S }, (_, b) => flat.slice(b * S, (b + 1) * S)),
      undefined,
      undefined,
      tokenizer,
      site,
    );
  }
  if (isIdRow(input)) return fromIds([input], undefined, undefined, tokenizer, site);
  if (Array.isArray(input) && input.length > 0 && input.every((row) => Array.isArray(row) && typeof row[0] === 'number')) {
    return fromIds(input as number[][], undefined, undefined, tokenizer, site);
  }
  if (typeof input === 'string' || Array.isArray(input)) {
    const texts = typeof input === 'string' ? [input] : (input as readonly unknown[]);
    if (texts.length === 0) throw failure('INVALID_ARGUMENT', 'attention: the batch is empty', site);
    texts.forEach((t, i) => {
      if (!isTextInput(t))
        throw failure('INVALID_ARGUMENT', `attention: input[${i}] must be a string or a [string, string] pair, got ${describeValue(t)}`, site);
    });
    if (!tokenizer) throw failure('INVALID_ARGUMENT', 'attention: text needs options.tokenizer (or pass token ids)', site);
    if (!(tokenizer instanceof BertTokenizer) && !texts.every((t) => typeof t === 'string')) {
      throw failure('INVALID_ARGUMENT', 'attention: [text, text] pairs need a BertTokenizer', site);
    }
    try {
      const enc = tokenizer.encodeBatch(texts as string[], maxLength === undefined ? {} : { maxLength });
      return { ids: enc.ids, mask: enc.attentionMask, tokens: enc.tokens };
    } catch (error) {
      throw failure('INVALID_ARGUMENT', `attention: ${(error as Error).message}`, site);
    }
  }
  if (input !== null && typeof input === 'object' && 'ids' in input && Array.isArray(input.ids) && input.ids.length > 0) {
    if (maxLength !== undefined) throw failure('INVALID_ARGUMENT', 'attention: maxLength applies to text; encoded input is used as it is', site);
    const batched = Array.isArray(input.ids[0]);
    const rows = <T>(v: T[] | T[][] | undefined) => (v === undefined ? undefined : batched ? (v as T[][]) : [v as T[]]);
    if (batched && input.attentionMask !== undefined && input.attentionMask.length !== input.ids.length) {
      throw failure('INVALID_ARGUMENT', 'attention: an encoding needs an attentionMask for every element', site);
    }
    return fromIds(rows(input.ids)!, rows(input.attentionMask), rows(input.tokens), tokenizer, site);
  }
  throw failure(
    'INVALID_ARGUMENT',
    `attention(model, input, options): input must be text, an array of texts, an encoding, or token ids; got ${describeValue(input)}`,
    site,
  );
}

/** Where in forward's output a [B, L, H, S, S] tensor is, if anywhere (top level or one level down). */
function findStacked(output: Value, B: number, S: number): number[] | undefined {
  const fits = (v: Value) => v instanceof Tensor && v.dtype === 'float32' && v.shape.length === 5 && v.shape[0] === B && v.shape[3] === S && v.shape[4] === S;
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

/** The attention modules: the manifest's, else every module whose forward has one softmax (a pattern). */
async function attentionModules(model: Model): Promise<string[]> {
  const listed = model.manifest?.hookPoints?.attention;
  if (listed && listed.length > 0) return listed;
  const found: string[] = [];
  for (const m of model.modules()) {
    if (m.path === '' || !m.hookable) continue;
    if ((await model.nodes(m.path)).some((n) => n.pattern)) found.push(m.path);
  }
  return found;
}

/** The maps of every module, stacked [B, L, H, S, S]; checks that they are probabilities over keys. */
function stackPatterns(captured: Record<string, Value>, modules: string[], batch: Batch, check: boolean, model: Model, site: CallSite): Tensor {
  const layers = modules.map((m) => m + PATTERN_SUFFIX);
  const B = batch.ids.length;
  const S = batch.ids[0].length;
  const first = captured[layers[0]];
  const H = first instanceof Tensor && first.shape.length === 4 ? first.shape[1] : 0;
  const block = H * S * S;
  const out = new Float32Array(B * layers.length * block);
  layers.forEach((layer, l) => {
    const p = captured[layer];
    if (!(p instanceof Tensor) || p.dtype !== 'float32' || p.shape.join() !== [B, H, S, S].join()) {
      const got = p instanceof Tensor ? `${p.dtype} [${p.shape}]` : describeValue(p);
      throw failure('RUNTIME', `attention: '${layer}' gave ${got}, not float32 [${B}, ${H}, ${S}, ${S}] probabilities like '${layers[0]}'`, site);
    }
    const data = p.data() as Float32Array;
    for (let b = 0; b < B; b++) out.set(data.subarray(b * block, (b + 1) * block), (b * layers.length + l) * block);
  });
  if (check) checkRows(out, batch.mask, layers.length * H, S, model, site);
  return tensor(out, [B, layers.length, H, S, S], 'float32');
}

/** Every real token's row sums to 1 over the keys: the softmax found is attention's. */
function checkRows(data: Float32Array, mask: number[][], LH: number, S: number, model: Model, site: CallSite): void {
  mask.forEach((m, b) => {
    for (let k = 0; k < LH; k++) {
      for (let i = 0; i < S; i++) {
        if (m[i] === 0) continue;
        const row = data.subarray(((b * LH + k) * S + i) * S, ((b * LH + k) * S + i + 1) * S);
        const sum = row.reduce((a, x) => a + x, 0);
        if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
          throw failure('RUNTIME', `attention: ${model.path}'s softmax gives rows summing to ${sum}, not 1 over the keys: not an attention pattern`, site);
        }
      }
    }
  });
}

/** Whether no query attends to a later key: a right-padded batch then sees no padding. */
function causal(data: Float32Array, maps: number, S: number): boolean {
  for (let k = 0; k < maps; k++) for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) if (data[(k * S + i) * S + j] !== 0) return false;
  return true;
}

/**
 * Attention probabilities of every layer and head of a transformer for text (tokenized with
 * options.tokenizer; a batch is padded to its longest element), an encoding, or token ids.
 * forward takes (input_ids, attention_mask), both int64 [batch, seq], or input_ids alone (then
 * a batch may be padded only on the right of a causal model, where no real token sees the padding).
 */
export async function attention(model: Model, input: AttentionInput, given: AttentionOptions = {}): Promise<AttentionResult> {
  const site = callSite(attention);
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'attention(model, input, options): model must come from torch.load()', site);
  const options = requiredOptions(given, ATTENTION_KEYS, 'attention', '{ tokenizer }', site);
  if (options.tokenizer !== undefined && typeof options.tokenizer?.encodeBatch !== 'function') {
    throw failure('INVALID_ARGUMENT', 'attention: options.tokenizer must be a tokenizer (torch.Tokenizer, BertTokenizer or Gpt2Tokenizer)', site);
  }
  if (options.maxLength !== undefined) integer(options.maxLength, 'maxLength', { min: options.tokenizer instanceof BertTokenizer ? 2 : 1 }, site);
  const batch = toBatch(input, options, site);
  const B = batch.ids.length;
  const S = batch.ids[0].length;
  const tokens = batch.tokens.map((row, b) => row.filter((_, i) => batch.mask[b][i] === 1));
  const lengths = tokens.map((t) => t.length);
  if (lengths.some((n) => n === 0)) throw failure('INVALID_ARGUMENT', 'attention: every batch element needs at least one real token (attention mask 1)', site);
  const takesMask = model.inputs.length >= 2;
  const padded = batch.mask.some((m) => m.some((x) => x === 0));
  const rightPadded = batch.mask.every((m) => m.every((x, i) => x === 1 || m.slice(i).every((y) => y === 0)));
  if (!takesMask && padded && !rightPadded) {
    throw failure(
      'INVALID_ARGUMENT',
      `attention: ${model.path}'s forward takes no attention mask, so padding would be attended to: pad on the right (paddingSide: 'right')`,
      site,
    );
  }
  const ids = tensor(BigInt64Array.from(batch.ids.flat(), BigInt), [B, S], 'int64');
  const mask = tensor(BigInt64Array.from(batch.mask.flat(), BigInt), [B, S], 'int64');
  const inputs = takesMask ? [ids, mask] : [ids];
  try {
    const attentions = await maps(model, inputs, batch, site);
    const [, layers, heads] = attentions.tensor.shape;
    const data = attentions.tensor.data() as Float32Array;
    if (!takesMask && padded && !causal(data, B * layers * heads, S)) {
      attentions.tensor.dispose();
      throw failure(
        'INVALID_ARGUMENT',
        `attention: ${model.path}'s forward takes no attention mask and its attention is not causal, so padding would be attended to: pass texts of one length, or one at a time`,
        site,
      );
    }
    zeroPadding(data, batch.mask, layers * heads, S);
    return { tokens, lengths, attentions: attentions.tensor, layers, heads, modules: attentions.modules, source: attentions.source };
  } finally {
    ids.dispose();
    mask.dispose();
  }
}

async function maps(
  model: Model,
  inputs: Tensor[],
  batch: Batch,
  site: CallSite,
): Promise<{ tensor: Tensor; modules: string[]; source: AttentionResult['source'] }> {
  const B = batch.ids.length;
  const S = batch.ids[0].length;
  const plan = plans.get(model);
  if (plan?.kind === 'output' || plan === undefined) {
    // The first call runs forward once, capturing the patterns too, in case the output holds no maps.
    const modules = plan === undefined ? await attentionModules(model) : [];
    const result = await run(model, inputs, { capture: modules.map((m) => m + PATTERN_SUFFIX) });
    try {
      const index = findStacked(result.output, B, S);
      if (index !== undefined && (plan === undefined || index.join() === plan.index.join())) {
        const stacked = at(result.output, index);
        disposeValue(result.output, stacked);
        plans.set(model, { kind: 'output', index });
        return { tensor: stacked, modules: [], source: 'output' };
      }
      disposeValue(result.output);
      if (plan !== undefined) throw failure('RUNTIME', `attention: ${model.path} no longer returns attentions at output[${plan.index.join('][')}]`, site);
      if (modules.length === 0) {
        throw failure(
          'INVALID_ARGUMENT',
          `attention: ${model.path} returns no [batch, layers, heads, seq, seq] attentions and no module's forward computes a softmax ` +
            "to read them from; a model with fused attention (SDPA) has none: export it with eager attention (attn_implementation='eager')",
          site,
        );
      }
      const stacked = stackPatterns(result.activations, modules, batch, true, model, site);
      plans.set(model, { kind: 'pattern', modules });
      return { tensor: stacked, modules, source: 'pattern' };
    } finally {
      disposeValue(result.activations);
    }
  }
  const captured = await activations(
    model,
    plan.modules.map((m) => m + PATTERN_SUFFIX),
    ...inputs,
  );
  try {
    return { tensor: stackPatterns(captured, plan.modules, batch, false, model, site), modules: plan.modules, source: 'pattern' };
  } finally {
    disposeValue(captured);
  }
}
