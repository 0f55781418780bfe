"""Inputs and outputs other than one float32 tensor: dicts, lists, float64, bfloat16."""

from dataclasses import replace
from typing import Dict, List

import torch
import torch.nn as nn
from torch import Tensor

from .entry import Entry, calibrated, generator, randn, seeded


# ---------------------------------------------------------------- dict in / dict out


class PyramidFeatures(nn.Module):
    def __init__(self, cin: int = 4) -> None:
        super().__init__()
        self.c2 = nn.Conv2d(cin, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        p2 = self.c2(x)
        p3 = self.c3(p2)
        return {"p2": p2, "p3": p3}


class DictNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fpn = PyramidFeatures(4)
        self.head = nn.Conv2d(8, 3, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)
        self.act = nn.GELU()  # on the head's output and on p3: called twice

    def forward(self, batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        x = torch.cat([batch["image"], batch["mask"]], dim=1)
        feats = self.fpn(x)
        # In place on a value of the dict fpn returned (which is fpn.c2's output
        # tensor itself): captures of fpn / fpn.c2 must be copies taken before this.
        p2 = torch.relu_(feats["p2"])
        logits = self.act(self.head(p2)) * batch["mask"]
        features = self.fc(torch.flatten(self.pool(self.act(feats["p3"])), 1))
        return {"logits": logits, "features": features}


def build_dictnet() -> nn.Module:
    return seeded(DictNet).eval()


def dict_inputs(seed: int, batch: int = 2, size: int = 16) -> list:
    g = generator(seed)
    image = torch.randn(batch, 3, size, size, generator=g)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.3).to(torch.float32)
    return [{"image": image, "mask": mask}]


# ---------------------------------------------------------------- list in / list out (scripted)


class Branches(nn.Module):
    def __init__(self, n: int = 3, d: int = 8, h: int = 16) -> None:
        super().__init__()
        self.lins = nn.ModuleList([nn.Linear(d, h) for _ in range(n)])

    def forward(self, xs: List[Tensor]) -> List[Tensor]:
        out: List[Tensor] = []
        for i, lin in enumerate(self.lins):
            out.append(lin(xs[i]))
        return out


class ListNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branches = Branches()
        self.act = nn.ReLU()  # called twice
        self.mix = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, xs: List[Tensor]) -> List[Tensor]:
        hs = self.branches(xs)
        # In place on elements of the list branches returned (branches.lins.0's
        # and branches.lins.1's output tensors themselves).
        hs[0].mul_(2.0)
        torch.relu_(hs[1])
        s = hs[0] + hs[1] + hs[2]
        m = self.mix(s)
        return [self.head(self.act(m)), self.act(s), hs[1]]


def build_listnet() -> nn.Module:
    return seeded(ListNet).eval()


def list_inputs(seed: int, batch: int = 2) -> list:
    g = generator(seed)
    return [[torch.randn(batch, 8, generator=g) for _ in range(3)]]


# ---------------------------------------------------------------- float64 / bfloat16


class SignalMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 5, padding=2)
        self.pool = nn.AdaptiveAvgPool1d(8)
        self.mlp = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32))
        self.act = nn.Tanh()  # after the convolution and after the MLP: called twice
        self.out = nn.Linear(32, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.flatten(self.pool(self.act(self.conv(x))), 1)
        return self.out(self.act(self.mlp(h)))


def build_mlp64() -> nn.Module:
    return seeded(SignalMLP).double().eval()


def build_mlp16() -> nn.Module:
    return seeded(SignalMLP).half().eval()


class TinyCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.hidden = nn.Linear(16, 16)
        self.act = nn.ReLU()  # after features and after hidden: called twice
        self.fc = nn.Linear(16, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.flatten(self.pool(self.act(self.features(x))), 1)
        return self.fc(self.act(self.hidden(h)))


def build_cnn_bf16() -> nn.Module:
    # Calibrate BatchNorm in float32, then convert everything (stats included).
    return calibrated(seeded(TinyCNN), (8, 3, 32, 32)).to(torch.bfloat16).eval()


DICT_IO_SCRIPTED = Entry(
    name="dict-io-scripted",
    mode="script",
    family="dict in / dict out CNN (Dict[str, Tensor] forward, submodule returning a dict; scripted)",
    build=build_dictnet,
    inputs=dict_inputs,
    alt_inputs=lambda seed: dict_inputs(seed, 3, 24),
    capture=["fpn", "fpn.c2", "fpn.c3", "head", "act", "fc"],
    multi_call=["act"],
    patch="fpn.c2",
    notes=(
        "forward(batch: Dict[str, Tensor]) with keys image [N,3,H,W], mask [N,1,H,W] (0/1 float) -> "
        "{'logits': [N,3,H,W], 'features': [N,5]}. fpn returns {'p2', 'p3'}; the caller then runs "
        "torch.relu_ on feats['p2'], which is fpn.c2's output tensor itself: captures of fpn and fpn.c2 "
        "must be deep copies taken at return time."
    ),
)

ENTRIES: List[Entry] = [
    DICT_IO_SCRIPTED,
    replace(
        DICT_IO_SCRIPTED,
        name="dict-io-traced",
        mode="trace",
        trace_strict=False,
        family="dict in / dict out CNN (Dict[str, Tensor] forward, submodule returning a dict; traced strict=False)",
        notes=(
            "torch.jit.trace(..., strict=False): the top-level forward keeps Dict[str, Tensor] in and out, but "
            "the traced fpn.forward returns the tuple (p2, p3), not a dict (eager: {'p2', 'p3'}). The caller's "
            "torch.relu_ on p2 overwrites fpn.c2's output in place, as in dict-io-scripted."
        ),
    ),
    Entry(
        name="list-io",
        mode="script",
        family="list in / list out MLP (List[Tensor] forward, submodule returning a list; scripted)",
        build=build_listnet,
        inputs=list_inputs,
        alt_inputs=lambda seed: list_inputs(seed, 5),
        capture=["branches", "branches.lins.0", "branches.lins.1", "act", "mix"],
        multi_call=["act"],
        patch="mix",
        notes=(
            "forward(xs: List[Tensor]) with 3 tensors [N, 8] -> list of 3 tensors. branches returns a list "
            "whose elements the caller mutates in place (hs[0].mul_(2), torch.relu_(hs[1])): they are "
            "branches.lins.0/1's output tensors. act (ReLU) is called twice. The ModuleList loop is unrolled "
            "by the TorchScript compiler."
        ),
    ),
    Entry(
        name="mlp-float64",
        mode="script",
        family="Conv1d + MLP in float64 (scripted)",
        dtype="float64",
        build=build_mlp64,
        inputs=lambda seed: [randn(seed, 2, 4, 16, dtype=torch.float64)],
        alt_inputs=lambda seed: [randn(seed, 3, 4, 24, dtype=torch.float64)],
        capture=["conv", "mlp.0", "mlp", "act", "out"],
        multi_call=["act"],
        patch="mlp.2",
        notes="All parameters and inputs are float64; input [N, 4, L] (AdaptiveAvgPool1d makes L free).",
    ),
    Entry(
        name="mlp-float16",
        mode="trace",
        family="Conv1d + MLP in float16 (traced)",
        dtype="float16",
        build=build_mlp16,
        inputs=lambda seed: [randn(seed, 2, 4, 16, dtype=torch.float16)],
        alt_inputs=lambda seed: [randn(seed, 3, 4, 24, dtype=torch.float16)],
        capture=["conv", "mlp.0", "mlp", "act", "out"],
        multi_call=["act"],
        patch="mlp.2",
        notes="mlp-float64's architecture with float16 parameters and inputs.",
    ),
    Entry(
        name="cnn-bfloat16",
        mode="trace",
        family="small CNN + Linear head in bfloat16 (traced)",
        dtype="bfloat16",
        build=build_cnn_bf16,
        inputs=lambda seed: [randn(seed, 2, 3, 32, 32, dtype=torch.bfloat16)],
        alt_inputs=lambda seed: [randn(seed, 3, 3, 24, 24, dtype=torch.bfloat16)],
        capture=["features.0", "features.5", "features", "act", "fc"],
        multi_call=["act"],
        patch="features.4",
        notes="Parameters, BatchNorm stats (calibrated in float32 first) and inputs are bfloat16.",
    ),
]
