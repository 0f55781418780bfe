// Splicing SAEs into a run (`saes` of torch.run and torch.activations): each replaces the value at
// its hook point (a transcoder: at its output point) by its output, plus the error term when asked,
// natively inside the instrumented program (native/torchscript/hooks.cpp). Its values are hook
// points of their own: '<hook point>:features' and the other SAE_STAGES, and SAELens's names
// for them ('<hook_name>.hook_sae_acts_post'...) are accepted.
import { CallSite, failure } from '../core/errors';
import { SaeStage } from '../core/names';
import { boolean, isRecord } from '../core/validate';
import { Model } from '../model/model';
import { NativeSae } from './native';
import { Sae } from './sae';

/** An SAE to splice, with its own choice of error term. */
export interface SaeSplice {
  sae: Sae;
  /** Add back x - SAE(x) of the clean input, so that only edits of the features change the output. Default: the run's `errorTerm`. */
  errorTerm?: boolean;
}

/** What the native run request takes. */
export interface NativeSaeSplice {
  sae: NativeSae;
  read: string;
  write: string;
  errorTerm: boolean;
}

// SAELens's hook names of a spliced SAE's values (HookedSAETransformer cache keys).
const SAELENS_STAGES: Readonly<Record<string, SaeStage>> = {
  hook_sae_acts_pre: ':featuresPre',
  hook_sae_acts_post: ':features',
  hook_sae_recons: ':reconstruction',
  hook_sae_error: ':error',
};

export interface Splices {
  native: NativeSaeSplice[];
  /** Hook points the SAEs read and write: checked like any layer. */
  points: string[];
  /** A layer name as torchscope spells it: SAELens's '<hook_name>.<stage>' mapped to '<hook point><stage>'. */
  layerName(name: string): string;
}

/** The run's `saes` and `errorTerm` options, checked. */
export function splices(saes: unknown, errorTerm: unknown, model: Model, site: CallSite): Splices {
  const byDefault = boolean(errorTerm ?? false, 'errorTerm', site);
  if (saes !== undefined && !Array.isArray(saes))
    throw failure('INVALID_ARGUMENT', 'saes must be an array of SAEs (torch.sae.load) or { sae, errorTerm }', site);
  const native: NativeSaeSplice[] = [];
  const aliases = new Map<string, string>();
  for (const [i, item] of ((saes ?? []) as unknown[]).entries()) {
    const splice = item instanceof Sae ? { sae: item } : isRecord(item) && item.sae instanceof Sae ? (item as unknown as SaeSplice) : undefined;
    if (!splice) throw failure('INVALID_ARGUMENT', `saes[${i}] must be an SAE (torch.sae.load) or { sae, errorTerm }`, site);
    const { read, write } = splice.sae.points(model, site);
    native.push({ sae: splice.sae.native(site), read, write, errorTerm: boolean(splice.errorTerm ?? byDefault, `saes[${i}].errorTerm`, site) });
    if (splice.sae.hookName) aliases.set(splice.sae.hookName, read);
  }
  const layerName = (name: string): string => {
    const dot = name.lastIndexOf('.');
    const stage = dot > 0 ? SAELENS_STAGES[name.slice(dot + 1)] : undefined;
    const read = stage ? aliases.get(name.slice(0, dot)) : undefined;
    return read ? read + stage : name;
  };
  return { native, points: native.flatMap((s) => [s.read, s.write]), layerName };
}
