"""Export zoo.pt2's entries to .pt2 (both IRs), verify them against eager, write the manifest.

models/pt2/manifest.json: {"version": 1, "torch", "transformers", "definition_hash", "entries": [every
entry's name], "models": [{
  "name", "family", "notes",
  "files": {"training": "<name>.training.pt2", "core": "<name>.core.pt2"}, "torchscript": "<name>.pt" | null,
  "sha256": {file: hash}, "bytes": {file: size}, "definition_hash", "weights_sha256",
  "inputs": [{"name", "kind": "positional" | "keyword", "dtype", "shape", "dynamic": {dim: {"name", "min", "max"}}}],
  "altInputs": {"shape": [[...] per input], "accepted": {ir: bool}} | null   (another shape: torch.export's own
                module() accepts it only where the program was exported for it),
  "outputs": eager forward's output structure (zoo.values.describe),
  "capture", "multiCall", "singleCalls", "patch", "calls": {path: eager forward-hook calls on inputs(0)},
  "branches": [{"module", "modules": [it and its submodules], "seeds": [seeds taking it]}],
  "nodes": [{"id", "kind": "softmax" | "residual", "module", "attention", "terms",
             "points": {ir: "<module path>/<node name>"}}],
  "grad": {"inputs": [forward input indices], "layers": [paths]},
  "preserveModuleCallSignature": bool, "preserved": {ir: [paths whose call signature the program holds]},
  "preserveExcluded": {ir: {path: why its signature is not preserved}},
  "graphs": {ir: {"nodes": call_function nodes at top level, "ops": distinct targets, "verifier"}}
}]}

Every export checks itself before its files are written: both programs, in memory and reloaded
from the saved files, reproduce the eager module on inputs(0) and inputs(1) (max abs diff <= 1e-5);
a dynamic entry's alt_inputs run too; each node point's value (the graph interpreted node by node)
equals what eager PyTorch computes for it; capture paths fire (multi_call ones twice), branch modules
run for their seeds only, and zeroing the patch path changes the output.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import transformers
from torch.export import ExportedProgram
from torch._export.verifier import SpecViolationError
from torch.export.graph_signature import InputKind, SymIntArgument, TensorArgument

from export_pt2 import DEFAULT_OUT, MANIFEST_VERSION, definition_hash, load_manifest, up_to_date
from file_hash import sha256_file

from .cli import only_names
from .export import state_hash
from .pt2 import ENTRIES, IRS, Call, Entry, NodePoint, attention_probabilities, first_tensor, input_of, residual_hooks
from .values import assert_same, describe, tensors_of, zero_first_tensor

TOL = 1e-5
NODE_TARGETS = {
    "softmax": {torch.ops.aten.softmax.int, torch.ops.aten._softmax.default},
    "residual": {torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor},
}


# ---------------------------------------------------------------- export


def dynamic_shapes(entry: Entry, call: Call) -> Optional[tuple]:
    if not entry.dynamic:
        return None
    assert not call.kwargs, f"{entry.name}: dynamic dims are declared on positional inputs only"
    specs: List[Optional[dict]] = [None] * len(call.args)
    for d in entry.dynamic:
        specs[d.input] = {**(specs[d.input] or {}), d.dim: torch.export.Dim(d.name, min=d.min, max=d.max)}
    return tuple(specs)


def base_path(fqn: str) -> str:
    """A module_call_graph key without its call index ('act@1' -> 'act')."""
    return fqn.split("@")[0]


def signatures(ep: ExportedProgram) -> Dict[str, Tuple[List[str], List[str]]]:
    """Each preserved call signature ('path', 'path@1' for a second call...): the graph values
    it names as the call's inputs and outputs (tensors and sizes)."""
    def names(args: list) -> List[str]:
        return [a.name for a in args if isinstance(a, (TensorArgument, SymIntArgument))]

    return {e.fqn: (names(e.signature.inputs), names(e.signature.outputs)) for e in ep.module_call_graph if e.fqn and e.signature}


