// Where @huggingface/tokenizers 0.2 computes otherwise than Hugging Face's Rust `tokenizers` (what
// transformers and every Python user run), the step of the built pipeline is given the Rust
// behaviour; test/hf-tokenizer.test.ts has a case for each. Everything else is the library's.
import {
  BertNormalizer,
  ByteFallbackDecoder,
  Decoder,
  LowercaseNormalizer,
  MetaspacePreTokenizer,
  Model,
  Normalizer,
  PreTokenizer,
  SequenceDecoder,
  SequenceNormalizer,
  SequencePreTokenizer,
  Tokenizer as HfTokenizer,
  Unigram,
  WhitespacePreTokenizer,
  WhitespaceSplitPreTokenizer,
} from '@huggingface/tokenizers';

import { isRecord } from '../core/validate';

// Rust lowercases one character at a time: no final sigma ('ΟΔΟΣ' -> 'οδοσ'), where
// String.prototype.toLowerCase gives 'οδος'.
function lowercaseEach(text: string): string {
  let out = '';
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

// The Rust BertNormalizer's CJK ranges, by code point. The library walks UTF-16 units (so
// ideographs beyond the BMP are never spaced) and starts one range at U+2B820, Rust at U+2B920.
const CJK_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b920, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

function spaceCjk(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    out += CJK_RANGES.some(([low, high]) => cp >= low && cp <= high) ? ` ${ch} ` : ch;
  }
  return out;
}

// BertNormalizer in Rust's order: clean, space CJK, strip accents (when asked, or when
// lowercasing), then lowercase; the library lowercases before stripping.
function fixBertNormalizer(normalizer: BertNormalizer): void {
  const config = normalizer.config;
  const clean = (normalizer as unknown as { clean_text(text: string): string }).clean_text.bind(normalizer);
  normalizer.normalize = (text: string): string => {
    if (config.clean_text) text = clean(text);
    if (config.handle_chinese_chars) text = spaceCjk(text);
    if (config.strip_accents ?? config.lowercase) text = normalizer.strip_accents(text);
    if (config.lowercase) text = lowercaseEach(text);
    return text;
  };
}

function fixNormalizer(normalizer: Normalizer | null): void {
  if (normalizer instanceof SequenceNormalizer) normalizer.normalizers.forEach(fixNormalizer);
  else if (normalizer instanceof LowercaseNormalizer) normalizer.normalize = lowercaseEach;
  else if (normalizer instanceof BertNormalizer) fixBertNormalizer(normalizer);
}

// Rust's Metaspace pre-tokenizer splits before each '▁' unless its config says split: false (T5,
// ALBERT... split; Llama's legacy-free one does not); the library never splits, so a Unigram
// model sees whole sentences and breaks ties between pieces otherwise.
function splitBefore(text: string, mark: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = text.indexOf(mark, 1); i !== -1; i = text.indexOf(mark, i + mark.length)) {
    out.push(text.slice(start, i));
    start = i;
  }
  out.push(text.slice(start));
  return out.filter((piece) => piece !== '');
}

// Whitespace is Unicode's White_Space in Rust; JS's \s adds U+FEFF and leaves out U+0085. Its \w
// (Oniguruma's, in the Whitespace pre-tokenizer's \w+|[^\w\s]+) is Unicode's word characters;
// JS's is ASCII ('héllo' would split at 'é'): letters, marks, digits, connectors and joiners
// (the library's class for the Oniguruma patterns it translates adds ²³¹¼½¾ and misses the
// joiners; Python's tokenizers says otherwise of both).
const NOT_WHITESPACE = /\P{White_Space}+/gu;
const WORD = '[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]';
const WORDS_OR_SYMBOLS = new RegExp(`${WORD}+|(?:(?!${WORD})\\P{White_Space})+`, 'gu');

