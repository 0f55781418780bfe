#!/usr/bin/env python3
"""Eager PyTorch reference for the model zoo (scripts/zoo/): forward hooks on the eager
module, with the exported file's weights, on inputs made here.

    python test/python/zoo_reference.py REQUEST.json

    {
      "out": "/tmp/dir",
      "zoo": "/abs/models/zoo",                 # where scripts/zoo/ wrote <name>.pt
      "cases": [
        {
          "id": "gru-traced/patch",
          "model": "gru-traced",                 # an entry of zoo.ENTRIES
          "seed": 0,                             # entry.inputs(seed)
          "capture": ["gru", "head"],            # hooks storing a deep clone of every call
          "patch": {"inp": {"mode": "zero"}},    # hooks returning a patched output (reference.py)
          "fastpath": true,                      # torch.backends.mha fast path (default true)
          "autocast": "bf16"                     # forward under torch.autocast('cpu', bf16 | fp16)
        }
      ]
    }

Results: OUT/index.json = {"cases": {id: {"inputs": [VALUE...], "output": VALUE,
"captures": {layer: [VALUE per call]}}}}, VALUE as in reference.py (dicts included).

The eager module is the entry's own build() with the state_dict of the TorchScript file
loaded into it, so both sides hold the same weights whatever the file is; buffers the file
keeps that eager does not persist (Hugging Face's position_ids) must equal eager's.
"""

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "scripts"))
from reference import Writer, clone_output, patched_output  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402
import zoo  # noqa: E402

_eager: dict = {}


def load_eager(name: str, zoo_dir: Path) -> torch.nn.Module:
    if name in _eager:
        return _eager[name]
    model = zoo.ENTRIES[name].build()
    state = torch.jit.load(str(zoo_dir / f"{name}.pt"), map_location="cpu").state_dict()
    own = model.state_dict()
    buffers = dict(model.named_buffers())
    missing = [k for k in own if k not in state]
    if missing:
        raise RuntimeError(f"{name}: the file lacks {missing}")
    for key in state.keys() - own.keys():
        if key not in buffers or not torch.equal(buffers[key], state[key]):
            raise RuntimeError(f"{name}: the file's {key} is not one of eager's (non-persistent) buffers")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    _eager[name] = model.eval()
    return _eager[name]


def run_case(case: dict, writer: Writer, zoo_dir: Path) -> dict:
    entry = zoo.ENTRIES[case["model"]]
    model = load_eager(case["model"], zoo_dir)
    inputs = entry.inputs(case.get("seed", 0))
    modules = dict(model.named_modules())
    records: dict = {}
    handles = []
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(case.get("fastpath", True))
    try:
        # Patch hooks first: hooks run in registration order and a hook's return value is
        # what later hooks (the captures) and the rest of the model see.
        for layer, spec in (case.get("patch") or {}).items():
            handles.append(modules[layer].register_forward_hook(lambda m, args, out, spec=spec: patched_output(out, spec)))
        for layer in case.get("capture") or []:
            records[layer] = []
            handles.append(
                modules[layer].register_forward_hook(lambda m, args, out, calls=records[layer]: calls.append(clone_output(out)))
            )
        autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(case.get("autocast"))
        with torch.no_grad(), torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            # Inputs written first: a model may change them in place.
            written = [writer.value(x) for x in inputs]
            output = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return {
        "inputs": written,
        "output": writer.value(output),
        "captures": {layer: [writer.value(v) for v in calls] for layer, calls in records.items()},
    }


def main() -> int:
    parsed = read_request(__doc__)
    if parsed is None:
        return 2
    request, out = parsed
    torch.manual_seed(0)
    writer = Writer(out)
    zoo_dir = Path(request["zoo"])
    cases = run_cases(request.get("cases", []), lambda case, _i: run_case(case, writer, zoo_dir))
    write_index(out, {"torch": torch.__version__, "cases": cases})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
