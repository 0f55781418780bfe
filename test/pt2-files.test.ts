// torch.export (.pt2) archives are untrusted input, as TorchScript files are (model-files.test.ts).
// test/fixtures/hostile_pt2.py makes, now, hostile archives from a tiny exported model, and
// test/fixtures/mutants_pt2.py seeded random mutants of it. Each is first loaded and run in child processes
// (test/children/fuzz-load.js): none may crash or hang the process, every load failure is
// MODEL_LOAD, every run failure a typed code. Then, in this process, each hostile archive is
// refused with MODEL_LOAD and a message that names the cause, before any of its graph runs; the
// process goes on working, and a model loaded before them still runs as eager PyTorch ran it.
// { trusted: true } lifts the operator policy, and only that.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { asTensor, expectClose, expectTorchscopeError, python, removeDir, ROOT, scratchDir } from './helpers';

const HOSTILE = path.join(ROOT, 'test', 'fixtures', 'hostile_pt2.py');
const MUTANTS = path.join(ROOT, 'test', 'fixtures', 'mutants_pt2.py');
const CHILD = path.join(ROOT, 'test', 'children', 'fuzz-load.js');
const SEED = 20261207;
const COUNT = 600;
const FUZZ_MS = 60_000;

interface Reference {
  input: number[];
  inputShape: number[];
  output: number[];
  outputShape: number[];
  condNested: number[];
  schemaVersion: string;
  dispatcherHasSave: boolean;
}

interface Outcome {
  file: string;
  kind: string;
  detail: string;
  result?: string; // loaded | load:CODE | run:CODE | crash: ... | hang
}

let dir: string;
let reference: Reference;
let outcomes: Outcome[];
let fuzzSeconds: number;
let before: torch.Model;
const file = (name: string) => path.join(dir, `${name}.pt2`);
const input = () => torch.tensor(Float32Array.from(reference.input), reference.inputShape);
const expected = (values: number[]) => ({ data: Float32Array.from(values), shape: reference.outputShape, dtype: 'float32' as const });

/**
 * Loads and runs `outcomes` in child processes, recording each result. A child runs the list
 * until it ends or dies; one that dies (by a signal, a non-zero exit) crashed on the archive it
 * had started, and the next child goes on after it. What runs past FUZZ_MS in all is a hang.
 */
