#!/usr/bin/env python3
"""From a Hugging Face folder (or hub id) to a torchscope model: `torchscope export`'s back end.

    python scripts/hf_export.py SOURCE --out model.pt [--task auto|causal-lm|encoder|image-classification] [--no-check]

`export()` loads the model with transformers (eager attention, no cache, float32), traces the
Hugging Face model itself (so hook points are the Hugging Face module paths: `model.layers.0`,
`lm_head`), checks the trace against the eager model on inputs of other shapes than the trace's,
and writes next to the model file `<stem>.torchscope.json` (the manifest lib/model/manifest.ts
reads) and `<stem>.tokenizer/` (the tokenizer files). What it cannot trace faithfully it refuses
with ExportRefused, saying why.
"""

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_decode import DecodeRefused, decode_step  # noqa: E402

MANIFEST_FORMAT = "torchscope-manifest"
MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".torchscope.json"
# The cached decoding step beside `<stem>.pt` (scripts/hf_decode.py).
DECODE_SUFFIX = ".decode.pt"
TOKENIZER_SUFFIX = ".tokenizer"
TASKS = ("auto", "causal-lm", "encoder", "image-classification")
# Files of a tokenizer, copied when present (the last four for tokenizers without tokenizer.json).
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
    "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model",
)
# What a hub download fetches: the weights, the configs and the tokenizer.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.jinja", "*.txt", "*.model"]
SEED = 0
# The trace's example: batch 2, since with batch 1 the trace would bake in a broadcast over the
# batch (transformers' mask code expands position ids only when the batch differs from theirs).
TRACE_SHAPE = (2, 8)
# Check inputs: other batch sizes and lengths than the trace's, one of length 1 (a generation step).
CHECK_SHAPES = ((1, 5), (3, 13), (2, 1))
CHECK_BATCHES = (1, 3)  # vision models: only the batch varies
# The check's bar: max |traced - eager| <= TOLERANCE x max(1, max |eager|).
TOLERANCE = 1e-5
# Operators that compute attention fused: no softmax of query-key scores in the program, so no
# attention maps or pattern hooks.
FUSED_ATTENTION_OPS = (
    "aten::scaled_dot_product_attention", "aten::_scaled_dot_product_attention_math",
    "aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_efficient_attention",
    "aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd",
)
# A block's children that are its attention and its MLP, by class name.
ATTENTION_CLASS = "Attention"
MLP_CLASSES = ("MLP", "FeedForward")
NORM_CLASS = "Norm"


class ExportRefused(Exception):
    """What the exporter cannot do faithfully, and why (the message is for the user)."""


# ---------------------------------------------------------------- loading


def local_folder(source: str) -> Path:
    """The folder holding the model: `source` itself, or a hub download of it."""
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ExportRefused(f"no config.json in '{source}': not a Hugging Face model folder (save_pretrained writes one)")
        return path
    if path.exists() or source.startswith((".", "/")) or source.count("/") > 1:
        raise ExportRefused(f"'{source}' is not a folder with a config.json, nor a hub id such as 'org/name'")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, allow_patterns=HUB_PATTERNS))
    except Exception as e:  # noqa: BLE001 - any network or hub failure
        raise ExportRefused(
            f"'{source}' is no folder here, and downloading it from the Hugging Face hub failed: {type(e).__name__}: {e}"
        ) from e


def infer_task(config: Any) -> str:
    """The task of the class the folder was saved from (config.architectures)."""
    arch = (getattr(config, "architectures", None) or [""])[0]
    if arch.endswith(("ForCausalLM", "LMHeadModel")):
        return "causal-lm"
    if arch.endswith("ForImageClassification"):
        return "image-classification"
    return "encoder"


