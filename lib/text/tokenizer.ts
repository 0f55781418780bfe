// Any Hugging Face tokenizer (tokenizer.json): byte-level BPE (GPT-2, Llama 3, Qwen, Pythia),
// SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma), Unigram (T5) and
// WordPiece (BERT). The pipeline is @huggingface/tokenizers' (given the Rust library's behaviour
// where it differs, tokenizer-fixes.ts); this adds what transformers' fast tokenizer adds over it:
// special tokens by role, truncation and padding as the Rust library does them, batches, decode
// options, and the model's chat template. test/hf-tokenizer.test.ts compares it with Python.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { promises as fs } from 'fs';
import * as path from 'path';

import { callSite, CallSite, failure } from '../core/errors';
import { MAX_CHAT_TEMPLATE_BYTES, MAX_TOKENIZER_CONFIG_BYTES, MAX_TOKENIZER_JSON_BYTES } from '../core/limits';
import { boolean, checkOptions, describeValue, isRecord, oneOf, optionKeys, positiveInteger, string } from '../core/validate';
import { BatchEncoding, EncodeInput, Encoding } from './bert-tokenizer';
import { ChatMessage, ChatTemplateOptions, ChatTemplates } from './chat-template';
import { checkTokenizerJson, readBounded, readJsonObject, settingsFromConfig, SPECIAL_ROLES, TokenizerOptions } from './tokenizer-files';
import { matchRust, SplitLog } from './tokenizer-fixes';

export type { TokenizerOptions } from './tokenizer-files';

/** The strategies of Hugging Face's truncation; true is 'longest_first'. */
export type TokenizerTruncation = boolean | 'longest_first' | 'only_first' | 'only_second';

export interface TokenizerEncodeOptions {
  /** Add the special tokens of the tokenizer's post-processor (BOS, [CLS] ... [SEP], EOS...). Default true. */
  addSpecialTokens?: boolean;
  /** Longest result, special tokens included. Given, truncation defaults to 'longest_first' (as in transformers). */
  maxLength?: number;
  /** Default: on when maxLength is given. true without maxLength cuts to the model's maximum length. */
  truncation?: TokenizerTruncation;
  /** Which end truncation cuts. Default: the tokenizer's (tokenizer_config.json's truncation_side, else 'right'). */
  truncationSide?: 'left' | 'right';
}

export interface TokenizerBatchOptions extends TokenizerEncodeOptions {
  /** 'longest' (default): to the longest sequence of the batch; 'max_length': to maxLength (or the model's maximum length). */
  padding?: 'longest' | 'max_length';
  /** Where padding goes. Default: the tokenizer's (padding_side, else 'right'); 'left' for generation batches. */
  paddingSide?: 'left' | 'right';
}

export interface TokenizerDecodeOptions {
  /** Leave out the special tokens (BOS, EOS, padding, added special tokens). Default false, as in transformers. */
  skipSpecialTokens?: boolean;
  /** Remove the space before punctuation and in contractions. Default: the config's clean_up_tokenization_spaces, else false. */
  cleanUpTokenizationSpaces?: boolean;
}

/** A batch of encodings padded to one length, and the side the padding went. */
export interface TokenizerBatchEncoding extends BatchEncoding {
  paddingSide: 'left' | 'right';
}

type Side = 'left' | 'right';
type Strategy = 'longest_first' | 'only_first' | 'only_second';

const SIDES = ['left', 'right'] as const;
const PADDINGS = ['longest', 'max_length'] as const;
const TRUNCATIONS: readonly TokenizerTruncation[] = [true, false, 'longest_first', 'only_first', 'only_second'];
const OPTION_KEYS = optionKeys<TokenizerOptions>({
  bosToken: true,
  eosToken: true,
  unkToken: true,
  padToken: true,
  sepToken: true,
  clsToken: true,
  maskToken: true,
  chatTemplate: true,
  paddingSide: true,
  truncationSide: true,
  modelMaxLength: true,
  addBosToken: true,
  addEosToken: true,
  cleanUpTokenizationSpaces: true,
});
const ENCODE_KEYS = optionKeys<TokenizerEncodeOptions>({ addSpecialTokens: true, maxLength: true, truncation: true, truncationSide: true });
const BATCH_KEYS = optionKeys<TokenizerBatchOptions>({
  addSpecialTokens: true,
  maxLength: true,
  truncation: true,
  truncationSide: true,
  padding: true,
  paddingSide: true,
});
const DECODE_KEYS = optionKeys<TokenizerDecodeOptions>({ skipSpecialTokens: true, cleanUpTokenizationSpaces: true });

