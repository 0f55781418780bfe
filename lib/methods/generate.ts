// Text generation with a causal language model (a forward returning [batch, seq, vocab] logits,
// as a traced GPT-2 or Llama does): one forward per new token, greedy by default, or sampled with
// a temperature and top-k from a seeded generator; a stream of tokens as an async iterator. Any
// tokenizer with encode and decode (Tokenizer, Gpt2Tokenizer) makes and reads the text; with
// none, the prompt is token ids and the results are ids.
import { callSite, CallSite, failure } from '../core/errors';
import { streamedRun } from '../core/stream';
import { abortSignal, checkOptions, describeValue, finiteNumber, integer, optionKeys, positiveInteger } from '../core/validate';
import { Model } from '../model/model';
import { disposeValue, Tensor, tensor } from '../model/tensor';
import { run, SpliceOptions } from './activations';
import { PatchSpec } from './patch';

/** What generation needs of a tokenizer: torch.Tokenizer and Gpt2Tokenizer have it. */
export interface GenerateTokenizer {
  /** The prompt's ids (a Tokenizer adds its special tokens, BOS included, as transformers does). */
  encode(text: string): { ids: number[] };
  decode(ids: number[]): string;
  /** Ids run from 0 to this, exclusive (Tokenizer), when the tokenizer says. */
  readonly vocabSize?: number;
  /** The same, as Gpt2Tokenizer spells it. */
  readonly vocabularySize?: number;
}

export interface GenerateOptions extends SpliceOptions {
  /** New tokens at most. Default 20. */
  maxNewTokens?: number;
  /** 0 (default): greedy, the most likely token; above 0: sampled from softmax(logits / temperature). */
  temperature?: number;
  /** Sample among the k most likely tokens only. Default: all. */
  topK?: number;
  /** Seeds the sampling (reproducible). Default 0. */
  seed?: number;
  /** Stop once the text ends with one of these strings (a tokenizer is needed), or a token is one of these ids (e.g. the tokenizer's eosTokenId). */
  stop?: string | number | (string | number)[];
  signal?: AbortSignal;
  /** Patches applied at every step (steering: { 'model.layers.3': { add: vector } }), as torch.run takes them. */
  patch?: Record<string, PatchSpec>;
}

export interface GeneratedToken {
  id: number;
  /** Its text (may hold U+FFFD while a character spans several tokens); '' without a tokenizer. */
  text: string;
  index: number;
}

export interface GenerateResult {
  /** The prompt's ids followed by the new ones. */
  ids: number[];
  /** The new tokens alone, and the decoded new text ('' without a tokenizer). */
  newIds: number[];
  text: string;
  /** Why it stopped: 'length', 'stop' or 'aborted'. */
  finish: 'length' | 'stop' | 'aborted';
}

/** A generation in progress: iterate for tokens, await `result` for the outcome. */
export interface GenerateRun extends AsyncIterable<GeneratedToken> {
  readonly result: Promise<GenerateResult>;
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The logits of a forward's output: the tensor, a tuple's first, or a record's (a Hugging Face output of an exported program) `logits`. */
function logitsOf(output: unknown): unknown {
  if (output instanceof Tensor) return output;
  if (Array.isArray(output)) return output.find((v) => v instanceof Tensor);
  if (output !== null && typeof output === 'object') {
    const record = output as Record<string, unknown>;
    return record.logits instanceof Tensor ? record.logits : Object.values(record).find((v) => v instanceof Tensor);
  }
  return output;
}

/** The next token from one position's logits: argmax (first of ties), or a seeded sample. */
function choose(logits: ArrayLike<number>, temperature: number, topK: number, next: () => number): number {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const order = Array.from({ length: logits.length }, (_, i) => i);
  const kept = topK > 0 && topK < logits.length ? order.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK) : order;
  const top = Math.max(...kept.map((i) => logits[i]));
  const weights = kept.map((i) => Math.exp((logits[i] - top) / temperature));
  let u = next() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < kept.length; j++) {
    u -= weights[j];
    if (u < 0) return kept[j];
  }
  return kept[kept.length - 1];
}

const GENERATE_KEYS = optionKeys<GenerateOptions>({
  maxNewTokens: true,
  temperature: true,
  topK: true,
  seed: true,
  stop: true,
  signal: true,
  patch: true,
  saes: true,
  errorTerm: true,
});

function settings(given: GenerateOptions | undefined, site: CallSite) {
  const options = checkOptions(given, GENERATE_KEYS, 'generate', site);
  const stops = options.stop === undefined ? [] : Array.isArray(options.stop) ? options.stop : [options.stop];
  if (!stops.every((s) => (typeof s === 'string' && s !== '') || Number.isInteger(s)))
    throw failure('INVALID_ARGUMENT', 'stop holds non-empty strings or token ids', site);
  return {
    maxNewTokens: positiveInteger(options.maxNewTokens ?? 20, 'maxNewTokens', site),
    temperature: finiteNumber(options.temperature ?? 0, 'temperature', { min: 0 }, site),
    // 0: every token.
    topK: integer(options.topK ?? 0, 'topK', { min: 0 }, site),
    seed: integer(options.seed ?? 0, 'seed', { min: 0 }, site),
    stops,
    signal: abortSignal(options.signal, site),
    // Each step a run with these, or a plain forward without.
    steering:
      options.patch === undefined && options.saes === undefined ? undefined : { patch: options.patch, saes: options.saes, errorTerm: options.errorTerm },
  };
}

/** What a generation has made so far (read when a loop over it stops early). */
interface Progress {
  ids: number[];
  newIds: number[];
}

