// Activation stores are untrusted files: openStore refuses data files outside the folder, arrays
// whose offsets are not the ones their declared shape implies, truncated streams, tampered
// manifests and journals, oversized metadata, with RUNTIME errors and no crash; collect refuses
// bad options with INVALID_ARGUMENT before it writes anything.
import * as A from 'apache-arrow';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectTorchscopeError, MODELS, removeDir, scratchDir } from './helpers';

const MODEL = path.join(MODELS, 'llm', 'gpt2.pt');
let dir: string;
let model: torch.Model;
let good: string;
const rows = Array.from({ length: 6 }, (_, i) => Array.from({ length: 8 }, (_, j) => (i * 13 + j) % 300));

/** A datasets folder with one Array2D [2, 3] column holding `data`, written by hand. */
function handmade(name: string, offsets: [number[], number[]], values: number[], stateFiles?: string[]): string {
  const folder = path.join(dir, name);
  fs.mkdirSync(folder, { recursive: true });
  const inner = new A.List(new A.Field('item', new A.Float32(), true));
  const outer = new A.List(new A.Field('item', inner, true));
  const leaf = A.makeData({ type: new A.Float32(), length: values.length, data: Float32Array.from(values) });
  const mid = A.makeData({ type: inner, length: offsets[1].length - 1, valueOffsets: Int32Array.from(offsets[1]), child: leaf });
  const top = A.makeData({ type: outer, length: offsets[0].length - 1, valueOffsets: Int32Array.from(offsets[0]), child: mid });
  const schema = new A.Schema([new A.Field('x', outer, true)]);
  const batch = new A.RecordBatch(schema, A.makeData({ type: new A.Struct(schema.fields), length: offsets[0].length - 1, children: [top] }));
  fs.writeFileSync(path.join(folder, 'data-00000-of-00001.arrow'), A.tableToIPC(new A.Table([batch]), 'stream'));
  fs.writeFileSync(path.join(folder, 'dataset_info.json'), JSON.stringify({ features: { x: { shape: [2, 3], dtype: 'float32', _type: 'Array2D' } } }));
  fs.writeFileSync(
    path.join(folder, 'state.json'),
    JSON.stringify({ _data_files: (stateFiles ?? ['data-00000-of-00001.arrow']).map((filename) => ({ filename })) }),
  );
  return folder;
}

async function readEverything(dir: string): Promise<number> {
  const store = await torch.openStore(dir);
  let n = 0;
  for await (const b of store.sequences()) {
    n += b.rows;
    torch.dispose([b.tokens, b.activations]);
  }
  return n;
}

beforeAll(async () => {
  dir = scratchDir('store-files');
  model = await torch.load(MODEL);
  good = path.join(dir, 'good');
  await torch.collect(model, { layers: ['transformer.h.0'], inputs: rows, out: good, batchSize: 2, shardBytes: 1000 });
});

afterAll(() => {
  model?.dispose();
  removeDir(dir);
});

