// Tokenizer (lib/text/tokenizer.ts) against Python on Hugging Face tokenizers of the four kinds
// today's models ship, built here by scripts/hf_tokenizers.py (nothing can be downloaded):
// byte-level BPE (Llama 3 / Qwen / GPT-2), SentencePiece-style BPE with byte fallback (Llama 2 /
// Mistral / Gemma), Unigram (T5; and with byte fallback) and WordPiece (BERT). One Python process
// (test/python/hf_tokenizer_reference.py) builds them and answers every case:
//   - ids, tokens, type ids and decoded text equal the Rust `tokenizers` (Tokenizer.from_file) on
//     a hard corpus, and decode equals transformers' decode (its clean-up as the config says);
//   - batches (padding left / right, to the longest or max_length), truncation (both sides,
//     pairs, every strategy) equal transformers' fast tokenizer loaded from the folder;
//   - chat templates render as transformers' apply_chat_template (Llama 3, Gemma, a ChatML
//     template with tools), raise_exception included;
//   - every assigned code point (but private use), through both BPE kinds and two hand-written
//     BPE files (unknown tokens fused; split on whitespace, or on words and symbols).
// test/hf-tokenizer-errors.test.ts has what the tokenizer refuses. This file needs no libtorch:
// it imports lib/text and lib/core only.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { TorchscopeError } from '../lib/core/errors';
import { EncodeInput } from '../lib/text/bert-tokenizer';
import { ChatMessage } from '../lib/text/chat-template';
import { Tokenizer, TokenizerTruncation } from '../lib/text/tokenizer';
import { rng } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { pythonPath } = require('../scripts/config.js') as { pythonPath(): string };

const ROOT = path.resolve(__dirname, '..');
const REFERENCE_SCRIPT = path.join(ROOT, 'test', 'python', 'hf_tokenizer_reference.py');

// ---------------------------------------------------------------- chat templates

// Meta-Llama-3-8B-Instruct's template.
const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + " +
  "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}" +
  "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

// gemma-2-it's template: no system role, alternation enforced with raise_exception.
const GEMMA_TEMPLATE =
  "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
  "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

// A ChatML template with tools, in Qwen 2.5's layout: whitespace control, tojson, loop.last,
// namespace-free look-behind over messages, a variable the caller passes (enable_thinking).
const CHATML_TEMPLATE = [
  '{%- if tools %}',
  "    {{- '<|im_start|>system\\n' }}",
  "    {%- if messages[0]['role'] == 'system' %}",
  "        {{- messages[0]['content'] }}",
  '    {%- else %}',
  "        {{- 'You are a helpful assistant.' }}",
  '    {%- endif %}',
  '    {{- "\\n\\n# Tools\\n\\n<tools>" }}',
  '    {%- for tool in tools %}',
  '        {{- "\\n" }}',
  '        {{- tool | tojson }}',
  '    {%- endfor %}',
  '    {{- "\\n</tools><|im_end|>\\n" }}',
  '{%- else %}',
  "    {%- if messages[0]['role'] == 'system' %}",
  "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}",
  '    {%- else %}',
  "        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}",
  '    {%- endif %}',
  '{%- endif %}',
  '{%- for message in messages %}',
  '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}',
  "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}",
  '    {%- elif message.role == "assistant" %}',
  "        {{- '<|im_start|>' + message.role }}",
  '        {%- for tool_call in message.tool_calls %}',
  '            {{- \'\\n<tool_call>\\n{"name": "\' + tool_call.function.name + \'", "arguments": \' }}',
  '            {{- tool_call.function.arguments | tojson }}',
  "            {{- '}\\n</tool_call>' }}",
  '        {%- endfor %}',
  "        {{- '<|im_end|>\\n' }}",
  '    {%- elif message.role == "tool" %}',
  '        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}',
  "            {{- '<|im_start|>user' }}",
  '        {%- endif %}',
  "        {{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}",
  '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}',
  "            {{- '<|im_end|>\\n' }}",
  '        {%- endif %}',
  '    {%- endif %}',
  '{%- endfor %}',
  '{%- if add_generation_prompt %}',
  "    {{- '<|im_start|>assistant\\n' }}",
  '    {%- if enable_thinking is defined and enable_thinking is false %}',
  "        {{- '<think>\\n\\n</think>\\n\\n' }}",
  '    {%- endif %}',
  '{%- endif %}',
].join('\n');

