// The manifest `torchscope export` writes beside a model (scripts/hf_export.py): what the model
// is and where its hook points and tokenizer are. It is an untrusted file like the model: read
// with a size bound, every field's type checked, an unknown format or version refused.
import { promises as fs } from 'fs';
import * as path from 'path';

import { CallSite, failure } from '../core/errors';
import { isRecord } from '../core/validate';

/** The manifest's file beside `model.pt`: `model.torchscope.json`. */
export const MANIFEST_SUFFIX = '.torchscope.json';
/** What the `format` field says. */
export const MANIFEST_FORMAT = 'torchscope-manifest';
/** The manifest versions this version of torchscope reads. */
export const MANIFEST_VERSIONS = [1] as const;
/** A manifest is a few kilobytes; anything past this is not one. */
export const MAX_MANIFEST_BYTES = 1 << 20;
/** The tasks `torchscope export` traces. */
export const MANIFEST_TASKS = ['causal-lm', 'encoder', 'image-classification'] as const;

/** Module paths of a model's parts, as `model.modules()` names them; absent when the exporter found none. */
export interface ManifestHookPoints {
  /** The token (or patch) embedding: 'model.embed_tokens'. */
  embed?: string;
  /** Each block, in order: 'model.layers.0', ... */
  blocks?: string[];
  /** Each block's attention module: 'model.layers.0.self_attn', ... */
  attention?: string[];
  /** Each block's MLP: 'model.layers.0.mlp', ... */
  mlp?: string[];
  /** The norm after the last block: 'model.norm'. */
  finalNorm?: string;
  /** The unembedding (LM head): 'lm_head'. */
  unembed?: string;
}

/** What `torchscope export` wrote about a model (`model.manifest`); sizes are null where the config has none. */
export interface ModelManifest {
  format: typeof MANIFEST_FORMAT;
  version: (typeof MANIFEST_VERSIONS)[number];
  /** The folder or hub id it was exported from. */
  source: string;
  /** The config's model_type: 'llama', 'gemma2', 'gpt2'. */
  modelType: string;
  /** The Hugging Face class traced: 'LlamaForCausalLM'. */
  architecture: string;
  task: (typeof MANIFEST_TASKS)[number];
  /** forward's arguments, in order: ['input_ids']. */
  inputs: string[];
  layers: number | null;
  heads: number | null;
  /** Key-value heads (grouped-query attention); `heads` when the model does not group. */
  kvHeads: number | null;
  hiddenSize: number | null;
  vocabSize: number | null;
  maxPositions: number | null;
  /** Whether the unembedding shares the embedding's weight. */
  tiedEmbeddings: boolean;
  hookPoints: ManifestHookPoints;
  /** The tokenizer folder (tokenizer.json, tokenizer_config.json, ...) as an absolute path, or null. */
  tokenizer: string | null;
  bosTokenId: number | null;
  /** One id, or several (a chat model also ends at its end-of-turn token). */
  eosTokenId: number | number[] | null;
  /** The export's check of the trace against the eager model; null when skipped. */
  check: { inputs: number; maxAbsDiff: number } | null;
  /** A causal LM's cached decoding step (`<stem>.decode.pt`), which torch.generate uses; null when there is none. */
  decodeStep: ManifestDecodeStep | null;
  /** Why the export wrote no decoding step; null when it wrote one, or the model is no causal LM. */
  decodeStepRefused: string | null;
}

/**
 * The cached decoding step beside a causal LM: the model traced with forward taking `input_ids`
 * [batch, new] and each layer's past keys and values [batch, heads, past, head dim], returning
 * the new positions' logits and each layer's keys and values over past + new.
 */
export interface ManifestDecodeStep {
  /** Its file, as an absolute path (the manifest names one file beside it). */
  file: string;
  /** [heads, head dim] of each past tensor, in forward's order: layer 0's keys, its values, layer 1's keys... */
  past: [number, number][];
  /** The export's check of the step, chained on itself, against the eager full forward; null when skipped. */
  check: { inputs: number; maxAbsDiff: number } | null;
}