// Content tokens stand in the post-processor's input as markers (no token holds a NUL): what
// comes out that is not a marker is a special token it added.
const MARK_A = '\u0000a';
const MARK_B = '\u0000b';

/** A sequence being encoded: ids, their token strings, and how many tokens each pre-tokenized split (or added token) gave. */
interface Part {
  ids: number[];
  tokens: string[];
  splits: number[];
}

/** Checks options given to fromFile / fromPretrained. */
function checkSettings(given: TokenizerOptions | undefined, what: string, site: CallSite): TokenizerOptions {
  const options = checkOptions(given, OPTION_KEYS, what, site);
  const settings: TokenizerOptions = {};
  for (const [key] of SPECIAL_ROLES) if (options[key] !== undefined) settings[key] = string(options[key], key, site);
  if (options.chatTemplate !== undefined) {
    const template = options.chatTemplate;
    const named = isRecord(template) && Object.values(template).every((t) => typeof t === 'string');
    if (typeof template !== 'string' && !named)
      throw failure('INVALID_ARGUMENT', `chatTemplate must be a string or { name: template }, got ${describeValue(template)}`, site);
    settings.chatTemplate = template;
  }
  if (options.paddingSide !== undefined) settings.paddingSide = oneOf(options.paddingSide, 'paddingSide', SIDES, site);
  if (options.truncationSide !== undefined) settings.truncationSide = oneOf(options.truncationSide, 'truncationSide', SIDES, site);
  if (options.modelMaxLength !== undefined) settings.modelMaxLength = positiveInteger(options.modelMaxLength, 'modelMaxLength', site);
  for (const key of ['addBosToken', 'addEosToken', 'cleanUpTokenizationSpaces'] as const) {
    if (options[key] !== undefined) settings[key] = boolean(options[key], key, site);
  }
  return settings;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * A Hugging Face tokenizer (any tokenizer.json: byte-level BPE, SentencePiece-style BPE with
 * byte fallback, Unigram, WordPiece), with its special tokens, sides and chat template from
 * tokenizer_config.json. Ids, tokens and text equal Python's `tokenizers`; batches, truncation
 * and chat templates equal transformers'.
 */
export class Tokenizer {
  /** Number of ids: ids run from 0 to vocabSize - 1 (added tokens included). */
  readonly vocabSize: number;
  /** The special tokens by role (tokenizer_config.json's bos_token...), when the tokenizer has them. */
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly padToken: string | undefined;
  /** The config's unk_token, else the model's. */
  readonly unkToken: string | undefined;
  /** The ids of those tokens. */
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  readonly unkTokenId: number | undefined;
  /** Longest input the model takes (tokenizer_config.json's model_max_length), when known. */
  readonly modelMaxLength: number | undefined;
  /** The default sides of padding and truncation (tokenizer_config.json's, else 'right'). */
  readonly paddingSide: 'left' | 'right';
  readonly truncationSide: 'left' | 'right';
  /** The chat template(s) the tokenizer came with. */
  readonly chatTemplate: string | Record<string, string> | undefined;

  private readonly hf: HfTokenizer;
  private readonly settings: TokenizerOptions;
  private readonly templates: ChatTemplates;
  private readonly splitLog: SplitLog;
  // Special tokens the post-processor adds around one sequence, and around a pair.
  private readonly added: { single: number; pair: number };

  private constructor(json: Record<string, unknown>, settings: TokenizerOptions, file: string, site: CallSite) {
    checkTokenizerJson(json, file, site);
    addNamedSpecials(json, settings);
    if (settings.addBosToken !== undefined || settings.addEosToken !== undefined) json.post_processor = bosEosTemplate(settings);
    try {
      this.hf = new HfTokenizer(json, { eos_token: settings.eosToken });
    } catch (error) {
      throw failure('INVALID_ARGUMENT', `tokenizer file '${file}': ${(error as Error).message}`, site);
    }
    this.splitLog = matchRust(this.hf, json as Parameters<typeof matchRust>[1]);
    this.settings = settings;
    this.vocabSize = this.hf.model?.vocab.length ?? 0;
    const id = (token: string | undefined) => (token === undefined ? undefined : this.hf.token_to_id(token));
    this.bosToken = settings.bosToken;
    this.eosToken = settings.eosToken;
    this.padToken = settings.padToken;
    this.unkToken = settings.unkToken ?? this.hf.model?.unk_token;
    this.bosTokenId = id(this.bosToken);
    this.eosTokenId = id(this.eosToken);
    this.padTokenId = id(this.padToken);
    this.unkTokenId = id(this.unkToken);
    this.modelMaxLength = settings.modelMaxLength;
    this.paddingSide = settings.paddingSide ?? 'right';
    this.truncationSide = settings.truncationSide ?? 'right';
    this.chatTemplate = settings.chatTemplate;
    this.templates = new ChatTemplates(settings.chatTemplate);
    const empty = (): Part => ({ ids: [], tokens: [], splits: [] });
    const count = (pair: boolean) => this.postProcess(empty(), pair ? empty() : null, true).ids.length;
    this.added = { single: count(false), pair: count(true) };
  }

  /** Loads a tokenizer.json; `options` says what a tokenizer_config.json would (special tokens by role, chat template...). */
  static async fromFile(tokenizerJson: string, options?: TokenizerOptions): Promise<Tokenizer> {
    const site = callSite(Tokenizer.fromFile);
    string(tokenizerJson, 'tokenizerJson', site);
    const settings = checkSettings(options, 'Tokenizer.fromFile', site);
    const json = await readJsonObject(tokenizerJson, MAX_TOKENIZER_JSON_BYTES, 'tokenizer file', site);
    return new Tokenizer(json, settings, tokenizerJson, site);
  }

  /**
   * Loads a Hugging Face tokenizer folder (what save_pretrained writes): tokenizer.json, and
   * tokenizer_config.json and chat_template.jinja when there. `options` override the config.
   */
  static async fromPretrained(dir: string, options?: TokenizerOptions): Promise<Tokenizer> {
    const site = callSite(Tokenizer.fromPretrained);
    string(dir, 'dir', site);
    const overrides = checkSettings(options, 'Tokenizer.fromPretrained', site);
    const file = path.join(dir, 'tokenizer.json');
    const json = await readJsonObject(file, MAX_TOKENIZER_JSON_BYTES, 'tokenizer file', site);
    const configFile = path.join(dir, 'tokenizer_config.json');
    const settings = (await exists(configFile))
      ? settingsFromConfig(await readJsonObject(configFile, MAX_TOKENIZER_CONFIG_BYTES, 'tokenizer config', site), configFile, site)
      : {};
    // As transformers: chat_template.jinja, when there, is the template.
    const templateFile = path.join(dir, 'chat_template.jinja');
    if (await exists(templateFile)) settings.chatTemplate = await readBounded(templateFile, MAX_CHAT_TEMPLATE_BYTES, 'chat template', site);
    return new Tokenizer(json, { ...settings, ...overrides }, file, site);
  }

  /** The id of a token (its text as the vocabulary writes it: 'Ġcat', '▁cat', '##at'), or undefined. */
  tokenToId(token: string): number | undefined {
    return typeof token === 'string' ? this.hf.token_to_id(token) : undefined;
  }

  /** The token of an id, or undefined outside the vocabulary. */
  idToToken(id: number): string | undefined {
    return Number.isSafeInteger(id) && id >= 0 ? this.hf.id_to_token(id) : undefined;
  }

  /** Token ids of a text, or of a pair of texts (cross-encoders: the second gets type id 1). */
  encode(input: EncodeInput, options?: TokenizerEncodeOptions): Encoding {
    const site = callSite(this.encode);
    const checked = checkOptions(options, ENCODE_KEYS, 'encode', site);
    return this.encodeOne(input, this.resolve(checked, site), 'encode(input)', site);
  }

  /** Encodes each input, then pads them to one length with the pad token (attention mask 0). */
  encodeBatch(inputs: readonly EncodeInput[], options?: TokenizerBatchOptions): TokenizerBatchEncoding {
    const site = callSite(this.encodeBatch);
    const checked = checkOptions(options, BATCH_KEYS, 'encodeBatch', site);
    if (!Array.isArray(inputs)) throw failure('INVALID_ARGUMENT', `encodeBatch(inputs): inputs must be an array, got ${describeValue(inputs)}`, site);
    const padding = oneOf(checked.padding ?? 'longest', 'padding', PADDINGS, site);
    const side = oneOf(checked.paddingSide ?? this.paddingSide, 'paddingSide', SIDES, site);
    const settings = this.resolve(checked, site);
    const encodings = inputs.map((input, i) => this.encodeOne(input, settings, `encodeBatch(inputs[${i}])`, site));
    let length = encodings.reduce((m, e) => Math.max(m, e.ids.length), 0);
    if (padding === 'max_length') {
      const target = checked.maxLength ?? this.modelMaxLength;
      if (target === undefined) throw failure('INVALID_ARGUMENT', "padding 'max_length' needs maxLength (the tokenizer has no model_max_length)", site);
      length = target;
    }
    if (encodings.some((e) => e.ids.length < length) && this.padTokenId === undefined) {
      throw failure('INVALID_ARGUMENT', 'this tokenizer has no pad token: give padToken when loading it (often the EOS token)', site);
    }
    // As Hugging Face: a sequence longer than the target (possible without truncation) is not cut.
    const pad = <T>(values: T[], fill: T): T[] => {
      const extra = new Array<T>(Math.max(0, length - values.length)).fill(fill);
      return side === 'left' ? extra.concat(values) : values.concat(extra);
    };
    return {
      ids: encodings.map((e) => pad(e.ids, this.padTokenId as number)),
      tokens: encodings.map((e) => pad(e.tokens, this.padToken as string)),
      typeIds: encodings.map((e) => pad(e.typeIds, 0)),
      attentionMask: encodings.map((e) => pad(e.attentionMask, 0)),
      paddingSide: side,
    };
  }

  /** The text of token ids, as the tokenizer's decoder writes it. */
  decode(ids: ArrayLike<number | bigint>, options?: TokenizerDecodeOptions): string {
    const site = callSite(this.decode);
    const checked = checkOptions(options, DECODE_KEYS, 'decode', site);
    const skip = boolean(checked.skipSpecialTokens ?? false, 'skipSpecialTokens', site);
    const cleanUp = boolean(checked.cleanUpTokenizationSpaces ?? this.settings.cleanUpTokenizationSpaces ?? false, 'cleanUpTokenizationSpaces', site);
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw failure('INVALID_ARGUMENT', `decode(ids): ids must be an array of token ids, got ${describeValue(ids)}`, site);
    }
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const raw = ids[i];
      const id = typeof raw === 'bigint' ? Number(raw) : raw;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw failure('INVALID_ARGUMENT', `decode(ids): ids[${i}] = ${String(raw)} is not a token id (0 to ${this.vocabSize - 1})`, site);
      }
      list.push(id);
    }
    // (the library refuses an empty list)
    return list.length === 0 ? '' : this.hf.decode(list, { skip_special_tokens: skip, clean_up_tokenization_spaces: cleanUp });
  }

  /**
   * Renders a conversation with the model's chat template, as transformers'
   * apply_chat_template(messages, tokenize=False) does; with `tokenize`, its Encoding.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions & { tokenize?: false }): string;
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions & { tokenize: true }): Encoding;
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string | Encoding {
    const site = callSite(this.applyChatTemplate);
    const specials: Record<string, string> = {};
    for (const [key, name] of SPECIAL_ROLES) {
      const token = this.settings[key];
      if (token !== undefined) specials[name] = token;
    }
    const text = this.templates.render(messages, options, specials, site);
    if (!boolean(options?.tokenize ?? false, 'tokenize', site)) return text;
    return this.encodeOne(text, { addSpecialTokens: false, maxLength: undefined, strategy: false, side: this.truncationSide }, 'applyChatTemplate', site);
  }

  // ---------------------------------------------------------------- encoding

  /** addSpecialTokens, maxLength and the truncation strategy of checked options. */
  private resolve(options: TokenizerEncodeOptions, site: CallSite): EncodeSettings {
    const addSpecialTokens = boolean(options.addSpecialTokens ?? true, 'addSpecialTokens', site);
    const maxLength = options.maxLength === undefined ? undefined : positiveInteger(options.maxLength, 'maxLength', site);
    const truncation = oneOf(options.truncation ?? maxLength !== undefined, 'truncation', TRUNCATIONS, site);
    const side = oneOf(options.truncationSide ?? this.truncationSide, 'truncationSide', SIDES, site);
    if (truncation === false) return { addSpecialTokens, maxLength, strategy: false, side };
    const limit = maxLength ?? this.modelMaxLength;
    if (limit === undefined) throw failure('INVALID_ARGUMENT', 'truncation needs maxLength (the tokenizer has no model_max_length)', site);
    return { addSpecialTokens, maxLength: limit, strategy: truncation === true ? 'longest_first' : truncation, side };
  }

  private encodeOne(input: EncodeInput, settings: EncodeSettings, what: string, site: CallSite): Encoding {
    const pair = Array.isArray(input) && input.length === 2 && typeof input[0] === 'string' && typeof input[1] === 'string';
    if (typeof input !== 'string' && !pair)
      throw failure('INVALID_ARGUMENT', `${what} must be a string or a [string, string] pair, got ${describeValue(input)}`, site);
    let first = this.content(typeof input === 'string' ? input : input[0]);
    let second = typeof input === 'string' ? null : this.content(input[1]);
    if (settings.strategy !== false && settings.maxLength !== undefined) {
      const added = settings.addSpecialTokens ? (second ? this.added.pair : this.added.single) : 0;
      if (settings.maxLength < added)
        throw failure('INVALID_ARGUMENT', `${what}: maxLength ${settings.maxLength} leaves no room for the ${added} special tokens`, site);
      first = early(first, settings.maxLength, settings.side);
      second = second && early(second, settings.maxLength, settings.side);
      [first, second] = truncate(first, second, settings.maxLength - added, settings.strategy, settings.side, what, site);
    }
    const { ids, tokens, typeIds } = this.postProcess(first, second, settings.addSpecialTokens);
    return { ids, tokens, typeIds, attentionMask: new Array<number>(ids.length).fill(1) };
  }

  /** A text's tokens before the post-processor (no special tokens added), and their splits. */
  private content(text: string): Part {
    const logged: string[][] = [];
    this.splitLog.splits = logged;
    let encoding: { ids: number[]; tokens: string[] };
    try {
      encoding = this.hf.encode(text, { add_special_tokens: false });
    } finally {
      this.splitLog.splits = null;
    }
    const { ids, tokens } = encoding;
    // The model's splits in order; a token between them is an added token, a split of its own.
    const splits: number[] = [];
    let next = 0;
    for (let at = 0; at < tokens.length;) {
      const split = logged[next];
      if (split && split.every((token, i) => tokens[at + i] === token)) {
        splits.push(split.length);
        at += split.length;
        next++;
      } else {
        splits.push(1);
        at++;
      }
    }
    return { ids, tokens, splits };
  }

  // The library's post-processor (or concatenation when there is none), run on markers so that
  // the content keeps its ids and only the tokens it adds are looked up.
  private postProcess(first: Part, second: Part | null, addSpecialTokens: boolean): { ids: number[]; tokens: string[]; typeIds: number[] } {
    const a = first.ids.map((_, i) => MARK_A + i);
    const b = second ? second.ids.map((_, i) => MARK_B + i) : null;
    let tokens: string[];
    let typeIds: number[] | undefined;
    if (this.hf.post_processor) {
      const out = this.hf.post_processor(a, b, addSpecialTokens) as { tokens: string[]; tokens_pair?: string[] | null; token_type_ids?: number[] };
      // A processor that only passes the pair through (ByteLevel) leaves it unjoined.
      tokens = out.tokens_pair ? out.tokens.concat(out.tokens_pair) : out.tokens;
      typeIds = out.token_type_ids;
    } else {
      tokens = b ? a.concat(b) : a;
    }
    const ids: number[] = [];
    const strings: string[] = [];
    for (const token of tokens) {
      const source = token.startsWith(MARK_A) ? first : token.startsWith(MARK_B) ? second : null;
      if (source) {
        const i = Number(token.slice(2));
        ids.push(source.ids[i]);
        strings.push(source.tokens[i]);
      } else {
        ids.push(this.hf.token_to_id(token) ?? (this.unkTokenId as number));
        strings.push(token);
      }
    }
    return { ids, tokens: strings, typeIds: typeIds ?? tokens.map((t) => (t.startsWith(MARK_B) ? 1 : 0)) };
  }
}

