#!/usr/bin/env python3
"""Two small models that have learned something, for the probing demos (scripts/demo-probes.ts):
trained at set-up, seeded, on one CPU thread (the same weights on any core count).

    python scripts/probe_models.py [--out models/probes] [--force]

digits-unet.pt: a DDPM denoiser (Ho et al. 2020) on the 8x8 digits inside scikit-learn's wheel,
scaled to [-1, 1]. A UNet: stem, down.0 (8x8), down.1 (4x4), mid, up.0 (4x4), up.1 (8x8), out;
every block a residual block with the timestep's embedding added between its convolutions, the up
blocks reading the matching down block's output (skip connections). forward(x_noisy [N, 1, 8, 8],
t [N] int64) -> the predicted noise [N, 1, 8, 8]. digits-unet.json: the noise schedule
(alphas_cumprod, so that x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps), the block names and the
denoising loss against predicting no noise. digits.json: the 1797 digits (pixels 0..16) and labels,
for JavaScript, which cannot read scikit-learn's copy.

brackets-rnn.pt: a GRU reading '(' and ')' and saying, after each token, whether the brackets so
far are balanced. Sequences are valid prefixes of Dyck words: a seeded random walk on the depth
that opens at depth 0, closes at MAX_DEPTH and otherwise opens with the sequence's probability.
The depth itself is never a target: answering needs it. forward(ids [N, L] int64) -> [N, L] logits
of "balanced"; its submodule 'rnn' returns the GRU's output [N, L, H] (its hidden state after each
token). brackets-rnn.json: the vocabulary, the task, how sequences are drawn, the accuracy.

Each model's .json also records what it was made from (this file, torch, scikit-learn) and the
sha256 of each file written: a model made from the same, its files intact, is skipped without
importing torch.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from file_hash import sha256_file  # noqa: E402

REPO = HERE.parent
RECORD_VERSION = 1
SEED = 0
THREADS = 1

# The denoiser. Nichol & Dhariwal's cosine schedule: the signal fades evenly over t, where DDPM's
# linear one (stretched to 100 steps) leaves no trace of the digit after t = 50.
T_STEPS = 100
COSINE_OFFSET = 0.008
MAX_BETA = 0.999
UNET_WIDTH = (16, 32)  # channels at 8x8 and at 4x4
TIME_DIM = 64
UNET_STEPS = 1200
UNET_BATCH = 64
UNET_LR = 2e-3
EVAL_DIGITS = 256  # per t
UNET_BLOCKS = ["down.0", "down.1", "mid", "up.0", "up.1"]

# The bracket counter.
VOCAB = {"(": 0, ")": 1}
LENGTH = 32
MAX_DEPTH = 10
P_OPEN = (0.4, 0.6)  # each sequence's probability of '(' (at depths 1 .. MAX_DEPTH - 1), uniform
EMBED = 8
HIDDEN = 32
RNN_STEPS = 600
RNN_BATCH = 128
RNN_LR = 1e-2
EVAL_SEQUENCES = 4096


def made_from() -> Dict[str, Any]:
    import importlib.metadata as metadata

    recipe = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return {"version": RECORD_VERSION, "recipe_sha256": recipe, "torch": metadata.version("torch"), "sklearn": metadata.version("scikit-learn")}


def up_to_date(out: Path, name: str, inputs: Dict[str, Any]) -> bool:
    try:
        record = json.loads((out / f"{name}.json").read_text())
        return record["madeFrom"] == inputs and all(sha256_file(out / file) == digest for file, digest in record["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ---------------------------------------------------------------------------- the denoiser


def unet_classes():
    """The UNet's modules (defined here so that importing this file needs no torch)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch import Tensor

    class TimeEmbedding(nn.Module):
        """t -> sinusoidal features (Transformer positions) -> MLP."""

        def __init__(self, dim: int) -> None:
            super().__init__()
            half = dim // 2
            self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))
            self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

        def forward(self, t: Tensor) -> Tensor:
            angles = t.float()[:, None] * self.freqs[None, :]
            return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))

    class Block(nn.Module):
        """A residual block; the timestep's embedding is added between its two convolutions."""

        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.norm1 = nn.GroupNorm(8, cin)
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.time = nn.Linear(TIME_DIM, cout)
            self.norm2 = nn.GroupNorm(8, cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

        def forward(self, x: Tensor, temb: Tensor) -> Tensor:
            h = self.conv1(F.silu(self.norm1(x)))
            h = h + self.time(temb)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return h + self.skip(x)

    class DigitsUNet(nn.Module):
        """(x_t [N, 1, 8, 8], t [N]) -> the predicted noise [N, 1, 8, 8]."""

        def __init__(self) -> None:
            super().__init__()
            c0, c1 = UNET_WIDTH
            self.time = TimeEmbedding(TIME_DIM)
            self.stem = nn.Conv2d(1, c0, 3, padding=1)
            self.down = nn.ModuleList([Block(c0, c0), Block(c0, c1)])
            self.mid = Block(c1, c1)
            self.up = nn.ModuleList([Block(2 * c1, c1), Block(c1 + c0, c0)])
            self.out = nn.Sequential(nn.GroupNorm(8, c0), nn.SiLU(), nn.Conv2d(c0, 1, 3, padding=1))

        def forward(self, x: Tensor, t: Tensor) -> Tensor:
            temb = self.time(t)
            d0 = self.down[0](self.stem(x), temb)  # 8x8
            d1 = self.down[1](F.avg_pool2d(d0, 2), temb)  # 4x4
            m = self.mid(d1, temb)
            u0 = self.up[0](torch.cat([m, d1], dim=1), temb)  # 4x4
            u1 = self.up[1](torch.cat([F.interpolate(u0, scale_factor=2.0, mode="nearest"), d0], dim=1), temb)  # 8x8
            return self.out(u1)

    return DigitsUNet


def schedule():
    """alphas_cumprod [T] float64: abar(t) = f(t + 1) / f(0), f(t) = cos^2((t / T + s) / (1 + s) pi / 2),
    through betas clipped at MAX_BETA (improved DDPM, Nichol & Dhariwal 2021, eq. 17)."""
    import torch

    f = torch.cos((torch.arange(T_STEPS + 1, dtype=torch.float64) / T_STEPS + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    return torch.cumprod(1 - betas, dim=0)


def digits():
    """The 1797 digits as [N, 1, 8, 8] float32 in [-1, 1] and their labels."""
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0, torch.tensor(data.target)


def train_unet():
    import torch

    torch.manual_seed(SEED)
    model = unet_classes()()
    images, _ = digits()
    abar = schedule().float()
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=UNET_LR)
    lr = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=UNET_LR, total_steps=UNET_STEPS, pct_start=0.1)
    for _ in range(UNET_STEPS):
        batch = torch.randint(0, len(images), (UNET_BATCH,), generator=generator)
        t = torch.randint(0, T_STEPS, (UNET_BATCH,), generator=generator)
        eps = torch.randn(UNET_BATCH, 1, 8, 8, generator=generator)
        a = abar[t][:, None, None, None]
        x = a.sqrt() * images[batch] + (1 - a).sqrt() * eps
        loss = ((model(x, t) - eps) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, images, abar


def evaluate_unet(model, images, abar) -> Dict[str, Any]:
    """The denoising MSE at every t, on EVAL_DIGITS digits with fresh seeded noise each, against
    predicting no noise (MSE 1 in expectation: the noise's variance), overall and over t in tenths."""
    import torch

    generator = torch.Generator().manual_seed(SEED + 1)
    per_t = []
    with torch.no_grad():
        for t in range(T_STEPS):
            some = images[torch.randperm(len(images), generator=generator)[:EVAL_DIGITS]]
            eps = torch.randn(some.shape, generator=generator)
            x = abar[t].sqrt() * some + (1 - abar[t]).sqrt() * eps
            pred = model(x, torch.full((len(some),), t, dtype=torch.int64))
            per_t.append([((pred - eps) ** 2).mean().item(), (eps**2).mean().item()])
    bands = [per_t[i : i + T_STEPS // 10] for i in range(0, T_STEPS, T_STEPS // 10)]
    return {
        "mse": sum(m for m, _ in per_t) / T_STEPS,
        "baselineMse": sum(b for _, b in per_t) / T_STEPS,
        "mseByTenth": [sum(m for m, _ in band) / len(band) for band in bands],
    }


# ---------------------------------------------------------------------------- the bracket counter


def sequences(count: int, generator) -> Any:
    """[count, LENGTH] token ids: each a random walk on the depth (see the module's docstring)."""
    import torch

    p = P_OPEN[0] + (P_OPEN[1] - P_OPEN[0]) * torch.rand(count, generator=generator)
    draws = torch.rand(count, LENGTH, generator=generator)
    ids = torch.empty(count, LENGTH, dtype=torch.int64)
    depth = torch.zeros(count, dtype=torch.int64)
    for i in range(LENGTH):
        opens = torch.where(depth == 0, True, torch.where(depth == MAX_DEPTH, False, draws[:, i] < p))
        ids[:, i] = torch.where(opens, VOCAB["("], VOCAB[")"])
        depth = depth + torch.where(opens, 1, -1)
    return ids


def depths(ids) -> Any:
    """The depth after each token: #'(' - #')' so far."""
    return (1 - 2 * ids).cumsum(dim=1)


def rnn_classes():
    import torch.nn as nn
    from torch import Tensor

    class Recurrent(nn.Module):
        """The GRU's output alone, [N, L, H]: the hidden state after each token, one hook point."""

        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(EMBED, HIDDEN, batch_first=True)

        def forward(self, x: Tensor) -> Tensor:
            return self.gru(x)[0]

    class BracketsRNN(nn.Module):
        """ids [N, L] -> [N, L] logits of 'the brackets so far are balanced'."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(len(VOCAB), EMBED)
            self.rnn = Recurrent()
            self.head = nn.Linear(HIDDEN, 1)

        def forward(self, ids: Tensor) -> Tensor:
            return self.head(self.rnn(self.embed(ids))).squeeze(-1)

    return BracketsRNN


def train_rnn():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(SEED)
    model = rnn_classes()()
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=RNN_LR)
    lr = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=RNN_LR, total_steps=RNN_STEPS, pct_start=0.1)
    for _ in range(RNN_STEPS):
        ids = sequences(RNN_BATCH, generator)
        balanced = (depths(ids) == 0).float()
        loss = F.binary_cross_entropy_with_logits(model(ids), balanced)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def evaluate_rnn(model) -> Dict[str, Any]:
    """Accuracy on fresh sequences, against always answering the majority class; and on the
    balanced positions and the others separately (the classes are unequal)."""
    import torch

    ids = sequences(EVAL_SEQUENCES, torch.Generator().manual_seed(SEED + 1))
    balanced = depths(ids) == 0
    with torch.no_grad():
        said = model(ids) > 0
    right = said == balanced
    share = balanced.float().mean().item()
    return {
        "sequences": EVAL_SEQUENCES,
        "accuracy": right.float().mean().item(),
        "majorityAccuracy": max(share, 1 - share),
        "balancedRecall": right[balanced].float().mean().item(),
        "unbalancedRecall": right[~balanced].float().mean().item(),
        "sequencesAllRight": right.all(dim=1).float().mean().item(),
    }


# ---------------------------------------------------------------------------- files


def write_json(path: Path, value: Any, indent: Optional[int] = 2) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=indent) + "\n")
    os.replace(tmp, path)


def save(out: Path, name: str, module, record: Dict[str, Any], extra: Optional[Dict[str, Any]] = None) -> None:
    """The .pt and the extra files, then the .json that lists them all with their sha256 (it says
    they are complete), each through a rename: tests running meanwhile read whole files."""
    import torch

    tmp = out / f"{name}.pt.tmp"
    torch.jit.save(module, str(tmp))
    os.replace(tmp, out / f"{name}.pt")
    for file, value in (extra or {}).items():
        write_json(out / file, value, indent=None)
    record["files"] = {file: sha256_file(out / file) for file in [f"{name}.pt", *(extra or {})]}
    write_json(out / f"{name}.json", record)


def export_unet(out: Path, inputs: Dict[str, Any]) -> str:
    import torch

    started = time.perf_counter()
    model, images, abar = train_unet()
    figures = evaluate_unet(model, images, abar)
    x, t = images[:4], torch.tensor([0, 33, 66, 99])
    scripted = torch.jit.script(model)
    check = (scripted(x, t) - model(x, t)).abs().max().item()
    assert check < 1e-5, f"the scripted UNet differs from the eager one by {check}"
    record = {
        "model": "digits-unet.pt",
        "task": "DDPM denoiser (predicts the noise eps) on scikit-learn's 8x8 digits scaled to [-1, 1]",
        "inputs": ["x_noisy [N, 1, 8, 8] float32", "t [N] int64 in [0, steps)"],
        "noising": "x_t = sqrt(alphasCumprod[t]) * x_0 + sqrt(1 - alphasCumprod[t]) * eps, eps ~ N(0, I)",
        "pixels": "x_0 = image / 8 - 1 (load_digits' images are 0..16)",
        "steps": T_STEPS,
        "betas": {"schedule": "cosine", "offset": COSINE_OFFSET, "max": MAX_BETA},
        "alphasCumprod": schedule().tolist(),
        "blocks": UNET_BLOCKS,
        "blockShapes": {"down.0": [UNET_WIDTH[0], 8, 8], "down.1": [UNET_WIDTH[1], 4, 4], "mid": [UNET_WIDTH[1], 4, 4], "up.0": [UNET_WIDTH[1], 4, 4], "up.1": [UNET_WIDTH[0], 8, 8]},
        "training": {"steps": UNET_STEPS, "batch": UNET_BATCH, "lr": UNET_LR, "seed": SEED, "images": len(images)},
        "denoising": figures,
        "madeFrom": inputs,
        "seconds": time.perf_counter() - started,
    }
    raw, labels = digits()
    pixels = ((raw + 1) * 8).round().to(torch.int64).flatten(1)
    save(out, "digits-unet", scripted, record, {"digits.json": {"images": pixels.tolist(), "labels": labels.tolist(), "shape": [8, 8], "values": "0..16"}})
    tenths = ", ".join(f"{m:.3f}" for m in figures["mseByTenth"])
    return (
        f"digits-unet.pt: denoising MSE {figures['mse']:.4f} against {figures['baselineMse']:.4f} predicting no noise; "
        f"by tenth of t: {tenths} ({record['seconds']:.1f} s)"
    )


def export_rnn(out: Path, inputs: Dict[str, Any]) -> str:
    import torch

    started = time.perf_counter()
    model = train_rnn()
    figures = evaluate_rnn(model)
    ids = sequences(4, torch.Generator().manual_seed(SEED + 2))
    scripted = torch.jit.script(model)
    check = (scripted(ids) - model(ids)).abs().max().item()
    assert check < 1e-5, f"the scripted RNN differs from the eager one by {check}"
    record = {
        "model": "brackets-rnn.pt",
        "task": "after each token, whether the brackets so far are balanced (the depth is 0): logit > 0 says yes",
        "inputs": ["ids [N, L] int64"],
        "vocab": VOCAB,
        "length": LENGTH,
        "sequences": (
            f"valid prefixes of Dyck words: depth starts at 0; a token opens at depth 0, closes at depth {MAX_DEPTH}, "
            "and otherwise opens with the sequence's probability pOpen, drawn uniformly from the range"
        ),
        "maxDepth": MAX_DEPTH,
        "pOpen": list(P_OPEN),
        "depth": "#'(' - #')' so far: never a target, needed to answer",
        "layer": "rnn",
        "layerShape": ["N", "L", HIDDEN],
        "training": {"steps": RNN_STEPS, "batch": RNN_BATCH, "lr": RNN_LR, "seed": SEED, "embed": EMBED, "hidden": HIDDEN},
        "evaluation": figures,
        "madeFrom": inputs,
        "seconds": time.perf_counter() - started,
    }
    save(out, "brackets-rnn", scripted, record)
    return (
        f"brackets-rnn.pt: balanced-or-not accuracy {figures['accuracy']:.4f} (always the majority answer: {figures['majorityAccuracy']:.4f}; "
        f"balanced positions {figures['balancedRecall']:.4f}, others {figures['unbalancedRecall']:.4f}; "
        f"every step right in {figures['sequencesAllRight']:.1%} of sequences) ({record['seconds']:.1f} s)"
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Train the probing demos' models (models/probes/).")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "probes")
    parser.add_argument("--force", action="store_true", help="train even what is up to date")
    args = parser.parse_args(argv)
    inputs = made_from()
    todo = [(name, export) for name, export in (("digits-unet", export_unet), ("brackets-rnn", export_rnn)) if args.force or not up_to_date(args.out, name, inputs)]
    for name in {"digits-unet", "brackets-rnn"} - {name for name, _ in todo}:
        print(f"skipped {args.out / name}.pt (up to date)")
    if not todo:
        return 0
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        for _, export in todo:
            print(f"wrote   {args.out}/{export(args.out, inputs)}")
    finally:
        torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
