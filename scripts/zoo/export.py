"""Export one entry: convert to TorchScript, verify against eager, save; each in a fresh fork."""

import contextlib
import hashlib
import multiprocessing as mp
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn as nn
import transformers

from .entry import SEED, Entry
from .values import assert_same, clone_tree, describe, tensors_of, zero_first_tensor

CHILD_TIMEOUT_S = 300


def convert(entry: Entry, model: nn.Module) -> torch.jit.ScriptModule:
    if entry.mode == "script":
        return torch.jit.script(model)
    if entry.mode != "trace":
        raise ValueError(f"{entry.name}: unknown mode {entry.mode!r}")
    ctx = entry.trace_context() if entry.trace_context else contextlib.nullcontext()
    with ctx:
        return torch.jit.trace(model, tuple(entry.inputs(SEED)), check_trace=False, strict=entry.trace_strict)


def paths_of(entry: Entry) -> List[str]:
    """The capture paths and the patch path, once each."""
    return list(dict.fromkeys([*entry.capture, entry.patch]))


def state_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}\n".encode())
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        h.update(raw.numpy().tobytes())
    return h.hexdigest()


def run_hooked(model: nn.Module, inputs: list, hooks: List[Tuple[str, Callable]]) -> Any:
    """model(*inputs) without grad, with forward hooks (path, hook) registered for this call only."""
    handles = [model.get_submodule(p).register_forward_hook(hook) for p, hook in hooks]
    try:
        with torch.no_grad():
            return model(*clone_tree(inputs))
    finally:
        for h in handles:
            h.remove()


def hook_calls(model: nn.Module, inputs: list, paths: List[str]) -> Tuple[Dict[str, int], Dict[str, str]]:
    """Forward-hook call counts and the (first call's) output structure of each path."""
    counts: Counter = Counter()
    kinds: Dict[str, str] = {}

    def hook_for(p: str) -> Callable:
        def hook(_m, _i, out):
            counts[p] += 1
            kinds.setdefault(p, describe(out))
        return hook

    run_hooked(model, inputs, [(p, hook_for(p)) for p in paths])
    return {p: counts[p] for p in paths}, kinds


def script_method_returns(ts: torch.jit.ScriptModule, path: str) -> Dict[str, str]:
    """Return type of each forward-like method TorchScript compiled for a submodule."""
    sub = ts
    for part in path.split(".") if path else []:
        sub = getattr(sub, part)
    out = {}
    for name in sub._c._method_names():
        if re.fullmatch(r"forward(\d+|__\d+)?", name):
            out[name] = str(sub._c._get_method(name).schema.returns[0].type)
    return out


def verify(entry: Entry, ts: Any, eager: nn.Module, label: str) -> float:
    cases = [("seed 0", entry.inputs(SEED)), ("seed 1", entry.inputs(SEED + 1))]
    if entry.alt_inputs is not None:
        cases.append(("other shapes", entry.alt_inputs(SEED + 2)))
    worst = 0.0
    with torch.no_grad():
        for what, inputs in cases:
            want = eager(*clone_tree(inputs))
            got = ts(*clone_tree(inputs))
            worst = max(worst, assert_same(f"{entry.name} ({label}, {what})", got, want, entry.tol))
    return worst


