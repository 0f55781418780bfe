// Text generation with a causal language model (a forward returning [batch, seq, vocab] logits,
// as a traced GPT-2 or Llama does), greedy by default, or sampled with a temperature and top-k
// from a seeded generator; a stream of tokens as an async iterator. With the model's cached
// decoding step (model.decodeStep) it prefills the prompt once and then runs one token per step,
// the past keys and values carried; without one, one forward over the whole sequence per token.
// Any tokenizer with encode and decode (Tokenizer, Gpt2Tokenizer) makes and reads the text; with
// none, the prompt is token ids and the results are ids.
import { callSite, CallSite, failure } from '../core/errors';
import { streamedRun } from '../core/stream';
import { abortSignal, boolean, checkOptions, describeValue, finiteNumber, integer, optionKeys, positiveInteger } from '../core/validate';
import { Model } from '../model/model';
import { castHost, FLOAT_DTYPES, FloatDType } from '../io/host-tensor';
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
  /**
   * Patches applied at every step (steering: { 'model.layers.3': { add: vector } }), as torch.run
   * takes them on the whole sequence. Patch `positions` count from the prompt's start and lie in
   * the prompt; negative ones (from the end, which moves) make each step rerun the whole sequence.
   */
  patch?: Record<string, PatchSpec>;
  /**
   * Use the model's cached decoding step (model.decodeStep) when it has one. Default true; false
   * reruns the whole sequence for every token (the same tokens, slower).
   */
  cache?: boolean;
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
  /** Whether it ran the cached decoding step (one token per step) rather than the whole sequence per token. */
  cached: boolean;
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
  cache: true,
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
    cache: boolean(options.cache ?? true, 'cache', site),
    // Each step a run with these, or a plain forward without.
    steering:
      options.patch === undefined && options.saes === undefined ? undefined : { patch: options.patch, saes: options.saes, errorTerm: options.errorTerm },
  };
}

