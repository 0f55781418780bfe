// Tokenizer (lib/text/tokenizer.ts) on what it must refuse, each with INVALID_ARGUMENT and a
// message that says what is wrong: missing, malformed, oversized and unsupported files, a bad
// tokenizer_config.json, unknown options (naming the closest), bad values, padding without a
// pad token, chat templates that are missing or broken. Tokenizers written here by hand (tiny
// WordPiece and BPE files); test/hf-tokenizer.test.ts compares real ones with Python.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { TorchscopeError } from '../lib/core/errors';
import { MAX_TOKENIZER_JSON_BYTES } from '../lib/core/limits';
import { ChatMessage } from '../lib/text/chat-template';
import { Tokenizer } from '../lib/text/tokenizer';

const added = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

// A BERT-like WordPiece tokenizer.
const WORDPIECE = {
  version: '1.0',
  added_tokens: [added(0, '[PAD]'), added(1, '[UNK]'), added(2, '[CLS]'), added(3, '[SEP]')],
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '[CLS]', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '[SEP]', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
      { SpecialToken: { id: '[SEP]', type_id: 1 } },
    ],
    special_tokens: {},
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: {
    type: 'WordPiece',
    unk_token: '[UNK]',
    continuing_subword_prefix: '##',
    max_input_chars_per_word: 100,
    vocab: { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, hello: 4, world: 5, '##s': 6, a: 7, b: 8 },
  },
};

// A byte-less BPE without a pad token.
const BPE = {
  version: '1.0',
  added_tokens: [added(4, '<eos>')],
  normalizer: null,
  pre_tokenizer: { type: 'WhitespaceSplit' },
  post_processor: null,
  decoder: null,
  model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, c: 3 }, merges: ['a b'], unk_token: null },
};

let dir: string;
let wordpieceFile: string;
let bpeFile: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchscope-hf-tokenizer-errors-'));
  wordpieceFile = write('wordpiece.json', JSON.stringify(WORDPIECE));
  bpeFile = write('bpe.json', JSON.stringify(BPE));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** A copy of `json` changed by `edit`, written to `name`. */
function edited(json: object, name: string, edit: (copy: any) => void): string {
  const copy = JSON.parse(JSON.stringify(json));
  edit(copy);
  return write(name, JSON.stringify(copy));
}

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TorchscopeError);
  expect((error as TorchscopeError).code).toBe('INVALID_ARGUMENT');
  expect((error as TorchscopeError).message).toMatch(message);
}

function throws(fn: () => unknown, message: string | RegExp): void {
  expect(fn).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  expect(fn).toThrow(message);
}

const CONVERSATION: ChatMessage[] = [
  { role: 'user', content: 'hello' },
  { role: 'assistant', content: 'world' },
];

test('the hand-made tokenizers work (what the refusals below are measured against)', async () => {
  const tok = await Tokenizer.fromFile(wordpieceFile, { padToken: '[PAD]' });
  expect(tok.encode('Hello worlds').tokens).toEqual(['[CLS]', 'hello', 'world', '##s', '[SEP]']);
  expect(tok.encodeBatch(['a', 'a b'], { paddingSide: 'left' }).ids).toEqual([
    [0, 2, 7, 3],
    [2, 7, 8, 3],
  ]);
  const bpe = await Tokenizer.fromFile(bpeFile);
  expect(bpe.encode('ab c').ids).toEqual([2, 3]);
});

test('a missing file or folder, a folder for a file', async () => {
  await rejects(Tokenizer.fromFile(path.join(dir, 'nowhere.json')), /cannot read tokenizer file '.*nowhere\.json': ENOENT/);
  await rejects(Tokenizer.fromPretrained(path.join(dir, 'no-folder')), /cannot read tokenizer file '.*no-folder.tokenizer\.json'/);
  await rejects(Tokenizer.fromFile(dir), /not a regular file/);
  await rejects(Tokenizer.fromFile(''), /tokenizerJson must be a non-empty string/);
});

test('bad JSON, JSON that is not an object, a wrong shape', async () => {
  await rejects(Tokenizer.fromFile(write('truncated.json', '{"model": {"type": "BPE", ')), /is not valid JSON/);
  await rejects(Tokenizer.fromFile(write('array.json', '[1, 2]')), /must hold a JSON object/);
  await rejects(Tokenizer.fromFile(write('no-model.json', '{"added_tokens": []}')), /no 'model' object/);
  await rejects(Tokenizer.fromFile(edited(BPE, 'no-merges.json', (j) => delete j.model.merges)), /a BPE model needs a 'merges' array/);
  await rejects(Tokenizer.fromFile(edited(BPE, 'bad-merge.json', (j) => (j.model.merges = [['a']]))), /a BPE merge must be "a b" or \["a", "b"\]/);
  await rejects(Tokenizer.fromFile(edited(WORDPIECE, 'bad-ids.json', (j) => (j.model.vocab.hello = -1))), /vocab ids must be non-negative integers, got -1/);
  await rejects(Tokenizer.fromFile(edited(WORDPIECE, 'bad-added.json', (j) => (j.added_tokens[0].content = 7))), /each added token needs an integer id/);
  const unigram = { model: { type: 'Unigram', vocab: [['a', -1], ['b']], unk_id: 0 } };
  await rejects(Tokenizer.fromFile(write('bad-unigram.json', JSON.stringify(unigram))), /a Unigram vocab entry must be \[piece, score\]/);
});

