// Patch specs: how run, gradients and inspect rewrite a layer's output, checked and turned into
// the native patch operator's request (native/program/patch.h).
import { CallSite, failure } from '../core/errors';
import { checkKeys, finiteNumber, instance, integers, isRecord, oneOf, optionKeys } from '../core/validate';
import { NativePatch } from '../native/binding';
import { Tensor } from '../model/tensor';

/**
 * How to rewrite a layer's output. Exactly one of set / zero / add / scale / project. Without
 * `channels` / `positions` the whole output changes; with them only that region does:
 * - [N, C, H, W] and [N, C] outputs: channels index dim 1; positions are [y, x] pairs.
 * - [N, S, H] outputs (transformer hidden states): positions index dim 1, channels dim 2.
 * Tensor values must broadcast to the layer's output shape and have its dtype.
 * `project` removes directions from every channel vector instead (x - (x Q^T) Q over the channels
 * dim above, Q an orthonormal basis of the rows' span): a [C] or [k, C] tensor of any floating
 * dtype, its rows orthonormalized first (SVD; singular values at most max(k, C) * eps of its dtype
 * times the largest count as dependent, numpy's matrix_rank rule). It takes positions, not channels.
 * A module returning a tuple has its first tensor patched.
 */
export interface PatchSpec {
  set?: Tensor;
  zero?: true;
  add?: Tensor;
  scale?: number;
  project?: Tensor;
  channels?: number[];
  positions?: number[] | [number, number][];
}

/** The patch operator's modes (native/program/patch.h; test/constants.test.ts compares). */
export const PATCH_MODES = { set: 0, zero: 1, add: 2, scale: 3, project: 4 } as const;
const PATCH_KEYS = optionKeys<PatchSpec>({ set: true, zero: true, add: true, scale: true, project: true, channels: true, positions: true });

/** Channel or position indices; positions may come as [y, x] pairs. */
function indices(values: unknown, name: string, site: CallSite): number[] {
  return integers(Array.isArray(values) ? values.flat() : values, name, {}, site);
}

function toNativePatch(layer: string, spec: PatchSpec, site: CallSite): NativePatch {
  if (!isRecord(spec)) throw failure('INVALID_ARGUMENT', `patch '${layer}' must be an object`, site);
  checkKeys(spec, PATCH_KEYS, `patch '${layer}'`, site);
  const modes = (Object.keys(PATCH_MODES) as (keyof typeof PATCH_MODES)[]).filter((k) => spec[k] !== undefined);
  if (modes.length !== 1) {
    throw failure(
      'INVALID_ARGUMENT',
      `patch '${layer}' needs exactly one of ${Object.keys(PATCH_MODES).join(', ')}; got ${modes.length ? modes.join(', ') : 'none'}`,
      site,
    );
  }
  const mode = modes[0];
  const out: NativePatch = { layer, mode: PATCH_MODES[mode] };
  if (mode === 'set' || mode === 'add' || mode === 'project') out.value = instance(spec[mode], `patch '${layer}': ${mode}`, Tensor, site).handle;
  if (mode === 'zero') oneOf(spec.zero, `patch '${layer}': zero`, [true], site);
  if (mode === 'scale') out.scale = finiteNumber(spec.scale, `patch '${layer}': scale`, {}, site);
  if (mode === 'project' && spec.channels !== undefined)
    throw failure('INVALID_ARGUMENT', `patch '${layer}': project removes directions across all channels; select positions, not channels`, site);
  if (spec.channels !== undefined) out.channels = indices(spec.channels, `patch '${layer}': channels`, site);
  if (spec.positions !== undefined) out.positions = indices(spec.positions, `patch '${layer}': positions`, site);
  return out;
}

/** The patches of a request, checked: `patch` maps layer names to specs. */
export function nativePatches(patch: Record<string, PatchSpec> | undefined, site: CallSite): NativePatch[] {
  if (patch !== undefined && !isRecord(patch))
    throw failure('INVALID_ARGUMENT', 'patch maps layer names to patch specs, e.g. { layer3: { zero: true } }', site);
  return Object.entries(patch ?? {}).map(([layer, spec]) => toNativePatch(layer, spec, site));
}

/** The layers a `patch` option names. */
export function patchedLayers(patch: Record<string, PatchSpec> | undefined): string[] {
  return Object.keys(patch ?? {});
}