def eager_calls(model: nn.Module, call: Call, paths: List[str]) -> Dict[str, Tuple[Optional[torch.Tensor], List[torch.Tensor]]]:
    """Every call of the modules, keyed as module_call_graph keys them: its first tensor input
    and its output's tensors, copied when its hooks fire."""
    found: Dict[str, Tuple[Optional[torch.Tensor], List[torch.Tensor]]] = {}
    inputs: Dict[str, List[torch.Tensor]] = {p: [] for p in paths}

    def pre(path: str) -> Any:
        def hook(m: nn.Module, a: tuple, k: dict) -> None:
            first = input_of(a, k)
            inputs[path].append(None if first is None else first.clone())
        return hook

    def post(path: str) -> Any:
        def hook(m: nn.Module, a: tuple, out: Any) -> None:
            n = sum(1 for key in found if base_path(key) == path)
            found[f"{path}@{n}" if n else path] = (inputs[path][n], [t.clone() for t in tensors_of(out)])
        return hook

    handles = [model.get_submodule(p).register_forward_pre_hook(pre(p), with_kwargs=True) for p in paths]
    handles += [model.get_submodule(p).register_forward_hook(post(p)) for p in paths]
    try:
        forward(model, call)
    finally:
        for h in handles:
            h.remove()
    return found


def wrong_signatures(ep: ExportedProgram, call: Call, eager: dict, where: str) -> Dict[str, str]:
    """Preserved call signatures naming what the module's call did not take or give in eager
    PyTorch (a value the graph does not hold, or another one): {path: why}."""
    sigs = signatures(ep)
    held = {n.name for n in ep.graph.nodes}
    values = graph_values(ep, call, [n for ins, outs in sigs.values() for n in [*ins, *outs] if n in held])
    bad: Dict[str, str] = {}
    for key, (ins, outs) in sigs.items():
        missing = [n for n in [*ins, *outs] if n not in held]
        if missing:
            bad[base_path(key)] = f"its call signature names '{missing[0]}', which {where} does not hold"
            continue
        if key not in eager:
            continue
        first, results = eager[key]
        got = [values[n] for n in outs if isinstance(values[n], torch.Tensor)]
        inputs = [values[n] for n in ins if isinstance(values[n], torch.Tensor)]
        if not same_tensors(got, results) or not same_tensors(inputs[:1], [first] if first is not None else []):
            bad[base_path(key)] = (f"its call signature in {where} names values ({', '.join([*ins[:1], *outs])}) that are not "
                                   f"its call's (run_decompositions gave their names to other values)")
    return bad


def same_tensors(got: List[torch.Tensor], want: List[torch.Tensor]) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape and g.dtype == w.dtype and (g.double() - w.double()).abs().max().item() <= TOL * max(1.0, w.double().abs().max().item())
        for g, w in zip(got, want) if w.numel())


def export_programs(entry: Entry, model: nn.Module, call: Call) -> Tuple[Dict[str, ExportedProgram], Dict[str, Dict[str, str]]]:
    """Both IRs and, per IR, the submodules whose call signature was not preserved (and why).

    The training IR is torch.export.export in eval mode, with every submodule's call signature
    for `preserve` entries but those the entry excludes; core ATen is run_decompositions() of it.
    torch 2.13 gets some preserved signatures wrong: they name a value the graph does not hold
    (the verifier then refuses the program), or, after run_decompositions, another value of the
    same name (the LSTM's outputs become nodes of its unrolled cells). Each signature is checked
    against the module's call in eager PyTorch; a wrong one is dropped and the export redone
    without it, for that IR and those derived from it."""
    excluded = dict(entry.preserve_exclude) if entry.preserve else {}
    preserved = [n for n, _ in model.named_modules() if n and not any(n == p or n.startswith(p + ".") for p in excluded)]
    preserved = preserved if entry.preserve else []
    eager = eager_calls(model, call, preserved)

    def export() -> ExportedProgram:
        return torch.export.export(model, tuple(call.args), kwargs=call.kwargs, dynamic_shapes=dynamic_shapes(entry, call),
                                   preserve_module_call_signature=tuple(preserved))

    def drop(bad: Dict[str, str]) -> None:
        for path, why in bad.items():
            excluded[path] = f"{why} (torch {torch.__version__})"
            preserved.remove(path)

    training = export()
    while bad := wrong_signatures(training, call, eager, "the exported graph"):
        drop(bad)
        training = export()
    programs, skipped = {"training": training}, {"training": dict(excluded)}
    source = training
    while "core" not in programs:
        try:
            core = source.run_decompositions()
        except SpecViolationError as e:
            missing = re.fullmatch(r"(?:Input|Output) (\S+) does not exist in the graph\.", str(e))
            bad = {base_path(k): f"its call signature names '{missing[1]}', which run_decompositions renamed"
                   for k, (ins, outs) in signatures(source).items() if missing[1] in [*ins, *outs]} if missing else {}
            if not bad:
                raise
        else:
            bad = wrong_signatures(core, call, eager, "the core ATen graph")
            if not bad:
                programs["core"] = core
                break
        drop(bad)
        source = export()
    skipped["core"] = dict(excluded)
    return programs, skipped


