// Character classes of BERT's BasicTokenizer (transformers' tokenization_bert.py), as its
// _is_control, _is_whitespace, _is_punctuation and _is_chinese_char define them, with categories
// from the JS engine's Unicode tables; and the whitespace Python's str.split() and str.strip()
// accept. lib/text/bert-tokenizer.ts builds the tokenizer on them.

export const CONTROL = 1; // BasicTokenizer._clean_text drops it: NUL, U+FFFD, or category C* but \t \n \r
export const WHITESPACE = 2; // _is_whitespace: ' ', \t, \n, \r, or category Zs
export const PUNCT = 4; // _is_punctuation: the ASCII ranges !-/ :-@ [-` {-~, or category P*
export const CHINESE = 8; // BasicTokenizer._is_chinese_char

const CONTROL_RE = /^\p{C}$/u;
const ZS_RE = /^\p{Zs}$/u;
const PUNCT_RE = /^[\p{P}!-/:-@[-`{-~]$/u;
// Python's str.split() and str.strip(): whatever str.isspace() accepts.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
export const PY_SPLIT_RE = new RegExp(`[${PY_SPACE}]+`);
export const PY_STRIP_RE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
export const MN_RE = /\p{Mn}/gu;
// Printable ASCII: lower-casing is all that changes it before the punctuation split.
export const PLAIN_ASCII_RE = /^[\x20-\x7e]*$/;

function isChinese(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function classify(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let flags = 0;
  if (cp === 0 || cp === 0xfffd || (cp !== 9 && cp !== 10 && cp !== 13 && CONTROL_RE.test(ch))) flags |= CONTROL;
  if (cp === 32 || cp === 9 || cp === 10 || cp === 13 || ZS_RE.test(ch)) flags |= WHITESPACE;
  if (PUNCT_RE.test(ch)) flags |= PUNCT;
  if (isChinese(cp)) flags |= CHINESE;
  return flags;
}

// Classes of the BMP, computed once (about 20 ms); code points above it are looked up as met.
let bmpClasses: Uint8Array | undefined;
const astralClasses = new Map<number, number>();

export function classOf(cp: number): number {
  if (cp < 0x10000) {
    if (!bmpClasses) {
      bmpClasses = new Uint8Array(0x10000);
      for (let c = 0; c < 0x10000; c++) bmpClasses[c] = c >= 0xd800 && c <= 0xdfff ? CONTROL : classify(c);
    }
    return bmpClasses[cp];
  }
  let flags = astralClasses.get(cp);
  if (flags === undefined) {
    flags = classify(cp);
    astralClasses.set(cp, flags);
  }
  return flags;
}
