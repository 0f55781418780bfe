// Today's open LLM families as torch.export programs (.pt2), models this repository did not
// design: the Hugging Face fixtures of scripts/llm_fixtures.py (Llama, Qwen2, Gemma 2 and 3,
// Mistral, Pythia, Phi-3, GPT-2), exported now with a dynamic sequence length in the training IR
// and core ATen by test/python/pt2_llm_reference.py, against eager PyTorch on the same weights:
// logits, the first block's output (a forward hook), its attention pattern (output_attentions)
// and a zeroed MLP (a forward hook returning zeros), at 1e-5 x max |value|.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../lib';
import { expectClose, maxAbs, MODELS, removeDir, ROOT, runPythonScript, scratchDir } from './helpers';

const FAMILIES = ['llama', 'qwen2', 'gemma2', 'gemma3', 'mistral', 'pythia', 'phi3', 'gpt2'];
const TOL = 1e-5;

interface Flat {
  data: number[];
  shape: number[];
}
interface Family {
  ids: number[];
  logits: Flat;
  block: string;
  blockOutput: Flat;
  attention: string;
  pattern: Flat;
  mlp: string;
  patched: Flat;
}

let dir: string;
let reference: Record<string, Family | { error: string }>;
const host = (flat: Flat) => ({ data: Float32Array.from(flat.data), shape: flat.shape, dtype: 'float32' as const });
const close = (actual: torch.Value, expected: Flat, label: string) =>
  expectClose(actual as torch.Tensor, host(expected), TOL * Math.max(1, maxAbs(Float32Array.from(expected.data))), label);

beforeAll(async () => {
  dir = scratchDir('pt2-llm');
  const request = path.join(dir, 'request.json');
  fs.writeFileSync(request, JSON.stringify({ out: dir, models: path.join(MODELS, 'llm'), families: FAMILIES }));
  await runPythonScript(path.join(ROOT, 'test', 'python', 'pt2_llm_reference.py'), [request]);
  reference = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')).families;
}, 600_000);
afterAll(() => removeDir(dir));

describe.each(FAMILIES)('%s', (family) => {
  const want = () => {
    const r = reference[family];
    if ('error' in r) throw new Error(`${family}: the Python reference failed: ${r.error}`);
    return r;
  };
  const ids = () => torch.tensor(BigInt64Array.from(want().ids.map(BigInt)), [2, 9]);

  test.each(['training', 'core'])('%s IR: logits, the first block, its attention pattern and a zeroed MLP equal eager', async (ir) => {
    const r = want();
    const model = await torch.load(path.join(dir, `${family}.${ir}.pt2`));
    try {
      const pattern = `${r.attention}:pattern`;
      const result = await torch.run(model, [ids()], { capture: [r.block, pattern] });
      close((result.output as Record<string, torch.Value>).logits, r.logits, 'logits');
      close(result.activations[r.block], r.blockOutput, r.block);
      close(result.activations[pattern], r.pattern, pattern);
      result.dispose();
      const patched = await torch.run(model, [ids()], { patch: { [r.mlp]: { zero: true } } });
      close((patched.output as Record<string, torch.Value>).logits, r.patched, `logits with ${r.mlp} zeroed`);
      patched.dispose();
    } finally {
      model.dispose();
    }
  });
});