// ---------------------------------------------------------------- the tokenizers and the corpus

interface Build {
  name: string;
  kind?: 'byte-bpe' | 'sp-bpe' | 'unigram' | 'wordpiece';
  vocabSize: number;
  chatTemplate?: string;
  byteFallback?: boolean;
  /** A tokenizer.json written as is (with a bare tokenizer_config.json). */
  json?: object;
}

// BPE with unknown tokens fused (no byte fallback), split on whitespace (and, below, on words
// and symbols: the Whitespace pre-tokenizer): Rust fuses unknown characters within a split only,
// so the splits show in the ids.
const BPE_UNK = {
  version: '1.0',
  added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'WhitespaceSplit' },
  post_processor: null,
  decoder: null,
  model: {
    type: 'BPE',
    unk_token: '<unk>',
    fuse_unk: true,
    byte_fallback: false,
    vocab: { '<unk>': 0, T: 1, h: 2, e: 3, Th: 4, The: 5 },
    merges: ['T h', 'Th e'],
  },
};
const BUILDS: Build[] = [
  { name: 'byte-bpe', kind: 'byte-bpe', vocabSize: 700, chatTemplate: LLAMA3_TEMPLATE },
  { name: 'sp-bpe', kind: 'sp-bpe', vocabSize: 700, chatTemplate: GEMMA_TEMPLATE },
  { name: 'unigram', kind: 'unigram', vocabSize: 700, chatTemplate: CHATML_TEMPLATE },
  { name: 'unigram-bytes', kind: 'unigram', vocabSize: 300, byteFallback: true },
  { name: 'wordpiece', kind: 'wordpiece', vocabSize: 700 },
  { name: 'bpe-unk', vocabSize: 6, json: BPE_UNK },
  { name: 'bpe-words', vocabSize: 6, json: { ...BPE_UNK, pre_tokenizer: { type: 'Whitespace' } } },
];
const NAMES = BUILDS.map((b) => b.name);

const LONG_SENTENCE =
  'The quick brown fox jumps over the lazy dog while 3 zebras, 12 penguins and a very confused octopus named Héctor discuss quantum ' +
  'chromodynamics, the price of tea in 日本, and whether tokenizers handle URLs like https://example.com/a/b?c=d&e=f#g correctly!!! ';

const TEXTS: Record<string, string> = {
  plain: 'The quick brown fox jumps over the lazy dog.',
  accents: 'Héllò Wörld, crème brûlée à la française; naïve façade coöperate Ångström',
  decomposed: 'e\u0301 vs \u00e9, x\u0301 \u0301x \u0301',
  combining: 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357 b',
  cjk: '我爱北京天安门。今天天气很好！東京タワーに行きました。',
  cjk_astral: '𠀀𠀁 a𠀀b 𪜀 𫝀x \u{2b820}\u{2b920}',
  korean: '한국어 텍스트입니다',
  rtl: 'مرحبا بالعالم. שלום עולם. עִבְרִית',
  mixed_scripts: 'Привет мир! Γειά σου Κόσμε. नमस्ते दुनिया ไทย',
  final_sigma: 'ΟΔΟΣ ΟΔΟΣ. ΣΑΣ Σ',
  casing: 'İstanbul ı I ß ẞ ﬁne Ǆemal Å Ω Ⅻ ① ＡＢＣ ｆｕｌｌ ½',
  whitespace_runs: 'a  b   c    d\t\te\n\nf\r\n g   \u00a0h\u2003i\u3000j  ',
  leading_trailing: '   leading and trailing   ',
  only_whitespace: '  \n\t ',
  tabs_newlines: '\tindented\n\t\tmore\n\n\nend\r\n',
  emoji: 'I love 🥰 and 😀 and 🫠! ❤️ ✨',
  emoji_zwj: 'family 👨‍👩‍👧 thumbs👍🏽 flag 🇺🇸🇯🇵 keycap 1️⃣ 🏳️‍🌈',
  numbers: '3.14159 1,000,000 2024-01-15 12:30pm 1e-9 007 42nd 123456789 -0.5',
  contractions: "don't I'm you're it's can't WON'T Y'ALL they'll she'd",
  code: 'def f(x):\n    return x**2  # comment\n\nclass A:\n\tpass {}[]();',
  urls: 'https://example.com/path/to?q=1&r=two#frag user@example.com',
  controls: 'a\u0000b\u0001c\u007fd\u200be\ufefff\ufffdg h\u00adi',
  bom_first: '\ufeffhello',
  special_tokens: '<s>hello</s> <unk> <pad> [CLS] x [SEP] [MASK] <|endoftext|> </s><s>',
  chat_tokens: '<|im_start|>user\nHi there<|im_end|>\n<start_of_turn>model\nhi<end_of_turn><|start_header_id|>user<|end_header_id|>\n\nhey<|eot_id|>',
  byte_tokens_as_text: '<0x41> <0xE6><0x9C> <0x>',
  empty: '',
  long: LONG_SENTENCE.repeat(40),
};

