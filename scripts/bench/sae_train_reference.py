"""Baseline for scripts/bench-sae-train.js: SAELens 6.18's training step as the plain PyTorch loop
of test/python/sae_train_reference.py runs it (Trainer.step: the forward pass and losses, the
firing statistics, backward, clip_grad_norm_, Adam and the schedules), on random batches.

Usage: sae_train_reference.py ARCHITECTURE D_IN D_SAE TOKENS K STEPS ROUNDS

Each round builds a fresh trainer (seeded) and runs STEPS steps over 4 batches [TOKENS, D_IN] in
turn; its rate is (STEPS - 1) / the time from the end of the first step to the end of the last.
Prints JSON {"torch", "threads", "rates": [steps/s per round]}.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from sae_train_reference import Trainer  # noqa: E402


def main():
    arch, d_in, d_sae, tokens, k, steps, rounds = sys.argv[1], *map(int, sys.argv[2:8])
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(tokens, d_in, generator=generator) for _ in range(4)]
    sae_cfg = {"k": k} if arch in ("topk", "batchtopk") else {}
    rates = []
    for _ in range(rounds):
        trainer = Trainer(arch, d_in, d_sae, sae_cfg, {"total_training_steps": steps})
        trainer.step(batches[0])
        start = time.perf_counter()
        for i in range(1, steps):
            trainer.step(batches[i % len(batches)])
        rates.append((steps - 1) / (time.perf_counter() - start))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "rates": rates}))


if __name__ == "__main__":
    main()