def check_entry_paths(entry: Entry, model: nn.Module) -> Tuple[Dict[str, int], Dict[str, str], float]:
    names = dict(model.named_modules())
    assert len(entry.capture) >= 3, f"{entry.name}: needs >= 3 capture paths"
    assert any("." in p for p in entry.capture), f"{entry.name}: needs a nested capture path"
    assert set(entry.multi_call) <= set(entry.capture), f"{entry.name}: multi_call must be a subset of capture"
    assert bool(entry.multi_call) != bool(entry.single_calls), (
        f"{entry.name}: capture a module called several times (multi_call), or say in single_calls why there is none"
    )
    for p in [*entry.capture, entry.patch]:
        assert p in names and p, f"{entry.name}: no module {p!r}"
    inputs = entry.inputs(SEED)
    counts, kinds = hook_calls(model, inputs, paths_of(entry))
    for p, n in counts.items():
        assert n >= 1, f"{entry.name}: hook on {p!r} never fired"
    for p in entry.capture:
        assert (counts[p] >= 2) == (p in entry.multi_call), (
            f"{entry.name}: {p!r} called {counts[p]} times but multi_call is {entry.multi_call}"
        )
    # The zero patch must visibly change the output.
    patched = tensors_of(run_hooked(model, inputs, [(entry.patch, lambda _m, _i, out: zero_first_tensor(out))]))
    plain = tensors_of(run_hooked(model, inputs, []))
    effect = max((a.double() - b.double()).abs().max().item() for a, b in zip(patched, plain))
    scale = max(t.double().abs().max().item() for t in plain)
    assert effect > max(1e-3, 0.005 * scale), (
        f"{entry.name}: zeroing {entry.patch!r} changes the output by only {effect:.3g} (output scale {scale:.3g})"
    )
    return counts, kinds, effect


def export_entry(entry: Entry, out: Path) -> dict:
    """Build, convert, verify, save; returns facts for the manifest and the table."""
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    transformers.logging.set_verbosity_error()
    t0 = time.perf_counter()
    eager = entry.build()
    assert not eager.training, f"{entry.name}: build() must return an eval-mode module"
    weights = state_hash(eager)
    assert state_hash(entry.build()) == weights, f"{entry.name}: build() is not deterministic"
    with torch.no_grad():
        ts = convert(entry, eager)
    diff = verify(entry, ts, eager, "in memory")
    with tempfile.TemporaryDirectory(dir=out, prefix=".zoo-") as scratch:
        # torch.jit.save names the archive's root folder after the file: stage
        # under the final name, not "x.pt.tmp".
        tmp = Path(scratch) / entry.file
        torch.jit.save(ts, str(tmp))
        loaded = torch.jit.load(str(tmp))
        diff = max(diff, verify(entry, loaded, eager, "saved file"))
        fresh = entry.build()
        fresh.load_state_dict(loaded.state_dict(), strict=True)
        assert state_hash(fresh) == weights, f"{entry.name}: saved weights differ from build()'s"
        counts, kinds, effect = check_entry_paths(entry, fresh)
        returns = {p: script_method_returns(loaded, p) for p in paths_of(entry)}
        os.replace(tmp, out / entry.file)
    return {
        "seconds": time.perf_counter() - t0,
        "weights_sha256": weights,
        "max_abs_diff": diff,
        "calls": counts,
        "eager_outputs": kinds,
        "torchscript_returns": returns,
        "patch_effect": effect,
    }


def _child(fn: Callable, args: tuple, conn) -> None:
    try:
        torch.set_num_threads(1)
        conn.send(("ok", fn(*args)))
    except BaseException:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def in_fork(fn: Callable, *args: Any) -> Tuple[str, Any]:
    """Run fn(*args) in a fresh fork; returns ("ok", result) or ("error", traceback text).

    Each export gets its own fork so TorchScript's global type registry (name
    mangling, and so the saved bytes) does not depend on what ran before. The
    parent itself never runs a tensor op: forking after ATen's intra-op thread
    pool has started can deadlock the child.
    """
    if "fork" not in mp.get_all_start_methods() or sys.platform == "win32":
        try:
            return "ok", fn(*args)
        except Exception:  # noqa: BLE001
            return "error", traceback.format_exc()
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(CHILD_TIMEOUT_S):
            proc.kill()
            proc.join()
            return "error", f"timed out after {CHILD_TIMEOUT_S}s"
        status, payload = parent.recv()
    except EOFError:
        proc.join()
        return "error", f"child process died (exit code {proc.exitcode})"
    proc.join()
    return status, payload