function fixPreTokenizer(preTokenizer: PreTokenizer | null, json: unknown): void {
  if (!isRecord(json)) return;
  if (preTokenizer instanceof WhitespaceSplitPreTokenizer) {
    preTokenizer.pre_tokenize_text = (text) => text.match(NOT_WHITESPACE) ?? [];
  } else if (preTokenizer instanceof WhitespacePreTokenizer) {
    preTokenizer.pre_tokenize_text = (text) => text.match(WORDS_OR_SYMBOLS) ?? [];
  } else if (preTokenizer instanceof SequencePreTokenizer && Array.isArray(json.pretokenizers)) {
    preTokenizer.tokenizers.forEach((step, i) => fixPreTokenizer(step, (json.pretokenizers as unknown[])[i]));
  } else if (preTokenizer instanceof MetaspacePreTokenizer && json.split !== false) {
    const whole = preTokenizer.pre_tokenize_text.bind(preTokenizer);
    const mark = preTokenizer.replacement;
    preTokenizer.pre_tokenize_text = (text, options) => whole(text, options).flatMap((piece) => splitBefore(piece, mark));
  }
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
// fatal: an invalid run is detected, and then written one U+FFFD per byte; ignoreBOM: a
// decoded U+FEFF is text, not a byte-order mark to drop.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Rust's ByteFallback: a run of <0xNN> tokens that is valid UTF-8 becomes its text; one that is
// not becomes one U+FFFD per byte (the library's decoder replaces per invalid sequence, and drops
// a BOM at the start of a run).
function byteFallbackChain(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    try {
      out.push(strictUtf8.decode(Uint8Array.from(bytes)));
    } catch {
      for (let i = 0; i < bytes.length; i++) out.push('\ufffd');
    }
    bytes = [];
  };
  for (const token of tokens) {
    const byte = BYTE_TOKEN.exec(token);
    if (byte) {
      bytes.push(parseInt(byte[1], 16));
    } else {
      flush();
      out.push(token);
    }
  }
  flush();
  return out;
}

function fixDecoder(decoder: Decoder | null): void {
  if (decoder instanceof SequenceDecoder) decoder.decoders.forEach(fixDecoder);
  else if (decoder instanceof ByteFallbackDecoder) decoder.decode_chain = byteFallbackChain;
}

// Rust's Unigram with byte_fallback (the library ignores the flag): a piece no token matches
// (unknown characters fused) becomes the <0xNN> tokens of its UTF-8 bytes when all of them are
// in the vocabulary, and stays unknown otherwise.
function fixUnigram(model: Unigram): void {
  const encode = model._call.bind(model);
  const utf8 = new TextEncoder();
  model._call = (tokens: string[]): string[] =>
    encode(tokens).flatMap((piece) => {
      if (model.tokens_to_ids.has(piece)) return [piece];
      const bytes = Array.from(utf8.encode(piece), (b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      return bytes.every((b) => model.tokens_to_ids.has(b)) ? bytes : [piece];
    });
}

/** Where the model's tokens of each pre-tokenized split go while an encode wants them (null otherwise). */
export interface SplitLog {
  splits: string[][] | null;
}

// Rust runs the model on one pre-tokenized split at a time; the library passes all of them at
// once and fuses unknown tokens across splits. One call per split, each logged: truncation
// needs the splits (tokenizer.ts).
function perSplit(model: Model, log: SplitLog): void {
  const call = model._call.bind(model);
  model._call = (splits: string[]): string[] =>
    splits.flatMap((split) => {
      const tokens = call([split]);
      log.splits?.push(tokens);
      return tokens;
    });
}

/**
 * Gives the pipeline of `tokenizer` (built from `json`) the Rust library's behaviour where the JS
 * one differs; returns the log of the model's splits.
 */
export function matchRust(tokenizer: HfTokenizer, json: { model: { type?: unknown; byte_fallback?: unknown }; pre_tokenizer?: unknown }): SplitLog {
  fixNormalizer(tokenizer.normalizer);
  fixPreTokenizer(tokenizer.pre_tokenizer, json.pre_tokenizer);
  fixDecoder(tokenizer.decoder);
  const log: SplitLog = { splits: null };
  const model = tokenizer.model;
  if (model) {
    if (json.model.type === 'Unigram' && json.model.byte_fallback === true && model instanceof Unigram) fixUnigram(model);
    perSplit(model, log);
  }
  return log;
}
