"""Reads an activation store written by torch.collect the way SAELens does (datasets.load_from_disk),
and recomputes it with Python forward hooks on the Hugging Face model the trace came from.

Request (JSON): {"out", "store", "model", "columns": {column: module path}, "texts", "context_size",
"batch_size", "limit"}. Writes index.json: per column the features, row count, whether the stored
activations equal the hooks' bit for bit (and the largest difference), and whether token_ids equal
the texts tokenized and cut the way SAELens's concat_and_batch_sequences cuts them (prepend BOS,
BOS between texts), written here from its documented behaviour.
"""
import json
import sys
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers

from refio import read_request, write_index


def sequences(tokenizer, texts, context_size, limit):
    """Texts tokenized without special tokens, concatenated with BOS between them, cut into
    rows of context_size that each start with BOS; a trailing partial row is dropped."""
    bos = tokenizer.bos_token_id
    rows, row = [], None
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        i = 0
        while i < len(ids):
            if row is None:
                row = [bos] if ids[i] != bos else []
            elif ids[i] != bos and len(row) < context_size:
                row.append(bos)
            take = context_size - len(row)
            row.extend(ids[i:i + take])
            i += take
            if len(row) == context_size:
                rows.append(row)
                row = None
    return rows[:limit] if limit else rows


def main():
    got = read_request("usage: store_reference.py request.json")
    if got is None:
        return 2
    request, out = got
    tokenizer = transformers.AutoTokenizer.from_pretrained(request["model"])
    model = transformers.AutoModelForCausalLM.from_pretrained(request["model"], attn_implementation="eager", dtype=torch.float32).eval()
    expected_ids = sequences(tokenizer, request["texts"], request["context_size"], request.get("limit"))
    index = {"columns": {}, "expected_rows": len(expected_ids)}
    for column, module_path in request["columns"].items():
        folder = Path(request["store"]) / column
        ds = datasets.load_from_disk(str(folder))
        ds.set_format("numpy")
        stored = np.asarray(ds[column], dtype=np.float32)
        ids = np.asarray(ds["token_ids"], dtype=np.int64)
        captured = []
        hook = model.get_submodule(module_path).register_forward_hook(lambda _m, _i, o: captured.append((o[0] if isinstance(o, tuple) else o).detach().numpy().copy()))
        with torch.no_grad():
            b = request["batch_size"]
            for start in range(0, len(ids), b):
                model(torch.from_numpy(ids[start:start + b]))
        hook.remove()
        want = np.concatenate(captured) if captured else np.zeros_like(stored)
        index["columns"][column] = {
            "features": {k: v.__class__.__name__ for k, v in ds.features.items()},
            "shape": list(stored.shape),
            "rows": len(ds),
            "bit_exact": bool(stored.shape == want.shape and np.array_equal(stored, want)),
            "max_abs_diff": float(np.abs(stored - want).max()) if stored.shape == want.shape and stored.size else None,
            "tokens_equal": ids.tolist() == expected_ids,
        }
    foreign = request.get("write_foreign")
    if foreign:
        # The first column re-saved by datasets itself, as SAELens's cache runner saves a shard.
        column = next(iter(request["columns"]))
        ds = datasets.load_from_disk(str(Path(request["store"]) / column))
        datasets.Dataset.from_dict(ds.to_dict(), features=ds.features).save_to_disk(foreign, num_shards=2)
    write_index(out, index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
