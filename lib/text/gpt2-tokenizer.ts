// GPT-2's byte-level BPE with its 50,257-token vocabulary. The BPE is gpt-tokenizer's (an npm
// package that bundles the vocabulary: nothing is downloaded at run time); this wraps it in the
// Encoding shape BertTokenizer has: ids, tokens (GPT-2's byte-level strings, 'Ġ' for a space, as
// Hugging Face's convert_ids_to_tokens gives them), attention masks, padded batches, decode.
import { callSite, CallSite, failure } from '../core/errors';
import { boolean, checkOptions, oneOf, optionKeys, positiveInteger } from '../core/validate';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bpe = require('gpt-tokenizer/encoding/gpt2') as {
  encode(text: string, options?: { allowedSpecial?: Set<string> | 'all'; disallowedSpecial?: Set<string> | 'all' }): number[];
  decode(ids: Iterable<number>): string;
  vocabularySize: number;
};
// The vocabulary in rank order: a string for each token that is valid UTF-8, its bytes otherwise.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ranks = (require('gpt-tokenizer/bpeRanks/r50k_base') as { default: (string | number[])[] }).default;

export const GPT2_END_OF_TEXT = '<|endoftext|>';
export const GPT2_END_OF_TEXT_ID = 50256;

export interface Gpt2Encoding {
  ids: number[];
  tokens: string[];
  /** 1 for real tokens, 0 for padding. */
  attentionMask: number[];
}

export interface Gpt2BatchEncoding {
  ids: number[][];
  tokens: string[][];
  attentionMask: number[][];
}

export interface Gpt2EncodeOptions {
  /** Cut to this many tokens (from the end: 'right', the default, or the start: 'left'). */
  maxLength?: number;
  truncationSide?: 'left' | 'right';
  /** Put <|endoftext|> first (GPT-2's BOS, as TransformerLens prepends it). Default false. */
  prependBos?: boolean;
}

export interface Gpt2BatchOptions extends Gpt2EncodeOptions {
  /** 'longest' (default) or 'max_length' (to maxLength). */
  padding?: 'longest' | 'max_length';
  /** Where padding goes: 'right' (default) or 'left' (generation batches). */
  paddingSide?: 'left' | 'right';
}

export interface Gpt2DecodeOptions {
  /** Leave out <|endoftext|>. Default false. */
  skipSpecialTokens?: boolean;
}

const ENCODE_KEYS = optionKeys<Gpt2EncodeOptions>({ maxLength: true, truncationSide: true, prependBos: true });
const BATCH_KEYS = optionKeys<Gpt2BatchOptions>({ maxLength: true, truncationSide: true, prependBos: true, padding: true, paddingSide: true });
const DECODE_KEYS = optionKeys<Gpt2DecodeOptions>({ skipSpecialTokens: true });
const SIDES = ['left', 'right'] as const;
const PADDINGS = ['longest', 'max_length'] as const;

// GPT-2's byte <-> printable character table (bytes_to_unicode of its encoder.py): printable
// Latin-1 bytes stand for themselves, the rest are shifted to U+0100 and up ('Ġ' is the space).
const BYTE_TO_CHAR: string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : 256 + shifted++);
  return table;
})();

const utf8 = new TextEncoder();

export class Gpt2Tokenizer {
  readonly vocabularySize = bpe.vocabularySize;
  readonly endOfTextId = GPT2_END_OF_TEXT_ID;
  private readonly tokenStrings = new Map<number, string>();

  private constructor() {}

  /** GPT-2's tokenizer; the vocabulary ships inside the package, nothing is read from the network. */
  static async load(): Promise<Gpt2Tokenizer> {
    return new Gpt2Tokenizer();
  }

  /**
   * Token ids of a text. `<|endoftext|>` in the text is GPT-2's special token (as Hugging Face's
   * tokenizer reads it); everything else is byte-level BPE.
   */
  encode(text: string, options?: Gpt2EncodeOptions): Gpt2Encoding {
    const site = callSite(this.encode);
    return this.encodeOne(text, checkOptions(options, ENCODE_KEYS, 'encode', site), site);
  }

