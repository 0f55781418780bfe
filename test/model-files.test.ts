// Model files are untrusted input (native/torchscript/model_file.h). The hostile files of
// test/fixtures/hostile.py, made now, are each refused with MODEL_LOAD and a message that says
// why, before any of their code runs; what their code would have done did not happen; the
// process goes on working. { trusted: true } runs code with effects (and only that).
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { asTensor, expectTorchscopeError, MODELS, modelPath, python, removeDir, ROOT, scratchDir } from './helpers';

const HOSTILE = path.join(ROOT, 'test', 'fixtures', 'hostile.py');
let dir: string;
const file = (name: string) => path.join(dir, `${name}.pt`);
const victim = () => fs.readFileSync(path.join(dir, 'victim.bin'), 'utf8');

beforeAll(() => {
  dir = scratchDir('hostile');
  execFileSync(python(), [HOSTILE, dir], { env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
}, 120_000);

afterAll(() => removeDir(dir));

async function stillWorks(): Promise<void> {
  const model = await torch.load(modelPath('resnet-tiny.pt'));
  expect(asTensor(await model.forward(torch.zeros([1, 3, 32, 32]))).shape).toEqual([1, 10]);
  model.dispose();
}

describe('tensors the file describes must lie inside what it holds (trusted or not)', () => {
  test.each([false, true])('a storage record shorter than its storage (trusted: %s): no heap is read', async (trusted) => {
    await expectTorchscopeError(() => torch.load(file('short-storage'), { trusted }), 'MODEL_LOAD', /storage of 4096 bytes backed by a record of 16/);
    await stillWorks();
  });
  test('a view reaching past its storage', async () => {
    await expectTorchscopeError(() => torch.load(file('view-past-storage')), 'MODEL_LOAD', /require a storage of at least 4000 bytes, but storage only has 16/);
  });
  test('a sparse tensor, which libtorch rebuilds without checking its indices', async () => {
    await expectTorchscopeError(() => torch.load(file('sparse-buffer'), { trusted: true }), 'MODEL_LOAD', /Sparse tensor/);
  });
});

describe('an archive that inflates far past its size', () => {
  test('is refused from the zip directory, before anything inflates', async () => {
    const start = performance.now();
    await expectTorchscopeError(() => torch.load(file('inflation-bomb')), 'MODEL_LOAD', /inflate to more than \d+ bytes .* zip bomb.*maxInflatedBytes/);
    expect(performance.now() - start).toBeLessThan(5_000);
  });
  test('and loads with maxInflatedBytes raised past it (it is a valid model under the padding)', async () => {
    const model = await torch.load(file('inflation-bomb'), { maxInflatedBytes: 2 ** 30 });
    expect(asTensor(await model.forward(torch.zeros([1, 4]))).shape).toEqual([1, 3]);
    model.dispose();
  }, 120_000);
  test('a bound below the file itself refuses even a plain model', async () => {
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { maxInflatedBytes: 1000 }), 'MODEL_LOAD', /zip bomb/);
    await expectTorchscopeError(() => torch.load(modelPath('resnet-tiny.pt'), { maxInflatedBytes: -1 }), 'INVALID_ARGUMENT');
  });
});

describe('every load failure is MODEL_LOAD, with its cause', () => {
  test('code that does not compile (was SHAPE or DEVICE)', async () => {
    await expectTorchscopeError(() => torch.load(file('parse-error')), 'MODEL_LOAD', /parse-error\.pt.*expected ident/s);
  });
  test('an operator of a namespace this process never registered', async () => {
    const error = await expectTorchscopeError(
      () => torch.load(file('unknown-namespace')),
      'MODEL_LOAD',
      /its code calls evil::exfiltrate in the method Plain\.forward \(code\/__torch__\.py\), an operator of a namespace this process has not registered .*none of the file was run/s,
    );
    expect(error.message).toMatch(/return ops\.evil\.exfiltrate/);
    await expectTorchscopeError(() => torch.load(file('unknown-namespace'), { trusted: true }), 'MODEL_LOAD', /evil::exfiltrate/);
  });
});

describe('what is not a regular file is refused, not read', () => {
  test('a FIFO: no wait for a writer, and later calls run', async () => {
    const fifo = path.join(dir, 'model.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expectTorchscopeError(() => torch.load(fifo), 'MODEL_LOAD', /not a regular file/);
    await stillWorks();
  });
  test('a directory', async () => {
    await expectTorchscopeError(() => torch.load(MODELS), 'MODEL_LOAD', /not a regular file/);
  });
});

describe('code with effects outside tensor computation is refused before any of it runs', () => {
  test.each([
    ['save-in-forward', /aten::save \(writes files\) in __torch__\.SaveInForward\.forward/],
    ['save-in-fork', /aten::save \(writes files\) in __torch__\./],
    ['setstate-writes', /aten::save \(writes files\) in __torch__\.SetStateWrites\.__setstate__/],
    ['from-file', /aten::from_file .* in __torch__\.FromFile\.forward/],
    ['from-file-shared', /aten::from_file .* in __torch__\.FromFile\.forward/],
    ['manual-seed', /aten::manual_seed \(reseeds the process-wide random generator\)/],
  ])('%s', async (name, message) => {
    const error = await expectTorchscopeError(() => torch.load(file(name)), 'MODEL_LOAD', message);
    expect(error.message).toMatch(/trusted: true/);
    // __setstate__ runs during torch::jit::load: had it run, this file would exist.
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('written-by'))).toEqual([]);
    expect(victim()).toBe('victim file data');
  });

  test('{ trusted: true } runs them: forward writes, __setstate__ writes while loading, from_file reads', async () => {
    const saving = await torch.load(file('save-in-forward'), { trusted: true });
    await saving.forward(torch.zeros([2]));
    expect(fs.existsSync(path.join(dir, 'written-by-forward.pt'))).toBe(true);
    // This __setstate__ leaves `training` unset, so the load then fails, after the write.
    await expectTorchscopeError(() => torch.load(file('setstate-writes'), { trusted: true }), 'MODEL_LOAD', /left uninitialized/);
    expect(fs.existsSync(path.join(dir, 'written-by-setstate.pt'))).toBe(true);
    const reading = await torch.load(file('from-file'), { trusted: true });
    expect(Buffer.from(asTensor(await reading.forward(torch.zeros([1]))).data() as Uint8Array).toString()).toBe('victim file data');
    saving.dispose();
    reading.dispose();
  });

  test("the project's models and the zoo load without trusted", async () => {
    const zoo = JSON.parse(fs.readFileSync(path.join(MODELS, 'zoo', 'manifest.json'), 'utf8')).models.map((m: { file: string }) =>
      path.join(MODELS, 'zoo', m.file),
    );
    const files = [
      ...fs
        .readdirSync(MODELS)
        .filter((f) => f.endsWith('.pt') && f !== 'bert.pt')
        .map((f) => path.join(MODELS, f)),
      ...zoo,
    ];
    for (const name of files) (await torch.load(name)).dispose();
    expect(files.length).toBeGreaterThan(25);
  }, 120_000);
});