def model_class(task: str, config: Any) -> Any:
    """The transformers class that loads the folder for `task`."""
    import transformers

    if task == "causal-lm":
        return transformers.AutoModelForCausalLM
    if task == "image-classification":
        return transformers.AutoModelForImageClassification
    # An encoder keeps the head its folder was saved with (a classifier's logits), else the bare model.
    arch = (getattr(config, "architectures", None) or [""])[0]
    return getattr(transformers, arch, None) or transformers.AutoModel


def load_eager(folder: Path, task: str) -> Tuple[nn.Module, str]:
    """The eager model (eval, float32, eager attention, no cache) and its task."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001 - unknown model types, bad JSON
        raise ExportRefused(f"transformers {transformers.__version__} cannot read {folder / 'config.json'}: {e}") from e
    if getattr(config, "is_encoder_decoder", False):
        raise ExportRefused(
            f"'{config.model_type}' is an encoder-decoder model: its forward needs decoder inputs, which torchscope export does not trace"
        )
    task = infer_task(config) if task == "auto" else task
    config.use_cache = False
    try:
        model = model_class(task, config).from_pretrained(folder, config=config, attn_implementation="eager", dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - a task the model has no class for, missing weights
        raise ExportRefused(f"cannot load '{folder}' as a {task} model with eager attention: {type(e).__name__}: {e}") from e
    implementation = getattr(model.config, "_attn_implementation", "eager")
    if implementation not in (None, "eager"):
        raise ExportRefused(
            f"{type(model).__name__} runs attention as '{implementation}', not eager: a fused attention has no attention "
            "probabilities to capture or patch; export a model that supports attn_implementation='eager'"
        )
    # TorchScript's state_dict lists every buffer: persistent ones load back into the eager model.
    for m in model.modules():
        m._non_persistent_buffers_set.clear()
    return model.eval(), task


# ---------------------------------------------------------------- inputs


def input_names(model: nn.Module, task: str) -> List[str]:
    """forward's arguments in the trace: token ids (and an encoder's attention mask), or pixels."""
    main = getattr(model, "main_input_name", "input_ids")
    if task == "encoder" and main == "input_ids":
        return ["input_ids", "attention_mask"]
    if task == "image-classification":
        return ["pixel_values"]
    return [main]


def sample_inputs(model: nn.Module, names: List[str], batch: int, length: int, seed: int) -> List[torch.Tensor]:
    """Seeded inputs for forward's arguments; an attention mask pads the last row's second half."""
    config = model.config
    g = torch.Generator().manual_seed(seed)
    out: List[torch.Tensor] = []
    for name in names:
        if name == "input_ids":
            out.append(torch.randint(0, config.vocab_size, (batch, length), generator=g))
        elif name == "attention_mask":
            mask = torch.ones(batch, length, dtype=torch.long)
            if batch > 1 and length > 1:
                mask[-1, (length + 1) // 2:] = 0
            out.append(mask)
        elif name == "pixel_values":
            size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
            out.append(torch.randn(batch, config.num_channels, size, size, generator=g))
        else:
            raise ExportRefused(
                f"forward's input '{name}' is none torchscope export can make samples of (input_ids, attention_mask, pixel_values)"
            )
    return out


def check_shapes(model: nn.Module, names: List[str]) -> List[Tuple[int, int]]:
    """(batch, length) of each check input, lengths within the model's positions."""
    if "pixel_values" in names:
        return [(b, 0) for b in CHECK_BATCHES]
    limit = getattr(model.config, "max_position_embeddings", None) or max(s for _, s in CHECK_SHAPES)
    return [(b, min(s, limit)) for b, s in CHECK_SHAPES]


# ---------------------------------------------------------------- tracing


def trace(model: nn.Module, names: List[str], example: List[torch.Tensor]) -> torch.jit.ScriptModule:
    """Traces the model itself, its forward replaced for the trace by one taking `names` and
    returning the first output, so that module paths and the module's type are Hugging Face's."""
    forward = type(model).forward

    def traced(*inputs: torch.Tensor) -> torch.Tensor:
        return forward(model, **dict(zip(names, inputs)), return_dict=False)[0]

    # torch.jit.trace names forward's arguments after the signature: the model's input names.
    parameters = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    traced.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    model.forward = traced
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.jit.trace(model, tuple(example), strict=False, check_trace=False)
    finally:
        del model.forward


