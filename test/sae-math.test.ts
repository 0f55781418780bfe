// The native SAE (binding().SaeHandle, made by createNativeSae from loadSaeFiles' result) against
// the independent Python reference of SAELens's math (test/python/sae_reference.py), on every
// fixture of every architecture and format: encode (pre-activation and features), decode (with
// the encoded input, and without it where nothing needs it), forward and the error term.
// 1e-5 relative in float32; float64 SAEs 1e-10; bfloat16 and float16 SAEs compute in 8 and 11
// significant bits, where two orders of summation differ in the last bit of the output's scale.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { castHost } from '../lib/io/host-tensor';
import { NativeTensor } from '../lib/native/binding';
import { binding } from '../lib/native/addon';
import { loadSaeFiles, SaeFiles } from '../lib/sae/load';
import { createNativeSae, NativeSae } from '../lib/sae/native';
import { expectClose, numel, randn, readValue, refTensor, relativeTolerance, removeDir, ROOT, runPythonScript, scratchDir, Tolerance } from './helpers';

const FIXTURES = path.join(ROOT, 'test', 'python', 'sae_fixtures.py');
const REFERENCE = path.join(ROOT, 'test', 'python', 'sae_reference.py');

/** Every good fixture (sae-files.test.ts lists what each is); the hook point is the loader's business, not the math's. */
const MATH_FIXTURES = [
  'standard',
  'standard-cnr',
  'standard-ln',
  'standard-expavg',
  'standard-nobdec',
  'standard-hookz',
  'standard-hookz-ln',
  'standard-f64',
  'standard-bf16',
  'standard-f16-from-f64',
  'standard-f32-from-bf16',
  'standard-f32-from-f16',
  'jumprelu',
  'jumprelu-cnr',
  'topk',
  'topk-rescale',
  'topk-hookz',
  'gated',
  'gated-ln',
  'transcoder',
  'transcoder-cnr',
  'transcoder-ln',
  'skip_transcoder',
  'skip_transcoder-ln',
  'jumprelu_transcoder',
  'scaling-ones',
  'legacy-hook-point',
  'legacy-topk',
  'legacy-hookz',
  'legacy-dev-version',
  'v6-metadata-version',
  'v6-rc',
  'gemma-scope',
  'gemma-scope-folder',
  'gemma-scope-compressed',
  'gemma-scope-f64',
  'sparsify',
  'sparsify-bf16',
];

const TOLERANCES: Record<string, Tolerance> = {
  float32: relativeTolerance(1e-5),
  float64: relativeTolerance(1e-10),
  float16: relativeTolerance(2e-3),
  bfloat16: relativeTolerance(2e-2),
};

interface Inputs {
  files: SaeFiles;
  /** [2, 3, d_in], or [2, 3, heads, d_head] for hook_z SAEs; float32. */
  x: { data: Float32Array; shape: number[] };
  /** Non-negative, sparse, [2, 3, d_sae]; float32 (cast to the SAE's dtype for both sides). */
  features: { data: Float32Array; shape: number[] };
}

let dir: string;
const inputs = new Map<string, Inputs>();
let reference: Record<string, any>;

