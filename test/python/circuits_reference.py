#!/usr/bin/env python3
"""PyTorch reference for torchscope's transformer-circuit tools (test/circuits.test.ts,
test/induction.test.ts): what a TransformerLens user computes, with forward hooks and
pre-hooks on the eager model (the TorchScript file's weights), one forward per patched cell.

    python test/python/circuits_reference.py REQUEST.json

Cases ({"id", "kind", "model", "arch"?, ...}; TENSOR as in reference.py):
  {"kind": "sweep", "clean": [TENSOR], "corrupted": [TENSOR], "layers": [...], "positions": [...]
   (empty: all), "heads": n (0: positions), "metric": {"logitDiff": [a, b], "position": p} |
   {"logit": t, "position": p} | {"logProb": t, "position": p}, "normalize": bool,
   "method": "activation" | "attribution"}
      -> {"results": TENSOR [layers, cells], "clean": x, "corrupted": x}
      activation: for every cell, the corrupted run with a forward hook (or pre-hook for
      'path:input') writing the clean value at that position (or head slice) into the layer's
      value; the metric is averaged over the batch. attribution: the metric's gradient on the
      corrupted run (hooks keeping each value, autograd.grad), times clean - corrupted, summed
      over each cell, plus the corrupted metric.
  {"kind": "lens", "inputs": [TENSOR], "layers": [...], "head": [...], "topK": k}
      -> {"logits": TENSOR} or {"values": TENSOR, "indices": TENSOR}: each layer's value
      (hooks) through the head modules' eager forwards.
  {"kind": "call", "path": "transformer.ln_f", "inputs": [TENSOR]} -> {"output": TENSOR}
  {"kind": "generate", "ids": [...], "maxNewTokens": n} -> {"ids": [...]}: greedy, one full
      forward per token (argmax, first of ties).
  {"kind": "tokenize", "ranks": FILE (JSON: base64 bytes per rank), "texts": [...]}
      -> {"ids": [[...]]}: tiktoken's BPE (Rust) with GPT-2's regex and those ranks, the
      special token <|endoftext|> allowed.
"""

import base64
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reference import ARCH_BY_FILE, INPUT, Writer, first_tensor_of, load_eager, read_tensor, with_first_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    return next(v for v in value if isinstance(v, torch.Tensor))


def replace_first(value, tensor):
    if isinstance(value, torch.Tensor):
        return tensor
    items = list(value)
    i = next(i for i, v in enumerate(items) if isinstance(v, torch.Tensor))
    items[i] = tensor
    return tuple(items)


def model_of(case):
    return load_eager(case["model"], case.get("arch") or ARCH_BY_FILE[Path(case["model"]).name])


def hook(modules, layer, fn):
    """fn(value) -> a new value, or None to leave it: at a module's output, or at its input."""
    if layer.endswith(INPUT):
        def pre(_module, args):
            new = fn(first_tensor_of(args))
            return None if new is None else with_first_tensor(args, lambda _old: new)

        return modules[layer[: -len(INPUT)]].register_forward_pre_hook(pre)

    def post(_module, _args, out):
        new = fn(first_tensor(out))
        return None if new is None else replace_first(out, new)

    return modules[layer].register_forward_hook(post)


def metric_values(metric: dict, logits: torch.Tensor) -> torch.Tensor:
    rows = logits[:, metric.get("position", -1)]
    if "logitDiff" in metric:
        a, b = metric["logitDiff"]
        return rows[:, a] - rows[:, b]
    if "logit" in metric:
        return rows[:, metric["logit"]]
    if "logProb" in metric:
        return torch.log_softmax(rows, dim=-1)[:, metric["logProb"]]
    raise ValueError(f"unsupported metric {metric}")


def run_with(model, modules, args, hooks):
    handles = [hook(modules, layer, fn) for layer, fn in hooks]
    try:
        return model(*args)
    finally:
        for h in handles:
            h.remove()


