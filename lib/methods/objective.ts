// Declarative objectives: what maximization climbs and what gradients and attributions are
// taken of (native/methods/objective.h evaluates them). One objective per batch element, or one for all.
import { OBJECTIVE_KINDS } from '../core/names';
import { CallSite, failure } from '../core/errors';
import { array, checkKeys, describeValue, finiteNumber, instance, integer, integers, isRecord } from '../core/validate';
import { NativeObjective, NativeObjectiveSpec } from '../native/binding';
import { Model } from '../model/model';
import { Tensor } from '../model/tensor';

/** What one objective reads and reduces to a number per batch element. */
export type ObjectiveKind =
  /** Mean of a channel of the layer's output. */
  | { channel: number }
  /** One unit of a [C, H, W] layer output (y, x default to the centre). */
  | { neuron: { channel: number; y?: number; x?: number } }
  /**
   * Mean over positions of the layer's output projected on a [C] direction: over the channels of
   * [N, C] and [N, C, H, W] outputs (dim 1), the hidden dim of [N, S, H] ones (dim 2), as patches
   * index channels. A probe's `objective(layer)` gives one.
   */
  | { direction: Tensor }
  /**
   * The model output's row, flattened, at `logit`; with `position`, the logits at that
   * position of a [N, S, V] output (negative counts from the end: -1 is the last token).
   */
  | { logit: number; position?: number }
  /** logit a minus logit b (a language model's logit difference), at `position` of [N, S, V] logits. */
  | { logitDiff: [number, number]; position?: number }
  /** log softmax of the logits at `logProb` (the log-probability of that token), at `position`. */
  | { logProb: number; position?: number }
  /** output[:, target] of an [N, C] model output: Captum's `target`. */
  | { target: number }
  /** A weighted sum of objectives (weight 1 by default). */
  | { sum: { weight?: number; objective: ObjectiveKind }[] };

/** An objective; those that read a layer (channel, neuron, direction) name it in `layer`. */
export type Objective = ObjectiveKind & { layer?: string };

// Objectives on output logits may name a sequence position.
const POSITIONED = new Set(['logit', 'logitDiff', 'logProb']);
const NEURON_KEYS = ['channel', 'y', 'x'];
const TERM_KEYS = ['weight', 'objective'];

function checkKind(objective: ObjectiveKind, allowLayer: boolean, what: string, site: CallSite): void {
  const o = objective as Record<string, unknown>;
  if (!isRecord(o)) throw failure('INVALID_ARGUMENT', 'an objective is an object like { channel: 10 }', site);
  checkKeys(o, [...OBJECTIVE_KINDS, 'position', ...(allowLayer ? ['layer'] : [])], what, site);
  const keys = Object.keys(o).filter((key) => (OBJECTIVE_KINDS as readonly string[]).includes(key));
  if (keys.length !== 1) {
    throw failure(
      'INVALID_ARGUMENT',
      `an objective has exactly one of ${OBJECTIVE_KINDS.join(', ')}${allowLayer ? ' (and its layer)' : ''}; got ${JSON.stringify(Object.keys(o))}`,
      site,
    );
  }
  const [key] = keys;
  if (o.position !== undefined && !POSITIONED.has(key))
    throw failure('INVALID_ARGUMENT', `position is for logit, logitDiff and logProb objectives, not ${key}`, site);
  if (o.position !== undefined) integer(o.position, 'position', {}, site);
  if (key === 'logitDiff' && !(Array.isArray(o.logitDiff) && o.logitDiff.length === 2)) {
    throw failure('INVALID_ARGUMENT', `logitDiff is [a, b] with two non-negative integers, got ${describeValue(o.logitDiff)}`, site);
  }
  if (key === 'logitDiff') integers(o.logitDiff, 'logitDiff', { min: 0 }, site);
  if (key === 'channel' || key === 'logit' || key === 'logProb' || key === 'target') integer(o[key], key, { min: 0 }, site);
  if (key === 'neuron') {
    const n = o.neuron;
    if (!isRecord(n)) throw failure('INVALID_ARGUMENT', `neuron is { channel, y?, x? }, got ${describeValue(n)}`, site);
    checkKeys(n, NEURON_KEYS, `${what} neuron`, site);
    for (const axis of NEURON_KEYS) if (axis === 'channel' || n[axis] !== undefined) integer(n[axis], `neuron.${axis}`, { min: 0 }, site);
  }
  if (key === 'direction') instance(o.direction, 'direction', Tensor, site);
  if (key === 'sum') {
    array(o.sum, 'sum', site, true).forEach((term, i) => {
      if (!isRecord(term)) throw failure('INVALID_ARGUMENT', `sum[${i}] is { weight?, objective }, got ${describeValue(term)}`, site);
      checkKeys(term, TERM_KEYS, `${what} sum[${i}]`, site);
      if (term.weight !== undefined) finiteNumber(term.weight, `sum[${i}].weight`, {}, site);
      checkKind(term.objective as ObjectiveKind, false, `${what} sum[${i}].objective`, site);
    });
  }
}

