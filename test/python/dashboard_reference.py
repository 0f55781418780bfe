#!/usr/bin/env python3
"""Reference for feature dashboards (test/dashboard.test.ts), computed from SAEDashboard's
definitions (sae_dashboard/sequence_data_generator.py, utils_fns.py, sae_vis_runner.py) over the
whole activation array at once, in numpy and torch:

    python test/python/dashboard_reference.py REQUEST.json
    REQUEST: {"out": DIR, "cases": [CASE, ...], "encode": ENCODE | null}
    CASE: {"id", "values": ARRAY [rows, ctx, width] float32, "tokens": ARRAY [rows, ctx] | null,
           or instead of values and tokens "store": {"folder", "column"}: a datasets folder of an
           activation store, read with datasets.load_from_disk,
           "features": [...], "k", "buffer": [before, after] | null, "intervals", "intervalSize",
           "bins", "seed", "logits": null | {"sae": FOLDER, "unembed": ARRAY [d, vocab]}
           | {"sae": FOLDER, "model": FILE, "module": NAME}}
    ENCODE: {"sae": FOLDER, "activations": ARRAY, "features": ARRAY}: a standard SAE's features
           relu((x - b_dec) @ W_enc + b_enc) against the ones given
    ARRAY: {"file", "dtype", "shape"} raw little-endian

Per feature (its activations a [rows, ctx]):
  max a.max(); active (a > 0).sum(); the histogram torch.histc(a[a > 0], bins) and its edges.
  top k: over positions p with before <= p < ctx - after (all without a buffer), flattened
    (row, position), ordered by value descending then flat index row * ctx + p ascending
    (k_largest_indices' topk, ties made explicit); each with its window [p - before, p + after]
    (the whole row without a buffer).
  intervals (max > 0): bounds torch.linspace(0, max, I + 1); count ((a >= lo) & (a <= hi)).sum()
    over every token; sample: of the tokens within the buffer with lo <= a <= hi, the intervalSize
    with the smallest SplitMix64 hash z of (seed, t), t = row * ctx + p (z = seed + (t + 1) *
    0x9E3779B97F4A7C15 mod 2^64, then SplitMix64's mix), shown by value descending then t.
  logits: the decoder row @ W_U (or the model's module on it): top and bottom 10 (ties to the
    lower id) and torch.histc over the vocabulary.
"""

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from safetensors.numpy import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from refio import read_request, run_cases, write_index  # noqa: E402

DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64}
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
LOGIT_ROWS = 10


def read_array(spec: Dict[str, Any]) -> np.ndarray:
    return np.fromfile(spec["file"], dtype=DTYPES[spec["dtype"]]).reshape(spec["shape"])