describe('openStore refuses what its files do not back', () => {
  test('a regular hand-written array reads (the control for the cases below)', async () => {
    const folder = handmade(
      'regular',
      [
        [0, 2, 4],
        [0, 3, 6, 9, 12],
      ],
      Array.from({ length: 12 }, (_, i) => i),
    );
    expect(await readEverything(folder)).toBe(2);
  });

  test('offsets that are not the declared shape', async () => {
    const folder = handmade(
      'irregular',
      [
        [0, 2, 4],
        [0, 3, 5, 9, 12],
      ],
      Array.from({ length: 12 }, (_, i) => i),
    );
    await expectTorchscopeError(() => readEverything(folder), 'RUNTIME', /not a regular array of shape \[2,3\]/);
  });

  test('offsets past the values', async () => {
    const folder = handmade(
      'short',
      [
        [0, 2, 4],
        [0, 3, 6, 9, 12],
      ],
      Array.from({ length: 9 }, (_, i) => i),
    );
    await expectTorchscopeError(() => readEverything(folder), 'RUNTIME');
  });

  test.each([['../escape.arrow'], ['/etc/passwd'], ['.hidden.arrow'], ['data.parquet']])('a data file named %s', async (name) => {
    const folder = handmade(
      `named-${Buffer.from(name).toString('hex')}`,
      [
        [0, 2],
        [0, 3, 6],
      ],
      [1, 2, 3, 4, 5, 6],
      [name],
    );
    await expectTorchscopeError(() => torch.openStore(folder), 'RUNTIME', /not an \.arrow file in the folder/);
  });

  test('a truncated stream', async () => {
    const folder = path.join(dir, 'truncated');
    fs.cpSync(path.join(good, 'transformer.h.0'), folder, { recursive: true });
    const file = path.join(
      folder,
      fs.readdirSync(folder).find((f) => f.endsWith('.arrow'))!,
    );
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    await expectTorchscopeError(() => readEverything(folder), 'RUNTIME');
  });

  test('metadata too large to be metadata', async () => {
    const folder = handmade(
      'huge',
      [
        [0, 2],
        [0, 3, 6],
      ],
      [1, 2, 3, 4, 5, 6],
    );
    fs.writeFileSync(path.join(folder, 'dataset_info.json'), ' '.repeat(2 << 20));
    await expectTorchscopeError(() => torch.openStore(folder), 'RUNTIME', /too large/);
  });

  test('a manifest whose folder leaves the store, and a journal naming a path', async () => {
    const copy = path.join(dir, 'tampered');
    fs.cpSync(good, copy, { recursive: true });
    const manifestFile = path.join(copy, 'torchscope-store.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    fs.writeFileSync(manifestFile, JSON.stringify({ ...manifest, columns: [{ ...manifest.columns[0], folder: '../good/transformer.h.0' }] }));
    await expectTorchscopeError(() => torch.openStore(copy), 'RUNTIME', /not a torchscope store manifest/);
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const journalFile = path.join(copy, '.torchscope', 'worker-0-of-1.json');
    const journal = JSON.parse(fs.readFileSync(journalFile, 'utf8'));
    fs.writeFileSync(journalFile, JSON.stringify({ ...journal, shards: [{ name: '../../escape.arrow', rows: 1 }] }));
    await expectTorchscopeError(() => torch.openStore(copy), 'RUNTIME', /not a store journal/);
  });

  test('the untampered store still reads in full', async () => {
    expect(await readEverything(good)).toBe(rows.length);
  });
});

describe('collect refuses bad options before writing', () => {
  const out = () => path.join(dir, `refused-${Math.random().toString(36).slice(2)}`);
  test.each([
    ['an unknown option, naming the closest', { layers: ['transformer.h.0'], inputs: rows, shardByte: 10 }, /unknown option 'shardByte'.*shardBytes/],
    ['no layers', { layers: [], inputs: rows }, /at least one layer/],
    ['texts without a tokenizer', { layers: ['transformer.h.0'], inputs: ['some text'] }, /texts need a tokenizer and a contextSize/],
    [
      'rows of different lengths',
      {
        layers: ['transformer.h.0'],
        inputs: [
          [1, 2, 3],
          [1, 2],
        ],
      },
      /one length/,
    ],
    ['negative token ids', { layers: ['transformer.h.0'], inputs: [[1, -2, 3]] }, /token ids must be integers/],
    ['a bad dtype', { layers: ['transformer.h.0'], inputs: rows, dtype: 'bfloat16' }, /dtype/],
    ['a shard outside its count', { layers: ['transformer.h.0'], inputs: rows, shard: { index: 3, count: 2 } }, /shard index/],
    ["'bos' without a tokenizer", { layers: ['transformer.h.0'], inputs: rows, contextSize: 4 }, /beginBatch is 'bos'/],
  ])('%s', async (_name, options, message) => {
    const target = out();
    await expectTorchscopeError(() => torch.collect(model, { ...(options as unknown as torch.CollectOptions), out: target }), 'INVALID_ARGUMENT', message);
    expect(fs.existsSync(path.join(target, 'torchscope-store.json'))).toBe(false);
  });

  test('a scheduler index without a count', async () => {
    process.env.JOB_COMPLETION_INDEX = '1';
    try {
      await expectTorchscopeError(
        () => torch.collect(model, { layers: ['transformer.h.0'], inputs: rows, out: out() }),
        'INVALID_ARGUMENT',
        /set TORCHSCOPE_SHARD_COUNT/,
      );
    } finally {
      delete process.env.JOB_COMPLETION_INDEX;
    }
  });

  test('an unknown layer', async () => {
    await expectTorchscopeError(() => torch.collect(model, { layers: ['transformer.h.9'], inputs: rows, out: out() }), 'UNKNOWN_LAYER');
  });
});
