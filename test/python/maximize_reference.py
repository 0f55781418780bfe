#!/usr/bin/env python3
"""PyTorch reference for torchscope's activation maximization (test/maximize.test.ts).

    python test/python/maximize_reference.py REQUEST.json

The loop torch.maximize runs with parameterization 'pixel', range 'clamp', transforms [],
regularizers {}, normalize false and a given init, written from the documented algorithm
(lib/methods/maximize.ts, native/methods/maximize.h), not from native/methods/maximize.cpp:

    p = init.clone().requires_grad_()                       # the image itself is optimised
    opt = torch.optim.Adam([p], lr, betas, eps=1e-8, foreach=False)
    for step in range(steps):
        opt.zero_grad()
        act = forward of the model up to and including `layer`  (the rest never runs)
        objective = mean over batch elements b of act[b][channel_b].mean()
        loss = 0 - objective
        loss.backward()
        record objective.item()                              # before the update
        opt.step()
        p.data.clamp_(0, 1)                                  # projection back to [0, 1]

The model is the eager architecture of scripts/torchscope_models.py with the TorchScript
file's weights, in eval() mode, parameters frozen (requires_grad False). The forward is
truncated after `layer` by a forward hook that stores output.clone() and raises, so nothing
after the layer runs: numerically the same ops as a hand-truncated eager forward.

The request:

    {
      "out": "/tmp/dir",
      "cases": [
        {"id": "c1", "model": "/abs/models/resnet18.pt", "arch": "resnet18",   # arch optional
         "layer": "layer4", "channels": [5, 9],          # one channel per batch element
         "init": TENSOR,                                  # [B, 3, H, W] float32 in [0, 1]
         "steps": 20, "lr": 0.05, "betas": [0.9, 0.999], "eps": 1e-8,
         "adam": "torch"}                                 # or "libtorch"; default "torch"
      ]
    }

"adam": "torch" is torch.optim.Adam(foreach=False) (the single-tensor update). "libtorch" is
the same algorithm with C++ torch::optim::Adam's rounding (what native/methods/maximize.cpp uses),
written out: exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) where Python's Adam has
exp_avg.lerp_(grad, 1 - beta1). The two differ by one rounding in the first moment, which
is enough to change the trajectory of a long enough run (see test/maximize.test.ts).

    TENSOR = {"file": "/tmp/x.bin", "dtype": "float32", "shape": [1, 3, 64, 64]}
             raw little-endian float32, C order

Results in OUT/index.json: {"torch": version, "cases": {id: {"objective": [float per step],
"image": TENSOR}}} or {id: {"error": "..."}}; image files lie next to index.json.
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from refio import read_request, run_cases, write_index  # noqa: E402

ARCH_BY_FILE = {
    "resnet18.pt": "resnet18",
    "resnet18-scripted.pt": "resnet18",
    "resnet-tiny.pt": "resnet-tiny",
    "resnet-tiny-scripted.pt": "resnet-tiny",
}


def read_tensor(spec: dict) -> torch.Tensor:
    if spec["dtype"] != "float32":
        raise ValueError(f"init must be float32, got {spec['dtype']}")
    data = np.fromfile(spec["file"], dtype=np.dtype("<f4"))
    return torch.from_numpy(data.reshape(spec["shape"]).copy())


def write_tensor(t: torch.Tensor, file: Path) -> dict:
    t = t.detach().contiguous().cpu().to(torch.float32)
    t.numpy().astype("<f4", copy=False).tofile(file)
    return {"file": str(file), "dtype": "float32", "shape": list(t.shape)}


_models: dict = {}


def load_model(file: str, arch: str) -> torch.nn.Module:
    key = (file, arch)
    if key not in _models:
        import torchscope_models as tm

        if arch == "resnet18":
            model = tm.resnet((2, 2, 2, 2), 64, num_classes=1000)
        elif arch == "resnet-tiny":
            model = tm.resnet((1, 1, 1, 1), width=8, num_classes=10)
        else:
            raise ValueError(f"unknown arch {arch!r}")
        state = torch.jit.load(file, map_location="cpu").state_dict()
        model.load_state_dict(state, strict=True)
        model.eval()
        model.requires_grad_(False)  # only the image gets gradients
        _models[key] = model
    return _models[key]


class _Stop(Exception):
    """Raised by the capture hook: the forward ends right after the layer."""


def truncated_forward(model: torch.nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    module = dict(model.named_modules())[layer]
    captured = []

    def hook(_module, _args, output):
        captured.append(output.clone())
        raise _Stop()

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(f"layer {layer!r} ran {len(captured)} times")
    return captured[0]


class LibtorchAdam:
    """torch::optim::Adam's update (torch/csrc/api/src/optim/adam.cpp), amsgrad and weight
    decay off: the same algorithm as torch.optim.Adam, rounded as libtorch rounds it."""

    def __init__(self, p: torch.Tensor, lr: float, beta1: float, beta2: float, eps: float):
        self.p, self.lr, self.beta1, self.beta2, self.eps = p, lr, beta1, beta2, eps
        self.step_count = 0
        self.exp_avg = torch.zeros_like(p)
        self.exp_avg_sq = torch.zeros_like(p)

    def zero_grad(self) -> None:
        self.p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grad = self.p.grad
        self.step_count += 1
        bias_correction1 = 1 - self.beta1 ** self.step_count
        bias_correction2 = 1 - self.beta2 ** self.step_count
        self.exp_avg.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(self.eps)
        self.p.addcdiv_(self.exp_avg, denom, value=-(self.lr / bias_correction1))


def run_case(case: dict, out: Path, index: int) -> dict:
    arch = case.get("arch") or ARCH_BY_FILE[Path(case["model"]).name]
    model = load_model(case["model"], arch)
    layer = case["layer"]
    channels = [int(c) for c in case["channels"]]
    init = read_tensor(case["init"])
    if init.dim() != 4 or init.shape[0] != len(channels) or init.shape[1] != 3:
        raise ValueError(f"init {tuple(init.shape)} does not fit {len(channels)} channels")
    beta1, beta2 = case.get("betas", [0.9, 0.999])
    lr, eps = float(case["lr"]), float(case.get("eps", 1e-8))
    beta1, beta2 = float(beta1), float(beta2)
    p = init.clone().requires_grad_(True)
    adam = case.get("adam", "torch")
    if adam == "torch":
        optimizer = torch.optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps, foreach=False)
    elif adam == "libtorch":
        optimizer = LibtorchAdam(p, lr, beta1, beta2, eps)
    else:
        raise ValueError(f"unknown adam {adam!r}")
    objectives = []
    for _ in range(int(case["steps"])):
        optimizer.zero_grad()
        image = p  # pixel parameterization, no transforms, no normalization
        activation = truncated_forward(model, layer, image)
        objective = torch.zeros(())
        for b, channel in enumerate(channels):
            objective = objective + activation[b][channel].mean()
        objective = objective / len(channels)
        loss = torch.zeros(()) - objective  # no regularizers
        loss.backward()
        objectives.append(objective.item())
        optimizer.step()
        with torch.no_grad():
            p.data.clamp_(0, 1)
    return {"objective": objectives, "image": write_tensor(p, out / f"image{index}.bin")}


def main() -> int:
    parsed = read_request(__doc__)
    if parsed is None:
        return 2
    request, out = parsed
    torch.manual_seed(0)
    cases = run_cases(request.get("cases", []), lambda case, i: run_case(case, out, i))
    write_index(out, {"torch": torch.__version__, "cases": cases})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
