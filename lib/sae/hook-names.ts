// SAEs name TransformerLens hook points ('blocks.5.hook_resid_post'); torchscope hooks module paths
// of the Hugging Face model ('transformer.h.5'). This maps one to the other for the families whose
// module layout is known, the family taken from the model's manifest (modelType) or, without one,
// from its module names. What it cannot map it refuses, saying what, so the caller passes a
// `hookPoint` of its own.
import { CallSite, failure } from '../core/errors';
import type { ModelManifest } from '../model/manifest';
import { INPUT_SUFFIX, layerModule, NODE_SEPARATOR } from '../model/model';

/** What mapping needs of a model (a torchscope Model has both). */
export interface HookModel {
  readonly manifest: ModelManifest | null;
  modules(): { path: string }[];
}

/**
 * A family's modules, relative to a block: whose output is attention's output and the MLP's as
 * TransformerLens hooks them (hook_attn_out, hook_mlp_out), whose input is the MLP's input
 * (mlp.hook_in), and the attention's output projection (its input is hook_z, heads already merged).
 * hook_resid_mid is the block's first residual addition (the operation '<block>/add'): its value
 * feeds both the MLP's norm and the second addition, so an SAE spliced there reaches both, as in
 * TransformerLens.
 */
interface HookFamily {
  /** Blocks are `${blocks}.${layer}`. */
  blocks: string;
  attnOut: string;
  mlpOut: string;
  mlp: string;
  outProjection: string;
  /** False where attention and MLP run in parallel (GPT-NeoX): there is no resid_mid. */
  residMid: boolean;
}

export const HOOK_FAMILIES = {
  gpt2: { blocks: 'transformer.h', attnOut: 'attn', mlpOut: 'mlp', mlp: 'mlp', outProjection: 'attn.c_proj', residMid: true },
  llama: {
    blocks: 'model.layers',
    attnOut: 'self_attn',
    mlpOut: 'mlp',
    mlp: 'mlp',
    outProjection: 'self_attn.o_proj',
    residMid: true,
  },
  // Gemma 2 and 3 normalise attention's and the MLP's outputs before adding them to the residual
  // stream; TransformerLens's hook_attn_out and hook_mlp_out come after those norms (ln1_post, ln2_post).
  gemma2: {
    blocks: 'model.layers',
    attnOut: 'post_attention_layernorm',
    mlpOut: 'post_feedforward_layernorm',
    mlp: 'mlp',
    outProjection: 'self_attn.o_proj',
    residMid: true,
  },
  gpt_neox: { blocks: 'gpt_neox.layers', attnOut: 'attention', mlpOut: 'mlp', mlp: 'mlp', outProjection: 'attention.dense', residMid: false },
} as const satisfies Record<string, HookFamily>;
/** @useDeclaredType */
export type HookFamilyName = keyof typeof HOOK_FAMILIES;

/** Hugging Face model_type -> family. */
export const MODEL_TYPE_FAMILIES: Readonly<Record<string, HookFamilyName>> = {
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'llama',
  qwen3: 'llama',
  gemma: 'llama',
  phi3: 'llama',
  gemma2: 'gemma2',
  gemma3: 'gemma2',
  gemma3_text: 'gemma2',
  gpt_neox: 'gpt_neox',
};

/** A block's first residual addition, as model.nodes names it (the second is 'add_1', the block's output). */
const RESID_MID_NODE = 'add';

/** The TransformerLens hooks mapped, and the torchscope point of each (given the family and a block). */
const HOOKS: Readonly<Record<string, (block: string, family: HookFamily) => string | undefined>> = {
  hook_resid_pre: (block) => `${block}${INPUT_SUFFIX}`,
  hook_resid_post: (block) => block,
  hook_resid_mid: (block, f) => (f.residMid ? `${block}${NODE_SEPARATOR}${RESID_MID_NODE}` : undefined),
  hook_attn_out: (block, f) => `${block}.${f.attnOut}`,
  hook_mlp_out: (block, f) => `${block}.${f.mlpOut}`,
  'mlp.hook_in': (block, f) => `${block}.${f.mlp}${INPUT_SUFFIX}`,
  // [..., heads * d_head] there: the projection's input has the heads merged already.
  'attn.hook_z': (block, f) => `${block}.${f.outProjection}${INPUT_SUFFIX}`,
};

const TL_HOOK = /^blocks\.(\d+)\.(.+)$/;

/**
 * The torchscope hook point of TransformerLens's `hookName` on `model`. `headIndex` (SAELens's
 * hook_head_index, an SAE of one head) cannot be mapped: a hook point holds every head.
 */
export function mapHookName(hookName: string, model: HookModel, headIndex: unknown = null, site?: CallSite): string {
  const refuse = (why: string): never => {
    throw failure(
      'INVALID_ARGUMENT',
      `cannot map the SAE's hook '${hookName}' to a torchscope hook point: ${why}; pass { hookPoint } (a layer name of the model)`,
      site,
    );
  };
  if (headIndex !== null && headIndex !== undefined)
    refuse(`it reads one attention head (hook_head_index ${JSON.stringify(headIndex)}), and a hook point holds them all`);
  const match = TL_HOOK.exec(hookName);
  const hook = match ? HOOKS[match[2]] : undefined;
  if (!match || !hook) refuse(`torchscope maps blocks.L.{${Object.keys(HOOKS).join(', ')}}`);
  const layer = Number(match![1]);
  const modules = new Set(model.modules().map((m) => m.path));
  const family = modelFamily(model, modules);
  if (!family) {
    refuse(
      `the model's family is not one torchscope knows the layout of (${Object.keys(HOOK_FAMILIES).join(', ')}: model types ${Object.keys(MODEL_TYPE_FAMILIES).join(', ')})`,
    );
  }
  const spec = HOOK_FAMILIES[family!];
  const blocks = model.manifest?.hookPoints.blocks;
  if (blocks && layer >= blocks.length) refuse(`the model has ${blocks.length} blocks`);
  const block = blocks?.[layer] ?? `${spec.blocks}.${layer}`;
  const point = hook!(block, spec);
  if (point === undefined) refuse(`a ${family} model runs attention and MLP in parallel: it has no ${match![2]}`);
  const module = layerModule(point!);
  if (!modules.has(module)) refuse(`the model has no module '${module}'`);
  return point!;
}

/** The manifest's model type when it is a known one, else the family whose modules the model has. */
export function modelFamily(model: HookModel, modules: Set<string> = new Set(model.modules().map((m) => m.path))): HookFamilyName | undefined {
  const modelType = model.manifest?.modelType;
  if (modelType !== undefined && Object.hasOwn(MODEL_TYPE_FAMILIES, modelType)) return MODEL_TYPE_FAMILIES[modelType];
  // Gemma 2's blocks have Llama's modules and more: test it first.
  const order: HookFamilyName[] = ['gemma2', 'llama', 'gpt2', 'gpt_neox'];
  return order.find((name) => {
    const spec: HookFamily = HOOK_FAMILIES[name];
    return [spec.outProjection, spec.attnOut, spec.mlpOut].every((m) => modules.has(`${spec.blocks}.0.${m}`));
  });
}
