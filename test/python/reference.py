#!/usr/bin/env python3
"""Independent PyTorch reference for torchscope's tests.

    python test/python/reference.py REQUEST.json

One process answers many cases (importing torch costs seconds). The request:

    {
      "out": "/tmp/dir",                      # results go here (created if missing)
      "cases": [
        {
          "id": "c1",
          "kind": "eager" | "jit",
          "model": "/abs/models/resnet18.pt",  # the TorchScript file
          "arch": "resnet18" | "resnet-tiny" | "bert-base" | "bert-tiny",   # eager only;
                                               # default: from the file name
          "inputs": [TENSOR, ...],
          "capture": ["layer4", ...],          # eager only: forward hooks storing output.clone()
          "patch": {"layer3": PATCH, ...},     # eager only: forward hooks returning a new output
          "output": true,                      # record forward's output (default true)
          "autocast": "bf16" | "fp16"          # eager only: forward under torch.autocast("cpu", dtype)
        }
      ],
      "tasks": [                               # files the tests need, made by torch itself
        {"kind": "save_state_dict", "model": "/abs/x.pt", "path": "/tmp/sd.pt"},
        {"kind": "save_eager_module", "arch": "resnet-tiny", "path": "/tmp/m.pt"},
        {"kind": "script_unused", "path": "/tmp/unused.pt"},   # forward never calls .unused
        {"kind": "script_raises", "path": "/tmp/raises.pt"},   # raises for negative inputs
        {"kind": "script_typed_raises", "path": "/tmp/t.pt"},  # forward(x, kind) raises an IndexError (0),
                                                               # TypeError (1) or ValueError (2) whose
                                                               # message names another kind of problem
        {"kind": "script_branches", "path": "/tmp/b.pt"},      # .pos runs for inputs with a
                                                               # positive sum, .neg otherwise
        {"kind": "script_unhookable", "path": "/tmp/u.pt"},   # calls no module path names
        {"kind": "script_expand", "path": "/tmp/e.pt"},        # returns x.expand(n, n, ...): a
                                                               # view of far more elements than bytes
        {"kind": "script_allocates", "path": "/tmp/a.pt"},     # forward(x, n) allocates n x n floats
        {"kind": "script_endless", "path": "/tmp/s.pt"},       # forward never returns
        {"kind": "script_prints", "path": "/tmp/pr.pt"},       # forward prints a line (C++ stdout), returns x + 1
        {"kind": "script_pools", "path": "/tmp/p.pt"}          # max pools of every argument kind
      ]
    }

    TENSOR = {"file": "/tmp/x.bin", "dtype": "float32", "shape": [1, 3, 224, 224]}
             raw little-endian, C order
    PATCH  = {"mode": "set" | "zero" | "add" | "scale", "value": TENSOR, "scale": 0.5,
              "channels": [...], "positions": [...] or [[y, x], ...]}

Results: OUT/index.json = {"cases": {id: {"output": VALUE, "captures": {layer: [VALUE per call]}}},
"tasks": [...]}, where VALUE is {"type": "tensor", "file", "dtype", "shape"} |
{"type": "tuple", "items": [VALUE...]} (tuples and lists) | {"type": "dict", "items": {key: VALUE}} |
{"type": "none"} | {"type": "scalar", "value"} and tensor files hold raw little-endian data next
to index.json (bfloat16: the raw 16-bit words).

The patch semantics are written from the documentation (native/program/patch.h, lib/methods/patch.ts),
not from native/program/patch.cpp:
  - a module returning a tuple has its first tensor patched;
  - without channels/positions the whole output changes;
  - [N, C] and [N, C, H, W]: channels index dim 1; positions of [N, C, H, W] are (y, x) pairs;
  - [N, S, H]: positions index dim 1, channels dim 2;
  - channels and positions together select their intersection;
  - the value must broadcast to the output's shape.
"""

import contextlib
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from refio import read_request, run_cases, write_index  # noqa: E402

DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
    "float16": (np.float16, torch.float16),
    "int8": (np.int8, torch.int8),
    "uint8": (np.uint8, torch.uint8),
    "int16": (np.int16, torch.int16),
    "int32": (np.int32, torch.int32),
    "int64": (np.int64, torch.int64),
    "bool": (np.bool_, torch.bool),
}
TORCH_TO_NAME = {t: name for name, (_, t) in DTYPES.items()}

ARCH_BY_FILE = {
    "resnet18.pt": "resnet18",
    "resnet18-scripted.pt": "resnet18",
    "resnet-tiny.pt": "resnet-tiny",
    "resnet-tiny-scripted.pt": "resnet-tiny",
    "bert.pt": "bert-base",
    "bert-tiny.pt": "bert-tiny",
    "bert-tiny-cls.pt": "bert-tiny-cls",
    "digits-cnn.pt": "digits",
    "digits-cnn-scripted.pt": "digits",
    "digits-cnn-randomized.pt": "digits",
    "gpt2.pt": "gpt2-small",
    "gpt2-tiny.pt": "gpt2-tiny",
    "induction.pt": "induction",
}


def read_tensor(spec: dict) -> torch.Tensor:
    np_dtype, _ = DTYPES[spec["dtype"]]
    data = np.fromfile(spec["file"], dtype=np.dtype(np_dtype).newbyteorder("<"))
    return torch.from_numpy(data.reshape(spec["shape"]).copy())


class Writer:
    def __init__(self, out: Path):
        self.out = out
        self.count = 0

    def tensor(self, t: torch.Tensor) -> dict:
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its raw words
            entry = self.tensor(t.view(torch.int16))
            return {**entry, "dtype": "bfloat16"}
        name = TORCH_TO_NAME.get(t.dtype)
        if name is None:
            raise TypeError(f"cannot write dtype {t.dtype}")
        self.count += 1
        file = self.out / f"t{self.count}.bin"
        array = t.numpy()
        array.astype(array.dtype.newbyteorder("<"), copy=False).tofile(file)
        return {"type": "tensor", "file": str(file), "dtype": name, "shape": list(t.shape)}

    def value(self, v) -> dict:
        if isinstance(v, torch.Tensor):
            return self.tensor(v)
        if v is None:
            return {"type": "none"}
        if hasattr(v, "to_tuple"):  # transformers ModelOutput: its non-None fields, in order
            return {"type": "tuple", "items": [self.value(x) for x in v.to_tuple()]}
        if isinstance(v, (tuple, list)):
            return {"type": "tuple", "items": [self.value(x) for x in v]}
        if isinstance(v, dict):
            return {"type": "dict", "items": {str(k): self.value(x) for k, x in v.items()}}
        if isinstance(v, (bool, int, float, str)):
            return {"type": "scalar", "value": v}
        return {"type": "other", "repr": repr(v)[:200]}


# ---------------------------------------------------------------- models


_eager_cache: dict = {}
_jit_cache: dict = {}


def load_jit(file: str) -> torch.jit.ScriptModule:
    if file not in _jit_cache:
        _jit_cache[file] = torch.jit.load(file, map_location="cpu").eval()
    return _jit_cache[file]


def build_arch(arch: str) -> torch.nn.Module:
    import torchscope_models as tm

    if arch == "resnet18":
        return tm.resnet((2, 2, 2, 2), 64, num_classes=1000)
    if arch == "resnet-tiny":
        return tm.resnet((1, 1, 1, 1), width=8, num_classes=10)
    if arch in ("bert-base", "bert-tiny"):
        return tm.BertWithAttentions(tm.bert_config(arch.split("-")[1]))
    if arch == "bert-tiny-cls":
        config = tm.bert_config("tiny")
        config.num_labels = 2
        return tm.BertClassifier(config)
    if arch == "digits":
        import digits

        return digits.DigitsCNN()
    if arch in ("gpt2-small", "gpt2-tiny"):
        return tm.Gpt2LM(tm.gpt2_config(arch.split("-")[1]))
    if arch == "induction":
        import induction

        return induction.AttnOnly()
    raise ValueError(f"unknown arch {arch!r}")