def sweep(case, writer):
    model = model_of(case)
    modules = dict(model.named_modules())
    clean = [read_tensor(t) for t in case["clean"]]
    corrupted = [read_tensor(t) for t in case["corrupted"]]
    metric = case["metric"]
    layers = case["layers"]
    heads = case["heads"]

    def cache(args):
        values = {}
        with torch.no_grad():
            out = run_with(model, modules, args, [(l, lambda v, l=l: values.__setitem__(l, v.clone())) for l in layers])
        return values, metric_values(metric, out).mean().item()

    clean_cache, clean_metric = cache(clean)
    corrupted_cache, corrupted_metric = cache(corrupted)
    sample = clean_cache[layers[0]]
    cells = list(range(heads)) if heads else [p if p >= 0 else p + sample.shape[1] for p in case["positions"]] or list(range(sample.shape[1]))
    results = torch.zeros(len(layers), len(cells), dtype=torch.float64)
    if case["method"] == "activation":
        for li, layer in enumerate(layers):
            for ci, cell in enumerate(cells):
                def patch(v, layer=layer, cell=cell):
                    v = v.clone()
                    if heads:
                        w = v.shape[-1] // heads
                        v[..., cell * w:(cell + 1) * w] = clean_cache[layer][..., cell * w:(cell + 1) * w]
                    else:
                        v[:, cell] = clean_cache[layer][:, cell]
                    return v

                with torch.no_grad():
                    out = run_with(model, modules, corrupted, [(layer, patch)])
                results[li, ci] = metric_values(metric, out).mean().item()
    else:
        kept = {}

        # As TransformerLens's backward hooks see it: each value in the one backward pass
        # (made to require grad only where nothing upstream does: the embedding output).
        def keep(v, layer):
            if not v.requires_grad:
                v.requires_grad_()
            kept[layer] = v
            return v.clone()

        with torch.enable_grad():
            out = run_with(model, modules, corrupted, [(l, lambda v, l=l: keep(v, l)) for l in layers])
            value = metric_values(metric, out).mean()
            grads = torch.autograd.grad(value, [kept[l] for l in layers], allow_unused=True)
        for li, layer in enumerate(layers):
            grad = grads[li] if grads[li] is not None else torch.zeros_like(kept[layer])
            contribution = grad * (clean_cache[layer] - corrupted_cache[layer])
            for ci, cell in enumerate(cells):
                if heads:
                    w = contribution.shape[-1] // heads
                    region = contribution[..., cell * w:(cell + 1) * w]
                else:
                    region = contribution[:, cell]
                results[li, ci] = corrupted_metric + region.sum().item()
    if case["normalize"]:
        results = (results - corrupted_metric) / (clean_metric - corrupted_metric)
    return {"results": writer.tensor(results.float()), "clean": clean_metric, "corrupted": corrupted_metric}


def lens(case, writer):
    model = model_of(case)
    modules = dict(model.named_modules())
    args = [read_tensor(t) for t in case["inputs"]]
    values = {}
    with torch.no_grad():
        run_with(model, modules, args, [(l, lambda v, l=l: values.__setitem__(l, v.clone())) for l in case["layers"]])
        per_layer = []
        for layer in case["layers"]:
            x = values[layer]
            for path in case["head"]:
                x = first_tensor(modules[path](x))
            per_layer.append(x)
    logits = torch.stack(per_layer)
    if case["topK"]:
        top = torch.topk(logits, case["topK"], dim=-1)
        return {"values": writer.tensor(top.values), "indices": writer.tensor(top.indices)}
    return {"logits": writer.tensor(logits)}


def call(case, writer):
    model = model_of(case)
    with torch.no_grad():
        return {"output": writer.tensor(first_tensor(dict(model.named_modules())[case["path"]](*[read_tensor(t) for t in case["inputs"]])))}


def generate(case, _writer):
    model = model_of(case)
    ids = list(case["ids"])
    with torch.no_grad():
        for _ in range(case["maxNewTokens"]):
            logits = model(torch.tensor([ids]))
            ids.append(int(torch.argmax(logits[0, -1]).item()))
    return {"ids": ids}


def tokenize(case, _writer):
    import tiktoken

    ranks = {base64.b64decode(b): r for r, b in enumerate(json.loads(Path(case["ranks"]).read_text()))}
    encoding = tiktoken.Encoding(name="gpt2-reference", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    return {"ids": [encoding.encode(text, allowed_special={"<|endoftext|>"}) for text in case["texts"]]}


KINDS = {"sweep": sweep, "lens": lens, "call": call, "generate": generate, "tokenize": tokenize}


def main() -> int:
    parsed = read_request(__doc__)
    if parsed is None:
        return 2
    request, out = parsed
    torch.set_grad_enabled(False)
    writer = Writer(out)
    cases = run_cases(request.get("cases", []), lambda case, _i: KINDS[case["kind"]](case, writer))
    write_index(out, {"torch": torch.__version__, "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
