"""Baseline for scripts/bench-circuits.js: a residual-stream patching sweep as a TransformerLens
user runs it, one patched forward per (layer, position) cell, in PyTorch eager.

Usage: circuits_reference.py MODEL LENGTH ROUNDS

The weights are the TorchScript file's, in the eager Gpt2LM of scripts/torchscope_models.py,
eval(), no grad. Clean and corrupted: seeded token ids [1, LENGTH] differing at position 2.
For every block and position: a forward pre-hook on transformer.h.L writes the clean run's
residual stream at that position into the corrupted run's; the metric is the logit difference
of two tokens at the last position.

Prints JSON {"threads": n, "torch": version, "cells": n, "sweep": [ms per whole sweep...]}.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402
from timing import timings  # noqa: E402


def main():
    model_file, length, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model = torchscope_models.Gpt2LM(torchscope_models.gpt2_config('small'))
    model.load_state_dict(torch.jit.load(model_file).state_dict(), strict=False)
    model.eval().requires_grad_(False)
    torch.set_grad_enabled(False)
    clean = torch.randint(0, 50257, (1, length), generator=torch.Generator().manual_seed(0))
    corrupted = clean.clone()
    corrupted[0, 2] = (corrupted[0, 2] + 1) % 50257
    blocks = list(model.transformer.h)
    cache = {}
    hooks = [b.register_forward_pre_hook(lambda m, args, i=i: cache.__setitem__(i, args[0].clone())) for i, b in enumerate(blocks)]
    model(clean)
    for h in hooks:
        h.remove()

    def sweep():
        results = torch.zeros(len(blocks), length)
        for layer, block in enumerate(blocks):
            for position in range(length):
                def patch(m, args, layer=layer, position=position):
                    x = args[0].clone()
                    x[:, position] = cache[layer][:, position]
                    return (x,) + args[1:]
                handle = block.register_forward_pre_hook(patch)
                logits = model(corrupted)
                handle.remove()
                results[layer, position] = (logits[:, -1, 2603] - logits[:, -1, 3290]).mean()
        return results

    times = timings(sweep, 1, rounds)
    print(json.dumps({'threads': torch.get_num_threads(), 'torch': torch.__version__, 'cells': len(blocks) * length, 'sweep': times}))


if __name__ == '__main__':
    main()
