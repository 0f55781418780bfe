"""What a zoo entry is, and the seeded weights and inputs every entry is built from."""

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

import torchscope_models as tm

SEED = 0
TOL = 1e-5

TRACE_DROPS = (
    "torch.jit.trace keeps only the submodule outputs that are used and flattens nested tuples/dicts: "
)


@dataclass
class Entry:
    """One zoo model; what the Python reference (test/python/zoo_reference.py) uses.

    build()       fresh eager module: seeded, eval(), the same weights every call
    inputs(seed)  forward's positional inputs (tensors, Dict[str, Tensor], List/Tuple of
                  tensors); deterministic; the same structure and shapes for every seed
    capture       >= 3 module paths (named_modules() names) to capture, one nested at least
    multi_call    the capture paths forward calls more than once (eager hook count >= 2)
    single_calls  when multi_call is empty: why (the architecture calls no module twice)
    patch         a path whose output's first tensor, zeroed, visibly changes the output
    """

    name: str
    mode: str  # 'script' | 'trace'
    family: str
    build: Callable[[], nn.Module] = field(repr=False)
    inputs: Callable[[int], list] = field(repr=False)
    capture: List[str]
    multi_call: List[str]
    patch: str
    single_calls: str = ""
    dtype: str = "float32"
    notes: str = ""
    # Inputs of another batch size / length / image size, for the export check only
    # (None: the architecture fixes the shapes; only a second seed is checked).
    alt_inputs: Optional[Callable[[int], list]] = field(default=None, repr=False)
    trace_strict: bool = True  # torch.jit.trace(strict=...); False allows dict outputs
    # Context manager entered around torch.jit.trace (e.g. to trace a slow path).
    trace_context: Optional[Callable[[], Any]] = field(default=None, repr=False)
    tol: float = TOL

    @property
    def file(self) -> str:
        return f"{self.name}.pt"


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=generator(seed)).to(dtype)


def padding_mask(batch: int, seq: int) -> Tensor:
    """Bool [batch, seq], True = padding: row i > 0 is padded on the right by a different amount."""
    pad = torch.zeros(batch, seq, dtype=torch.bool)
    for i in range(1, batch):
        pad[i, max(1, seq - 2 - 3 * i):] = True
    return pad


def seeded(ctor: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(SEED)
    return ctor()


def calibrated(model: nn.Module, shape: Tuple[int, ...], steps: int = 6) -> nn.Module:
    """Non-trivial BatchNorm running statistics (train-mode passes on seeded data), then eval()."""
    # Single-threaded ATen: the reductions then do not depend on the core count.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tm.calibrate_bn(model, SEED + 100, shape, steps=steps)
    finally:
        torch.set_num_threads(old)