beforeAll(async () => {
  dir = scratchDir('sae-math');
  const fixturesRequest = path.join(dir, 'fixtures.json');
  fs.writeFileSync(fixturesRequest, JSON.stringify({ out: path.join(dir, 'fixtures') }));
  await runPythonScript(FIXTURES, [fixturesRequest]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'fixtures', 'index.json'), 'utf8'));
  expect(Object.keys(index.good).sort()).toEqual([...MATH_FIXTURES].sort());
  const inDir = path.join(dir, 'in');
  fs.mkdirSync(inDir);
  const write = (name: string, t: { data: Float32Array; shape: number[] }) => {
    const file = path.join(inDir, `${name}.bin`);
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return { file, dtype: 'float32', shape: t.shape };
  };
  const requests: object[] = [];
  for (const [i, name] of MATH_FIXTURES.entries()) {
    const sae = index.good[name];
    const files = await loadSaeFiles(sae, { hookPoint: 'unused' });
    const heads = files.spec.reshapeHeads;
    const xShape = heads ? [2, 3, 4, files.dIn / 4] : [2, 3, files.dIn];
    const x = { data: randn(numel(xShape), 1000 + i), shape: xShape };
    const raw = randn(2 * 3 * files.dSae, 2000 + i);
    // About a quarter of the features on, as an SAE's are.
    const features = { data: raw.map((v) => (v > 0.7 ? v : 0)), shape: [2, 3, files.dSae] };
    inputs.set(name, { files, x, features });
    const common = { sae, x: write(`${name}-x`, x) };
    requests.push(
      { id: `${name}/encode`, op: 'encode', ...common },
      { id: `${name}/decode`, op: 'decode', features: write(`${name}-f`, features), skip: true, ...common },
      { id: `${name}/forward`, op: 'forward', ...common },
      { id: `${name}/error`, op: 'error_term', ...common },
    );
  }
  const request = path.join(dir, 'reference.json');
  fs.writeFileSync(request, JSON.stringify({ out: path.join(dir, 'reference'), cases: requests }));
  await runPythonScript(REFERENCE, [request]);
  reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference', 'index.json'), 'utf8')).cases;
}, 300_000);

afterAll(() => removeDir(dir));

function expected(id: string, key: string) {
  const raw = reference[id];
  if (!raw || raw.error) throw new Error(`reference case '${id}' failed in Python: ${raw?.error}`);
  return refTensor(readValue(raw[key]), `${id}.${key}`);
}

/** Compares a native result with the reference's and frees it. */
function check(actual: NativeTensor, id: string, key: string, tol: Tolerance) {
  const tensor = new torch.Tensor(actual);
  try {
    const ref = expected(id, key);
    expectClose(tensor, ref, typeof tol === 'number' ? tol : tol(ref), `${id}.${key}`);
  } finally {
    tensor.dispose();
  }
}

describe('the native SAE computes what SAELens computes', () => {
  test.each(MATH_FIXTURES)('%s', async (name) => {
    const { files, x, features } = inputs.get(name)!;
    const tol = TOLERANCES[files.dtype];
    const addon = binding();
    const sae: NativeSae = await createNativeSae(files, 'cpu');
    const xt = addon.TensorHandle.fromData(x.data, x.shape, 'float32');
    const cast = castHost({ dtype: 'float32', shape: features.shape, data: features.data }, files.dtype);
    const ft = addon.TensorHandle.fromData(cast.data, cast.shape, cast.dtype);
    try {
      const encoded = await sae.encode(xt);
      check(encoded.featuresPre, `${name}/encode`, 'featuresPre', tol);
      check(encoded.features, `${name}/encode`, 'features', tol);
      check(await sae.decode(ft, xt), `${name}/decode`, 'output', tol);
      check(await sae.forward(xt), `${name}/forward`, 'output', tol);
      const transcoder = ['transcoder', 'skip_transcoder', 'jumprelu_transcoder'].includes(files.architecture);
      // A transcoder's error is taken at its output point, against that point's value: not here.
      if (!transcoder) check(await sae.errorTerm(xt), `${name}/error`, 'output', tol);
      else await expect(sae.errorTerm(xt)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/at its output point/) });
      // Without the encoded input: the same output where nothing needs it (no normalization to
      // undo, which transcoders never do; no heads to restore; no skip term); a refusal where something does.
      const needsX = (files.spec.normalization !== 'none' && !transcoder) || files.spec.reshapeHeads || files.architecture === 'skip_transcoder';
      if (needsX) await expect(sae.decode(ft)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      else check(await sae.decode(ft), `${name}/decode`, 'output', tol);
    } finally {
      xt.dispose();
      ft.dispose();
      sae.dispose();
    }
  });

  test('an input of the wrong width is refused with SHAPE, naming the width', async () => {
    const files = inputs.get('standard')!.files;
    const sae = await createNativeSae(files, 'cpu');
    const x = binding().TensorHandle.fromData(new Float32Array(2 * (files.dIn - 1)), [2, files.dIn - 1], 'float32');
    try {
      await expect(sae.encode(x)).rejects.toMatchObject({ code: 'SHAPE', message: expect.stringContaining(`${files.dIn}`) });
    } finally {
      x.dispose();
      sae.dispose();
    }
  });
});
