"""The request/response plumbing the Python references share: run each case, keep a case's
failure as its result (the test decides what it means), write index.json atomically."""
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable


def run_cases(cases: Iterable[Dict[str, Any]], run_case: Callable[[Dict[str, Any], int], Any]) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    for i, case in enumerate(cases):
        try:
            results[case["id"]] = run_case(case, i)
        except Exception as e:  # noqa: BLE001 - reported per case, the test decides
            results[case["id"]] = {"error": f"{type(e).__name__}: {e}"}
    return results


def write_index(out: Path, index: Dict[str, Any]) -> None:
    # Written whole, then renamed: the test never reads a half-written index.
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index))
    os.replace(tmp, out / "index.json")