def preserved_paths(ep: ExportedProgram) -> List[str]:
    """The submodules whose call signature the program holds (each once)."""
    return list(dict.fromkeys(base_path(key) for key in signatures(ep)))


def node_point(ep: ExportedProgram, node: NodePoint) -> str:
    """'<module path>/<node name>': the first node of `node.kind` in the module's own code."""
    for n in ep.graph.nodes:
        stack = n.meta.get("nn_module_stack") or {}
        innermost = list(stack.values())[-1][0] if stack else None
        if n.op == "call_function" and n.target in NODE_TARGETS[node.kind] and innermost == node.module:
            return f"{node.module}/{n.name}"
    raise AssertionError(f"no {node.kind} node in {node.module}'s own code")


def graph_values(ep: ExportedProgram, call: Call, names: List[str]) -> Dict[str, torch.Tensor]:
    """The values of the named nodes, the lifted graph interpreted node by node (copies taken
    as each node runs: the training IR changes some in place later)."""
    user = iter(call.flat())
    args = []
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            args.append(next(user))
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER) and spec.target in ep.state_dict:
            args.append(ep.state_dict[spec.target])
        else:  # non-persistent buffers and lifted constants
            args.append(ep.constants[spec.target])
    found: Dict[str, torch.Tensor] = {}
    names = set(names)

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            result = super().run_node(n)
            if n.name in names:
                found[n.name] = result.clone() if isinstance(result, torch.Tensor) else result
            return result

    with torch.no_grad():
        Recorder(ep.graph_module).run(*args)
    return found


def graph_summary(ep: ExportedProgram) -> dict:
    calls = [n for n in ep.graph.nodes if n.op == "call_function" and "getitem" not in str(n.target)]
    return {"nodes": len(calls), "ops": len({str(n.target) for n in calls}), "verifier": ep.verifier.dialect}


# ---------------------------------------------------------------- checks against eager


def forward(model: nn.Module, call: Call) -> Any:
    with torch.no_grad():
        return model(*call.args, **call.kwargs)


def eager_nodes(model: nn.Module, call: Call, nodes: List[NodePoint]) -> Dict[str, torch.Tensor]:
    handles, values = residual_hooks(model, nodes)
    try:
        forward(model, call)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        found = {**values(), **attention_probabilities(model, call, nodes)}
    for node in nodes:
        assert len(found[node.id]) == 1, f"{node.id}: {node.module} runs {len(found[node.id])} times"
    return {k: v[0] for k, v in found.items()}


def hook_counts(model: nn.Module, call: Call, paths: List[str]) -> Dict[str, int]:
    counts = {p: 0 for p in paths}
    handles = [model.get_submodule(p).register_forward_hook(lambda m, a, o, p=p: counts.__setitem__(p, counts[p] + 1))
               for p in paths]
    try:
        forward(model, call)
    finally:
        for h in handles:
            h.remove()
    return counts