/** The manifest's path for a model file: its name with the last extension replaced. */
export function manifestPath(modelFile: string): string {
  const { dir, name } = path.parse(modelFile);
  return path.join(dir, `${name}${MANIFEST_SUFFIX}`);
}

/** Reads and checks the manifest beside `modelFile`; null when there is none. */
export async function readManifest(modelFile: string, site?: CallSite): Promise<ModelManifest | null> {
  const file = manifestPath(path.resolve(modelFile));
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw failure('MODEL_LOAD', `manifest '${file}': ${(e as Error).message}`, site);
  }
  let text: string;
  try {
    const { size } = await handle.stat();
    if (size > MAX_MANIFEST_BYTES) throw failure('MODEL_LOAD', `manifest '${file}' is ${size} bytes, more than a manifest's ${MAX_MANIFEST_BYTES}`, site);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw failure('MODEL_LOAD', `manifest '${file}' is not JSON: ${(e as Error).message}`, site);
  }
  return parseManifest(raw, path.dirname(file), file, site);
}

/** A checked manifest from parsed JSON; `dir` resolves the tokenizer folder. */
export function parseManifest(raw: unknown, dir: string, file: string, site?: CallSite): ModelManifest {
  const bad = (what: string): never => {
    throw failure('MODEL_LOAD', `manifest '${file}': ${what}`, site);
  };
  if (!isRecord(raw)) return bad('not a JSON object');
  if (raw.format !== MANIFEST_FORMAT) return bad(`format is ${JSON.stringify(raw.format)}, not '${MANIFEST_FORMAT}'`);
  if (!(MANIFEST_VERSIONS as readonly unknown[]).includes(raw.version)) {
    return bad(
      `version ${JSON.stringify(raw.version)} is not one this torchscope reads (${MANIFEST_VERSIONS.join(', ')}): update torchscope, or export the model again`,
    );
  }
  const text = (key: string): string => (typeof raw[key] === 'string' ? (raw[key] as string) : bad(`${key} must be a string`));
  const count = (key: string): number | null => {
    const value = raw[key] ?? null;
    return value === null || (Number.isInteger(value) && (value as number) >= 0)
      ? (value as number | null)
      : bad(`${key} must be a non-negative integer or null`);
  };
  const id = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;
  const task = text('task');
  if (!(MANIFEST_TASKS as readonly string[]).includes(task)) bad(`task must be one of ${MANIFEST_TASKS.join(', ')}, got ${JSON.stringify(task)}`);
  if (!Array.isArray(raw.inputs) || !raw.inputs.every((i) => typeof i === 'string')) bad('inputs must be an array of strings');
  if (typeof raw.tiedEmbeddings !== 'boolean') bad('tiedEmbeddings must be a boolean');
  const bos = raw.bosTokenId ?? null;
  if (bos !== null && !id(bos)) bad('bosTokenId must be a token id or null');
  const eos = raw.eosTokenId ?? null;
  if (eos !== null && !id(eos) && !(Array.isArray(eos) && eos.every(id))) bad('eosTokenId must be a token id, an array of them, or null');
  return {
    format: MANIFEST_FORMAT,
    version: raw.version as ModelManifest['version'],
    source: text('source'),
    modelType: text('modelType'),
    architecture: text('architecture'),
    task: task as ModelManifest['task'],
    inputs: [...(raw.inputs as string[])],
    layers: count('layers'),
    heads: count('heads'),
    kvHeads: count('kvHeads'),
    hiddenSize: count('hiddenSize'),
    vocabSize: count('vocabSize'),
    maxPositions: count('maxPositions'),
    tiedEmbeddings: raw.tiedEmbeddings as boolean,
    hookPoints: hookPoints(raw.hookPoints, bad),
    tokenizer: tokenizerDir(raw.tokenizer, dir, bad),
    bosTokenId: bos as number | null,
    eosTokenId: Array.isArray(eos) ? [...(eos as number[])] : (eos as number | null),
    check: checkRecord(raw.check, bad),
    decodeStep: decodeStep(raw.decodeStep, dir, bad),
    decodeStepRefused: raw.decodeStepRefused === undefined || raw.decodeStepRefused === null ? null : text('decodeStepRefused'),
  };
}