interface EncodeSettings {
  addSpecialTokens: boolean;
  maxLength: number | undefined;
  strategy: Strategy | false;
  side: Side;
}

function cut(part: Part, length: number, side: Side): Part {
  if (part.ids.length <= length) return part;
  const [start, end] = side === 'right' ? [0, length] : [part.ids.length - length, part.ids.length];
  return { ids: part.ids.slice(start, end), tokens: part.tokens.slice(start, end), splits: [] };
}

// The Rust library (0.23) tokenizes a sequence only up to the split that reaches maxLength
// tokens (from the end when truncating on the left), whole splits: what the pair truncation
// below then sees is that many tokens, not the whole sequence's.
function early(part: Part, maxLength: number, side: Side): Part {
  const splits = side === 'right' ? part.splits : [...part.splits].reverse();
  let kept = 0;
  for (const size of splits) {
    if (kept >= maxLength) break;
    kept += size;
  }
  return cut(part, kept, side);
}

// The Rust library's truncate_encodings, to `max` content tokens: longest_first cuts the longer
// sequence down to the other first, then splits what is left evenly, the odd token to the second.
function truncate(first: Part, second: Part | null, max: number, strategy: Strategy, side: Side, what: string, site: CallSite): [Part, Part | null] {
  if (max === 0) return [cut(first, 0, side), second && cut(second, 0, side)];
  const total = first.ids.length + (second ? second.ids.length : 0);
  if (total <= max) return [first, second];
  if (strategy === 'longest_first') {
    if (!second) return [cut(first, max, side), null];
    // n1: the shorter sequence's length, n2: what the longer keeps.
    const swap = first.ids.length > second.ids.length;
    let n1 = Math.min(first.ids.length, second.ids.length);
    let n2 = n1 > max ? n1 : Math.max(n1, max - n1);
    if (n1 + n2 > max) {
      n1 = Math.floor(max / 2);
      n2 = n1 + (max % 2);
    }
    if (swap) [n1, n2] = [n2, n1];
    return [cut(first, n1, side), cut(second, n2, side)];
  }
  const target = strategy === 'only_first' ? first : second;
  if (!target) throw failure('INVALID_ARGUMENT', `${what}: 'only_second' truncation needs a pair of texts`, site);
  const remove = total - max;
  if (target.ids.length <= remove) {
    throw failure(
      'INVALID_ARGUMENT',
      `${what}: cannot truncate to ${max} tokens by cutting only the ${strategy === 'only_first' ? 'first' : 'second'} sequence`,
      site,
    );
  }
  const kept = cut(target, target.ids.length - remove, side);
  return strategy === 'only_first' ? [kept, second] : [first, kept];
}