// Characters whose category or normalization the Rust library's Unicode tables (older than the
// JS engine's) give otherwise: the result differs, and the test checks that it still does.
const UNICODE_VERSION_DIFFERS: Record<string, Record<string, string>> = {
  wordpiece: { arabic_marks: 'U+0890 ARABIC POUND MARK ABOVE (Unicode 14): a format character to the JS engine, unknown to Rust' },
  unigram: { cyrillic_modifier: 'U+1E030 MODIFIER LETTER CYRILLIC SMALL A (Unicode 15): NFKC maps it to а in the JS engine only' },
};
const DIFFERS_TEXT: Record<string, string> = { arabic_marks: 'x\u0890y z', cyrillic_modifier: 'x\u{1e030}y z' };

const PAIRS: Array<[string, string]> = [
  ['The quick brown fox jumps over the lazy dog near the riverbank today.', 'Héllò Wörld, how are you?'],
  ['', 'only the second'],
  [TEXTS.contractions, ''],
  [TEXTS.cjk, TEXTS.emoji_zwj],
];

interface Case {
  id: string;
  kind: 'encode' | 'decode' | 'hf' | 'chat' | 'sweep';
  tok: string;
  [key: string]: unknown;
}
const cases: Case[] = [];

for (const tok of NAMES) {
  for (const [name, text] of Object.entries(TEXTS)) {
    cases.push({ id: `encode:${tok}:${name}`, kind: 'encode', tok, input: text, addSpecialTokens: true });
  }
  for (const name of ['accents', 'special_tokens', 'empty', 'emoji_zwj']) {
    cases.push({ id: `encode-bare:${tok}:${name}`, kind: 'encode', tok, input: TEXTS[name], addSpecialTokens: false });
  }
  PAIRS.forEach((pair, i) => cases.push({ id: `encode-pair:${tok}:${i}`, kind: 'encode', tok, input: pair, addSpecialTokens: true }));
  for (const [name, text] of Object.entries(DIFFERS_TEXT)) {
    if (UNICODE_VERSION_DIFFERS[tok]?.[name]) cases.push({ id: `differs:${tok}:${name}`, kind: 'encode', tok, input: text, addSpecialTokens: true });
  }
}

// Decoding ids no text gave: seeded random ids (partial UTF-8 byte runs included), and byte runs.
for (const build of BUILDS) {
  const next = rng(build.vocabSize + build.name.length);
  for (let i = 0; i < 12; i++) {
    const ids = Array.from({ length: 1 + Math.floor(next() * 12) }, () => Math.floor(next() * build.vocabSize));
    cases.push({ id: `decode:${build.name}:${i}`, kind: 'decode', tok: build.name, ids });
  }
}

