// `torchscope inspect <model.pt> [--seq N]`: what a newcomer asks first. forward's inputs, the
// manifest's names (when `torchscope export` wrote one), and the module tree: for each module its
// type, whether it can be hooked (and why not), its call sites, its role in the manifest, and the
// shape of its output for a sample input, all captured in one run.
import { parseArgs } from 'util';

import { TorchscopeError } from './core/errors';
import { Input, load, Model, ModuleInfo, Value } from './model/model';
import { ModelManifest } from './model/manifest';
import { Tensor, tensor } from './model/tensor';
import { run } from './methods/activations';

/** The sample input's length (--seq). */
const DEFAULT_SEQ = 8;
export const inspectUsage = `torchscope inspect <model.pt> [--seq ${DEFAULT_SEQ}]`;
/** Sample token ids cycle through 1..SAMPLE_ID_RANGE: inside any vocabulary. */
const SAMPLE_ID_RANGE = 64;
/** Sample inputs by forward argument name: token ids, a mask of ones, token types 0. */
const SAMPLE_INPUTS: Record<string, (seq: number) => Tensor> = {
  input_ids: (seq) =>
    tensor(
      BigInt64Array.from({ length: seq }, (_, i) => BigInt(1 + (i % SAMPLE_ID_RANGE))),
      [1, seq],
      'int64',
    ),
  attention_mask: (seq) => tensor(new BigInt64Array(seq).fill(1n), [1, seq], 'int64'),
  token_type_ids: (seq) => tensor(new BigInt64Array(seq), [1, seq], 'int64'),
};

/** The roles the manifest gives module paths: 'block 0', 'final norm'. */
function roles(manifest: ModelManifest | null): Map<string, string> {
  const named = new Map<string, string>();
  const points = manifest?.hookPoints ?? {};
  if (points.embed) named.set(points.embed, 'embed');
  points.blocks?.forEach((p, i) => named.set(p, `block ${i}`));
  points.attention?.forEach((p, i) => named.set(p, `attention ${i}`));
  points.mlp?.forEach((p, i) => named.set(p, `mlp ${i}`));
  if (points.finalNorm) named.set(points.finalNorm, 'final norm');
  if (points.unembed) named.set(points.unembed, 'unembed');
  return named;
}

/** A value's shapes: '[1, 8, 32]', or '([1, 8, 32], [1, 4, 8, 8])' for a tuple. */
export function describeShape(value: Value): string {
  if (value instanceof Tensor) return `[${value.shape.join(', ')}] ${value.dtype}`;
  if (Array.isArray(value)) return `(${value.map(describeShape).join(', ')})`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  return `{${Object.entries(value)
    .map(([k, v]) => `${k}: ${describeShape(v)}`)
    .join(', ')}}`;
}

function manifestLines(manifest: ModelManifest): string[] {
  const m = manifest;
  const heads = m.heads === null ? '' : `, ${m.heads} heads${m.kvHeads !== null && m.kvHeads !== m.heads ? ` (${m.kvHeads} key-value)` : ''}`;
  const lines = [
    `manifest: ${m.architecture} (${m.modelType}, ${m.task}) from ${m.source}`,
    `  ${m.layers ?? '?'} layers${heads}, hidden ${m.hiddenSize ?? '?'}, vocabulary ${m.vocabSize ?? '?'}, ` +
      `${m.tiedEmbeddings ? 'tied' : 'untied'} embeddings, bos ${JSON.stringify(m.bosTokenId)}, eos ${JSON.stringify(m.eosTokenId)}`,
  ];
  const points = m.hookPoints;
  const list = (paths: string[] | undefined) => (paths?.length ? (paths.length > 2 ? `${paths[0]} .. ${paths[paths.length - 1]}` : paths.join(', ')) : '-');
  lines.push(`  embed ${points.embed ?? '-'}; blocks ${list(points.blocks)}; attention ${list(points.attention)}; mlp ${list(points.mlp)}`);
  lines.push(`  final norm ${points.finalNorm ?? '-'}; unembed ${points.unembed ?? '-'}; tokenizer ${m.tokenizer ?? '-'}`);
  if (m.check) lines.push(`  export check: ${m.check.inputs} inputs, max |traced - eager| ${m.check.maxAbsDiff.toExponential(2)}`);
  return lines;
}

