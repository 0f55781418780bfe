"""Nested model values (tensors in tuples, lists and dicts): copy, describe, patch, compare."""

from typing import Any, Callable, List

import torch
from torch import Tensor


def map_tensors(x: Any, fn: Callable[[Tensor], Any]) -> Any:
    """x with every tensor replaced by fn(tensor), depth-first; containers rebuilt, the rest kept."""
    if isinstance(x, Tensor):
        return fn(x)
    if isinstance(x, dict):
        return type(x)((k, map_tensors(v, fn)) for k, v in x.items())
    if isinstance(x, tuple):
        return tuple(map_tensors(v, fn) for v in x)
    if isinstance(x, list):
        return [map_tensors(v, fn) for v in x]
    return x


def clone_tree(x: Any) -> Any:
    return map_tensors(x, Tensor.clone)


def tensors_of(x: Any) -> List[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in tensors_of(v)]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in tensors_of(v)]
    return []


def zero_first_tensor(x: Any) -> Any:
    """A copy of x (same structure) whose first tensor (depth-first) is zeros."""
    seen: List[Tensor] = []

    def zero_first(t: Tensor) -> Tensor:
        seen.append(t)
        return torch.zeros_like(t) if len(seen) == 1 else t

    out = map_tensors(x, zero_first)
    if not seen:
        raise ValueError("output has no tensor to patch")
    return out


def describe(x: Any) -> str:
    """Nested structure of a value, e.g. 'tuple(Tensor[2,12,32] float32, None)'."""
    if isinstance(x, Tensor):
        return f"Tensor[{','.join(map(str, x.shape))}] {str(x.dtype).replace('torch.', '')}"
    if x is None:
        return "None"
    if isinstance(x, dict):
        inner = ", ".join(f"{k!r}: {describe(v)}" for k, v in x.items())
        return f"dict{{{inner}}}" if type(x) is dict else f"{type(x).__name__}{{{inner}}}"
    if isinstance(x, (tuple, list)):
        return f"{type(x).__name__}({', '.join(describe(v) for v in x)})"
    return type(x).__name__


def assert_same(where: str, got: Any, want: Any, tol: float) -> float:
    """Same structure and values; returns the largest float difference seen."""
    if isinstance(want, Tensor):
        assert isinstance(got, Tensor), f"{where}: got {describe(got)}, expected a tensor"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {tuple(got.shape)} != {tuple(want.shape)}"
        if not want.is_floating_point():
            assert torch.equal(got, want), f"{where}: integer values differ"
            return 0.0
        g, w = got.double(), want.double()
        assert torch.equal(g.isnan(), w.isnan()), f"{where}: NaNs differ"
        if g.numel() == 0:
            return 0.0
        err = (g - w).nan_to_num(0.0).abs().max().item()
        assert err <= tol, f"{where}: max abs diff {err:.3g} > {tol}"
        return err
    if want is None:
        assert got is None, f"{where}: got {describe(got)}, expected None"
        return 0.0
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: got {describe(got)}, expected a dict"
        assert list(got.keys()) == list(want.keys()), f"{where}: keys {list(got)} != {list(want)}"
        return max([assert_same(f"{where}[{k!r}]", got[k], want[k], tol) for k in want] or [0.0])
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want), f"{where}: got {type(got).__name__}, expected {type(want).__name__}"
        assert len(got) == len(want), f"{where}: {len(got)} items, expected {len(want)}"
        return max([assert_same(f"{where}[{i}]", g, w, tol) for i, (g, w) in enumerate(zip(got, want))] or [0.0])
    assert got == want, f"{where}: {got!r} != {want!r}"
    return 0.0