// transformers' batches and truncation.
const BATCH_TEXTS = ['Hello world!', '', TEXTS.accents, TEXTS.cjk, LONG_SENTENCE, TEXTS.emoji_zwj, '   '];
interface HfCase {
  inputs: EncodeInput[];
  padding: 'longest' | 'max_length' | false;
  maxLength: number | null;
  truncation: TokenizerTruncation | null;
  paddingSide: 'left' | 'right';
  truncationSide: 'left' | 'right';
  addSpecialTokens: boolean;
}
const HF_CASES: Record<string, HfCase> = {
  'longest-right': {
    inputs: BATCH_TEXTS,
    padding: 'longest',
    maxLength: null,
    truncation: null,
    paddingSide: 'right',
    truncationSide: 'right',
    addSpecialTokens: true,
  },
  'longest-left': {
    inputs: BATCH_TEXTS,
    padding: 'longest',
    maxLength: null,
    truncation: null,
    paddingSide: 'left',
    truncationSide: 'right',
    addSpecialTokens: true,
  },
  'longest-left-bare': {
    inputs: BATCH_TEXTS,
    padding: 'longest',
    maxLength: null,
    truncation: null,
    paddingSide: 'left',
    truncationSide: 'right',
    addSpecialTokens: false,
  },
  'max_length-24': {
    inputs: BATCH_TEXTS,
    padding: 'max_length',
    maxLength: 24,
    truncation: true,
    paddingSide: 'right',
    truncationSide: 'right',
    addSpecialTokens: true,
  },
  'max_length-24-left-cut-left': {
    inputs: BATCH_TEXTS,
    padding: 'max_length',
    maxLength: 24,
    truncation: true,
    paddingSide: 'left',
    truncationSide: 'left',
    addSpecialTokens: true,
  },
  'max_length-untruncated': {
    inputs: BATCH_TEXTS,
    padding: 'max_length',
    maxLength: 24,
    truncation: false,
    paddingSide: 'right',
    truncationSide: 'right',
    addSpecialTokens: true,
  },
  'longest-cut-8': {
    inputs: BATCH_TEXTS,
    padding: 'longest',
    maxLength: 8,
    truncation: true,
    paddingSide: 'right',
    truncationSide: 'right',
    addSpecialTokens: true,
  },
  'pairs-longest': {
    inputs: PAIRS,
    padding: 'longest',
    maxLength: null,
    truncation: null,
    paddingSide: 'right',
    truncationSide: 'right',
    addSpecialTokens: true,
  },
};
for (const maxLength of [1, 2, 3, 5, 9, 17]) {
  for (const side of ['right', 'left'] as const) {
    HF_CASES[`cut-${maxLength}-${side}`] = {
      inputs: [LONG_SENTENCE],
      padding: false,
      maxLength,
      truncation: true,
      paddingSide: 'right',
      truncationSide: side,
      addSpecialTokens: true,
    };
  }
}
for (const maxLength of [4, 7, 12, 20, 33]) {
  for (const truncation of ['longest_first', 'only_first', 'only_second'] as const) {
    for (const [order, pair] of [
      ['AB', PAIRS[0]],
      ['BA', [PAIRS[0][1], PAIRS[0][0]] as [string, string]],
    ] as const) {
      HF_CASES[`pair-${truncation}-${maxLength}-${order}`] = {
        inputs: [pair],
        padding: false,
        maxLength,
        truncation,
        paddingSide: 'right',
        truncationSide: 'right',
        addSpecialTokens: true,
      };
    }
  }
}
for (const tok of NAMES) {
  for (const [name, c] of Object.entries(HF_CASES)) cases.push({ id: `hf:${tok}:${name}`, kind: 'hf', tok, ...c });
}

