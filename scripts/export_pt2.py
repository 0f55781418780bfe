#!/usr/bin/env python3
"""Export torchscope's .pt2 models (torch.export, training and core ATen IRs) to models/pt2/.

    python scripts/export_pt2.py [--out DIR] [--only NAME[,NAME...]] [--force] [--list]

The entries and what is written: scripts/zoo/pt2.py; the export, its checks and the manifest:
scripts/zoo/pt2_export.py. Files up to date (the same definition hash, their sha256 as recorded)
are skipped; when all are, this returns before importing torch (set-up runs it every time).
"""

import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Dict, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from file_hash import sha256_file  # noqa: E402

MANIFEST_VERSION = 1
DEFAULT_OUT = HERE.parent / "models" / "pt2"
# What decides the files: these sources (whole files) and the library versions.
SOURCES = [HERE / "zoo" / f for f in ("pt2.py", "pt2_export.py", "entry.py", "cnn_models.py", "sequence_models.py",
                                      "transformers_models.py", "values.py")] + [
    HERE / "export_pt2.py", HERE / "torchscope_models.py", HERE / "llm_fixtures.py"]


def definition_hash() -> str:
    parts = [version("torch"), version("transformers"), *(p.read_text() for p in SOURCES)]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


def load_manifest(out: Path) -> dict:
    try:
        data = json.loads((out / "manifest.json").read_text())
        return data if data.get("version") == MANIFEST_VERSION else {}
    except (OSError, ValueError):
        return {}


def up_to_date(out: Path, record: Optional[Dict], dhash: str) -> bool:
    if record is None or record.get("definition_hash") != dhash:
        return False
    return all((out / f).is_file() and sha256_file(out / f) == h for f, h in record.get("sha256", {}).items())


def all_up_to_date(out: Path) -> bool:
    """Every entry the manifest was written for is there and current."""
    manifest = load_manifest(out)
    records = {m.get("name"): m for m in manifest.get("models", [])}
    dhash = definition_hash()
    names = manifest.get("entries") or []
    return bool(names) and sorted(names) == sorted(records) and all(up_to_date(out, records[n], dhash) for n in names)


if __name__ == "__main__":
    if sys.argv[1:] == [] and all_up_to_date(DEFAULT_OUT):
        print(f"every .pt2 model in {DEFAULT_OUT} is up to date")
        sys.exit(0)
    from zoo.pt2_export import main

    sys.exit(main())
