// The README's "Sparse autoencoders" example, as the README has it: its first ```ts block is read
// at test time, type-checked against lib/ (strict, 'torchscope' resolved to lib/index.ts),
// compiled and run on the induction model and the SAE set-up trained
// (scripts/induction_sae.py), and what it computed is checked: the strongest features it prints are
// the set-up's current- and previous-token features, the error-term splice leaves the logits as
// they are, zeroing the previous-token features raises the second copy's loss from near 0 to
// above 1, and generation repeats the half unless the same edit is made at every step.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

import * as torch from '../lib';
import { asTensor, expectClose, maxAbs, ROOT } from './helpers';

const SECTION = '## Sparse autoencoders';

/** The first ```ts block after the section's heading. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no '${SECTION}' section`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(start));
  if (!block) throw new Error(`README.md's '${SECTION}' section has no ts code block`);
  return block[1];
}

/** Type errors of the example as a module importing 'torchscope' (lib/index.ts). */
function typeErrors(code: string): string[] {
  const file = path.join(ROOT, 'test', '__readme_sae_example__.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    // ES2022 modules: the example awaits at the top level, as a user's ES module does.
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
    baseUrl: ROOT,
    paths: { torchscope: ['lib/index.ts'] },
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    path.resolve(name) === file ? ts.createSourceFile(name, code, version) : getSourceFile(name, version, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map(
      (d) =>
        `${d.start === undefined ? '' : `line ${(d.file?.getLineAndCharacterOfPosition(d.start).line ?? 0) + 1}: `}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
}

interface ExampleScope {
  model: torch.Model;
  sae: torch.Sae;
  figures: { currentToken: { features: number[] }; previousToken: { features: number[] } };
  half: number[];
  ids: number[];
  top: Awaited<ReturnType<typeof torch.sae.topFeatures>>;
  input: torch.Tensor;
  spliced: torch.RunResult;
  ablated: torch.RunResult;
  prompt: number[];
  repeats: torch.GenerateResult;
  broken: torch.GenerateResult;
}

/** Runs the example (top-level await inside an async function) and returns its variables. */
async function runExample(code: string, logged: unknown[][]): Promise<ExampleScope> {
  const js = ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS } }).outputText;
  const names = ['model', 'sae', 'figures', 'half', 'ids', 'top', 'input', 'spliced', 'ablated', 'prompt', 'repeats', 'broken'];
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<ExampleScope>;
  const body = new AsyncFunction('require', 'exports', 'console', `${js}\nreturn { ${names.join(', ')} };`);
  const modules: Record<string, unknown> = { torchscope: torch, 'fs/promises': fs.promises };
  const requireFor = (name: string) => {
    if (!(name in modules)) throw new Error(`the README example imports '${name}'; this test gives it ${Object.keys(modules).join(' and ')}`);
    return modules[name];
  };
  return body(requireFor, {}, { log: (...args: unknown[]) => logged.push(args) });
}

/** Mean next-token loss over the second copy's predictable positions (after its first token). */
function secondCopyLoss(logits: torch.Tensor, ids: number[], half: number): number {
  const [, , vocab] = logits.shape;
  const data = logits.data() as Float32Array;
  let total = 0;
  for (let i = half + 1; i < ids.length - 1; i++) {
    const row = data.subarray(i * vocab, (i + 1) * vocab);
    const top = Math.max(...row);
    total += top + Math.log(row.reduce((sum, v) => sum + Math.exp(v - top), 0)) - row[ids[i + 1]];
  }
  return total / (ids.length - 2 - half);
}

let scope: ExampleScope;
const logged: unknown[][] = [];

beforeAll(async () => {
  // The example's paths are relative, as a user in the repository runs it; jest runs from the root.
  expect(process.cwd()).toBe(ROOT);
  scope = await runExample(readmeExample(), logged);
});

afterAll(() => {
  for (const value of [scope?.spliced, scope?.ablated, scope?.top, scope?.input, scope?.sae, scope?.model]) value?.dispose();
});

test("the README's example type-checks (strict) against the API", () => {
  expect(typeErrors(readmeExample())).toEqual([]);
});

test('its two strongest features at position 5 are the feature of the token (7) and that of the previous token (33)', () => {
  const { top, figures, ids } = scope;
  expect([ids[4], ids[5]]).toEqual([33, 7]);
  const indices = top.top[5].features.map((f) => f.index);
  console.log(`README example, position 5: ${JSON.stringify(logged[0])}`);
  // The README says: the two strongest.
  expect(indices.slice(0, 2).sort((a, b) => a - b)).toEqual([figures.currentToken.features[7], figures.previousToken.features[33 - 1]].sort((a, b) => a - b));
  expect(top.features.shape).toEqual([ids.length, scope.sae.dSae]);
});

test("the error-term splice leaves the logits as they are; zeroing the previous-token features raises the second copy's loss", async () => {
  const { model, input, spliced, ablated, ids, half } = scope;
  const plain = (await model.forward(input)) as torch.Tensor;
  // 1e-5 of the logits' scale: the rounding of x - r + r.
  expectClose(asTensor(spliced.output), plain, 1e-5 * Math.max(1, maxAbs(plain.data() as Float32Array)), 'logits with the error term');
  const clean = secondCopyLoss(plain, ids, half.length);
  const lost = secondCopyLoss(asTensor(ablated.output), ids, half.length);
  console.log(`second copy's loss: ${clean.toFixed(3)} clean, ${lost.toFixed(3)} with the previous-token features zeroed (chance ${Math.log(63).toFixed(3)})`);
  expect(clean).toBeLessThan(0.3);
  expect(lost).toBeGreaterThan(1);
  expect(asTensor(spliced.activations['blocks.0:features']).shape).toEqual([1, ids.length, scope.sae.dSae]);
  plain.dispose();
});

test('generation with the SAE spliced repeats the half; with the previous-token features zeroed at every step it does not', () => {
  const { repeats, broken, half } = scope;
  console.log(`README example, generation: ${JSON.stringify(logged[1])}`);
  expect(repeats.newIds).toEqual(half.slice(4, 12));
  expect(broken.newIds.filter((t, i) => t === half[4 + i]).length).toBeLessThan(4);
});
