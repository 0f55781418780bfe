// The Python reference for gradients and attribution (test/python/attribution_reference.py,
// written to Captum's definitions): cases collected, run in one Python process, results read.
import * as fs from 'fs';
import * as path from 'path';

import * as torch from '../../lib';
import { NativeAttributionRequest, NativeNumerics } from '../../lib/native/binding';
import { HostTensor, maxAbs, numel, readValue, RefValue, ROOT, runPythonScript } from './index';

const ATTRIBUTION_REFERENCE = path.join(ROOT, 'test', 'python', 'attribution_reference.py');

type Tensorish = HostTensor;

/** Objectives as the native request has them (lib/methods/objective.ts makes them). */
export interface RefObjective {
  layer: string;
  objectives: ({ target: number } | { logit: number } | { channel: number } | { neuron: { channel: number; y?: number; x?: number } })[];
}

export interface GradientsCase {
  id: string;
  kind: 'gradients';
  model: string;
  inputs: Tensorish[];
  objective: RefObjective;
  wrt: { inputs?: number[]; layers?: string[] };
  patch?: Record<string, { mode: 'zero' | 'scale'; scale?: number; channels?: number[] }>;
  /** 'captum': forward hooks and autograd.grad (modules whose inputs need no grad); default: full backward hooks. */
  layerGrads?: 'captum';
  /** The forward under torch.autocast('cpu', dtype). */
  autocast?: 'bf16' | 'fp16';
}

/** The native request's fields (lib/methods/attribution.ts fills them with Captum's defaults), its tensors as the reference reads them. */
export type RefAttributeOptions = Omit<NativeAttributionRequest, 'objective' | 'baseline' | 'featureMask' | 'autocast' | keyof NativeNumerics> & {
  baseline?: Tensorish;
  featureMask?: Tensorish;
};

export interface AttributeCase {
  id: string;
  kind: 'attribute';
  model: string;
  inputs: Tensorish[];
  objective: RefObjective;
  options: RefAttributeOptions;
}

export type AttributionRefCase = GradientsCase | AttributeCase;
type RefTensor = Extract<RefValue, { type: 'tensor' }>;

export interface AttributionRefResult {
  objective?: number[];
  inputs?: RefTensor[];
  layers?: Record<string, RefTensor[]>;
  attributions?: RefTensor;
  delta?: number[];
}

/** Every case in one Python process; a failed case throws when its result is read. */
export async function runAttributionReference(dir: string, cases: AttributionRefCase[]): Promise<Map<string, AttributionRefResult>> {
  const inDir = path.join(dir, 'in');
  const outDir = path.join(dir, 'out');
  fs.mkdirSync(inDir, { recursive: true });
  let count = 0;
  const write = (t: Tensorish) => {
    const file = path.join(inDir, `t${count++}.bin`);
    if (t.data.length !== numel(t.shape)) throw new Error(`${t.data.length} values for shape [${t.shape}]`);
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return { file, dtype: t.dtype, shape: t.shape };
  };
  const request = cases.map((c) => ({
    ...c,
    inputs: c.inputs.map(write),
    ...(c.kind === 'attribute'
      ? {
          options: {
            ...c.options,
            baseline: c.options.baseline ? write(c.options.baseline) : undefined,
            featureMask: c.options.featureMask ? write(c.options.featureMask) : undefined,
          },
        }
      : {}),
  }));
  const requestFile = path.join(dir, 'request.json');
  fs.writeFileSync(requestFile, JSON.stringify({ out: outDir, cases: request }));
  await runPythonScript(ATTRIBUTION_REFERENCE, [requestFile]);
  const index = JSON.parse(fs.readFileSync(path.join(outDir, 'index.json'), 'utf8'));
  const results = new Map<string, AttributionRefResult>();
  for (const [id, raw] of Object.entries<any>(index.cases)) {
    if (raw.error) {
      results.set(
        id,
        new Proxy({} as AttributionRefResult, {
          get() {
            throw new Error(`attribution reference case '${id}' failed in Python: ${raw.error}`);
          },
        }),
      );
      continue;
    }
    results.set(id, {
      objective: raw.objective,
      inputs: raw.inputs?.map(readValue),
      layers: raw.layers ? Object.fromEntries(Object.entries<any[]>(raw.layers).map(([k, v]) => [k, v.map(readValue) as RefTensor[]])) : undefined,
      attributions: raw.attributions ? (readValue(raw.attributions) as RefTensor) : undefined,
      delta: raw.delta,
    });
  }
  return results;
}

/** The reference result of a case; throws a readable error when it is missing. */
export function attributionResult(results: Map<string, AttributionRefResult> | undefined, id: string): AttributionRefResult {
  const result = results?.get(id);
  if (!result) throw new Error(`no attribution reference result '${id}' (did the reference run in beforeAll fail?)`);
  return result;
}

/** A relative bar: `factor` x max |expected| (no floor: gradients are often far below 1). */
export function relativeTo(expected: RefTensor, factor: number): number {
  const scale = maxAbs(expected.data as ArrayLike<number>);
  return factor * scale + 1e-12;
}

/** The options lib/methods/attribution.ts would send, for the reference: Captum's defaults plus `options`. */
export function refOptions(options: Partial<RefAttributeOptions> & { method: string }): RefAttributeOptions {
  const d = torch.ATTRIBUTION_DEFAULTS;
  return {
    input: d.input,
    baselineValue: 0,
    abs: d.abs,
    multiplyByInputs: d.multiplyByInputs,
    steps: d.steps,
    integration: d.integration,
    internalBatchSize: 0,
    convergenceDelta: d.convergenceDelta,
    layer: '',
    relu: d.relu,
    upsample: [],
    upsampleMode: d.upsampleMode,
    window: [],
    strides: [],
    perturbationsPerEval: d.perturbationsPerEval,
    noise: '',
    samples: d.noise.samples,
    samplesBatchSize: 0,
    stdev: d.noise.stdev,
    seed: d.noise.seed,
    ...options,
  };
}

/** Ranks from 1, ties sharing their mean rank. */
function ranks(values: ArrayLike<number>): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson's on the ranks, ties averaged), as scipy.stats.spearmanr. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = ra.length;
  const meanA = ra.reduce((s, v) => s + v, 0) / n;
  const meanB = rb.reduce((s, v) => s + v, 0) / n;
  let cov = 0;
  let varA = 0;
  let varB = 0;
  for (let i = 0; i < n; i++) {
    cov += (ra[i] - meanA) * (rb[i] - meanB);
    varA += (ra[i] - meanA) ** 2;
    varB += (rb[i] - meanB) ** 2;
  }
  return cov / Math.sqrt(varA * varB);
}