def check_paths(entry: Entry, reference: nn.Module) -> Dict[str, int]:
    assert bool(entry.multi_call) != bool(entry.single_calls), f"{entry.name}: multi_call, or single_calls saying why none"
    counts = hook_counts(reference, entry.inputs(0), list(dict.fromkeys([*entry.capture, entry.patch])))
    for p in entry.capture:
        assert counts[p] >= 1 and (counts[p] >= 2) == (p in entry.multi_call), f"{entry.name}: {p} called {counts[p]} times"
    for branch in entry.branches:
        for seed in (0, 1):
            runs = hook_counts(reference, entry.inputs(seed), [branch.module])[branch.module]
            assert (runs > 0) == (seed in branch.seeds), f"{entry.name}: {branch.module} ran {runs} times for seed {seed}"
    handle = reference.get_submodule(entry.patch).register_forward_hook(lambda m, a, out: zero_first_tensor(out))
    try:
        patched = tensors_of(forward(reference, entry.inputs(0)))
    finally:
        handle.remove()
    plain = tensors_of(forward(reference, entry.inputs(0)))
    effect = max((a - b).abs().max().item() for a, b in zip(patched, plain))
    assert effect > 1e-3, f"{entry.name}: zeroing {entry.patch} changes the output by {effect:.3g}"
    return counts


def check_program(entry: Entry, label: str, program: nn.Module, eager: nn.Module) -> None:
    """A program (ExportedProgram.module()) against eager on two seeds, and alt_inputs if dynamic."""
    calls = [entry.inputs(0), entry.inputs(1)] + ([entry.alt_inputs(2)] if entry.dynamic else [])
    for i, call in enumerate(calls):
        assert_same(f"{entry.name} {label} call {i}", forward(program, call), forward(eager, call), TOL)


def accepts(program: nn.Module, call: Call) -> bool:
    try:
        forward(program, call)
        return True
    except Exception:  # noqa: BLE001 - torch.export's input guards raise several types
        return False