test('an oversized file is refused before it is read', async () => {
  const file = path.join(dir, 'huge.json');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, MAX_TOKENIZER_JSON_BYTES + 1); // sparse: no disk used
  await rejects(Tokenizer.fromFile(file), new RegExp(`is ${MAX_TOKENIZER_JSON_BYTES + 1} bytes, more than the ${MAX_TOKENIZER_JSON_BYTES}`));
});

test('an unsupported model type or pipeline step', async () => {
  const wordLevel = { model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' }, added_tokens: [] };
  await rejects(
    Tokenizer.fromFile(write('wordlevel.json', JSON.stringify(wordLevel))),
    /model type "WordLevel" is not supported; supported: BPE, WordPiece, Unigram/,
  );
  await rejects(
    Tokenizer.fromFile(edited(WORDPIECE, 'nmt.json', (j) => (j.normalizer = { type: 'Nmt' }))),
    /tokenizer file '.*nmt\.json': Unknown Normalizer type: Nmt/,
  );
  await rejects(Tokenizer.fromFile(edited(WORDPIECE, 'bad-step.json', (j) => (j.decoder = 'WordPiece'))), /'decoder' must be null or an object with a type/);
});

test('a bad tokenizer_config.json; chat_template.jinja is the template when there', async () => {
  const folder = path.join(dir, 'folder');
  fs.mkdirSync(folder, { recursive: true });
  fs.copyFileSync(wordpieceFile, path.join(folder, 'tokenizer.json'));
  const config = (content: string) => fs.writeFileSync(path.join(folder, 'tokenizer_config.json'), content);
  config(JSON.stringify({ padding_side: 'middle' }));
  await rejects(Tokenizer.fromPretrained(folder), /padding_side must be 'left' or 'right', got "middle"/);
  config(JSON.stringify({ bos_token: 7 }));
  await rejects(Tokenizer.fromPretrained(folder), /bos_token must be a token \(a string or \{ content \}\)/);
  config('{"bos_token": ');
  await rejects(Tokenizer.fromPretrained(folder), /tokenizer config '.*tokenizer_config\.json' is not valid JSON/);
  config(JSON.stringify({ chat_template: 'config {{ messages | length }}', pad_token: { content: '[PAD]' }, padding_side: 'left', model_max_length: 1e30 }));
  let tok = await Tokenizer.fromPretrained(folder);
  expect([tok.padTokenId, tok.paddingSide, tok.modelMaxLength]).toEqual([0, 'left', undefined]);
  expect(tok.applyChatTemplate(CONVERSATION)).toBe('config 2');
  fs.writeFileSync(path.join(folder, 'chat_template.jinja'), 'file {{ messages | length }}');
  tok = await Tokenizer.fromPretrained(folder);
  expect(tok.applyChatTemplate(CONVERSATION)).toBe('file 2');
  // Options override the folder.
  tok = await Tokenizer.fromPretrained(folder, { paddingSide: 'right', chatTemplate: 'option' });
  expect([tok.paddingSide, tok.applyChatTemplate(CONVERSATION)]).toEqual(['right', 'option']);
});

test('unknown options name the closest one', async () => {
  const tok = await Tokenizer.fromFile(wordpieceFile, { padToken: '[PAD]', chatTemplate: 'x' });
  const unknown = (fn: () => unknown, key: string, near: string) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TorchscopeError);
    expect((error as TorchscopeError).code).toBe('INVALID_ARGUMENT');
    expect((error as TorchscopeError).message).toContain(`unknown option '${key}' (did you mean '${near}'?)`);
    expect((error as TorchscopeError).suggestions).toEqual([near]);
  };
  unknown(() => tok.encode('x', { maxLenght: 5 } as never), 'maxLenght', 'maxLength');
  unknown(() => tok.encodeBatch(['x'], { paddingSid: 'left' } as never), 'paddingSid', 'paddingSide');
  unknown(() => tok.decode([1], { skipSpecialToken: true } as never), 'skipSpecialToken', 'skipSpecialTokens');
  unknown(() => tok.applyChatTemplate(CONVERSATION, { addGenerationPrompts: true } as never), 'addGenerationPrompts', 'addGenerationPrompt');
  await rejects(Tokenizer.fromFile(wordpieceFile, { bosTokn: '[CLS]' } as never), /unknown option 'bosTokn' \(did you mean 'bosToken'\?\)/);
});