/** The prompt's ids, checked: integers in the tokenizer's vocabulary when it says how large that is. */
function promptIds(tokenizer: GenerateTokenizer | undefined, prompt: string | number[], site: CallSite): number[] {
  if (typeof prompt === 'string') {
    if (!tokenizer) throw failure('INVALID_ARGUMENT', 'generate: a text prompt needs a tokenizer (or give token ids)', site);
    return [...tokenizer.encode(prompt).ids];
  }
  if (!Array.isArray(prompt)) throw failure('INVALID_ARGUMENT', `generate: the prompt must be a text or token ids, got ${describeValue(prompt)}`, site);
  const size = tokenizer?.vocabSize ?? tokenizer?.vocabularySize;
  for (const id of prompt) {
    if (!Number.isSafeInteger(id) || id < 0 || (size !== undefined && id >= size)) {
      throw failure('INVALID_ARGUMENT', `generate: token id ${describeValue(id)} is not in the vocabulary${size !== undefined ? ` [0, ${size})` : ''}`, site);
    }
  }
  return [...prompt];
}

async function* drive(
  model: Model,
  tokenizer: GenerateTokenizer | undefined,
  prompt: string | number[],
  options: GenerateOptions | undefined,
  progress: Progress,
  site: CallSite,
): AsyncGenerator<GeneratedToken, GenerateResult> {
  if (!(model instanceof Model)) throw failure('INVALID_ARGUMENT', 'generate(model, tokenizer, prompt): model must come from torch.load()', site);
  const { maxNewTokens, temperature, topK, seed, stops, signal, steering } = settings(options, site);
  if (!tokenizer && stops.some((s) => typeof s === 'string'))
    throw failure('INVALID_ARGUMENT', 'generate: stop strings need a tokenizer (or stop at ids)', site);
  const ids = promptIds(tokenizer, prompt, site);
  if (ids.length === 0) throw failure('INVALID_ARGUMENT', 'the prompt is empty: give at least one token', site);
  const decode = (tokens: number[]) => (tokenizer ? tokenizer.decode(tokens) : '');
  const next = random(seed);
  const newIds: number[] = [];
  progress.ids = ids;
  progress.newIds = newIds;
  let finish: GenerateResult['finish'] = 'length';
  while (newIds.length < maxNewTokens) {
    if (signal?.aborted) {
      finish = 'aborted';
      break;
    }
    const input = tensor(BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const output = steering
      ? (await run(model, [input], { ...steering, ...(signal ? { signal } : {}) })).output
      : await model.forward(input, ...(signal ? [{ signal }] : []));
    input.dispose();
    const logits = logitsOf(output);
    disposeValue(output, logits instanceof Tensor ? logits : undefined);
    if (!(logits instanceof Tensor) || logits.shape.length !== 3 || logits.shape[1] !== ids.length) {
      throw failure(
        'SHAPE',
        `generate needs a forward returning [1, seq, vocab] logits; the model returned ${logits instanceof Tensor ? `[${logits.shape}]` : typeof logits}`,
        site,
      );
    }
    const vocab = logits.shape[2];
    const row = (logits.data() as Float32Array).subarray((ids.length - 1) * vocab, ids.length * vocab);
    const id = choose(row, temperature, topK, next);
    logits.dispose();
    ids.push(id);
    newIds.push(id);
    yield { id, text: decode([id]), index: newIds.length - 1 };
    const text = decode(newIds);
    if (stops.some((s) => (typeof s === 'number' ? s === id : text.endsWith(s)))) {
      finish = 'stop';
      break;
    }
  }
  return { ids, newIds, text: decode(newIds), finish };
}

/**
 * Continues a prompt (text, or token ids) with a causal language model. The tokenizer
 * (torch.Tokenizer, Gpt2Tokenizer, or null for ids alone) makes the prompt's ids and the text.
 * Iterate the run for tokens as they come; `await run.result` for the whole text.
 */
export function generate(model: Model, tokenizer: GenerateTokenizer | null | undefined, prompt: string | number[], options?: GenerateOptions): GenerateRun;
/** Continues token ids with no tokenizer: the results are ids (their text fields ''). */
export function generate(model: Model, prompt: number[], options?: GenerateOptions): GenerateRun;
export function generate(
  model: Model,
  tokenizerOrIds: GenerateTokenizer | number[] | null | undefined,
  promptOrOptions?: string | number[] | GenerateOptions,
  options?: GenerateOptions,
): GenerateRun {
  const site = callSite(generate);
  const idsAlone = Array.isArray(tokenizerOrIds);
  const tokenizer = idsAlone ? undefined : (tokenizerOrIds ?? undefined);
  if (tokenizer !== undefined && (typeof tokenizer.encode !== 'function' || typeof tokenizer.decode !== 'function')) {
    throw failure(
      'INVALID_ARGUMENT',
      `generate: tokenizer must have encode and decode (torch.Tokenizer, Gpt2Tokenizer) or be null, got ${describeValue(tokenizer)}`,
      site,
    );
  }
  const prompt = (idsAlone ? tokenizerOrIds : promptOrOptions) as string | number[];
  const given = (idsAlone ? promptOrOptions : options) as GenerateOptions | undefined;
  const progress: Progress = { ids: [], newIds: [] };
  // The loop stopped early (break): the result holds what was made.
  const stopped = (): GenerateResult => ({
    ids: progress.ids,
    newIds: progress.newIds,
    text: tokenizer ? tokenizer.decode(progress.newIds) : '',
    finish: 'aborted',
  });
  return streamedRun(drive(model, tokenizer, prompt, given, progress, site), stopped, 'a generation', site);
}
