// The 'recompute' route of lib/methods/attention.ts: attention probabilities a traced model computes
// but never exposes as a module output (torch.jit.trace drops outputs nothing uses), recomputed
// from captured projections as eager attention computes them, softmax(Q K^T / sqrt(d) + mask),
// causal for GPT-2. On a model's first call the head count is found, and the recipe checked, by
// rebuilding each layer's captured context from the recomputed probabilities and the captured
// values; a model whose attention differs is refused instead of misreported.
import { CallSite, failure } from '../core/errors';
import { INPUT_SUFFIX, Model, Value } from '../model/model';
import { disposeValue, Tensor, tensor } from '../model/tensor';
import { activations } from './activations';

/** Where a recompute reads queries and keys: BERT's query/key modules, or GPT-2's fused c_attn (causal). */
export type Projections = 'separate' | 'fused-causal';

export async function cpuData(t: Tensor): Promise<Float32Array> {
  if (t.device !== 'cpu') t = await t.to('cpu');
  return t.data() as Float32Array;
}

/** softmax(Q K^T * scale) over the real keys, for one layer, written into out at [b, layer, h]. */
function recomputeLayer(
  q: Float32Array,
  k: Float32Array,
  mask: number[][],
  S: number,
  hidden: number,
  heads: number,
  layer: number,
  layers: number,
  out: Float32Array,
  causal: boolean,
): void {
  const d = hidden / heads;
  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(S);
  mask.forEach((m, b) => {
    const real = m.flatMap((x, i) => (x === 1 ? [i] : []));
    for (let h = 0; h < heads; h++) {
      const base = ((b * layers + layer) * heads + h) * S * S;
      for (const i of real) {
        const qi = (b * S + i) * hidden + h * d;
        const keys = causal ? real.filter((j) => j <= i) : real;
        let max = -Infinity;
        for (const j of keys) {
          const kj = (b * S + j) * hidden + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qi + c] * k[kj + c];
          const s = dot * scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (const j of keys) {
          const e = Math.exp(scores[j] - max);
          scores[j] = e;
          sum += e;
        }
        const row = base + i * S;
        for (const j of keys) out[row + j] = scores[j] / sum;
      }
    }
  });
}

/**
 * The head count for which probabilities recomputed from q and k, applied to v, give the
 * context attention.self returned (checked on batch element 0, first and last real rows).
 */
function findHeads(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  context: Float32Array,
  mask: number[],
  S: number,
  hidden: number,
  causal: boolean,
): { heads: number; error: number } | undefined {
  const real = mask.flatMap((x, i) => (x === 1 ? [i] : []));
  const rows = [...new Set([real[0], real[real.length - 1]])];
  let scaleOf = 0;
  for (let i = 0; i < S * hidden; i++) scaleOf = Math.max(scaleOf, Math.abs(context[i]));
  let best: { heads: number; error: number } | undefined;
  for (let heads = 1; heads <= hidden; heads++) {
    if (hidden % heads !== 0 || hidden / heads < 4) continue;
    const d = hidden / heads;
    const scale = 1 / Math.sqrt(d);
    let error = 0;
    for (const i of rows) {
      const keys = causal ? real.filter((j) => j <= i) : real;
      for (let h = 0; h < heads; h++) {
        const p = keys.map((j) => {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[i * hidden + h * d + c] * k[j * hidden + h * d + c];
          return dot * scale;
        });
        const max = Math.max(...p);
        const e = p.map((x) => Math.exp(x - max));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let c = 0; c < d; c++) {
          let ctx = 0;
          keys.forEach((j, n) => (ctx += (e[n] / sum) * v[j * hidden + h * d + c]));
          error = Math.max(error, Math.abs(ctx - context[i * hidden + h * d + c]));
        }
      }
    }
    if (!best || error < best.error) best = { heads, error };
  }
  return best && best.error <= 1e-4 * (1 + scaleOf) ? best : undefined;
}

/** Module paths recompute captures for one layer. */
export function projectionPaths(layer: string, projections: Projections, verify: boolean): string[] {
  if (projections === 'fused-causal') return verify ? [`${layer}.c_attn`, `${layer}.c_proj${INPUT_SUFFIX}`] : [`${layer}.c_attn`];
  return verify ? [`${layer}.query`, `${layer}.key`, `${layer}.value`, layer] : [`${layer}.query`, `${layer}.key`];
}