  /** encode() with checked options (encodeBatch's too). */
  private encodeOne(text: string, options: Gpt2EncodeOptions, site: CallSite): Gpt2Encoding {
    if (typeof text !== 'string') throw failure('INVALID_ARGUMENT', `encode(text): text must be a string, got ${typeof text}`, site);
    const ids: number[] = boolean(options.prependBos ?? false, 'prependBos', site) ? [GPT2_END_OF_TEXT_ID] : [];
    text.split(GPT2_END_OF_TEXT).forEach((part, i) => {
      if (i > 0) ids.push(GPT2_END_OF_TEXT_ID);
      if (part) ids.push(...bpe.encode(part, { disallowedSpecial: new Set() }));
    });
    const kept = this.truncate(ids, options, site);
    return { ids: kept, tokens: this.idsToTokens(kept), attentionMask: kept.map(() => 1) };
  }

  /** Several texts, padded with <|endoftext|> (attention mask 0) to one length. */
  encodeBatch(texts: string[], given?: Gpt2BatchOptions): Gpt2BatchEncoding {
    const site = callSite(this.encodeBatch);
    const options = checkOptions(given, BATCH_KEYS, 'encodeBatch', site);
    if (!Array.isArray(texts) || texts.length === 0) throw failure('INVALID_ARGUMENT', 'encodeBatch(texts): a non-empty array of strings', site);
    const padding = oneOf(options.padding ?? 'longest', 'padding', PADDINGS, site);
    const side = oneOf(options.paddingSide ?? 'right', 'paddingSide', SIDES, site);
    if (padding === 'max_length' && options.maxLength === undefined) throw failure('INVALID_ARGUMENT', "padding 'max_length' needs maxLength", site);
    const encodings = texts.map((text) => this.encodeOne(text, options, site));
    const length = padding === 'max_length' ? options.maxLength! : Math.max(...encodings.map((e) => e.ids.length));
    const pad = <T>(values: T[], fill: T): T[] => {
      const extra = Array(length - values.length).fill(fill);
      return side === 'left' ? [...extra, ...values] : [...values, ...extra];
    };
    return {
      ids: encodings.map((e) => pad(e.ids, GPT2_END_OF_TEXT_ID)),
      tokens: encodings.map((e) => pad(e.tokens, GPT2_END_OF_TEXT)),
      attentionMask: encodings.map((e) => pad(e.attentionMask, 0)),
    };
  }

  /** The text of token ids (bytes joined, then UTF-8; an incomplete character becomes U+FFFD). */
  decode(ids: readonly number[], options?: Gpt2DecodeOptions): string {
    const site = callSite(this.decode);
    const skip = boolean(checkOptions(options, DECODE_KEYS, 'decode', site).skipSpecialTokens ?? false, 'skipSpecialTokens', site);
    this.checkIds(ids, site);
    return bpe.decode(skip ? ids.filter((id) => id !== GPT2_END_OF_TEXT_ID) : ids);
  }

  /** GPT-2's byte-level token strings ('Ġcat' for ' cat'). */
  idsToTokens(ids: readonly number[]): string[] {
    this.checkIds(ids, callSite(this.idsToTokens));
    return ids.map((id) => {
      let token = this.tokenStrings.get(id);
      if (token === undefined) {
        const entry = ranks[id];
        const bytes = id === GPT2_END_OF_TEXT_ID ? utf8.encode(GPT2_END_OF_TEXT) : typeof entry === 'string' ? utf8.encode(entry) : Uint8Array.from(entry);
        token = id === GPT2_END_OF_TEXT_ID ? GPT2_END_OF_TEXT : Array.from(bytes, (b) => BYTE_TO_CHAR[b]).join('');
        this.tokenStrings.set(id, token);
      }
      return token;
    });
  }

  private checkIds(ids: readonly number[], site: CallSite): void {
    if (!Array.isArray(ids)) throw failure('INVALID_ARGUMENT', 'ids must be an array of token ids', site);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabularySize) {
        throw failure('INVALID_ARGUMENT', `token id ${JSON.stringify(id)} is outside GPT-2's vocabulary [0, ${this.vocabularySize})`, site);
      }
    }
  }

  private truncate(ids: number[], options: Gpt2EncodeOptions, site: CallSite): number[] {
    const side = oneOf(options.truncationSide ?? 'right', 'truncationSide', SIDES, site);
    if (options.maxLength === undefined) return ids;
    const maxLength = positiveInteger(options.maxLength, 'maxLength', site);
    if (ids.length <= maxLength) return ids;
    return side === 'left' ? ids.slice(ids.length - maxLength) : ids.slice(0, maxLength);
  }
}
