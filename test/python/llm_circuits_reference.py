#!/usr/bin/env python3
"""Eager Hugging Face reference for test/llm-circuits.test.ts: attention maps, pattern patching,
the logit lens and the unembedding of the causal LMs of models/llm/ (scripts/llm_fixtures.py),
loaded from their save_pretrained folders (llm_reference.load: eager attention, float32).

    python test/python/llm_circuits_reference.py REQUEST.json

    {
      "out": "/tmp/dir",
      "cases": [
        {"id": "llama/maps", "kind": "attentions", "folder": "/abs/models/llm/llama", "ids": INPUT},
        {"id": "llama/ablate", "kind": "pattern_patch", "folder": ..., "ids": INPUT, "layer": 1, "heads": [0, 2]},
        {"id": "llama/lens", "kind": "lens", "folder": ..., "ids": INPUT,
         "blocks": ["model.layers.0", ...], "finalNorm": "model.norm", "unembed": "lm_head"},
        {"id": "llama/unembed", "kind": "unembed", "folder": ..., "ids": INPUT, "finalNorm": ..., "unembed": ...},
        {"id": "llama/pattern-grad", "kind": "pattern_grad", "folder": ..., "ids": INPUT, "layer": 0, "token": 7}
      ],
      "traces": [{"folder": ..., "out": "/abs/by-hand.pt", "ids": INPUT}]
    }

INPUT is a tensor spec (reference.py's read_tensor). Results: OUT/index.json = {"cases": {id: VALUE}}:
  attentions: output_attentions=True, stacked [batch, layers, heads, seq, seq]
  pattern_patch: the logits when the `layer`-th softmax of the forward (attention layer
    `layer`: no other module of these models calls softmax) has the patterns of `heads` set to
    0, as a Python hook editing the pattern does (TransformerLens's hook_pattern ablation)
  lens: [blocks, batch, seq, vocab], unembed(finalNorm(block output))
  unembed: unembed(x) for x the final norm's output (what the model's head computes)
  pattern_grad: the gradient of logits[:, -1, token].sum() with respect to the `layer`-th softmax's
    output (that attention layer's pattern)
"traces" are traced by hand, as a user would without `torchscope export`: the Hugging Face model
with eager attention and no cache, torch.jit.trace(model, ids, strict=False) (its output a dict),
saved to `out`; the answer lists what was written.
"""

import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from llm_reference import first_tensor, load  # noqa: E402
from reference import Writer, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402


def attentions(model: nn.Module, ids: torch.Tensor, _case: Dict[str, Any]) -> torch.Tensor:
    out = model(input_ids=ids, use_cache=False, output_attentions=True, return_dict=True)
    return torch.stack(list(out.attentions), dim=1)


def pattern_patch(model: nn.Module, ids: torch.Tensor, case: Dict[str, Any]) -> torch.Tensor:
    softmax = torch.nn.functional.softmax
    calls = [0]

    def edited(*args: Any, **kwargs: Any) -> torch.Tensor:
        probs = softmax(*args, **kwargs)
        if calls[0] == case["layer"]:
            probs = probs.clone()
            probs[:, case["heads"]] = 0
        calls[0] += 1
        return probs

    torch.nn.functional.softmax = edited
    try:
        return model(input_ids=ids, use_cache=False, return_dict=True).logits
    finally:
        torch.nn.functional.softmax = softmax


def outputs_of(model: nn.Module, ids: torch.Tensor, paths: List[str]) -> Dict[str, torch.Tensor]:
    """Each module's output (its first tensor) in one eager forward."""
    seen: Dict[str, torch.Tensor] = {}
    hooks = []
    for path in paths:

        def hook(_m: nn.Module, _a: Any, out: Any, path: str = path) -> None:
            seen[path] = first_tensor(out).detach().clone()

        hooks.append(model.get_submodule(path).register_forward_hook(hook))
    try:
        model(input_ids=ids, use_cache=False, return_dict=True)
    finally:
        for h in hooks:
            h.remove()
    return seen


def lens(model: nn.Module, ids: torch.Tensor, case: Dict[str, Any]) -> torch.Tensor:
    seen = outputs_of(model, ids, case["blocks"])
    norm, unembed = model.get_submodule(case["finalNorm"]), model.get_submodule(case["unembed"])
    return torch.stack([unembed(norm(seen[block])) for block in case["blocks"]])


def unembed(model: nn.Module, ids: torch.Tensor, case: Dict[str, Any]) -> torch.Tensor:
    x = outputs_of(model, ids, [case["finalNorm"]])[case["finalNorm"]]
    return model.get_submodule(case["unembed"])(x)


def pattern_grad(model: nn.Module, ids: torch.Tensor, case: Dict[str, Any]) -> torch.Tensor:
    softmax = torch.nn.functional.softmax
    kept: List[torch.Tensor] = []

    def keep(*args: Any, **kwargs: Any) -> torch.Tensor:
        probs = softmax(*args, **kwargs)
        if len(kept) == case["layer"]:
            probs.retain_grad()
        kept.append(probs)
        return probs

    torch.nn.functional.softmax = keep
    try:
        with torch.enable_grad():
            logits = model(input_ids=ids, use_cache=False, return_dict=True).logits
            logits[:, -1, case["token"]].sum().backward()
    finally:
        torch.nn.functional.softmax = softmax
        model.zero_grad(set_to_none=True)
    return kept[case["layer"]].grad


def trace_by_hand(trace: Dict[str, Any]) -> str:
    model = load(trace["folder"])
    model.config.use_cache = False
    traced = torch.jit.trace(model, (read_tensor(trace["ids"]),), strict=False, check_trace=False)
    traced.save(trace["out"])
    return trace["out"]


KINDS: Dict[str, Callable[[nn.Module, torch.Tensor, Dict[str, Any]], torch.Tensor]] = {
    "attentions": attentions,
    "pattern_patch": pattern_patch,
    "lens": lens,
    "unembed": unembed,
    "pattern_grad": pattern_grad,
}


def main() -> int:
    request = read_request(__doc__ or "")
    if request is None:
        return 2
    spec, out = request
    warnings.filterwarnings("ignore")
    writer = Writer(out)

    def run(case: Dict[str, Any], _i: int) -> Any:
        with torch.no_grad():
            return writer.value(KINDS[case["kind"]](load(case["folder"]), read_tensor(case["ids"]), case))

    traces = [trace_by_hand(trace) for trace in spec.get("traces", [])]
    write_index(out, {"cases": run_cases(spec.get("cases", []), run), "traces": traces})
    return 0


if __name__ == "__main__":
    sys.exit(main())