/** The shapes of every hookable module's outputs (one per call) and of forward's output, for the sample. */
async function sampleRun(model: Model, inputs: Input[], hookable: string[]): Promise<{ output: string; calls: Map<string, string[]> }> {
  const result = await run(model, inputs, { capture: hookable, calls: 'all', allowNotRun: true });
  try {
    const calls = new Map(hookable.map((path) => [path, ((result.activations[path] as Value[] | null) ?? []).map(describeShape)]));
    return { output: describeShape(result.output), calls };
  } finally {
    result.dispose();
  }
}

/** A module's name in the tree: its path, indented by its depth. */
function treeName(info: ModuleInfo): string {
  const depth = info.path === '' ? 0 : info.path.split('.').length;
  return `${'  '.repeat(depth)}${info.path === '' ? '(model)' : info.path}`;
}

function moduleLine(info: ModuleInfo, widths: [number, number], role: string | undefined, calls: string[] | undefined, sampled: boolean): string {
  let what: string;
  if (!info.hookable) what = `not hookable: ${info.reason}`;
  else if (!sampled) what = '';
  else if (!calls || calls.length === 0) what = 'not run by the sample';
  else {
    const shapes = [...new Set(calls)];
    what = `${calls.length > 1 ? `${calls.length} calls: ` : ''}${shapes.join(' | ')}`;
  }
  const sites = info.hookable ? `sites ${info.callSites}` : '';
  return `${treeName(info).padEnd(widths[0])}  ${info.type.padEnd(widths[1])}  ${sites.padEnd(8)} ${what}${role ? `  <- ${role}` : ''}`.trimEnd();
}

export async function inspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { seq: { type: 'string' } } });
  if (positionals.length !== 1) {
    console.error(`usage: ${inspectUsage}`);
    return 2;
  }
  const seq = values.seq === undefined ? DEFAULT_SEQ : Number(values.seq);
  if (!Number.isInteger(seq) || seq < 1) throw new TorchscopeError('INVALID_ARGUMENT', `--seq must be a positive integer, got '${values.seq}'`);
  const model = await load(positionals[0]);
  try {
    const lines = [`model: ${model.path}`];
    const inputs = model.inputs;
    lines.push(`inputs: ${inputs.map((i) => `${i.name}: ${i.type}`).join(', ')}`);
    if (model.manifest) lines.push(...manifestLines(model.manifest));
    const modules = model.modules();
    const missing = inputs.filter((i) => !SAMPLE_INPUTS[i.name]);
    let sample: { output: string; calls: Map<string, string[]> } | undefined;
    if (missing.length === 0) {
      const hookable = modules.filter((m) => m.hookable && m.path !== '').map((m) => m.path);
      sample = await sampleRun(
        model,
        inputs.map((i) => SAMPLE_INPUTS[i.name](seq)),
        hookable,
      );
      lines.push(`sample: ${inputs.map((i) => `${i.name} [1, ${seq}]`).join(', ')} -> output ${sample.output}`);
    } else {
      lines.push(`sample: none (no sample for ${missing.map((i) => i.name).join(', ')}; shapes are shown for models taking input_ids)`);
    }
    const named = roles(model.manifest);
    lines.push(`modules (${modules.length}; hookable ones are layer names for activations, run, patches):`);
    const widths: [number, number] = [Math.max(...modules.map((m) => treeName(m).length)), Math.max(...modules.map((m) => m.type.length))];
    for (const info of modules) lines.push(moduleLine(info, widths, named.get(info.path), sample?.calls.get(info.path), sample !== undefined));
    console.log(lines.join('\n'));
    return 0;
  } finally {
    model.dispose();
  }
}