def refuse_cache(model: nn.Module, names: List[str], example: List[torch.Tensor]) -> None:
    """A forward that still builds a cache would trace its cache updates into the program."""
    with torch.no_grad():
        out = model(**dict(zip(names, example)), use_cache=False, return_dict=True)
    if getattr(out, "past_key_values", None) is not None:
        raise ExportRefused(
            f"{type(model).__name__}'s forward returns a key-value cache even with use_cache=False: its trace would carry the cache"
        )


def refuse_fused_attention(ts: torch.jit.ScriptModule) -> None:
    """Attention computed by one fused operator, wherever eager attention was not honoured."""
    for node in ts.inlined_graph.nodes():
        if node.kind() in FUSED_ATTENTION_OPS:
            where = node.scopeName().replace("__module.", "") or "the model"
            raise ExportRefused(
                f"attention in '{where}' is computed by {node.kind()} even with attn_implementation='eager': a fused attention "
                "has no attention probabilities to capture or patch, so torchscope export refuses it"
            )


def check(ts: torch.jit.ScriptModule, model: nn.Module, names: List[str]) -> Dict[str, Any]:
    """The trace against the eager model on inputs of other shapes than the trace's."""
    shapes = check_shapes(model, names)
    worst = 0.0
    for i, (batch, length) in enumerate(shapes):
        inputs = sample_inputs(model, names, batch, length, SEED + 1 + i)
        shape = list(inputs[0].shape)
        with torch.no_grad():
            want = forward_first(model, names, inputs)
            try:
                got = ts(*inputs)
            except Exception as e:  # noqa: BLE001 - the trace baked in the example's shape
                first = str(e).strip().splitlines()[-1]
                raise ExportRefused(
                    f"the trace does not generalize to other input shapes: traced at {list(TRACE_SHAPE)}, it fails at {shape} "
                    f"({first}); the model's forward takes a Python branch or size that depends on its input's shape"
                ) from e
        diff = (got.double() - want.double()).abs().max().item() if got.shape == want.shape else float("inf")
        scale = max(1.0, want.abs().max().item())
        if not diff <= TOLERANCE * scale:
            raise ExportRefused(
                f"the trace does not generalize to other input shapes: traced at {list(TRACE_SHAPE)}, at {shape} its output "
                f"{list(got.shape)} differs from eager's {list(want.shape)} by {diff:.3g} (bar {TOLERANCE * scale:.3g}); "
                "the model's forward takes a Python branch or size that depends on its input's shape"
            )
        worst = max(worst, diff)
    return {"inputs": len(shapes), "maxAbsDiff": worst}


def forward_first(model: nn.Module, names: List[str], inputs: List[torch.Tensor]) -> torch.Tensor:
    """Eager forward's first output: what the traced forward returns."""
    return model(**dict(zip(names, inputs)), return_dict=False)[0]


# ---------------------------------------------------------------- the manifest


def embeddings(model: nn.Module, which: str) -> Optional[nn.Module]:
    """get_input_embeddings() / get_output_embeddings(), or None where the model has none."""
    try:
        return getattr(model, f"get_{which}_embeddings")()
    except (AttributeError, NotImplementedError):
        return None


def module_path(model: nn.Module, target: Optional[nn.Module]) -> Optional[str]:
    """The path named_modules() gives `target` in `model`."""
    if target is None:
        return None
    return next((name for name, m in model.named_modules() if m is target and name), None)