def export_entry(entry: Entry, scratch: Path) -> dict:
    """Export, verify, save into `scratch`; returns the manifest record (files still to move)."""
    t0 = time.perf_counter()
    eager = entry.build()
    assert not eager.training, f"{entry.name}: build() must return an eval-mode module"
    weights = state_hash(eager)
    reference = entry.reference()
    assert state_hash(reference) == weights, f"{entry.name}: reference() has other weights than build()"
    for seed in (0, 1):
        assert_same(f"{entry.name} reference seed {seed}", forward(reference, entry.inputs(seed)),
                    forward(eager, entry.inputs(seed)), 0.0)
    call = entry.inputs(0)
    programs, excluded = export_programs(entry, eager, call)
    expected_nodes = eager_nodes(reference, call, entry.nodes)
    points: Dict[str, Dict[str, str]] = {node.id: {} for node in entry.nodes}
    files = entry.files()
    for ir, ep in programs.items():
        check_program(entry, f"{ir} (in memory)", ep.module(), eager)
        names = {node.id: node_point(ep, node) for node in entry.nodes}
        values = graph_values(ep, call, [n.split("/")[-1] for n in names.values()])
        for node in entry.nodes:
            points[node.id][ir] = names[node.id]
            assert_same(f"{entry.name} {ir} {names[node.id]}", values[names[node.id].split("/")[-1]], expected_nodes[node.id], TOL)
        torch.export.save(ep, str(scratch / files[ir]))
        check_program(entry, f"{ir} (saved)", torch.export.load(str(scratch / files[ir])).module(), eager)
    alt = None
    if entry.alt_inputs is not None:
        call_alt = entry.alt_inputs(2)
        alt = {"shape": [list(t.shape) for t in call_alt.flat()],
               "accepted": {ir: accepts(ep.module(), call_alt) for ir, ep in programs.items()}}
        assert all(alt["accepted"].values()) == bool(entry.dynamic), f"{entry.name}: alt_inputs accepted {alt['accepted']}"
    torchscript = None
    if entry.torchscript is not None:
        torchscript = f"{entry.name}.pt"
        traced = torch.jit.trace(entry.torchscript(entry.build()), tuple(call.args or call.kwargs.values()))
        assert_same(f"{entry.name} torchscript", traced(*call.flat()), first_tensor(forward(eager, call)), TOL)
        torch.jit.save(traced, str(scratch / torchscript))
    counts = check_paths(entry, reference)
    names = [n for n, _ in eager.named_modules()]
    written = [*files.values(), *([torchscript] if torchscript else [])]
    return {
        "name": entry.name,
        "family": entry.family,
        "notes": entry.notes,
        "files": files,
        "torchscript": torchscript,
        "sha256": {f: sha256_file(scratch / f) for f in written},
        "bytes": {f: (scratch / f).stat().st_size for f in written},
        "definition_hash": definition_hash(),
        "weights_sha256": weights,
        "inputs": describe_inputs(entry, programs["training"], call),
        "altInputs": alt,
        "outputs": describe(forward(eager, call)),
        "capture": entry.capture,
        "multiCall": entry.multi_call,
        "singleCalls": entry.single_calls,
        "patch": entry.patch,
        "calls": counts,
        "branches": [{"module": b.module, "modules": [n for n in names if n == b.module or n.startswith(b.module + ".")],
                      "seeds": b.seeds} for b in entry.branches],
        "nodes": [{"id": n.id, "kind": n.kind, "module": n.module, "attention": n.attention, "terms": n.terms,
                   "points": points[n.id]} for n in entry.nodes],
        "grad": {"inputs": entry.grad_inputs, "layers": entry.grad_layers},
        "preserveModuleCallSignature": entry.preserve,
        "preserved": {ir: preserved_paths(ep) for ir, ep in programs.items()},
        "preserveExcluded": excluded,
        "graphs": {ir: graph_summary(ep) for ir, ep in programs.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def describe_inputs(entry: Entry, ep: ExportedProgram, call: Call) -> List[dict]:
    names = ep.graph_signature.user_inputs
    out = []
    for i, t in enumerate(call.flat()):
        dims = {str(d.dim): {"name": d.name, "min": d.min, "max": d.max} for d in entry.dynamic if d.input == i}
        out.append({"name": names[i], "kind": "positional" if i < len(call.args) else "keyword",
                    "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "dynamic": dims})
    return out


# ---------------------------------------------------------------- manifest and command line


def write_manifest(out: Path, models: List[dict]) -> None:
    data = {"version": MANIFEST_VERSION, "torch": torch.__version__, "transformers": transformers.__version__,
            "definition_hash": definition_hash(), "entries": list(ENTRIES), "models": models}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Export torchscope's .pt2 (torch.export) models, both IRs.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: <repo>/models/pt2)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME[,NAME...]", help="export only these entries")
    ap.add_argument("--force", action="store_true", help="re-export even if the manifest says the files are current")
    ap.add_argument("--list", action="store_true", help="list the entries and exit")
    args = ap.parse_args(argv)
    if args.list:
        for e in ENTRIES.values():
            print(f"{e.name:10s} preserve={'yes' if e.preserve else 'no ':3s} {e.family}")
        return 0
    only = only_names(args.only, ENTRIES)
    if only is None:
        return 2
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)  # eager and exported reductions in the same order
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    records = {m["name"]: m for m in load_manifest(out).get("models", []) if m.get("name") in ENTRIES}
    dhash = definition_hash()
    started = time.perf_counter()
    failed = []
    for entry in ENTRIES.values():
        if only and entry.name not in only:
            continue
        if not args.force and up_to_date(out, records.get(entry.name), dhash):
            print(f"{entry.name:10s} up to date")
            continue
        try:
            with tempfile.TemporaryDirectory(dir=out, prefix=".pt2-") as scratch:
                record = export_entry(entry, Path(scratch))
                # torch.export.save names the archive's root folder after the file: staged under the final name.
                for f in record["sha256"]:
                    os.replace(Path(scratch) / f, out / f)
        except Exception as e:  # noqa: BLE001 - reported, the others still export
            print(f"error: exporting {entry.name} failed: {type(e).__name__}: {e}", file=sys.stderr)
            records.pop(entry.name, None)
            failed.append(entry.name)
            continue
        records[entry.name] = record
        sizes = sum(record["bytes"].values()) / 1024
        print(f"{entry.name:10s} wrote {', '.join(record['sha256'])} ({sizes:.0f} KB, {record['seconds']:.1f} s)")
        write_manifest(out, [records[n] for n in ENTRIES if n in records])
    write_manifest(out, [records[n] for n in ENTRIES if n in records])
    print(f"done in {time.perf_counter() - started:.1f} s -> {out / 'manifest.json'}")
    if failed:
        print(f"error: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