// Conversations.
const CONVERSATION: ChatMessage[] = [
  { role: 'user', content: '  Hi! Can you explain induction heads? 🤔  ' },
  { role: 'assistant', content: 'Sure: they copy the token that followed\nthe last occurrence of the current one.' },
  { role: 'user', content: 'And in 日本語?\n\n' },
];
const WITH_SYSTEM: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }, ...CONVERSATION];
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city, «today»',
      parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } }, required: ['city'] },
    },
  },
];
const TOOL_CONVERSATION: ChatMessage[] = [
  { role: 'user', content: 'Weather in Zürich?' },
  { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Zürich', days: 2 } } }] },
  { role: 'tool', content: '{"temperature": 21.5, "unit": "°C"}' },
  { role: 'tool', content: 'sunny' },
];
interface ChatCase {
  tok: string;
  messages: ChatMessage[];
  addGenerationPrompt: boolean;
  tools?: unknown[];
  variables?: Record<string, unknown>;
}
const CHAT_CASES: Record<string, ChatCase> = {
  'llama3-system': { tok: 'byte-bpe', messages: WITH_SYSTEM, addGenerationPrompt: true },
  'llama3-no-prompt': { tok: 'byte-bpe', messages: CONVERSATION, addGenerationPrompt: false },
  gemma: { tok: 'sp-bpe', messages: CONVERSATION, addGenerationPrompt: true },
  'gemma-system': { tok: 'sp-bpe', messages: WITH_SYSTEM, addGenerationPrompt: true },
  'gemma-not-alternating': { tok: 'sp-bpe', messages: [CONVERSATION[0], CONVERSATION[0]], addGenerationPrompt: true },
  chatml: { tok: 'unigram', messages: WITH_SYSTEM, addGenerationPrompt: true },
  'chatml-tools': { tok: 'unigram', messages: TOOL_CONVERSATION, addGenerationPrompt: true, tools: TOOLS },
  'chatml-no-thinking': { tok: 'unigram', messages: CONVERSATION, addGenerationPrompt: true, variables: { enable_thinking: false } },
};
for (const [name, c] of Object.entries(CHAT_CASES)) cases.push({ id: `chat:${name}`, kind: 'chat', ...c });

// Every code point the JS engine has assigned but surrogates and private use, through the two
// BPE kinds (the other two go through tables whose Unicode versions differ: see above).
const SWEEP_CHUNK = 2000;
// The Whitespace pre-tokenizer's word characters come from Unicode tables: there, only the code
// points Python's tables (Unicode 14) have assigned, as the Rust library's are no newer.
const SWEPT = ['byte-bpe', 'sp-bpe', 'bpe-unk', 'bpe-words'];
const ASSIGNED_ONLY = new Set(['bpe-words']);
const SWEEP: number[] = [];
for (let cp = 0; cp < 0x110000; cp++) {
  if (!/^[\p{Cn}\p{Cs}\p{Co}]$/u.test(String.fromCodePoint(cp))) SWEEP.push(cp);
}
for (const tok of SWEPT) {
  cases.push({ id: `sweep:${tok}`, kind: 'sweep', tok, codepoints: SWEEP, chunk: SWEEP_CHUNK, assignedOnly: ASSIGNED_ONLY.has(tok) });
}

// ---------------------------------------------------------------- the reference

let dir: string;
let reply: { meta: Record<string, string>; cases: Record<string, any> };
const tokenizers: Record<string, Tokenizer> = {};

function runReference(request: object): Promise<void> {
  const requestFile = path.join(dir, 'request.json');
  fs.writeFileSync(requestFile, JSON.stringify(request));
  return new Promise((resolve, reject) => {
    execFile(
      pythonPath(),
      [REFERENCE_SCRIPT, requestFile],
      { maxBuffer: 64 << 20, timeout: 600_000, env: { ...process.env, PYTHONHASHSEED: '0', TOKENIZERS_PARALLELISM: 'false' } },
      (error, _stdout, stderr) => (error ? reject(new Error(`hf_tokenizer_reference.py failed (${error.message}):\n${stderr}`)) : resolve()),
    );
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-hf-tokenizer-'));
  const out = path.join(dir, 'out');
  await runReference({ out, build: BUILDS, cases });
  reply = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  for (const name of NAMES) tokenizers[name] = await Tokenizer.fromPretrained(path.join(out, name));
}, 600_000);

afterAll(() => {
  // KEEP_TOKENIZER_REF=1 keeps the folders, the request and the answers (the path is in os.tmpdir()).
  if (!process.env.KEEP_TOKENIZER_REF && dir) fs.rmSync(dir, { recursive: true, force: true });
});

function answer(id: string): any {
  const result = reply?.cases[id];
  if (!result) throw new Error(`no reference answer for '${id}' (did the reference run in beforeAll fail?)`);
  return result;
}

/** Python's answer, which must not be an error. */
function expected(id: string): any {
  const result = answer(id);
  if (result.error) throw new Error(`Python failed on '${id}': ${result.error}`);
  return result;
}

// ---------------------------------------------------------------- parity

describe.each(NAMES)('%s: as the Rust tokenizers', (name) => {
  const encodeIds = cases.filter((c) => c.tok === name && c.kind === 'encode' && !c.id.startsWith('differs:')).map((c) => c.id);

  test.each(encodeIds)('%s: ids, tokens, type ids', (id) => {
    const c = cases.find((x) => x.id === id)!;
    const got = tokenizers[name].encode(c.input as EncodeInput, { addSpecialTokens: c.addSpecialTokens as boolean });
    const want = expected(id);
    expect({ ids: got.ids, tokens: got.tokens, typeIds: got.typeIds }).toEqual({ ids: want.ids, tokens: want.tokens, typeIds: want.typeIds });
    expect(got.attentionMask).toEqual(want.ids.map(() => 1));
  });

  const decodeIds = cases.filter((c) => c.tok === name && (c.kind === 'decode' || c.kind === 'encode') && !c.id.startsWith('differs:')).map((c) => c.id);
  test.each(decodeIds)('%s: decode', (id) => {
    const want = expected(id);
    const tok = tokenizers[name];
    expect(tok.decode(want.ids ?? (cases.find((x) => x.id === id)!.ids as number[]), { cleanUpTokenizationSpaces: false })).toBe(want.decode);
    const ids = want.ids ?? (cases.find((x) => x.id === id)!.ids as number[]);
    expect(tok.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false })).toBe(want.decodeSkip);
    // transformers' defaults: specials kept, clean-up as tokenizer_config.json says.
    expect(tok.decode(ids)).toBe(want.hfDecode);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(want.hfDecodeSkip);
  });

  const differs = Object.entries(UNICODE_VERSION_DIFFERS[name] ?? {});
  if (differs.length > 0) {
    test.each(differs)('%s still differs: %s', (text) => {
      const want = expected(`differs:${name}:${text}`);
      expect(tokenizers[name].encode(DIFFERS_TEXT[text]).ids).not.toEqual(want.ids);
    });
  }
});