def load_eager(file: str, arch: str) -> torch.nn.Module:
    key = (file, arch)
    if key not in _eager_cache:
        model = build_arch(arch)
        state = {k: v for k, v in load_jit(file).state_dict().items()}
        result = model.load_state_dict(state, strict=False)
        missing = list(result.missing_keys)
        # TorchScript keeps BertEmbeddings' non-persistent buffers; nothing else may differ.
        prefix = "bert." if arch == "bert-tiny-cls" else ""
        allowed_extra = {f"{prefix}embeddings.position_ids", f"{prefix}embeddings.token_type_ids"} if arch.startswith("bert") else set()
        unexpected = [k for k in result.unexpected_keys if k not in allowed_extra]
        if missing or unexpected:
            raise RuntimeError(f"{file} vs eager {arch}: missing {missing}, unexpected {unexpected}")
        if arch.startswith("bert"):
            # The buffers eager builds itself must equal what the trace kept.
            emb = model.bert.embeddings if prefix else model.embeddings
            for name in ("position_ids", "token_type_ids"):
                if not torch.equal(getattr(emb, name), state[f"{prefix}embeddings.{name}"]):
                    raise RuntimeError(f"{file}: embeddings.{name} differs from the eager buffer")
        _eager_cache[key] = model.eval()
    return _eager_cache[key]


# ---------------------------------------------------------------- patching


def region_mask(x: torch.Tensor, channels, positions) -> torch.Tensor:
    """Boolean mask of x's shape: True where the patch applies."""
    mask = torch.ones(x.shape, dtype=torch.bool)
    rank = x.dim()
    if channels:
        if rank not in (2, 3, 4):
            raise ValueError(f"channels need a 2-D, 3-D or 4-D output, got {tuple(x.shape)}")
        dim = 2 if rank == 3 else 1
        sel = torch.zeros(x.shape[dim], dtype=torch.bool)
        for c in channels:
            sel[c] = True  # Python indexing: negative counts from the end
        shape = [1] * rank
        shape[dim] = x.shape[dim]
        mask = mask & sel.view(shape)
    if positions:
        if rank == 3:
            sel = torch.zeros(x.shape[1], dtype=torch.bool)
            for p in positions:
                sel[p] = True
            mask = mask & sel.view(1, -1, 1)
        elif rank == 4:
            flat = [int(v) for pair in positions for v in (pair if isinstance(pair, list) else [pair])]
            if len(flat) % 2:
                raise ValueError("positions of a 4-D output are [y, x] pairs")
            sel = torch.zeros(x.shape[2], x.shape[3], dtype=torch.bool)
            for y, col in zip(flat[0::2], flat[1::2]):
                sel[y, col] = True
            mask = mask & sel.view(1, 1, x.shape[2], x.shape[3])
        else:
            raise ValueError(f"positions need a 3-D or 4-D output, got {tuple(x.shape)}")
    return mask


def apply_patch(x: torch.Tensor, spec: dict) -> torch.Tensor:
    mode = spec["mode"]
    if mode == "zero":
        new = torch.zeros_like(x)
    elif mode == "scale":
        new = x * float(spec["scale"])
    elif mode in ("set", "add"):
        value = spec["_value"]
        if value.dtype != x.dtype:
            raise TypeError(f"patch value is {value.dtype}, output is {x.dtype}")
        full = torch.broadcast_to(value, x.shape)  # raises unless value broadcasts to x
        new = full.clone() if mode == "set" else x + full
    else:
        raise ValueError(f"unknown patch mode {mode!r}")
    if not spec.get("channels") and not spec.get("positions"):
        return new
    mask = region_mask(x, spec.get("channels"), spec.get("positions"))
    out = x.clone()
    out[mask] = new[mask]
    return out


def patched_output(output, spec: dict):
    if isinstance(output, torch.Tensor):
        return apply_patch(output, spec)
    if isinstance(output, tuple):
        items = list(output)
        for i, item in enumerate(items):
            if isinstance(item, torch.Tensor):
                items[i] = apply_patch(item, spec)
                return tuple(items)
    raise TypeError(f"cannot patch an output of type {type(output).__name__}")


INPUT = ":input"


def first_tensor_of(args: tuple) -> torch.Tensor:
    return next(a for a in args if isinstance(a, torch.Tensor))


