#!/usr/bin/env python3
"""A sparse autoencoder that has learned something: a standard (ReLU) SAE trained at set-up,
seeded, on the residual stream of models/induction.pt (scripts/induction.py) after block 0, the
stream the layer-1 induction heads read; and the measured figures that say what its features mean.

    python scripts/induction_sae.py [--model models/induction.pt] [--out models/sae/induction-blocks.0] [--force]

The point is TransformerLens's blocks.0.hook_resid_post (the model's module paths follow
TransformerLens's), torchscope's hook point 'blocks.0' (the block's output). Activations come from
sequences as the model was trained on (BOS, a half of 6 to 24 random tokens, the same again).

Training follows SAELens's standard recipe (StandardTrainingSAE, sae_lens/saes/standard_sae.py):
decoder rows Kaiming-uniform scaled to norm 0.1, W_enc = W_dec^T, b_enc = 0, b_dec the
activations' mean; loss = sum over d_in of the squared error + L1_COEFFICIENT * sum_i f_i |W_dec_i|,
the coefficient warmed up linearly over the first 20% of steps, Adam with the learning rate decayed
linearly to 0 over the last 20%. Inputs are scaled by sqrt(d_in) / mean |x| while training
(normalize_activations 'expected_average_only_in') and the scale is folded into the weights at the
end, as SAELens's trainer does, so the files say normalize_activations 'none'. One thread: the same
bytes on any core count, given the same induction.pt and torch.

Measured on held-out sequences of the evaluation length (induction.HALF), with no gradient:
reconstruction (MSE per element, fraction of variance unexplained), L0, dead features; for each
token t, the feature that best detects "the current token is t" and the one that best detects "the
previous token is t" (chosen by F1 of f > 0 on the training activations, measured on the held-out
ones: precision, recall, Pearson correlation of the activation with the property); and the
repeated half's next-token loss clean, with the SAE spliced (with and without the error term), and
with the previous-token features, the current-token features or as many other features zeroed
(error term kept): what the induction circuit reads from them. test/sae-trained.test.ts measures
the same with torchscope on fresh sequences and compares.

Files (in --out): cfg.json (SAELens 6), sae_weights.safetensors (W_enc [d_in, d_sae], b_enc,
W_dec [d_sae, d_in], b_dec), sparsity.safetensors ('sparsity': log10 of each feature's firing
frequency on the training activations, + 1e-10 as SAELens adds) and figures.json (the figures, and
what they were made from: an up-to-date SAE, same model, recipe and torch, files intact, is skipped).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from statistics import median_high
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from safetensors.torch import save_file
from torch import Tensor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import induction  # noqa: E402
from file_hash import sha256_file  # noqa: E402

REPO = HERE.parent
LAYER = 0
NAME = f"induction-blocks.{LAYER}"
HOOK_NAME = f"blocks.{LAYER}.hook_resid_post"  # TransformerLens's name; SAELens's metadata.hook_name
HOOK_POINT = f"blocks.{LAYER}"  # torchscope's: the block's output
SEED = 0
THREADS = 1
D_SAE = 256
L1_COEFFICIENT = 2.0
STEPS = 3000
BATCH = 512  # activations (tokens) per step
LR = 2e-3
WARM_UP = 0.2  # fraction of steps over which the L1 coefficient rises to its value
DECAY = 0.2  # fraction of steps, at the end, over which the learning rate falls to 0
DECODER_INIT_NORM = 0.1
TRAIN_BATCHES = 40  # of TRAIN_SEQUENCES sequences each, each batch one half length
TRAIN_SEQUENCES = 256
EVAL_SEQUENCES = 512
EVAL_SEED = 1
SPARSITY_EPS = 1e-10
# Format of figures.json; a change rewrites the SAE.
FIGURES_VERSION = 1
# The SAELens version whose cfg.json layout these files follow (metadata.sae_lens_version).
SAELENS_FORMAT = "6.0.0"

Weights = Dict[str, Tensor]


def model_from(file: Path) -> induction.AttnOnly:
    """The scripted model's weights in the eager module (hooks, and nothing to trace)."""
    model = induction.AttnOnly()
    model.load_state_dict(torch.jit.load(str(file)).state_dict())
    return model.eval()


def residuals(model: induction.AttnOnly, ids: Tensor) -> Tensor:
    """Block LAYER's output on ids [B, S]: [B, S, d_model]."""
    captured: List[Tensor] = []
    handle = model.blocks[LAYER].register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        handle.remove()
    return captured[0]