/** Whether an objective reads a layer's output (else only the model's output). */
export function readsLayer(objective: ObjectiveKind): boolean {
  if ('sum' in objective) return objective.sum.some((t) => readsLayer(t.objective));
  return !('logit' in objective) && !('target' in objective) && !('logitDiff' in objective) && !('logProb' in objective);
}

function toNativeObjective(objective: ObjectiveKind): NativeObjective {
  if ('direction' in objective) return { direction: objective.direction.handle };
  if ('sum' in objective) return { sum: objective.sum.map((t) => ({ weight: t.weight ?? 1, objective: toNativeObjective(t.objective) })) };
  if ('channel' in objective) return { channel: objective.channel };
  if ('neuron' in objective) return { neuron: objective.neuron };
  const position = 'position' in objective && objective.position !== undefined ? { position: objective.position } : {};
  if ('logit' in objective) return { logit: objective.logit, ...position };
  if ('logitDiff' in objective) return { logitDiff: objective.logitDiff, ...position };
  if ('logProb' in objective) return { logProb: objective.logProb, ...position };
  return { target: objective.target };
}

/**
 * Checks objectives (one, or one per batch element) and the layer they read: `layer` is the
 * layer given apart (maximize's argument), or null when each objective names its own.
 */
export function nativeObjectives(model: Model, objectives: Objective[], layer: string | null, site: CallSite): NativeObjectiveSpec {
  if (!Array.isArray(objectives) || objectives.length === 0) throw failure('INVALID_ARGUMENT', 'objective array is empty', site);
  objectives.forEach((o, i) => checkKind(o, true, objectives.length > 1 ? `objective[${i}]` : 'objective', site));
  const named = new Set(objectives.map((o) => o.layer).filter((l): l is string => l !== undefined));
  if (layer !== null && named.size > 0 && (named.size > 1 || !named.has(layer))) {
    throw failure('INVALID_ARGUMENT', `the objective names layer '${[...named].join("', '")}' but the call's layer is '${layer}'`, site);
  }
  if (named.size > 1) throw failure('INVALID_ARGUMENT', `objectives read one layer; these name ${[...named].map((l) => `'${l}'`).join(', ')}`, site);
  const layerRead = layer ?? [...named][0] ?? '';
  const usesLayer = objectives.some(readsLayer);
  if (usesLayer) {
    if (typeof layerRead !== 'string' || layerRead === '') {
      throw failure(
        'INVALID_ARGUMENT',
        layer === null ? "this objective reads a layer: name it, e.g. { layer: 'layer4', channel: 3 }" : 'this objective needs a layer name',
        site,
      );
    }
    model.checkLayers([layerRead], site);
  }
  return { layer: usesLayer ? layerRead : '', objectives: objectives.map(toNativeObjective) };
}
