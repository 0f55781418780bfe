#!/usr/bin/env python3
"""Eager PyTorch reference for the .pt2 models (scripts/zoo/pt2.py): the eager module rebuilt
from the entry's builder, with forward hooks, on inputs made here. Its parameters and buffers are
the exported ones (the training-IR file's state_dict): a builder that calibrates BatchNorm gets
other running statistics where the CPU's kernels round otherwise (ATen limited to AVX2).

    python test/python/pt2_reference.py REQUEST.json

    {
      "out": "/tmp/dir",
      "manifest": "/abs/models/pt2/manifest.json",  # the models' files (their weights are loaded)
      "cases": [
        {
          "id": "resnet/grad",
          "model": "resnet",                       # an entry of zoo.pt2.ENTRIES
          "seed": 0,                               # entry.inputs(seed)
          "alt": false,                            # entry.alt_inputs(seed) instead
          "capture": ["layer1.0.relu", "x:input"], # hooks storing a deep copy of every call
          "patch": {"layer1.0.bn2": {"mode": "zero" | "scale", "scale": 0.5}},
          "nodes": ["layer1.0/residual"],          # the entry's node points, computed in eager
          "grad": {"inputs": [0], "layers": ["layer2"], "weightsSeed": 7}
        }
      ]
    }

Results: OUT/index.json = {"cases": {id: {"inputs": [VALUE...], "output": VALUE,
"captures": {path: [VALUE per call]}, "nodes": {id: [VALUE per call]}, "grad": {"weights": VALUE,
"objective": [number per batch row], "inputs": [VALUE...], "layers": {path: [VALUE per call]}}}}},
VALUE as in reference.py; a Hugging Face ModelOutput output is a dict of its fields.

Node points: a softmax is Hugging Face's output_attentions=True probabilities of that layer (a
second forward, under the case's patches); a residual is the sum of its terms, recorded by hooks.

Gradients are torch.gradients' (lib/methods/gradients.ts): the objective per batch row is
sum(output * W) over the row, W ~ N(0, 1) seeded by weightsSeed and shaped like forward's output
(its first tensor), differentiated as the sum over rows; w.r.t. forward's float inputs by index, and
w.r.t. a layer's output as Captum's layer methods take it (native/methods/gradients.cpp's tap):
the value as the layer's hook sees it, every later use reading a copy; one gradient per call.
"""

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "scripts"))
from reference import INPUT, Writer, clone_output, patched_output  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402
from zoo.pt2 import ENTRIES, Call, attention_probabilities, first_tensor, input_of, residual_hooks  # noqa: E402

_models: dict = {}


def load_reference(name: str, files: dict) -> torch.nn.Module:
    if name not in _models:
        model = ENTRIES[name].reference()
        exported = torch.export.load(files[name]).state_dict
        own = model.state_dict()
        missing = [k for k in exported if k not in own]
        if missing:
            raise RuntimeError(f"{name}: the exported weights {missing[:3]} are not the builder's (re-run scripts/export_pt2.py)")
        model.load_state_dict(exported, strict=False)
        _models[name] = model
    return _models[name]


def plain(value):
    """A Hugging Face ModelOutput as a dict of its fields (Writer writes a dict); the rest as it is."""
    return dict(value.items()) if hasattr(value, "to_tuple") else value


def with_first_tensor(output, fn):
    """`output` with its first tensor (depth first in tuples) replaced by fn(it)."""
    if isinstance(output, torch.Tensor):
        return fn(output)
    items = list(output.to_tuple() if hasattr(output, "to_tuple") else output)
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            items[i] = fn(item)
            return tuple(items)
    raise TypeError(f"no tensor in an output of type {type(output).__name__}")


def patch_hooks(model: torch.nn.Module, patch: dict) -> list:
    # Registered before the captures: hooks run in registration order, so captures see the patch.
    return [model.get_submodule(layer).register_forward_hook(lambda m, a, out, spec=spec: patched_output(out, spec))
            for layer, spec in (patch or {}).items()]


def capture_hooks(model: torch.nn.Module, capture: list, records: dict) -> list:
    handles = []
    for layer in capture:
        calls = records[layer] = []
        if layer.endswith(INPUT):
            module = model.get_submodule(layer[: -len(INPUT)])
            handles.append(module.register_forward_pre_hook(lambda m, a, k, calls=calls: calls.append(input_of(a, k).clone()),
                                                            with_kwargs=True))
        else:
            module = model.get_submodule(layer)
            handles.append(module.register_forward_hook(lambda m, a, out, calls=calls: calls.append(clone_output(out))))
    return handles