def training_sequences() -> List[Tensor]:
    """Sequences as the model was trained on: each batch one half length from induction.HALF_RANGE."""
    generator = torch.Generator().manual_seed(SEED)
    batches = []
    for _ in range(TRAIN_BATCHES):
        half = int(torch.randint(induction.HALF_RANGE[0], induction.HALF_RANGE[1] + 1, (1,), generator=generator))
        batches.append(induction.sequences(TRAIN_SEQUENCES, SEED, generator, half))
    return batches


def previous_tokens(ids: Tensor) -> Tensor:
    """The token before each position; -1 at position 0."""
    return torch.cat([torch.full((ids.shape[0], 1), -1, dtype=ids.dtype), ids[:, :-1]], dim=1)


def encode(w: Weights, x: Tensor) -> Tensor:
    """SAELens's standard encode: ReLU((x - b_dec) W_enc + b_enc)."""
    return torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])


def decode(w: Weights, f: Tensor) -> Tensor:
    return f @ w["W_dec"] + w["b_dec"]


def train(x: Tensor) -> Tuple[Weights, float]:
    """The SAE's weights, the input scale folded in, and that scale."""
    d_in = x.shape[1]
    scale = math.sqrt(d_in) / x.norm(dim=1).mean().item()
    x = x * scale
    torch.manual_seed(SEED)
    w_dec = torch.empty(D_SAE, d_in)
    torch.nn.init.kaiming_uniform_(w_dec)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True) * DECODER_INIT_NORM
    params = {
        "W_enc": torch.nn.Parameter(w_dec.T.clone()),
        "b_enc": torch.nn.Parameter(torch.zeros(D_SAE)),
        "W_dec": torch.nn.Parameter(w_dec),
        "b_dec": torch.nn.Parameter(x.mean(0)),
    }
    optimizer = torch.optim.Adam(params.values(), lr=LR)
    generator = torch.Generator().manual_seed(SEED)
    for step in range(STEPS):
        batch = x[torch.randint(0, x.shape[0], (BATCH,), generator=generator)]
        f = encode(params, batch)
        mse = (decode(params, f) - batch).pow(2).sum(-1).mean()
        l1 = (f * params["W_dec"].norm(dim=1)).sum(-1).mean()
        coefficient = L1_COEFFICIENT * min(1.0, (step + 1) / (WARM_UP * STEPS))
        for group in optimizer.param_groups:
            group["lr"] = LR * min(1.0, (STEPS - step) / (DECAY * STEPS))
        optimizer.zero_grad()
        (mse + coefficient * l1).backward()
        optimizer.step()
    with torch.no_grad():
        # SAELens's fold_activation_norm_scaling_factor: the SAE then reads unscaled activations.
        return {
            "W_enc": (params["W_enc"] * scale).contiguous(),
            "b_enc": params["b_enc"].clone(),
            "W_dec": (params["W_dec"] / scale).contiguous(),
            "b_dec": params["b_dec"] / scale,
        }, scale


def detection(fires: Tensor, labels: Tensor, values: Sequence[int]) -> List[int]:
    """For each value, the feature whose firing best detects labels == value (F1)."""
    targets = torch.stack([(labels == value).float() for value in values], dim=1)
    hits = fires.T @ targets  # [d_sae, values]
    precision = hits / fires.sum(0).clamp(min=1)[:, None]
    recall = hits / targets.sum(0).clamp(min=1)
    return (2 * precision * recall / (precision + recall).clamp(min=1e-12)).argmax(0).tolist()


def scores(f: Tensor, labels: Tensor, values: Sequence[int], features: Sequence[int]) -> Dict[str, List[float]]:
    """Precision and recall of feature > 0 as a detector of labels == value; Pearson r of its activation."""
    out: Dict[str, List[float]] = {"precision": [], "recall": [], "correlation": []}
    for value, feature in zip(values, features):
        target = (labels == value).float()
        act = f[:, feature]
        fires = (act > 0).float()
        hits = (fires * target).sum().item()
        out["precision"].append(hits / max(fires.sum().item(), 1.0))
        out["recall"].append(hits / max(target.sum().item(), 1.0))
        centred_a, centred_t = act - act.mean(), target - target.mean()
        out["correlation"].append((centred_a @ centred_t).item() / max((centred_a.norm() * centred_t.norm()).item(), 1e-12))
    return out


