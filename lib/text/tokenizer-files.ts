// Reading a Hugging Face tokenizer: tokenizer.json (the pipeline: normalizer, pre-tokenizer,
// model, post-processor, decoder), tokenizer_config.json (special tokens, sides, the chat
// template) and chat_template.jinja. The files are untrusted: each is bounded in size before it
// is read, parsed, and checked for the shape the tokenizer reads before anything uses it.
import { promises as fs } from 'fs';

import { CallSite, failure } from '../core/errors';
import { isRecord } from '../core/validate';

/** The model types the tokenizer runs. */
export const TOKENIZER_MODELS = ['BPE', 'WordPiece', 'Unigram'] as const;

/**
 * What a tokenizer_config.json says (transformers' names, camel-cased), every field optional:
 * read by `Tokenizer.fromPretrained`, or given to `fromFile` / `fromPretrained` directly.
 */
export interface TokenizerOptions {
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  sepToken?: string;
  clsToken?: string;
  maskToken?: string;
  /** A Jinja chat template, or named templates (transformers' list of { name, template }). */
  chatTemplate?: string | Record<string, string>;
  paddingSide?: 'left' | 'right';
  truncationSide?: 'left' | 'right';
  /** Longest input the model takes; undefined when the file gives none (or transformers' 1e30). */
  modelMaxLength?: number;
  /** Rebuild the post-processor as BOS? $A EOS?, as transformers does when the config names either. */
  addBosToken?: boolean;
  addEosToken?: boolean;
  cleanUpTokenizationSpaces?: boolean;
}

/** The role names of special tokens, as the settings and the chat template's variables spell them. */
export const SPECIAL_ROLES = [
  ['bosToken', 'bos_token'],
  ['eosToken', 'eos_token'],
  ['unkToken', 'unk_token'],
  ['sepToken', 'sep_token'],
  ['padToken', 'pad_token'],
  ['clsToken', 'cls_token'],
  ['maskToken', 'mask_token'],
] as const;

/** A file's text, refused before reading when it is larger than `limit` bytes. */
export async function readBounded(file: string, limit: number, what: string, site: CallSite): Promise<string> {
  let size: number;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    size = stat.size;
  } catch (error) {
    throw failure('INVALID_ARGUMENT', `cannot read ${what} '${file}': ${(error as Error).message}`, site);
  }
  if (size > limit) throw failure('INVALID_ARGUMENT', `${what} '${file}' is ${size} bytes, more than the ${limit} a ${what} may have`, site);
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    throw failure('INVALID_ARGUMENT', `cannot read ${what} '${file}': ${(error as Error).message}`, site);
  }
}

/** A JSON object from a file, bounded as readBounded. */
export async function readJsonObject(file: string, limit: number, what: string, site: CallSite): Promise<Record<string, unknown>> {
  const text = await readBounded(file, limit, what, site);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw failure('INVALID_ARGUMENT', `${what} '${file}' is not valid JSON: ${(error as Error).message}`, site);
  }
  if (!isRecord(json)) throw failure('INVALID_ARGUMENT', `${what} '${file}' must hold a JSON object`, site);
  return json;
}