describe.each(NAMES)('%s: as transformers (batches, padding, truncation)', (name) => {
  test.each(Object.keys(HF_CASES))('%s', (caseName) => {
    const c = HF_CASES[caseName];
    const tok = tokenizers[name];
    const want = answer(`hf:${name}:${caseName}`);
    const encodeOptions = {
      addSpecialTokens: c.addSpecialTokens,
      maxLength: c.maxLength ?? undefined,
      truncation: c.truncation ?? undefined,
      truncationSide: c.truncationSide,
    };
    let got: { ids: number[][]; tokens: string[][]; typeIds: number[][]; attentionMask: number[][] } | { error: string };
    try {
      if (c.padding === false) {
        const encodings = c.inputs.map((input) => tok.encode(input, encodeOptions));
        got = {
          ids: encodings.map((e) => e.ids),
          tokens: encodings.map((e) => e.tokens),
          typeIds: encodings.map((e) => e.typeIds),
          attentionMask: encodings.map((e) => e.attentionMask),
        };
      } else {
        const batch = tok.encodeBatch(c.inputs, { ...encodeOptions, padding: c.padding, paddingSide: c.paddingSide });
        expect(batch.paddingSide).toBe(c.paddingSide);
        got = { ids: batch.ids, tokens: batch.tokens, typeIds: batch.typeIds, attentionMask: batch.attentionMask };
      }
    } catch (error) {
      if (!(error instanceof TorchscopeError)) throw error;
      got = { error: error.message };
    }
    // Where Python refuses (a sequence too short for 'only_*'), torchscope refuses too. Where
    // maxLength is below the special tokens, Python returns more than maxLength tokens (the
    // Rust budget underflows); torchscope refuses.
    const specials = c.addSpecialTokens ? tok.encode(c.inputs.some((x) => typeof x !== 'string') ? ['', ''] : '').ids.length : 0;
    if (want.error !== undefined) {
      expect(got).toHaveProperty('error');
    } else if (c.maxLength !== null && c.maxLength < specials) {
      expect(got).toEqual({ error: expect.stringMatching(/leaves no room for the \d+ special tokens/) });
      expect(want.ids.every((ids: number[]) => ids.length > c.maxLength!)).toBe(true);
    } else {
      // transformers gives ids: its tokens are the vocabulary's (where the Rust encoding keeps
      // an unknown piece's text, transformers writes the unknown token).
      const tokens = 'ids' in got ? got.ids.map((ids) => ids.map((id) => tok.idToToken(id))) : undefined;
      expect({ ...got, tokens }).toEqual({ ids: want.ids, tokens: want.tokens, typeIds: want.typeIds, attentionMask: want.attentionMask });
    }
  });
});

