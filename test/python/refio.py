"""The request/response plumbing the Python references share: run each case, keep a case's
failure as its result (the test decides what it means), write index.json atomically."""
import json
import os
from pathlib import Path
import sys
from typing import Any, Callable, Dict, Iterable, Optional, Tuple


def read_request(usage: str) -> Optional[Tuple[Dict[str, Any], Path]]:
    """The request named on the command line and its output folder (created); None after
    printing `usage` when the command line is wrong."""
    if len(sys.argv) != 2:
        print(usage, file=sys.stderr)
        return None
    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path(request["out"])
    out.mkdir(parents=True, exist_ok=True)
    return request, out


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