const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * Checks what the tokenizer reads of a tokenizer.json: the model (a supported type with its
 * vocabulary in the type's shape), the added tokens, and that each pipeline step is an object
 * with a type or null. Throws INVALID_ARGUMENT naming the first thing wrong.
 */
export function checkTokenizerJson(json: Record<string, unknown>, file: string, site: CallSite): void {
  const bad = (message: string) => failure('INVALID_ARGUMENT', `tokenizer file '${file}': ${message}`, site);
  const model = json.model;
  if (!isRecord(model)) throw bad("no 'model' object");
  const type = model.type;
  if (!TOKENIZER_MODELS.includes(type as (typeof TOKENIZER_MODELS)[number])) {
    throw bad(`model type ${JSON.stringify(type)} is not supported; supported: ${TOKENIZER_MODELS.join(', ')}`);
  }
  if (type === 'Unigram') {
    const vocab = model.vocab;
    if (!Array.isArray(vocab) || vocab.length === 0) throw bad('a Unigram model needs a non-empty vocab of [piece, score] pairs');
    for (const entry of vocab) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') throw bad('a Unigram vocab entry must be [piece, score]');
    }
    if (model.unk_id !== null && model.unk_id !== undefined && !(isId(model.unk_id) && model.unk_id < vocab.length)) throw bad('unk_id is not in the vocab');
  } else {
    const vocab = model.vocab;
    if (!isRecord(vocab) || Object.keys(vocab).length === 0) throw bad(`a ${type} model needs a non-empty vocab object of token: id`);
    for (const id of Object.values(vocab)) if (!isId(id)) throw bad(`vocab ids must be non-negative integers, got ${JSON.stringify(id)}`);
    if (type === 'BPE') {
      const merges = model.merges;
      if (!Array.isArray(merges)) throw bad("a BPE model needs a 'merges' array");
      for (const merge of merges) {
        const pair = Array.isArray(merge) && merge.length === 2 && merge.every((m) => typeof m === 'string');
        if (!pair && typeof merge !== 'string') throw bad('a BPE merge must be "a b" or ["a", "b"]');
      }
    }
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw bad("'added_tokens' must be an array");
  for (const token of added) {
    if (!isRecord(token) || !isId(token.id) || typeof token.content !== 'string' || token.content === '') {
      throw bad('each added token needs an integer id and a non-empty content');
    }
  }
  for (const step of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
    const value = json[step];
    if (value !== undefined && value !== null && !(isRecord(value) && typeof value.type === 'string'))
      throw bad(`'${step}' must be null or an object with a type`);
  }
}

/** A special token's text: a string, or transformers' serialized AddedToken ({ content }). */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (isRecord(value) && typeof value.content === 'string' && value.content !== '') return value.content;
  return undefined;
}

/** The settings of a tokenizer_config.json; fields of the wrong type are refused, unknown ones ignored (transformers writes many). */
export function settingsFromConfig(config: Record<string, unknown>, file: string, site: CallSite): TokenizerOptions {
  const bad = (message: string) => failure('INVALID_ARGUMENT', `tokenizer config '${file}': ${message}`, site);
  const settings: TokenizerOptions = {};
  for (const [key, name] of SPECIAL_ROLES) {
    const value = config[name];
    if (value === undefined || value === null) continue;
    const text = tokenText(value);
    if (text === undefined) throw bad(`${name} must be a token (a string or { content })`);
    settings[key] = text;
  }
  const template = config.chat_template;
  if (typeof template === 'string') {
    settings.chatTemplate = template;
  } else if (Array.isArray(template)) {
    const named: Record<string, string> = {};
    for (const entry of template) {
      if (!isRecord(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string')
        throw bad('chat_template entries must be { name, template }');
      named[entry.name] = entry.template;
    }
    settings.chatTemplate = named;
  } else if (template !== undefined && template !== null) {
    throw bad('chat_template must be a string or a list of { name, template }');
  }
  for (const [key, name] of [
    ['paddingSide', 'padding_side'],
    ['truncationSide', 'truncation_side'],
  ] as const) {
    const side = config[name];
    if (side === undefined || side === null) continue;
    if (side !== 'left' && side !== 'right') throw bad(`${name} must be 'left' or 'right', got ${JSON.stringify(side)}`);
    settings[key] = side;
  }
  const maxLength = config.model_max_length;
  if (maxLength !== undefined && maxLength !== null) {
    if (typeof maxLength !== 'number' || !(maxLength >= 1)) throw bad('model_max_length must be a positive number');
    // transformers writes 1e30 (VERY_LARGE_INTEGER) for "no limit".
    if (Number.isSafeInteger(maxLength)) settings.modelMaxLength = maxLength;
  }
  for (const [key, name] of [
    ['addBosToken', 'add_bos_token'],
    ['addEosToken', 'add_eos_token'],
    ['cleanUpTokenizationSpaces', 'clean_up_tokenization_spaces'],
  ] as const) {
    const flag = config[name];
    if (flag === undefined || flag === null) continue;
    if (typeof flag !== 'boolean') throw bad(`${name} must be a boolean, got ${JSON.stringify(flag)}`);
    settings[key] = flag;
  }
  return settings;
}