const SINGLE_POINTS = ['embed', 'finalNorm', 'unembed'] as const;
const LISTED_POINTS = ['blocks', 'attention', 'mlp'] as const;

function hookPoints(raw: unknown, bad: (what: string) => never): ManifestHookPoints {
  if (!isRecord(raw)) return bad('hookPoints must be an object');
  const known: readonly string[] = [...SINGLE_POINTS, ...LISTED_POINTS];
  const unknown = Object.keys(raw).find((key) => !known.includes(key));
  if (unknown !== undefined) bad(`hookPoints.${unknown} is not a hook point this torchscope knows (${known.join(', ')})`);
  const points: ManifestHookPoints = {};
  for (const key of SINGLE_POINTS) {
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') bad(`hookPoints.${key} must be a module path`);
    points[key] = value as string;
  }
  for (const key of LISTED_POINTS) {
    const value = raw[key];
    if (value === undefined) continue;
    if (!Array.isArray(value) || !value.every((p) => typeof p === 'string' && p !== '')) bad(`hookPoints.${key} must be an array of module paths`);
    points[key] = [...(value as string[])];
  }
  return points;
}

/** A name beside the manifest (no folders, no '.' or '..'), as an absolute path. */
function besideManifest(raw: unknown, dir: string, what: string, bad: (what: string) => never): string {
  if (typeof raw !== 'string' || raw === '' || raw === '.' || raw === '..' || raw !== path.basename(raw) || /[\\/]/.test(raw)) {
    return bad(`${what} must be the name of a ${what === 'tokenizer' ? 'folder' : 'file'} beside the manifest, got ${JSON.stringify(raw)}`);
  }
  return path.join(dir, raw);
}

/** The tokenizer folder's absolute path: the manifest names one folder beside it, nothing else. */
function tokenizerDir(raw: unknown, dir: string, bad: (what: string) => never): string | null {
  return raw === null || raw === undefined ? null : besideManifest(raw, dir, 'tokenizer', bad);
}

/** A head count or head size: a positive integer, bounded so that a hostile manifest allocates nothing large. */
const MAX_PAST_SIZE = 1 << 16;

function decodeStep(raw: unknown, dir: string, bad: (what: string) => never): ManifestDecodeStep | null {
  if (raw === null || raw === undefined) return null;
  if (!isRecord(raw)) return bad('decodeStep must be an object or null');
  const size = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_PAST_SIZE;
  const past = raw.past;
  if (!Array.isArray(past) || past.length === 0 || past.length % 2 !== 0 || !past.every((p) => Array.isArray(p) && p.length === 2 && p.every(size))) {
    bad(`decodeStep.past must list [heads, head dim] (integers 1..${MAX_PAST_SIZE}) of each layer's keys and values`);
  }
  return {
    file: besideManifest(raw.file, dir, 'decodeStep.file', bad),
    past: (past as [number, number][]).map(([h, d]) => [h, d]),
    check: checkRecord(raw.check, bad),
  };
}

function checkRecord(raw: unknown, bad: (what: string) => never): ModelManifest['check'] {
  if (raw === null || raw === undefined) return null;
  if (!isRecord(raw) || !Number.isInteger(raw.inputs) || typeof raw.maxAbsDiff !== 'number') {
    return bad('check must be { inputs: integer, maxAbsDiff: number } or null');
  }
  return { inputs: raw.inputs as number, maxAbsDiff: raw.maxAbsDiff };
}