function runChildren(): void {
  const list = path.join(dir, 'fuzz-list.json');
  fs.writeFileSync(list, JSON.stringify(outcomes.map((o) => ({ ...o, base: 'valid.pt2' }))));
  // What the valid archive takes, and its layer to capture.
  const bases = path.join(dir, 'fuzz-bases.json');
  const inputs = [{ data: reference.input, shape: reference.inputShape, dtype: 'float32' }];
  fs.writeFileSync(bases, JSON.stringify({ 'valid.pt2': { inputs, layer: 'linear1' } }));
  const start = performance.now();
  for (let next = 0; next < outcomes.length;) {
    const timeout = Math.max(1, Math.ceil(FUZZ_MS - (performance.now() - start)));
    const child = spawnSync(process.execPath, [CHILD, list, String(next), bases], {
      encoding: 'utf8',
      timeout,
      killSignal: 'SIGKILL',
      maxBuffer: 1 << 24,
    });
    let current = next;
    for (const [what, at, result] of child.stdout.split('\n').map((line) => line.split(' '))) {
      if (what === 'start') current = Number(at);
      if (what === 'done') {
        outcomes[Number(at)].result = result;
        current = Number(at) + 1;
      }
    }
    if (current >= outcomes.length) break;
    const timedOut = (child.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
    outcomes[current].result = timedOut
      ? 'hang'
      : `crash: exit ${child.status} signal ${child.signal} ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    if (timedOut) break;
    next = current + 1;
  }
  fuzzSeconds = (performance.now() - start) / 1000;
}

beforeAll(async () => {
  dir = scratchDir('hostile-pt2');
  const env = { ...process.env, PYTHONWARNINGS: 'ignore' };
  execFileSync(python(), [HOSTILE, dir], { env });
  execFileSync(python(), [MUTANTS, path.join(dir, 'mutants'), String(SEED), String(COUNT), file('valid')], { env });
  reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
  const index: Record<string, string> = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  outcomes = [
    ...JSON.parse(fs.readFileSync(path.join(dir, 'mutants', 'mutants.json'), 'utf8')),
    ...Object.entries(index).map(([name, detail]) => ({ file: file(name), kind: 'hostile', detail })),
  ];
  runChildren();
  before = await torch.load(file('valid'));
}, FUZZ_MS + 60_000);

afterAll(() => {
  before?.dispose();
  removeDir(dir);
});

/** torch.load of a hostile archive, unless it crashed or hung a child (it would end this process too). */
async function loadHostile(name: string, options?: torch.LoadOptions): Promise<torch.Model> {
  const result = outcomes.find((o) => o.file === file(name))?.result;
  if (result === undefined || result === 'hang' || result.startsWith('crash')) {
    throw new Error(`${name}.pt2: ${result ?? 'not run'} in a child process, so not loaded in this one`);
  }
  return torch.load(file(name), options);
}

/** Both the model loaded before the hostile files and a fresh load run as eager PyTorch did. */
async function stillWorks(): Promise<void> {
  expectClose(asTensor(await before.forward(input())), expected(reference.output), 1e-5, 'the model loaded before');
  const model = await torch.load(file('valid'));
  expectClose(asTensor(await model.forward(input())), expected(reference.output), 1e-5, 'a fresh load');
  model.dispose();
}

/** The first tensor of a value (a tensor, or one nested in arrays and records). */
function firstTensor(value: torch.Value | undefined): torch.Tensor | undefined {
  if (value instanceof torch.Tensor) return value;
  const items = Array.isArray(value) ? value : value && typeof value === 'object' ? Object.values(value) : [];
  for (const item of items) {
    const found = firstTensor(item as torch.Value);
    if (found) return found;
  }
  return undefined;
}

// Each hostile archive and what its refusal must say (besides the file's path).
const REFUSED: Record<string, RegExp[]> = {
  'model-not-json': [/model\.json/, /JSON|parse/i],
  'model-truncated': [/model\.json/, /JSON|parse|end of input/i],
  'model-deep-json': [/model\.json/, /nest|deep|depth/i],
  'model-deep-in-field': [/model\.json/, /nest|deep|depth/i],
  'nodes-not-list': [/nodes/, /array|list/i],
  'sizes-not-list': [/sizes/, /array|list/i],
  'target-not-string': [/target/, /string/i],
  'int-as-string': [/sizes/, /integer/i],
  'no-graph-module': [/graph_module/],
  'no-model-json': [/models\/model\.json/],
  'schema-major-99': [/schema version 99\b/i], // and the tested version: below
  'op-save': [/aten::save/, /writes files/, /trusted: true/],
  'op-from-file': [/aten::from_file/, /reads/, /trusted: true/],
  'op-unknown': [/aten::no_such_op/],
  'op-unknown-namespace': [/evil::op|evil\.op/],
  'op-eval': [/builtins\.eval/],
  'cond-without-graphs': [/cond/, /graph/i],
  'reads-undefined': [/ghost/],
  'defined-twice': [/\blinear\b/, /twice|again|already|more than once|redefine/i],
  'redefines-parameter': [/p_linear2_weight/, /twice|again|already|more than once|redefine/i],
  'output-undefined': [/ghost/],
  // A value read as another kind than its definition gives it: refused where the plan is built,
  // not left to fail inside an operator at run time.
  'symint-read-as-tensor': [/size_of_x/, /tensor/i],
  'symint-read-as-optional-tensor': [/size_of_x/, /tensor/i],
  'tensor-read-as-symint': [/\blinear\b/, /SymInt|int/i],
  'int-output-bound-as-tensor': [/\brows\b/, /int/i],
  'list-output-bound-as-tensor': [/halves/, /list|Tensor\[\]/i],
  'tensor-output-bound-as-list': [/\brelu\b/, /list|Tensor\[\]/i],
  'weight-offset-past-record': [/linear1\.weight/, /past|outside|beyond|exceed|out of bounds/i],
  'weight-strides-past-record': [/linear1\.weight/, /past|outside|beyond|exceed|out of bounds/i],
  'weight-sizes-past-record': [/linear1\.weight/, /past|outside|beyond|exceed|out of bounds/i],
  'weight-record-short': [/linear1\.weight/, /past|outside|beyond|exceed|out of bounds|short/i],
  'constant-record-short': [/shift/, /past|outside|beyond|exceed|out of bounds|short/i],
  'weight-size-overflow': [/linear1\.weight/],
  'weight-negative-size': [/linear1\.weight/, /negative|-8/i],
  'weight-negative-stride': [/linear1\.weight/],
  'weight-negative-offset': [/linear1\.weight/],
  'weight-dtype-999': [/999/, /dtype/i],
  'weight-sparse-layout': [/linear1\.weight/, /layout|sparse|strided/i],
  'weight-path-missing': [/weight_99/],
  'weight-path-traversal': [/linear1\.weight/, /path_name/],
  'weight-path-absolute': [/linear1\.weight/, /path_name/],
  'weight-use-pickle': [/linear1\.weight/, /pickle/i],
  'weight-record-missing': [/weight_\d+|linear2\.bias/],
  'parameter-not-in-weights': [/linear2\.bias/],
  'archive-format-wrong': [/archive_format|torchscript/],
  'model-inflates': [/zip bomb/, /maxInflatedBytes/],
};

// Hostile archives that may load, and what they then compute: the renamed one must load; the
// others may be refused for their depth, or run, but not crash. (The pytree specs are read
// leniently: one that does not parse leaves the outputs flat.)
const MAY_LOAD: Record<string, () => number[]> = {
  renamed: () => reference.output,
  'cond-nested': () => reference.condNested,
  'spec-context-deep-in': () => reference.output,
  'spec-context-deep-out': () => reference.output,
};

test('every archive hostile_pt2.py makes is checked here', () => {
  const made = Object.keys(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'))).sort();
  expect(made).toEqual([...Object.keys(REFUSED), ...Object.keys(MAY_LOAD)].sort());
});

describe(`${COUNT} seeded mutants of the valid archive and the hostile archives, in child processes`, () => {
  const describeOutcome = (o: Outcome) => `${path.basename(o.file)} (${o.kind}: ${o.detail}): ${o.result ?? 'not run'}`;

  test(`no crash, no hang, all within ${FUZZ_MS / 1000} s`, () => {
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[o.result ?? 'not run'] = (counts[o.result ?? 'not run'] ?? 0) + 1;
    console.log(`pt2 fuzz: ${outcomes.length} archives (${COUNT} mutants, seed ${SEED}) in ${fuzzSeconds.toFixed(1)} s: ${JSON.stringify(counts)}`);
    expect(outcomes.filter((o) => o.result === undefined || o.result === 'hang' || o.result.startsWith('crash')).map(describeOutcome)).toEqual([]);
    // Some mutants (a damaged stack trace, a flipped requires_grad) are still valid: the fuzz
    // reached forward, not only the parser.
    expect(counts.loaded ?? 0).toBeGreaterThan(0);
  });

  test('every load failure is MODEL_LOAD, every run failure a typed code', () => {
    const untyped = outcomes.filter((o) => (o.result?.startsWith('load:') && o.result !== 'load:MODEL_LOAD') || /UNTYPED|INTERNAL/.test(o.result ?? ''));
    expect(untyped.map(describeOutcome)).toEqual([]);
  });

  test('every hostile archive is refused there too (those that may load, load or are refused)', () => {
    const hostile = outcomes.filter((o) => o.kind === 'hostile');
    const wrong = hostile.filter((o) => {
      const name = path.basename(o.file, '.pt2');
      if (name === 'renamed') return o.result !== 'loaded';
      if (name in MAY_LOAD) return o.result !== 'loaded' && o.result !== 'load:MODEL_LOAD';
      return o.result !== 'load:MODEL_LOAD';
    });
    expect(hostile.length).toBe(Object.keys(REFUSED).length + Object.keys(MAY_LOAD).length);
    expect(wrong.map(describeOutcome)).toEqual([]);
  });
});

describe('valid archives', () => {
  test('the exported model runs as eager PyTorch ran it', async () => {
    await stillWorks();
  });
  test('an archive whose root folder is not its file name (renamed after saving) loads and runs', async () => {
    const model = await loadHostile('renamed');
    expectClose(asTensor(await model.forward(input())), expected(reference.output), 1e-5, 'renamed.pt2');
    model.dispose();
  });
});

describe('every hostile archive is refused with MODEL_LOAD, naming its cause; the process goes on', () => {
  test.each(Object.entries(REFUSED))('%s', async (name, causes) => {
    const error = await expectTorchscopeError(() => loadHostile(name), 'MODEL_LOAD');
    expect(error.message).toContain(`${name}.pt2`);
    for (const cause of causes) expect(error.message).toMatch(cause);
    await stillWorks();
  });

  test('schema version 99 names the version torchscope was tested with (the one this torch writes)', async () => {
    const error = await expectTorchscopeError(() => loadHostile('schema-major-99'), 'MODEL_LOAD', /99\.0/);
    expect(error.message).toContain(reference.schemaVersion);
  });

  test.each(Object.keys(MAY_LOAD).filter((name) => name !== 'renamed'))('%s: refused for its depth, or runs to what PyTorch computes', async (name) => {
    let model: torch.Model | undefined;
    try {
      model = await loadHostile(name);
    } catch (error) {
      expect(error).toBeInstanceOf(torch.TorchscopeError);
      expect((error as torch.TorchscopeError).code).toBe('MODEL_LOAD');
      expect((error as Error).message).toMatch(/nest|deep|depth/i);
    }
    if (model) {
      expectClose(asTensor(firstTensor(await model.forward(input()))), expected(MAY_LOAD[name]()), 1e-5, `${name}.pt2`);
      model.dispose();
    }
    await stillWorks();
  });
});

describe('the zip directory bounds what inflates', () => {
  test('model.json claiming 300 MB is refused before anything inflates', async () => {
    const start = performance.now();
    await expectTorchscopeError(() => loadHostile('model-inflates'), 'MODEL_LOAD', /inflate to more than \d+ bytes .*zip bomb.*maxInflatedBytes/s);
    expect(performance.now() - start).toBeLessThan(5_000);
  });
  test('raised past the claim, the forged size is found while inflating: still MODEL_LOAD', async () => {
    await expectTorchscopeError(() => loadHostile('model-inflates', { maxInflatedBytes: 2 ** 30 }), 'MODEL_LOAD', /model\.json/);
    await stillWorks();
  });
  test('a bound below the archive itself refuses the valid one', async () => {
    await expectTorchscopeError(() => torch.load(file('valid'), { maxInflatedBytes: 1000 }), 'MODEL_LOAD', /zip bomb/);
    const model = await torch.load(file('valid'), { maxInflatedBytes: 1 << 20 });
    expectClose(asTensor(await model.forward(input())), expected(reference.output), 1e-5, 'valid.pt2 under a 1 MiB bound');
    model.dispose();
  });
});

describe('what is not a regular file is refused, not read', () => {
  test('a directory named x.pt2', async () => {
    fs.mkdirSync(file('directory'));
    await expectTorchscopeError(() => torch.load(file('directory')), 'MODEL_LOAD', /not a regular file/);
  });
  test('a FIFO named x.pt2: no wait for a writer, and later calls run', async () => {
    expect(spawnSync('mkfifo', [file('fifo')]).status).toBe(0);
    await expectTorchscopeError(() => torch.load(file('fifo')), 'MODEL_LOAD', /not a regular file/);
    await stillWorks();
  });
});

describe('{ trusted: true } lifts the operator policy, and only that', () => {
  const written = () => fs.readdirSync(dir).filter((f) => f.startsWith('written-by') || f === 'pwned');

  test('untrusted, nothing of the refused graphs ran (here or in the children)', () => {
    // The refusals above came first (jest runs a file's tests in order).
    expect(written()).toEqual([]);
    expect(fs.readFileSync(path.join(dir, 'victim.bin'), 'utf8')).toBe('victim file data');
  });

  test('trusted, aten::from_file reads the file it names', async () => {
    const model = await loadHostile('op-from-file', { trusted: true });
    const read = asTensor(await model.forward(input()));
    expect(read.dtype).toBe('uint8');
    expect(Buffer.from(read.data() as Uint8Array).toString()).toBe('victim file data');
    model.dispose();
  });

  // aten::save is a TorchScript builtin, not an operator of libtorch's dispatcher (Python says
  // so: reference.json), which is what a .pt2 program runs on; so trusted gets it past the
  // policy, to be refused as an operator this libtorch does not have. (No export makes one:
  // torch.save does not trace.)
  test('trusted, aten::save passes the policy and is refused as no operator of the dispatcher', async () => {
    expect(reference.dispatcherHasSave).toBe(false);
    const error = await expectTorchscopeError(() => loadHostile('op-save', { trusted: true }), 'MODEL_LOAD', /aten::save/);
    expect(error.message).toMatch(/no such operator|not an operator|unknown operator/);
    expect(error.message).not.toMatch(/writes files|trusted: true/);
    expect(written()).toEqual([]);
  });

  test.each([
    ['op-unknown-namespace', /evil::op|evil\.op/],
    ['op-unknown', /aten::no_such_op/],
    ['op-eval', /builtins\.eval/],
    ['weight-use-pickle', /pickle/i],
    ['weight-path-traversal', /path_name/],
    ['weight-offset-past-record', /linear1\.weight/],
  ])('trusted, %s is still refused', async (name, cause) => {
    await expectTorchscopeError(() => loadHostile(name, { trusted: true }), 'MODEL_LOAD', cause);
    expect(fs.existsSync(path.join(dir, 'pwned'))).toBe(false);
  });
});