def hook_points(model: nn.Module) -> Dict[str, Any]:
    """Module paths of the embedding, blocks, attention, MLPs, final norm and unembedding."""
    points: Dict[str, Any] = {}
    embed = module_path(model, embeddings(model, "input"))
    if embed:
        points["embed"] = embed
    layers = getattr(model.config, "num_hidden_layers", None)
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) == layers]
    if lists:
        prefix, blocks = min(lists, key=lambda item: item[0].count("."))
        points["blocks"] = [f"{prefix}.{i}" for i in range(len(blocks))]
        for key, wanted in (("attention", (ATTENTION_CLASS,)), ("mlp", MLP_CLASSES)):
            found = [block_child(f"{prefix}.{i}", block, wanted) for i, block in enumerate(blocks)]
            if all(found):
                points[key] = found
    base = model.base_model
    norms = [name for name, m in base.named_children() if NORM_CLASS in type(m).__name__]
    if len(norms) == 1:
        points["finalNorm"] = module_path(model, getattr(base, norms[0]))
    unembed = module_path(model, embeddings(model, "output"))
    if unembed:
        points["unembed"] = unembed
    return points


def block_child(path: str, block: nn.Module, wanted: Tuple[str, ...]) -> Optional[str]:
    """The block's one direct child whose class name holds one of `wanted`."""
    found = [name for name, m in block.named_children() if any(w in type(m).__name__ for w in wanted)]
    return f"{path}.{found[0]}" if len(found) == 1 else None


def tied_embeddings(model: nn.Module) -> bool:
    """Whether the unembedding holds the embedding's weight itself (not a copy)."""
    inp, out = embeddings(model, "input"), embeddings(model, "output")
    return inp is not None and out is not None and getattr(out, "weight", None) is getattr(inp, "weight", False)


def special_id(model: nn.Module, key: str) -> Any:
    """A special token id from generation_config, else config: an int, a list of ints or None."""
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, key, None) if source is not None else None
        if isinstance(value, int) or (isinstance(value, list) and all(isinstance(v, int) for v in value)):
            return value
    return None


def manifest(
    model: nn.Module,
    source: str,
    task: str,
    names: List[str],
    tokenizer: Optional[str],
    checked: Optional[Dict[str, Any]],
    decode: Tuple[Optional[Dict[str, Any]], Optional[str]] = (None, None),
) -> Dict[str, Any]:
    """The manifest (lib/model/manifest.ts reads it): sizes from the config, hook points from the modules."""
    config = model.config
    heads = getattr(config, "num_attention_heads", None)
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "source": source,
        "modelType": config.model_type,
        "architecture": type(model).__name__,
        "task": task,
        "inputs": names,
        "layers": getattr(config, "num_hidden_layers", None),
        "heads": heads,
        "kvHeads": getattr(config, "num_key_value_heads", None) or heads,
        "hiddenSize": getattr(config, "hidden_size", None),
        "vocabSize": getattr(config, "vocab_size", None),
        "maxPositions": getattr(config, "max_position_embeddings", None),
        "tiedEmbeddings": tied_embeddings(model),
        "hookPoints": hook_points(model),
        "tokenizer": tokenizer,
        "bosTokenId": special_id(model, "bos_token_id"),
        "eosTokenId": special_id(model, "eos_token_id"),
        "check": checked,
        "decodeStep": decode[0],
        "decodeStepRefused": decode[1],
    }


# ---------------------------------------------------------------- writing


def copy_tokenizer(folder: Path, out: Path) -> Optional[str]:
    """Copies the tokenizer files into `<stem>.tokenizer/` (replacing it); its name, or None."""
    files = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]
    target = out.parent / f"{out.stem}{TOKENIZER_SUFFIX}"
    if not files:
        shutil.rmtree(target, ignore_errors=True)
        return None
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.stem}-tokenizer-"))
    for f in files:
        shutil.copyfile(f, staging / f.name)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target.name


def save(ts: torch.jit.ScriptModule, out: Path) -> None:
    # torch.jit.save names the archive's root folder after the file: stage under the final name.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}-") as scratch:
        staged = Path(scratch) / out.name
        torch.jit.save(ts, str(staged))
        os.replace(staged, out)