def half_losses(model: induction.AttnOnly, ids: Tensor, edit: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, float]:
    """Mean next-token loss on the first and the repeated half, block LAYER's output edited."""
    handle = model.blocks[LAYER].register_forward_hook(lambda _m, _i, out: edit(out)) if edit else None
    try:
        with torch.no_grad():
            first, repeated = induction.losses(model, ids)
    finally:
        if handle:
            handle.remove()
    return {"first": first.mean().item(), "repeated": repeated.mean().item()}


def spliced(w: Weights, error_term: bool, zeroed: Sequence[int] = ()) -> Callable[[Tensor], Tensor]:
    """The SAE's output in place of x (features in `zeroed` set to 0), plus x - SAE(x) with error_term."""

    def edit(x: Tensor) -> Tensor:
        f = encode(w, x)
        error = x - decode(w, f)
        f[..., list(zeroed)] = 0
        return decode(w, f) + error if error_term else decode(w, f)

    return edit


def evaluate(model: induction.AttnOnly, w: Weights, train_x: Tensor, train_current: Tensor, train_previous: Tensor) -> Dict[str, Any]:
    """The figures (module docstring); features chosen on the training activations and their tokens."""
    with torch.no_grad():
        train_fires = (encode(w, train_x) > 0).float()
    current_values, previous_values = list(range(induction.VOCAB)), list(range(1, induction.VOCAB))
    current_features = detection(train_fires, train_current, current_values)
    previous_features = detection(train_fires, train_previous, previous_values)

    ids = induction.sequences(EVAL_SEQUENCES, EVAL_SEED)
    x = residuals(model, ids).reshape(-1, induction.D_MODEL)
    with torch.no_grad():
        f = encode(w, x)
        error = decode(w, f) - x
    fires = f > 0
    token_features = set(current_features) | set(previous_features)
    others = [j for j in range(D_SAE) if j not in token_features]
    generator = torch.Generator().manual_seed(SEED)
    control = sorted(others[i] for i in torch.randperm(len(others), generator=generator)[: len(set(previous_features))].tolist())
    return {
        "evaluation": {"sequences": EVAL_SEQUENCES, "half": induction.HALF, "seed": EVAL_SEED, "tokens": x.shape[0]},
        "reconstruction": {
            "mse": error.pow(2).mean().item(),
            "fvu": (error.pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item(),
            "l0": fires.sum(1).float().mean().item(),
            "dead": int((fires.sum(0) == 0).sum().item()),
        },
        "currentToken": {"tokens": current_values, "features": current_features, **scores(f, ids.reshape(-1), current_values, current_features)},
        "previousToken": {
            "tokens": previous_values,
            "features": previous_features,
            **scores(f, previous_tokens(ids).reshape(-1), previous_values, previous_features),
        },
        "controlFeatures": control,
        "loss": {
            "clean": half_losses(model, ids),
            "spliced": half_losses(model, ids, spliced(w, False)),
            "splicedWithErrorTerm": half_losses(model, ids, spliced(w, True)),
            "previousTokenZeroed": half_losses(model, ids, spliced(w, True, sorted(set(previous_features)))),
            "currentTokenZeroed": half_losses(model, ids, spliced(w, True, sorted(set(current_features)))),
            "controlZeroed": half_losses(model, ids, spliced(w, True, control)),
            "chance": math.log(induction.VOCAB - 1),
        },
    }


def sae_config(d_in: int) -> Dict[str, Any]:
    """cfg.json as SAELens 6 writes a standard SAE's (SAEConfig.to_dict with its metadata)."""
    return {
        "architecture": "standard",
        "d_in": d_in,
        "d_sae": D_SAE,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "model_name": "torchscope/induction.pt",
            "hook_name": HOOK_NAME,
            "hook_head_index": None,
            "model_class_name": "AttnOnly",
            "model_from_pretrained_kwargs": {},
            "prepend_bos": True,
            "exclude_special_tokens": False,
            "neuronpedia_id": None,
            "context_size": 1 + 2 * induction.HALF_RANGE[1],
            "seqpos_slice": [None],
            "dataset_path": "repeated random tokens (scripts/induction.py: sequences)",
            "sae_lens_version": SAELENS_FORMAT,
            "sae_lens_training_version": None,
        },
    }