def tap_hooks(model: torch.nn.Module, layers: list, taps: dict) -> list:
    """Gradient taps: each call's output (first tensor) saved as it is, the rest of forward given a copy."""
    def tap(calls):
        def hook(m, a, out):
            t = first_tensor(out)
            if not t.requires_grad:
                t.requires_grad_()
            calls.append(t)
            return with_first_tensor(out, lambda _: t.clone())
        return hook

    return [model.get_submodule(layer).register_forward_hook(tap(taps.setdefault(layer, []))) for layer in layers]


def remove(handles: list) -> None:
    for h in handles:
        h.remove()


def gradients(model: torch.nn.Module, call: Call, case: dict, writer: Writer) -> dict:
    spec = case["grad"]
    flat = [t.clone() for t in call.flat()]
    for i in spec.get("inputs", []):
        flat[i].requires_grad_()
    call = Call(flat[: len(call.args)], dict(zip(call.kwargs, flat[len(call.args):])))
    taps: dict = {}
    handles = patch_hooks(model, case.get("patch"))
    handles += tap_hooks(model, spec.get("layers", []), taps)
    try:
        with torch.enable_grad():
            output = first_tensor(model(*call.args, **call.kwargs))
            weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(spec["weightsSeed"]))
            objective = (output * weights).flatten(1).sum(1)
            sources = [flat[i] for i in spec.get("inputs", [])] + [t for layer in spec.get("layers", []) for t in taps[layer]]
            found = torch.autograd.grad(objective.sum(), sources, allow_unused=True)
    finally:
        remove(handles)
    grads = [torch.zeros_like(s) if g is None else g for s, g in zip(sources, found)]
    inputs, rest = grads[: len(spec.get("inputs", []))], grads[len(spec.get("inputs", [])):]
    layers = {}
    for layer in spec.get("layers", []):
        layers[layer], rest = rest[: len(taps[layer])], rest[len(taps[layer]):]
    return {
        "weights": writer.value(weights),
        "objective": objective.detach().double().tolist(),
        "inputs": [writer.value(g) for g in inputs],
        "layers": {layer: [writer.value(g) for g in calls] for layer, calls in layers.items()},
    }


def run_case(case: dict, writer: Writer, files: dict) -> dict:
    entry = ENTRIES[case["model"]]
    model = load_reference(case["model"], files)
    seed = case.get("seed", 0)
    call = entry.alt_inputs(seed) if case.get("alt") else entry.inputs(seed)
    nodes = [n for n in entry.nodes if n.id in (case.get("nodes") or [])]
    if len(nodes) != len(case.get("nodes") or []):
        raise ValueError(f"{entry.name} has no node point among {case['nodes']}")
    # Written first: a model may change its inputs in place.
    result: dict = {"inputs": [writer.value(t) for t in call.flat()]}
    if case.get("grad"):
        result["grad"] = gradients(model, call, case, writer)
    records: dict = {}
    patches = patch_hooks(model, case.get("patch"))
    try:
        captures = capture_hooks(model, case.get("capture") or [], records)
        residual_handles, residuals = residual_hooks(model, nodes)
        try:
            with torch.no_grad():
                output = model(*call.args, **call.kwargs)
        finally:
            remove(captures + residual_handles)
        with torch.no_grad():
            found = {**residuals(), **attention_probabilities(model, call, nodes)}
    finally:
        remove(patches)
    result["output"] = writer.value(plain(output))
    result["captures"] = {layer: [writer.value(v) for v in calls] for layer, calls in records.items()}
    result["nodes"] = {node: [writer.value(v) for v in values] for node, values in found.items()}
    return result


def main() -> int:
    parsed = read_request(__doc__)
    if parsed is None:
        return 2
    request, out = parsed
    torch.manual_seed(0)
    writer = Writer(out)
    manifest = json.loads(Path(request["manifest"]).read_text())
    folder = Path(request["manifest"]).parent
    files = {m["name"]: str(folder / m["files"]["training"]) for m in manifest["models"]}
    cases = run_cases(request.get("cases", []), lambda case, _i: run_case(case, writer, files))
    write_index(out, {"torch": torch.__version__, "cases": cases})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