// transformers makes every special token the config names an added special token (split out
// of the text whole, skipped by skipSpecialTokens): the id it has in the vocabulary, or the next.
function addNamedSpecials(json: Record<string, unknown>, settings: TokenizerOptions): void {
  const added = (json.added_tokens ?? []) as Array<Record<string, unknown>>;
  const model = json.model as { type: string; vocab: Record<string, number> | Array<[string, number]> };
  const vocab = Array.isArray(model.vocab) ? new Map(model.vocab.map(([piece], i) => [piece, i])) : new Map(Object.entries(model.vocab));
  let next = vocab.size;
  for (const id of vocab.values()) next = Math.max(next, id + 1);
  for (const token of added) next = Math.max(next, (token.id as number) + 1);
  for (const [key] of SPECIAL_ROLES) {
    const content = settings[key];
    if (content === undefined || added.some((t) => t.content === content)) continue;
    const id = vocab.get(content) ?? next++;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  json.added_tokens = added;
}

// transformers' update_post_processor: when the config names add_bos_token or add_eos_token,
// the post-processor becomes BOS? $A EOS? (and BOS? $A EOS? BOS? $B EOS? for a pair).
function bosEosTemplate(settings: TokenizerOptions): Record<string, unknown> {
  const bos = settings.addBosToken && settings.bosToken !== undefined ? settings.bosToken : undefined;
  const eos = settings.addEosToken && settings.eosToken !== undefined ? settings.eosToken : undefined;
  const side = (id: 'A' | 'B', typeId: number) => [
    ...(bos !== undefined ? [{ SpecialToken: { id: bos, type_id: typeId } }] : []),
    { Sequence: { id, type_id: typeId } },
    ...(eos !== undefined ? [{ SpecialToken: { id: eos, type_id: typeId } }] : []),
  ];
  return { type: 'TemplateProcessing', single: side('A', 0), pair: [...side('A', 0), ...side('B', 1)], special_tokens: {} };
}