def with_first_tensor(args: tuple, fn) -> tuple:
    """args with their first tensor replaced by fn(it): what a pre-hook returns to patch an input."""
    items = list(args)
    i = next(i for i, a in enumerate(items) if isinstance(a, torch.Tensor))
    items[i] = fn(items[i])
    return tuple(items)


def clone_output(output):
    """A deep clone: every tensor in nested tuples, lists and dicts copied."""
    if isinstance(output, torch.Tensor):
        return output.clone()
    if hasattr(output, "to_tuple"):  # transformers ModelOutput: its non-None fields, in order
        return tuple(clone_output(x) for x in output.to_tuple())
    if isinstance(output, (tuple, list)):
        return type(output)(clone_output(x) for x in output)
    if isinstance(output, dict):
        return {k: clone_output(x) for k, x in output.items()}
    return output


# ---------------------------------------------------------------- cases


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(case: dict):
    """torch.autocast as load({ precision }) means it, or nothing for float32."""
    name = case.get("autocast")
    return torch.autocast("cpu", dtype=AUTOCAST_DTYPES[name]) if name else contextlib.nullcontext()


def run_case(case: dict, writer: Writer) -> dict:
    inputs = [read_tensor(t) for t in case.get("inputs", [])]
    result: dict = {"captures": {}}
    with torch.no_grad():
        if case["kind"] == "jit":
            if case.get("capture") or case.get("patch"):
                raise ValueError("jit cases run the plain forward: no capture or patch")
            result["output"] = writer.value(load_jit(case["model"])(*inputs))
            return result
        if case["kind"] != "eager":
            raise ValueError(f"unknown case kind {case['kind']!r}")
        arch = case.get("arch") or ARCH_BY_FILE[Path(case["model"]).name]
        model = load_eager(case["model"], arch)
        modules = dict(model.named_modules())
        handles = []
        records: dict = {}
        try:
            # Patch hooks first: hooks run in registration order and a hook's return value is
            # what later hooks (the captures) and the rest of the model see.
            # 'path:input' names a module's first tensor input: a forward pre-hook's.
            for layer, spec in (case.get("patch") or {}).items():
                spec = dict(spec)
                if "value" in spec:
                    spec["_value"] = read_tensor(spec["value"])
                if layer.endswith(INPUT):
                    handles.append(modules[layer[: -len(INPUT)]].register_forward_pre_hook(
                        lambda m, args, spec=spec: with_first_tensor(args, lambda t: apply_patch(t, spec))))
                else:
                    handles.append(modules[layer].register_forward_hook(
                        lambda m, args, out, spec=spec: patched_output(out, spec)))
            for layer in case.get("capture") or []:
                records[layer] = []
                if layer.endswith(INPUT):
                    handles.append(modules[layer[: -len(INPUT)]].register_forward_pre_hook(
                        lambda m, args, calls=records[layer]: calls.append(first_tensor_of(args).clone())))
                else:
                    handles.append(modules[layer].register_forward_hook(
                        lambda m, args, out, calls=records[layer]: calls.append(clone_output(out))))
            with autocast_for(case):
                output = model(*inputs)
        finally:
            for handle in handles:
                handle.remove()
        if case.get("output", True):
            result["output"] = writer.value(output)
        for layer, calls in records.items():
            result["captures"][layer] = [writer.value(v) for v in calls]
    return result


