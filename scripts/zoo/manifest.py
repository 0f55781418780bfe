"""models/zoo/manifest.json: what was exported, and whether a file is still up to date."""

import hashlib
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import torch
import transformers

import torchscope_models as tm
from file_hash import sha256_file

from .entry import Entry
from .export import convert

MANIFEST_VERSION = 1
PACKAGE = __name__.partition(".")[0]


def zoo_modules(names: Set[str]) -> List[str]:
    """The zoo modules named and, transitively, the zoo modules they import names from."""
    seen: Set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            for value in vars(sys.modules[name]).values():
                owner = getattr(value, "__module__", None)
                if isinstance(owner, str) and owner.partition(".")[0] == PACKAGE:
                    todo.append(owner)
    return sorted(seen)


def definition_hash(entry: Entry) -> str:
    """Hash of what defines the entry's file: its metadata, the versions, the source of the zoo
    files its builder and inputs come from (whole files: a helper or class they use cannot be
    missed, and nothing needs building; the parent never runs a tensor op, see export.in_fork),
    and the code outside them that shapes every file.
    """
    meta = {
        k: getattr(entry, k)
        for k in ("name", "mode", "family", "capture", "multi_call", "single_calls", "patch", "dtype", "notes",
                  "trace_strict", "tol")
    }
    fns = (entry.build, entry.inputs, entry.alt_inputs, entry.trace_context)
    files = [inspect.getsource(sys.modules[m]) for m in zoo_modules({fn.__module__ for fn in fns if fn})]
    parts = [json.dumps(meta, sort_keys=True), torch.__version__, transformers.__version__, *files,
             inspect.getsource(tm.calibrate_bn), inspect.getsource(convert)]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


def load_manifest(out: Path) -> Dict[str, dict]:
    path = out / "manifest.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != MANIFEST_VERSION:
            return {}
        return {m["name"]: m for m in data.get("models", [])}
    except (ValueError, KeyError, TypeError):
        print(f"warning: ignoring unreadable {path}", file=sys.stderr)
        return {}


def write_manifest(out: Path, models: List[dict]) -> None:
    data = {
        "version": MANIFEST_VERSION,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "models": models,
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")


def up_to_date(out: Path, record: Optional[dict], dhash: str) -> bool:
    if record is None or record.get("definition_hash") != dhash:
        return False
    path = out / record.get("file", "")
    return path.is_file() and sha256_file(path) == record.get("sha256")


def manifest_record(entry: Entry, out: Path, dhash: str, facts: dict) -> dict:
    path = out / entry.file
    return {
        "name": entry.name,
        "file": entry.file,
        "mode": entry.mode,
        "family": entry.family,
        "dtype": entry.dtype,
        "capture": entry.capture,
        "multiCall": entry.multi_call,
        "singleCalls": entry.single_calls,
        "patch": entry.patch,
        "notes": entry.notes,
        "sha256": sha256_file(path),
        "definition_hash": dhash,
        "bytes": path.stat().st_size,
        "weights_sha256": facts["weights_sha256"],
        # Forward-hook call counts in eager Python on inputs(0) (capture + patch paths).
        "calls": facts["calls"],
        # What an eager forward hook sees, and what TorchScript's methods return, per path.
        "eagerOutputs": facts["eager_outputs"],
        "torchscriptReturns": facts["torchscript_returns"],
    }