/** Splits GPT-2's c_attn output [B, S, 3 * hidden] into q, k, v (in that order, as split(hidden, dim=2)). */
async function splitFused(qkv: Value | undefined): Promise<Float32Array[] | undefined> {
  if (!(qkv instanceof Tensor) || qkv.shape.length !== 3 || qkv.shape[2] % 3 !== 0) return undefined;
  const [B, S, width] = qkv.shape;
  const hidden = width / 3;
  const data = await cpuData(qkv);
  const parts = [0, 1, 2].map(() => new Float32Array(B * S * hidden));
  for (let row = 0; row < B * S; row++) {
    for (let p = 0; p < 3; p++) parts[p].set(data.subarray(row * width + p * hidden, row * width + (p + 1) * hidden), row * hidden);
  }
  return parts;
}

export async function recompute(
  model: Model,
  plan: { layers: string[]; heads: number; projections: Projections },
  inputs: Tensor[],
  B: number,
  S: number,
  masks: number[][],
  verify: boolean,
  site: CallSite,
): Promise<Tensor> {
  const { layers, projections } = plan;
  let heads = plan.heads;
  const causal = projections === 'fused-causal';
  const captured = await activations(
    model,
    layers.flatMap((l) => projectionPaths(l, projections, verify)),
    ...inputs,
  );
  const L = layers.length;
  let out: Float32Array | undefined;
  try {
    for (let l = 0; l < L; l++) {
      const layer = layers[l];
      const where = causal ? `${layer}.c_attn` : `${layer}.query / .key`;
      let q: Float32Array, k: Float32Array, v: Float32Array | undefined, context: Tensor | undefined;
      let hidden: number;
      if (causal) {
        const parts = await splitFused(captured[`${layer}.c_attn`]);
        const shape = (captured[`${layer}.c_attn`] as Tensor | undefined)?.shape;
        if (!parts || shape![0] !== B || shape![1] !== S)
          throw failure('RUNTIME', `attention: ${where} of ${model.path} is not a [${B}, ${S}, 3 * hidden] tensor`, site);
        [q, k, v] = parts;
        hidden = shape![2] / 3;
        context = verify ? firstTensor(captured[`${layer}.c_proj${INPUT_SUFFIX}`]) : undefined;
      } else {
        const qt = captured[`${layer}.query`];
        const kt = captured[`${layer}.key`];
        if (!(qt instanceof Tensor) || !(kt instanceof Tensor) || qt.shape.length !== 3 || qt.shape[0] !== B || qt.shape[1] !== S) {
          throw failure('RUNTIME', `attention: ${where} of ${model.path} are not [${B}, ${S}, hidden] tensors`, site);
        }
        hidden = qt.shape[2];
        q = await cpuData(qt);
        k = await cpuData(kt);
        const vt = captured[`${layer}.value`];
        v = verify && vt instanceof Tensor ? await cpuData(vt) : undefined;
        context = verify ? firstTensor(captured[layer]) : undefined;
      }
      if (verify) {
        const found = v && context ? findHeads(q, k, v, await cpuData(context), masks[0], S, hidden, causal) : undefined;
        if (!found) {
          throw failure(
            'RUNTIME',
            `attention: ${model.path} returns no attentions and its ${layer} returns no probabilities; recomputing them as ` +
              `softmax(Q K^T / sqrt(d) + ${causal ? 'causal ' : ''}mask) does not reproduce what the layer computed, so this attention is not supported`,
            site,
          );
        }
        if (l > 0 && found.heads !== heads) throw failure('RUNTIME', `attention: layers of ${model.path} have different head counts`, site);
        heads = found.heads;
      }
      out ??= new Float32Array(B * L * heads * S * S);
      recomputeLayer(q, k, masks, S, hidden, heads, l, L, out, causal);
    }
  } finally {
    disposeValue(captured);
  }
  return tensor(out!, [B, L, heads, S, S], 'float32');
}

/** A tensor alone, or the first item of a tuple (a layer's context; a module input's first argument). */
function firstTensor(value: Value | undefined): Tensor | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first instanceof Tensor ? first : undefined;
}