def splitmix(seed: int, t: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (t.astype(np.uint64) + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def histc(values: np.ndarray, bins: int) -> Dict[str, Any]:
    """torch.histc with its default range (the data's), and the edges it used."""
    data = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    counts = torch.histc(data, bins=bins)
    low, high = float(data.min()), float(data.max())
    if low == high:
        low, high = low - 1, high + 1
    return {"min": float(np.float32(low)), "max": float(np.float32(high)), "counts": [int(c) for c in counts.tolist()]}


def example(a: np.ndarray, tokens: Optional[np.ndarray], row: int, pos: int, buffer: Optional[List[int]]) -> List[Any]:
    ctx = a.shape[1]
    start, end = (pos - buffer[0], pos + buffer[1] + 1) if buffer else (0, ctx)
    window_tokens = None if tokens is None else [int(t) for t in tokens[row, start:end]]
    return [row, pos, float(a[row, pos]), start, window_tokens, [float(v) for v in a[row, start:end]]]


def feature(a: np.ndarray, tokens: Optional[np.ndarray], case: Dict[str, Any]) -> Dict[str, Any]:
    rows, ctx = a.shape
    buffer = case["buffer"]
    first, last = (buffer[0], ctx - buffer[1]) if buffer else (0, ctx)
    # Top k over the flattened qualifying grid.
    r, p = np.meshgrid(np.arange(rows), np.arange(first, last), indexing="ij")
    r, p = r.ravel(), p.ravel()
    values = a[r, p]
    flat = r * ctx + p
    order = np.lexsort((flat, -values))[: case["k"]]
    top = [example(a, tokens, int(r[i]), int(p[i]), buffer) for i in order]

    positive = a[a > 0]
    maximum = np.float32(a.max())
    intervals = []
    if maximum > 0:
        bounds = torch.linspace(0, float(maximum), case["intervals"] + 1).numpy()
        keys = splitmix(case["seed"], flat)
        for j in range(case["intervals"]):
            lo, hi = bounds[j], bounds[j + 1]
            inside = (values >= lo) & (values <= hi)
            chosen = np.flatnonzero(inside)
            chosen = chosen[np.argsort(keys[chosen], kind="stable")[: case["intervalSize"]]]
            chosen = chosen[np.lexsort((flat[chosen], -values[chosen]))]
            intervals.append(
                {
                    "lower": float(lo),
                    "upper": float(hi),
                    "count": int(((a >= lo) & (a <= hi)).sum()),
                    "examples": [example(a, tokens, int(r[i]), int(p[i]), buffer) for i in chosen],
                }
            )
    return {
        "max": float(maximum),
        "active": int(positive.size),
        "top": top,
        "histogram": histc(positive, case["bins"]) if positive.size else None,
        "intervals": intervals,
    }


def logit_effects(case: Dict[str, Any]) -> List[Dict[str, Any]]:
    spec = case["logits"]
    decoder = torch.from_numpy(load_file(str(Path(spec["sae"]) / "sae_weights.safetensors"))["W_dec"])[case["features"]]
    if "unembed" in spec:
        logits = decoder @ torch.from_numpy(read_array(spec["unembed"]))
    else:
        module = getattr(torch.jit.load(spec["model"]), spec["module"])
        logits = torch.nn.functional.linear(decoder, module.weight.detach(), module.bias.detach())
    out = []
    for row in logits.numpy():
        ids = np.arange(row.size)
        top = np.lexsort((ids, -row))[:LOGIT_ROWS]
        bottom = np.lexsort((ids, row))[:LOGIT_ROWS]
        out.append(
            {
                "top": [[int(i), float(row[i])] for i in top],
                "bottom": [[int(i), float(row[i])] for i in bottom],
                "histogram": histc(row, case["bins"]),
            }
        )
    return out


def store_arrays(spec: Dict[str, Any]):
    """A column of an activation store and its token ids, read as SAELens reads a cache."""
    import datasets  # only the store cases need it

    ds = datasets.load_from_disk(spec["folder"])
    ds.set_format("numpy")
    table = ds[:]
    return np.asarray(table[spec["column"]], dtype=np.float32), np.asarray(table["token_ids"], dtype=np.int64)


def run_case(case: Dict[str, Any], _index: int) -> Dict[str, Any]:
    if case.get("store"):
        values, tokens = store_arrays(case["store"])
    else:
        values = read_array(case["values"])
        tokens = read_array(case["tokens"]) if case["tokens"] else None
    features = [feature(values[:, :, f], tokens, case) for f in case["features"]]
    result: Dict[str, Any] = {"features": features}
    if case["logits"]:
        result["logits"] = logit_effects(case)
    return result


def encode_check(spec: Dict[str, Any]) -> Dict[str, float]:
    w = load_file(str(Path(spec["sae"]) / "sae_weights.safetensors"))
    x = torch.from_numpy(read_array(spec["activations"]))
    ours = torch.relu((x - torch.from_numpy(w["b_dec"])) @ torch.from_numpy(w["W_enc"]) + torch.from_numpy(w["b_enc"]))
    given = torch.from_numpy(read_array(spec["features"]))
    return {"maxAbsDiff": float((ours - given).abs().max()), "scale": float(ours.abs().max())}


def main() -> int:
    request = read_request(__doc__ or "")
    if request is None:
        return 2
    spec, out = request
    index = {"cases": run_cases(spec["cases"], run_case), "encode": encode_check(spec["encode"]) if spec.get("encode") else None}
    write_index(out, index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