def inputs(model_file: Path) -> Dict[str, Any]:
    """What the SAE is made from: an SAE made from the same is up to date."""
    recipe = hashlib.sha256(Path(__file__).read_bytes() + Path(induction.__file__).read_bytes()).hexdigest()
    return {"version": FIGURES_VERSION, "model_sha256": sha256_file(model_file), "recipe_sha256": recipe, "torch": torch.__version__}


def up_to_date(out: Path, made_from: Dict[str, Any]) -> bool:
    try:
        figures = json.loads((out / "figures.json").read_text())
        return figures["inputs"] == made_from and all(sha256_file(out / name) == digest for name, digest in figures["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write(out: Path, w: Weights, sparsity: Tensor, d_in: int, figures: Dict[str, Any]) -> None:
    """The files through temporaries and renames: tests running meanwhile read whole files."""
    out.mkdir(parents=True, exist_ok=True)
    staged = {
        "sae_weights.safetensors": lambda p: save_file(w, str(p)),
        "sparsity.safetensors": lambda p: save_file({"sparsity": sparsity}, str(p)),
        "cfg.json": lambda p: p.write_text(json.dumps(sae_config(d_in), indent=2) + "\n"),
    }
    for name, save in staged.items():
        save(out / f"{name}.tmp")
    for name in staged:
        os.chmod(out / f"{name}.tmp", 0o644)  # safetensors creates its files private
        os.replace(out / f"{name}.tmp", out / name)
    figures["files"] = {name: sha256_file(out / name) for name in staged}
    (out / "figures.json.tmp").write_text(json.dumps(figures, indent=2) + "\n")
    os.replace(out / "figures.json.tmp", out / "figures.json")


def summary(figures: Dict[str, Any]) -> str:
    r, loss = figures["reconstruction"], figures["loss"]
    cur, prev = figures["currentToken"], figures["previousToken"]
    return (
        f"MSE {r['mse']:.4f}, FVU {r['fvu']:.3f}, L0 {r['l0']:.2f}, dead {r['dead']} of {D_SAE}; "
        f"current-token features: median precision {median_high(cur['precision']):.3f}, recall {median_high(cur['recall']):.3f}; "
        f"previous-token features: median precision {median_high(prev['precision']):.3f}, recall {median_high(prev['recall']):.3f}, "
        f"r {median_high(prev['correlation']):.3f}; repeated-half loss: clean {loss['clean']['repeated']:.3f}, spliced "
        f"{loss['spliced']['repeated']:.3f}, previous-token features zeroed {loss['previousTokenZeroed']['repeated']:.3f}, "
        f"as many others zeroed {loss['controlZeroed']['repeated']:.3f} (chance {loss['chance']:.3f})"
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=f"Train the induction model's SAE (models/sae/{NAME}).")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "induction.pt")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "sae" / NAME)
    parser.add_argument("--force", action="store_true", help="train even when the SAE is up to date")
    args = parser.parse_args(argv)
    made_from = inputs(args.model)
    if not args.force and up_to_date(args.out, made_from):
        print(f"skipped {args.out} (up to date)")
        return 0
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        started = time.perf_counter()
        model = model_from(args.model)
        batches = training_sequences()
        train_x = torch.cat([residuals(model, ids).reshape(-1, induction.D_MODEL) for ids in batches])
        train_current = torch.cat([ids.reshape(-1) for ids in batches])
        train_previous = torch.cat([previous_tokens(ids).reshape(-1) for ids in batches])
        collected = time.perf_counter()
        w, scale = train(train_x)
        trained = time.perf_counter()
        with torch.no_grad():
            sparsity = torch.log10((encode(w, train_x) > 0).float().mean(0) + SPARSITY_EPS)
        figures = evaluate(model, w, train_x, train_current, train_previous)
        evaluated = time.perf_counter()
    finally:
        torch.set_num_threads(threads)
    figures = {
        "sae": NAME,
        "hookPoint": HOOK_POINT,
        "hookName": HOOK_NAME,
        "inputs": made_from,
        "training": {
            "dSae": D_SAE,
            "l1Coefficient": L1_COEFFICIENT,
            "steps": STEPS,
            "batch": BATCH,
            "lr": LR,
            "seed": SEED,
            "tokens": train_x.shape[0],
            "inputScale": scale,
        },
        "seconds": {"activations": collected - started, "training": trained - collected, "evaluation": evaluated - trained},
        **figures,
    }
    write(args.out, w, sparsity, induction.D_MODEL, figures)
    print(f"wrote   {args.out} ({time.perf_counter() - started:.1f}s): {summary(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
