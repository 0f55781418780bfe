"""Baseline for scripts/bench-collect.js: GPT-2 small's block output collected over token batches
by a Python loop with a forward hook, written as SAELens's cache_activations_runner writes its
shards (Dataset.from_dict with Array2D features, save_to_disk). Two loops: the plain forward a
hook user writes (the whole model runs), and one that stops after the hooked block by raising
from the hook (what SAELens's stop_at_layer does).

Usage: collect_reference.py MODEL OUT_DIR LAYER BATCHES BATCH CONTEXT ROUNDS
Prints JSON {"torch", "threads", "full": [s], "stopped": [s]}: seconds per round over all batches.
"""
import json
import os
import shutil
import sys
import time

import datasets
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402


class Stop(Exception):
    pass


def token_batches(batches, batch, context):
    # The same ids as bench-collect.js: row r (over all batches), position j.
    for b in range(batches):
        rows = torch.arange(b * batch, (b + 1) * batch).unsqueeze(1)
        cols = torch.arange(context).unsqueeze(0)
        yield (rows * 7919 + cols * 104729) % 50257


def collect(model, module, out, batches, batch, context, stop):
    hook_name = f"blocks.{module.split('.')[-1]}.hook_resid_post"
    captured = []

    def hook(_m, _i, output):
        captured.append((output[0] if isinstance(output, tuple) else output).numpy().copy())
        if stop:
            raise Stop()

    handle = model.get_submodule(module).register_forward_hook(hook)
    acts, ids = [], []
    with torch.no_grad():
        for tokens in token_batches(batches, batch, context):
            try:
                model(tokens)
            except Stop:
                pass
            acts.append(captured.pop())
            ids.append(tokens.numpy().astype(np.int32))
    handle.remove()
    d_in = acts[0].shape[-1]
    features = datasets.Features({hook_name: datasets.Array2D(shape=(context, d_in), dtype="float32"),
                                  "token_ids": datasets.Sequence(datasets.Value("int32"), length=context)})
    shard = datasets.Dataset.from_dict({hook_name: np.concatenate(acts), "token_ids": np.concatenate(ids)}, features=features)
    shard.save_to_disk(out)


def main():
    model_file, out, layer, batches, batch, context, rounds = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
    datasets.disable_progress_bars()
    model = torchscope_models.Gpt2LM(torchscope_models.gpt2_config("small"))
    model.load_state_dict(torch.jit.load(model_file).state_dict(), strict=False)
    model.eval()
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "full": [], "stopped": []}
    collect(model, layer, out, 1, batch, context, False)  # untimed warm-up
    for _ in range(rounds):
        for kind, stop in (("full", False), ("stopped", True)):
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            collect(model, layer, out, batches, batch, context, stop)
            result[kind].append(time.perf_counter() - start)
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
