"""The command line: export the selected entries, skipping those up to date, and print a table."""

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from . import ENTRIES
from .export import export_entry, in_fork
from .manifest import definition_hash, load_manifest, manifest_record, up_to_date, write_manifest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "models" / "zoo"


def only_names(given: List[str], known) -> Optional[List[str]]:
    """The entries `--only NAME[,NAME...]` names (empty: all), or None after saying which are unknown."""
    only = [n.strip() for arg in given for n in arg.split(",") if n.strip()]
    unknown = [n for n in only if n not in known]
    if unknown:
        print(f"error: unknown entries {unknown}; known: {', '.join(known)}", file=sys.stderr)
        return None
    return only


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Export torchscope's zoo of third-party-style TorchScript models.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: <repo>/models/zoo)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME[,NAME...]", help="export only these entries")
    ap.add_argument("--force", action="store_true", help="re-export even if the manifest says a file is current")
    ap.add_argument("--list", action="store_true", help="list the entries and exit")
    args = ap.parse_args(argv)

    if args.list:
        for e in ENTRIES.values():
            print(f"{e.name:30s} {e.mode:6s} {e.dtype:8s} {e.family}")
        return 0
    only = only_names(args.only, ENTRIES)
    if only is None:
        return 2
    selected = [e for e in ENTRIES.values() if not only or e.name in only]

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    old = load_manifest(out)
    records = {n: r for n, r in old.items() if n in ENTRIES}
    for n in old:
        if n not in ENTRIES:
            print(f"note: dropping {n!r} from the manifest (no such entry); its file is left alone")

    def save() -> None:
        write_manifest(out, [records[n] for n in ENTRIES if n in records])

    t_start = time.perf_counter()
    rows = []
    failed = []
    for entry in selected:
        dhash = definition_hash(entry)
        if not args.force and up_to_date(out, records.get(entry.name), dhash):
            rows.append((entry.name, entry.mode, records[entry.name]["bytes"], None, "up to date"))
            continue
        status, payload = in_fork(export_entry, entry, out)
        if status == "ok":
            records[entry.name] = manifest_record(entry, out, dhash, payload)
            rows.append((entry.name, entry.mode, records[entry.name]["bytes"], payload["seconds"],
                         f"wrote (max diff {payload['max_abs_diff']:.2g})"))
        else:
            print(f"error: exporting {entry.name} failed:\n{payload}", file=sys.stderr)
            failed.append(entry.name)
            records.pop(entry.name, None)
            rows.append((entry.name, entry.mode, None, None, "FAILED"))
        save()  # keep what finished if interrupted

    save()
    print(f"{'name':30s} {'mode':6s} {'size':>9s} {'seconds':>8s}  status")
    for name, mode, size, secs, status in rows:
        size_s = f"{size / 1024:.1f} KB" if size is not None else "-"
        secs_s = f"{secs:.2f}" if secs is not None else "-"
        print(f"{name:30s} {mode:6s} {size_s:>9s} {secs_s:>8s}  {status}")
    print(f"done in {time.perf_counter() - t_start:.1f}s -> {out / 'manifest.json'}")
    if failed:
        print(f"error: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