def run_task(task: dict) -> dict:
    kind = task["kind"]
    if kind == "save_state_dict":
        torch.save(load_jit(task["model"]).state_dict(), task["path"])
    elif kind == "save_eager_module":
        torch.save(build_arch(task["arch"]), task["path"])
    elif kind == "script_unused":

        class WithUnused(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.used = torch.nn.Linear(4, 3)
                self.unused = torch.nn.Linear(4, 3)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.used(x)

        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(WithUnused().eval()), task["path"])
    elif kind == "script_raises":

        class Refuses(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = torch.nn.Linear(4, 3)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                y = self.inner(x)
                if bool(x.sum() < 0):
                    raise Exception("the model refuses negative inputs")
                return y

        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(Refuses().eval()), task["path"])
    elif kind == "script_typed_raises":

        class TypedRaises(torch.nn.Module):
            def forward(self, x: torch.Tensor, kind: int) -> torch.Tensor:
                if kind == 0:
                    raise IndexError("no such device")
                if kind == 1:
                    raise TypeError("the sizes do not match")
                if kind == 2:
                    raise ValueError("expected a float dtype")
                return x

        torch.jit.save(torch.jit.script(TypedRaises()), task["path"])
    elif kind == "script_branches":

        class Branches(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.pos = torch.nn.Linear(4, 3)
                self.neg = torch.nn.Linear(4, 3)
                self.head = torch.nn.Linear(3, 2)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if bool(x.sum() > 0):
                    y = self.pos(x)
                else:
                    y = self.neg(x)
                return self.head(y)

        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(Branches().eval()), task["path"])
    elif kind == "script_unhookable":
        # Calls no path names: an element of a ModuleList picked by a run-time index (also
        # called directly: picked.0), a submodule behind a module interface attribute, a
        # module whose forward is never called, only another method.

        @torch.jit.interface
        class Op(torch.nn.Module):
            def forward(self, input: torch.Tensor) -> torch.Tensor:
                pass

        class Helper(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(4, 4)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.lin(x)

            @torch.jit.export
            def doubled(self, x: torch.Tensor) -> torch.Tensor:
                return x * 2

        class Unhookable(torch.nn.Module):
            impl: Op

            def __init__(self):
                super().__init__()
                self.picked = torch.nn.ModuleList([torch.nn.Tanh(), torch.nn.Tanh()])
                self.impl = torch.nn.Sequential(torch.nn.Sigmoid())
                self.helper = Helper()
                self.direct = torch.nn.Linear(4, 4)

            def forward(self, x: torch.Tensor, i: int) -> torch.Tensor:
                y = self.picked[0](x)
                picked: Op = self.picked[i]
                y = y + picked.forward(x)
                y = self.impl.forward(y)
                y = self.helper.doubled(y)
                return self.direct(y)

        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(Unhookable().eval()), task["path"])
    elif kind == "script_expand":

        class Expand(torch.nn.Module):
            def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
                return x.expand(n, n, x.size(-1))

        torch.jit.save(torch.jit.script(Expand()), task["path"])
    elif kind == "script_allocates":

        class Allocates(torch.nn.Module):
            def forward(self, x: torch.Tensor, n: int) -> torch.Tensor:
                return torch.zeros([n, n]) + x.sum()

        torch.jit.save(torch.jit.script(Allocates()), task["path"])
    elif kind == "script_endless":

        class Endless(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                while bool(x.sum() > -1):
                    x = x + 0
                return x

        torch.jit.save(torch.jit.script(Endless()), task["path"])
    elif kind == "script_prints":

        class Prints(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                print("printed by the model's forward")
                return x + 1

        torch.jit.save(torch.jit.script(Prints()), task["path"])
    elif kind == "script_pools":

        class Pools(torch.nn.Module):
            def __init__(self):
                super().__init__()
                # a pool inside a Sequential, after a convolution
                self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.MaxPool2d(3, 2, 1))
                self.ceil = torch.nn.MaxPool2d(2, ceil_mode=True)
                self.dilated = torch.nn.MaxPool2d(3, stride=1, padding=1, dilation=2)

            def forward(self, x: torch.Tensor):
                rectangular = torch.nn.functional.max_pool2d(x, (3, 2), (1, 2), (1, 0))
                unbatched = torch.nn.functional.max_pool2d(x[0], 2)
                return self.stem(x), self.ceil(x), self.dilated(x), rectangular, unbatched

        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(Pools().eval()), task["path"])
    else:
        raise ValueError(f"unknown task {kind!r}")
    return {"kind": kind, "path": task["path"]}


def main() -> int:
    parsed = read_request(__doc__)
    if parsed is None:
        return 2
    request, out = parsed
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    writer = Writer(out)
    tasks = [run_task(task) for task in request.get("tasks", [])]
    cases = run_cases(request.get("cases", []), lambda case, _i: run_case(case, writer))
    write_index(out, {"torch": torch.__version__, "cases": cases, "tasks": tasks})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