describe('chat templates: as transformers apply_chat_template', () => {
  test.each(Object.keys(CHAT_CASES))('%s', (caseName) => {
    const c = CHAT_CASES[caseName];
    const want = answer(`chat:${caseName}`);
    const options = { addGenerationPrompt: c.addGenerationPrompt, tools: c.tools, variables: c.variables };
    if (want.error !== undefined) {
      // The template's raise_exception: the same message, as INVALID_ARGUMENT.
      expect(() => tokenizers[c.tok].applyChatTemplate(c.messages, options)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(() => tokenizers[c.tok].applyChatTemplate(c.messages, options)).toThrow(want.error);
      return;
    }
    expect(tokenizers[c.tok].applyChatTemplate(c.messages, options)).toBe(want.text);
    expect(tokenizers[c.tok].applyChatTemplate(c.messages, { ...options, tokenize: true }).ids).toEqual(want.ids);
  });

  test("named templates (transformers' list): 'tool_use' when tools are given, else 'default', or the one named", async () => {
    const named = await Tokenizer.fromFile(path.join(dir, 'out', 'byte-bpe', 'tokenizer.json'), {
      bosToken: '<|begin_of_text|>',
      chatTemplate: { default: LLAMA3_TEMPLATE, tool_use: CHATML_TEMPLATE },
    });
    const llama = CHAT_CASES['llama3-system'];
    expect(named.applyChatTemplate(llama.messages, { addGenerationPrompt: true })).toBe(expected('chat:llama3-system').text);
    const tools = CHAT_CASES['chatml-tools'];
    expect(named.applyChatTemplate(tools.messages, { addGenerationPrompt: true, tools: tools.tools })).toBe(expected('chat:chatml-tools').text);
    expect(named.applyChatTemplate(CHAT_CASES.chatml.messages, { addGenerationPrompt: true, templateName: 'tool_use' })).toBe(expected('chat:chatml').text);
    expect(() => named.applyChatTemplate(CONVERSATION, { templateName: 'rag' })).toThrow("no chat template named 'rag'; the tokenizer has: default, tool_use");
  });
});

describe('every assigned code point', () => {
  test.each(SWEPT)('%s', (name) => {
    const { kept, chunks } = expected(`sweep:${name}`) as { kept: number[]; chunks: number[][] };
    // Every code point swept, or (assigned only) all but those new since Unicode 14 (~15,000).
    expect(kept.length).toBeGreaterThan(ASSIGNED_ONLY.has(name) ? SWEEP.length - 20_000 : SWEEP.length - 1);
    const mismatches: string[] = [];
    for (let i = 0; i * SWEEP_CHUNK < kept.length; i++) {
      const text = kept
        .slice(i * SWEEP_CHUNK, (i + 1) * SWEEP_CHUNK)
        .map((cp) => `Ab${String.fromCodePoint(cp)}cD ${String.fromCodePoint(cp)}`)
        .join(' ');
      const ids = tokenizers[name].encode(text, { addSpecialTokens: false }).ids;
      if (JSON.stringify(ids) !== JSON.stringify(chunks[i])) mismatches.push(`chunk ${i} (from U+${kept[i * SWEEP_CHUNK].toString(16)})`);
    }
    expect(mismatches).toEqual([]);
    expect(chunks.length).toBe(Math.ceil(kept.length / SWEEP_CHUNK));
  });
});

test('text Python cannot take (a lone surrogate) is tokenized, not a crash', () => {
  for (const name of NAMES) {
    const { ids } = tokenizers[name].encode('a\ud800b \udfff');
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tokenizers[name].vocabSize)).toBe(true);
  }
});
