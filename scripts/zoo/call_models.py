"""How submodules are called: shared modules called repeatedly and in a loop, an overloaded
forward and an exported method."""

from dataclasses import replace
from typing import List, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .entry import Entry, generator, randn, seeded


# ---------------------------------------------------------------- loops / repeated calls


class ResidualBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.lin(x))


class LoopNet(nn.Module):
    def __init__(self, d_in: int = 8, d: int = 16, classes: int = 4, steps: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.block = ResidualBlock(d)  # shared: 2 + steps calls
        self.act = nn.GELU()  # shared: 3 + steps calls
        self.head = nn.Linear(d, classes)
        self.steps = steps  # plain int attribute (not Final): the loop stays a prim::Loop

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.inp(x))
        h = self.act(self.block(h))
        h = self.act(self.block(h))
        for _ in range(self.steps):
            h = self.act(self.block(h))
        return self.head(h)


def build_loopnet() -> nn.Module:
    return seeded(LoopNet).eval()


# ---------------------------------------------------------------- overloads / exported methods


class Fuse(nn.Module):
    """forward is overloaded (TorchScript compiles forward__0 / forward__1); project is exported."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.lin = nn.Linear(d, d)

    @torch.jit._overload_method  # noqa: F811
    def forward(self, x: Tensor) -> Tensor:  # noqa: F811
        pass

    @torch.jit._overload_method  # noqa: F811
    def forward(self, x: Tuple[Tensor, Tensor]) -> Tensor:  # noqa: F811
        pass

    def forward(self, x):  # noqa: F811
        if isinstance(x, Tensor):
            return torch.tanh(self.lin(x))
        return torch.tanh(self.lin(x[0]) + x[1])

    @torch.jit.export
    def project(self, x: Tensor) -> Tensor:
        # Not forward: calling it must not count as a call of `fuse` (eager hooks
        # on fuse do not fire), but fuse.lin's forward runs inside it.
        return self.lin(x) * 0.5


class OverloadNet(nn.Module):
    def __init__(self, d_in: int = 8, d: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.enc = nn.Linear(d_in, d)  # called twice
        self.fuse = Fuse(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x: Tensor, pair: Tuple[Tensor, Tensor]) -> Tensor:
        a = self.fuse(self.enc(x))  # Fuse.forward(Tensor)   -> forward__0
        b = self.fuse((a, self.enc(pair[0]) * pair[1]))  # Fuse.forward(tuple) -> forward__1
        c = self.fuse.project(b)  # exported method, not a forward call
        return self.head(c)


def build_overloadnet() -> nn.Module:
    return seeded(OverloadNet).eval()


def overload_inputs(seed: int, batch: int = 2) -> list:
    g = generator(seed)
    return [torch.randn(batch, 8, generator=g), (torch.randn(batch, 8, generator=g), torch.randn(batch, 16, generator=g))]


LOOP_SCRIPTED = Entry(
    name="loop-scripted",
    mode="script",
    family="repeated calls (shared block in straight-line code and a prim::Loop; scripted)",
    build=build_loopnet,
    inputs=lambda seed: [randn(seed, 2, 8)],
    alt_inputs=lambda seed: [randn(seed, 5, 8)],
    capture=["inp", "block", "block.lin", "act", "head"],
    multi_call=["block", "block.lin", "act"],
    patch="block.lin",
    notes=(
        "block is called 5 times (twice in straight-line code, then 3 times inside `for _ in "
        "range(self.steps)`, a prim::Loop whose trip count is the int attribute steps); block.lin and "
        "block.norm 5 times; act (GELU) 6 times. The patch zeroes block.lin at every call."
    ),
)

ENTRIES: List[Entry] = [
    LOOP_SCRIPTED,
    replace(
        LOOP_SCRIPTED,
        name="loop-traced",
        mode="trace",
        family="repeated calls (shared block; traced, loop unrolled)",
        notes=(
            "Same class and weights as loop-scripted. The trace unrolls the loop: each call of a shared module "
            "becomes its own method (block: forward, forward1 .. forward4; act: forward .. forward5; block.lin: "
            "forward .. forward4, called from the matching block.forwardN)."
        ),
    ),
    Entry(
        name="overload-scripted",
        mode="script",
        family="overloaded forward + @torch.jit.export method, tuple input (scripted)",
        build=build_overloadnet,
        inputs=overload_inputs,
        alt_inputs=lambda seed: overload_inputs(seed, 5),
        capture=["enc", "fuse", "fuse.lin", "head"],
        multi_call=["enc", "fuse", "fuse.lin"],
        patch="fuse.lin",
        notes=(
            "forward(x: Tensor [N,8], pair: Tuple[Tensor [N,8], Tensor [N,16]]). fuse has an overloaded forward "
            "(torch.jit._overload_method): fuse(Tensor) compiles to forward__0, fuse(tuple) to forward__1 — 2 "
            "forward calls. fuse.project(...) is an @torch.jit.export method: NOT a forward call of fuse (eager "
            "hooks on fuse fire 2 times), but fuse.lin runs inside it, so fuse.lin is called 3 times (twice "
            "from forward__0/__1, once from project). enc is called twice."
        ),
    ),
]