def write_json(data: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_decode_step(model: nn.Module, out: Path, check_trace: bool) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """Writes `<stem>.decode.pt` beside the model: its manifest entry, or None and why not."""
    target = out.parent / f"{out.stem}{DECODE_SUFFIX}"
    try:
        ts, entry = decode_step(model, check_trace)
    except DecodeRefused as e:
        target.unlink(missing_ok=True)
        return None, str(e)
    save(ts, target)
    return {"file": target.name, **entry}, None


def export(source: str, out_path: str, task: str = "auto", check_trace: bool = True, decode: bool = True) -> dict:
    """Exports `source` (a folder or hub id) to `out_path` with its manifest, tokenizer and, for a
    causal LM, its cached decoding step; returns the manifest."""
    if task not in TASKS:
        raise ExportRefused(f"task must be one of {', '.join(TASKS)}, got '{task}'")
    out = Path(out_path).resolve()
    if out.suffix != ".pt":
        raise ExportRefused(f"the output must be a .pt file, got '{out_path}'")
    import transformers

    transformers.logging.set_verbosity_error()
    folder = local_folder(source)
    model, task = load_eager(folder, task)
    names = input_names(model, task)
    example = sample_inputs(model, names, *TRACE_SHAPE, SEED)
    if task == "causal-lm":
        refuse_cache(model, names, example)
    ts = trace(model, names, example)
    refuse_fused_attention(ts)
    checked = check(ts, model, names) if check_trace else None
    out.parent.mkdir(parents=True, exist_ok=True)
    save(ts, out)
    tokenizer = copy_tokenizer(folder, out)
    step: Tuple[Optional[Dict[str, Any]], Optional[str]] = (None, None)
    if task == "causal-lm":
        step = write_decode_step(model, out, check_trace) if decode else (None, "not exported (--no-decode-step)")
    data = manifest(model, source, task, names, tokenizer, checked, step)
    write_json(data, out.parent / f"{out.stem}{MANIFEST_SUFFIX}")
    return data


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="torchscope export", description="Export a Hugging Face model to a torchscope (TorchScript) file."
    )
    ap.add_argument("source", help="a folder written by save_pretrained, or a hub id (needs the network)")
    ap.add_argument("--out", required=True, help="the model file to write (.pt); the manifest and tokenizer go beside it")
    ap.add_argument("--task", choices=TASKS, default="auto")
    ap.add_argument("--no-check", dest="check", action="store_false", help="skip comparing the trace with the eager model")
    ap.add_argument(
        "--no-decode-step", dest="decode", action="store_false", help="write no cached decoding step (torch.generate then reruns the sequence per token)"
    )
    args = ap.parse_args(argv)
    try:
        data = export(args.source, args.out, args.task, args.check, args.decode)
    except ExportRefused as e:
        print(f"torchscope export: refused: {e}", file=sys.stderr)
        return 1
    points = data["hookPoints"]
    checked = data["check"]
    layers = f"{data['layers']} layers, inputs {', '.join(data['inputs'])}"
    print(f"wrote {args.out} ({data['architecture']}, {data['task']}, {layers})")
    print(f"  manifest {Path(args.out).stem}{MANIFEST_SUFFIX}; tokenizer {data['tokenizer'] or 'none found'}")
    blocks = points.get("blocks") or ["-"]
    print(f"  hook points: blocks {blocks[0]}..{blocks[-1]}, final norm {points.get('finalNorm', '-')}, unembed {points.get('unembed', '-')}")
    if checked:
        print(f"  check: {checked['inputs']} inputs, max |traced - eager| {checked['maxAbsDiff']:.3g}")
    else:
        print("  check: skipped (--no-check)")
    if data["decodeStep"]:
        print(f"  cached decoding step: {data['decodeStep']['file']}")
    elif data["decodeStepRefused"]:
        print(f"  no cached decoding step: {data['decodeStepRefused']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