test('bad values', async () => {
  const tok = await Tokenizer.fromFile(wordpieceFile, { padToken: '[PAD]' });
  throws(() => tok.encode('x', { maxLength: 0 }), 'maxLength must be a positive integer, got 0');
  throws(() => tok.encode('x', { truncation: 'only_third' as never }), /truncation must be/);
  throws(() => tok.encode('x', { truncation: true }), 'truncation needs maxLength (the tokenizer has no model_max_length)');
  throws(() => tok.encode(42 as never), 'encode(input) must be a string or a [string, string] pair, got 42');
  throws(() => tok.encodeBatch(['x'], { padding: 'max_length', maxLength: 3, paddingSide: 'up' as never }), /paddingSide must be 'left', 'right'/);
  throws(() => tok.encodeBatch(['x'], { padding: 'max_length' }), "padding 'max_length' needs maxLength");
  throws(() => tok.encodeBatch('x' as never), 'encodeBatch(inputs): inputs must be an array, got "x"');
  throws(() => tok.decode([0, tok.vocabSize]), `decode(ids): ids[1] = ${tok.vocabSize} is not a token id (0 to ${tok.vocabSize - 1})`);
  throws(() => tok.decode([1.5]), /is not a token id/);
  throws(() => tok.decode('ids' as never), 'decode(ids): ids must be an array of token ids, got "ids"');
  throws(() => tok.encode('a b a b a b', { maxLength: 4, truncation: 'only_second' }), "'only_second' truncation needs a pair of texts");
  throws(() => tok.encode('a b', { maxLength: 1 }), 'maxLength 1 leaves no room for the 2 special tokens');
  throws(() => tok.encode(['a', 'a b a b a b'], { maxLength: 5, truncation: 'only_first' }), /cannot truncate to 2 tokens by cutting only the first sequence/);
  await rejects(Tokenizer.fromFile(wordpieceFile, { paddingSide: 'top' as never }), /paddingSide must be 'left', 'right'/);
  await rejects(Tokenizer.fromFile(wordpieceFile, { chatTemplate: 3 as never }), /chatTemplate must be a string or \{ name: template \}/);
});

test('padding needs a pad token; without one, batches that need no padding still work', async () => {
  const bpe = await Tokenizer.fromFile(bpeFile);
  expect(bpe.padTokenId).toBeUndefined();
  throws(() => bpe.encodeBatch(['a', 'a b c']), /has no pad token: give padToken/);
  expect(bpe.encodeBatch(['ab c', 'c c']).ids).toEqual([
    [2, 3],
    [3, 3],
  ]);
  const padded = await Tokenizer.fromFile(bpeFile, { padToken: '<eos>' });
  expect(padded.encodeBatch(['ab', 'c c c']).ids).toEqual([
    [2, 4, 4],
    [3, 3, 3],
  ]);
});

test('chat templates: none, an unknown name, bad messages, a template that cannot parse', async () => {
  const none = await Tokenizer.fromFile(wordpieceFile);
  throws(() => none.applyChatTemplate(CONVERSATION), 'this tokenizer has no chat template (give chatTemplate when loading it)');
  const one = await Tokenizer.fromFile(wordpieceFile, { chatTemplate: '{{ messages[0].content }}' });
  throws(() => one.applyChatTemplate(CONVERSATION, { templateName: 'tool_use' }), "this tokenizer has one chat template, not one named 'tool_use'");
  throws(() => one.applyChatTemplate([{ content: 'no role' } as unknown as ChatMessage]), 'messages[0] must be an object with a string role, got an object');
  throws(() => one.applyChatTemplate('hello' as never), 'messages must be an array, got "hello"');
  throws(() => one.applyChatTemplate(CONVERSATION, { variables: 3 as never }), 'variables must be an object, got 3');
  const named = await Tokenizer.fromFile(wordpieceFile, { chatTemplate: { default: 'd', rag: 'r' } });
  throws(() => named.applyChatTemplate(CONVERSATION, { templateName: 'tool_use' }), "no chat template named 'tool_use'; the tokenizer has: default, rag");
  expect(named.applyChatTemplate(CONVERSATION, { templateName: 'rag' })).toBe('r');
  const broken = await Tokenizer.fromFile(wordpieceFile, { chatTemplate: '{% for m in messages %}{{ m.content }' });
  throws(() => broken.applyChatTemplate(CONVERSATION), /chat template 'default' cannot be parsed/);
  const raising = await Tokenizer.fromFile(wordpieceFile, { chatTemplate: "{{ raise_exception('no system role, please') }}" });
  throws(() => raising.applyChatTemplate(CONVERSATION), 'chat template: no system role, please');
});