/** What a generation has made so far (read when a loop over it stops early). */
interface Progress {
  ids: number[];
  newIds: number[];
  cached: boolean;
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

type Steering = NonNullable<ReturnType<typeof settings>['steering']>;

/** Runs the model for the next token: given every id so far, the last position's logits. */
interface Stepper {
  readonly cached: boolean;
  next(ids: number[]): Promise<Float32Array>;
  dispose(): void;
}

/** A copy of the last position's logits of [1, length, vocab] logits; the logits are disposed. */
function lastRow(logits: unknown, length: number, what: string, site: CallSite): Float32Array {
  if (!(logits instanceof Tensor) || logits.shape.length !== 3 || logits.shape[0] !== 1 || logits.shape[1] !== length) {
    if (logits instanceof Tensor) logits.dispose();
    throw failure(
      'SHAPE',
      `generate needs ${what} returning [1, ${length}, vocab] logits; it returned ${logits instanceof Tensor ? `[${logits.shape}]` : typeof logits}`,
      site,
    );
  }
  if (!(FLOAT_DTYPES as readonly string[]).includes(logits.dtype)) {
    logits.dispose();
    throw failure('DTYPE', `generate needs floating logits; ${what} returned ${logits.dtype}`, site);
  }
  const vocab = logits.shape[2];
  const words = logits.data() as Float32Array | Float64Array | Uint16Array;
  const last = { data: words.slice((length - 1) * vocab, length * vocab), dtype: logits.dtype as FloatDType, shape: [vocab] };
  logits.dispose();
  // A reduced-precision model's logits come as raw bfloat16 / float16 words unless upcast.
  return castHost(last, 'float32').data as Float32Array;
}

/** One forward over the whole sequence per token. */
function wholeSequence(model: Model, steering: Steering | undefined, signal: AbortSignal | undefined, site: CallSite): Stepper {
  return {
    cached: false,
    async next(ids) {
      const input = tensor(BigInt64Array.from(ids, BigInt), [1, ids.length]);
      try {
        const output = steering
          ? (await run(model, [input], { ...steering, ...(signal ? { signal } : {}) })).output
          : await model.forward(input, ...(signal ? [{ signal }] : []));
        const logits = logitsOf(output);
        disposeValue(output, logits instanceof Tensor ? logits : undefined);
        return lastRow(logits, ids.length, 'a forward', site);
      } finally {
        input.dispose();
      }
    },
    dispose() {},
  };
}

/** Integer patch positions, or undefined where they are absent or not integers (run says what is wrong). */
function integerPositions(spec: PatchSpec): number[] | undefined {
  const positions: unknown = spec?.positions;
  return Array.isArray(positions) && positions.every((p) => Number.isInteger(p)) ? (positions as number[]) : undefined;
}

/**
 * Whether a cached step computes what a whole-sequence run computes with these patches: not when
 * a patch's positions count from the end (they move with each token) or are [y, x] pairs.
 */
function cacheable(patch: Record<string, PatchSpec> | undefined): boolean {
  return Object.values(patch ?? {}).every((spec) => {
    const positions: unknown = spec?.positions;
    return !Array.isArray(positions) || positions.every((p) => !Array.isArray(p) && !(Number.isInteger(p) && (p as number) < 0));
  });
}

/**
 * The patches of a cached step over the sequence's positions [start, start + length): positions
 * shifted into the step, a patch whose positions all lie outside it left out (its positions were
 * patched when they were new, and their keys and values carry the patch).
 */
function stepPatches(patch: Record<string, PatchSpec> | undefined, start: number, length: number): Record<string, PatchSpec> | undefined {
  if (patch === undefined || typeof patch !== 'object' || patch === null) return patch;
  const out: Record<string, PatchSpec> = {};
  for (const [layer, spec] of Object.entries(patch)) {
    const positions = integerPositions(spec);
    if (positions === undefined) {
      out[layer] = spec;
      continue;
    }
    const inside = positions.filter((p) => p >= start && p < start + length).map((p) => p - start);
    if (inside.length > 0) out[layer] = { ...spec, positions: inside };
  }
  return out;
}

/** The prompt through the decoding step once, then one token per step, the past keys and values carried. */
function cachedSteps(
  step: Model,
  past: [number, number][],
  steering: Steering | undefined,
  prompt: number,
  signal: AbortSignal | undefined,
  site: CallSite,
): Stepper {
  for (const [layer, spec] of Object.entries(steering?.patch ?? {})) {
    const beyond = integerPositions(spec)?.find((p) => p >= prompt);
    if (beyond !== undefined)
      throw failure(
        'INVALID_ARGUMENT',
        `patch '${layer}': position ${beyond} is past the prompt's ${prompt} tokens (positions count from the prompt's start)`,
        site,
      );
  }
  // An empty past (size 0 along the positions): the first step prefills.
  let cache: Tensor[] = past.map(([heads, dim]) => tensor(new Float32Array(0), [1, heads, 0, dim]));
  let done = 0;
  return {
    cached: true,
    async next(ids) {
      const fresh = ids.slice(done);
      const input = tensor(BigInt64Array.from(fresh, BigInt), [1, fresh.length]);
      let output: unknown;
      try {
        output = steering
          ? (await run(step, [input, ...cache], { ...steering, patch: stepPatches(steering.patch, done, fresh.length), ...(signal ? { signal } : {}) })).output
          : await step.forward(input, ...cache, ...(signal ? [{ signal }] : []));
      } finally {
        input.dispose();
      }
      if (!Array.isArray(output) || output.length !== cache.length + 1 || !output.every((t) => t instanceof Tensor)) {
        disposeValue(output);
        throw failure(
          'SHAPE',
          `the decoding step '${step.path}' must return [logits, ...${cache.length} keys and values]; it returned ${describeValue(output)}`,
          site,
        );
      }
      const [logits, ...present] = output as Tensor[];
      for (const t of cache) t.dispose();
      cache = present;
      done = ids.length;
      return lastRow(logits, fresh.length, `the decoding step '${step.path}'`, site);
    },
    dispose() {
      for (const t of cache) t.dispose();
    },
  };
}

/** Says once per model file that generation reruns the whole sequence, and how to get a cached step. */
const warnedUncached = new Set<string>();
function warnUncached(model: Model): void {
  if (warnedUncached.has(model.path)) return;
  warnedUncached.add(model.path);
  const why =
    model.manifest?.decodeStepRefused ?? (model.manifest?.decodeStep ? 'it was loaded with { decodeStep: false }' : 'no manifest beside it names one');
  process.emitWarning(`torch.generate reruns the whole sequence for every token: '${model.path}' has no cached decoding step (${why})`, {
    code: 'TORCHSCOPE_UNCACHED_GENERATION',
    detail: '`npx torchscope export <Hugging Face folder> --out model.pt` writes a causal LM with its cached decoding step (model.decode.pt) beside it.',
  });
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
  const { maxNewTokens, temperature, topK, seed, stops, signal, steering, cache } = settings(options, site);
  if (!tokenizer && stops.some((s) => typeof s === 'string'))
    throw failure('INVALID_ARGUMENT', 'generate: stop strings need a tokenizer (or stop at ids)', site);
  const ids = promptIds(tokenizer, prompt, site);
  if (ids.length === 0) throw failure('INVALID_ARGUMENT', 'the prompt is empty: give at least one token', site);
  const decode = (tokens: number[]) => (tokenizer ? tokenizer.decode(tokens) : '');
  const next = random(seed);
  const newIds: number[] = [];
  const step = model.decodeStep;
  const past = model.manifest?.decodeStep?.past;
  if (cache && !step) warnUncached(model);
  const stepper =
    cache && step && past && cacheable(steering?.patch)
      ? cachedSteps(step, past, steering, ids.length, signal, site)
      : wholeSequence(model, steering, signal, site);
  progress.ids = ids;
  progress.newIds = newIds;
  progress.cached = stepper.cached;
  let finish: GenerateResult['finish'] = 'length';
  try {
    while (newIds.length < maxNewTokens) {
      if (signal?.aborted) {
        finish = 'aborted';
        break;
      }
      const id = choose(await stepper.next(ids), temperature, topK, next);
      ids.push(id);
      newIds.push(id);
      yield { id, text: decode([id]), index: newIds.length - 1 };
      const text = decode(newIds);
      if (stops.some((s) => (typeof s === 'number' ? s === id : text.endsWith(s)))) {
        finish = 'stop';
        break;
      }
    }
  } finally {
    stepper.dispose();
  }
  return { ids, newIds, text: decode(newIds), finish, cached: stepper.cached };
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
  const progress: Progress = { ids: [], newIds: [], cached: false };
  // The loop stopped early (break): the result holds what was made.
  const stopped = (): GenerateResult => ({
    ids: progress.ids,
    newIds: progress.newIds,
    text: tokenizer ? tokenizer.decode(progress.newIds) : '',
    finish: 'aborted',
    cached: progress.cached,
  });
  return streamedRun(drive(model, tokenizer, prompt, given, progress, site), stopped, 'a generation', site);
}
