// Fuzzing the model loader: seeded mutants of the test models (test/fixtures/mutants.py: byte
// flips, flips inside the pickles and the code, truncations, dropped and duplicated records,
// short tensor records, inflation bombs) and the hostile fixtures (test/fixtures/hostile.py),
// each loaded, and run when it loads, in child processes (test/children/fuzz-load.js). A child
// that dies by a signal or a non-zero exit is a crash of the mutant it was on; one that reports
// nothing for HANG_MS is a hang. Either fails the test, naming the mutant. Every load failure
// must be MODEL_LOAD, every run failure a typed code.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { modelPath, python, removeDir, ROOT, scratchDir } from './helpers';

const SEED = 20261202;
const COUNT = 320;
const HANG_MS = 30_000;
const CHILD = path.join(ROOT, 'test', 'children', 'fuzz-load.js');
const BASES = ['resnet-tiny.pt', 'resnet-tiny-scripted.pt', 'bert-tiny.pt'];

interface Mutant {
  file: string;
  base: string;
  kind: string;
  detail: string;
}

interface Outcome {
  mutant: Mutant;
  result: string; // loaded | load:CODE | run:CODE | crash: ... | hang
  rss?: number;
}

let dir: string;
let mutants: Mutant[];
let outcomes: Outcome[];

/** Runs mutants from `start` in one child until it finishes, crashes or hangs; returns where to go on. */
function runChild(list: string, start: number, record: (outcome: Outcome) => void): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, list, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let current = start;
    let buffered = '';
    let stderr = '';
    let hung = false;
    let watchdog = setTimeout(onHang, HANG_MS);
    function onHang(): void {
      hung = true;
      child.kill('SIGKILL');
    }
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        clearTimeout(watchdog);
        watchdog = setTimeout(onHang, HANG_MS);
        const [what, index, result, rss] = line.split(' ');
        if (what === 'start') current = Number(index);
        if (what === 'done') {
          record({ mutant: mutants[Number(index)], result, rss: Number(rss) });
          current = Number(index) + 1;
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      if (current >= mutants.length) return resolve(current);
      const result = hung ? 'hang' : `crash: exit ${code} signal ${signal} ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
      record({ mutant: mutants[current], result });
      resolve(current + 1);
    });
  });
}

beforeAll(async () => {
  dir = scratchDir('fuzz');
  const env = { ...process.env, PYTHONWARNINGS: 'ignore' };
  execFileSync(python(), [path.join(ROOT, 'test', 'fixtures', 'mutants.py'), dir, String(SEED), String(COUNT), ...BASES.map(modelPath)], { env });
  const hostileDir = path.join(dir, 'hostile');
  execFileSync(python(), [path.join(ROOT, 'test', 'fixtures', 'hostile.py'), hostileDir], { env });
  mutants = JSON.parse(fs.readFileSync(path.join(dir, 'mutants.json'), 'utf8'));
  // The hostile fixtures too, as regression reproducers (their inputs: a resnet-tiny's, which
  // none of them will get to, since each is refused).
  for (const name of Object.keys(JSON.parse(fs.readFileSync(path.join(hostileDir, 'index.json'), 'utf8')))) {
    mutants.push({ file: path.join(hostileDir, `${name}.pt`), base: 'resnet-tiny.pt', kind: 'hostile', detail: name });
  }
  const list = path.join(dir, 'list.json');
  fs.writeFileSync(list, JSON.stringify(mutants));
  outcomes = [];
  for (let next = 0; next < mutants.length;) next = await runChild(list, next, (outcome) => outcomes.push(outcome));
}, 900_000);

afterAll(() => removeDir(dir));

const describeOutcome = (o: Outcome) => `${path.basename(o.mutant.file)} (${o.mutant.kind} of ${o.mutant.base}: ${o.mutant.detail}): ${o.result}`;

test(`${COUNT} seeded mutants and the hostile fixtures: no crash, no hang`, () => {
  expect(outcomes).toHaveLength(mutants.length);
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.result.split(':')[0]] = (counts[o.result.split(':')[0]] ?? 0) + 1;
  const rss = outcomes.filter((o) => o.rss).map((o) => o.rss!);
  const growthMb = rss.length > 20 ? (rss[rss.length - 1] - rss[10]) / 2 ** 20 : 0;
  console.log(
    `fuzz: ${outcomes.length} files (${COUNT} mutants, seed ${SEED}, + ${outcomes.length - COUNT} hostile): ${JSON.stringify(counts)}; child RSS growth after the first 10: ${growthMb.toFixed(1)} MB`,
  );
  expect(outcomes.filter((o) => o.result.startsWith('crash') || o.result === 'hang').map(describeOutcome)).toEqual([]);
});

test('every load failure is MODEL_LOAD, every run failure a typed code', () => {
  const untyped = outcomes.filter((o) => (o.result.startsWith('load:') && o.result !== 'load:MODEL_LOAD') || /UNTYPED|INTERNAL/.test(o.result));
  expect(untyped.map(describeOutcome)).toEqual([]);
});

test('every hostile fixture is refused', () => {
  const hostile = outcomes.filter((o) => o.mutant.kind === 'hostile');
  expect(hostile.length).toBeGreaterThanOrEqual(10);
  expect(hostile.filter((o) => o.result !== 'load:MODEL_LOAD').map(describeOutcome)).toEqual([]);
});
