"""The probing demos (scripts/demo-probes.ts) recomputed in Python: the same inputs through the eager
models of scripts/probe_models.py with the files' weights and forward hooks (not torchscope's
captures), and the probes fitted by scikit-learn on the features the demo fitted on, with its split.

Request (JSON): {"out", "models", "diffusion": {"labels", "train", "validation" (files), "l2",
"levels": [{"t", "inputs", "features": {row: {"file", "dim"}}, "controlLabels": {row: file}}]},
"brackets": {"tokens", "states", "depth", "shuffledDepth" (files), "length", "hidden",
"trainSequences", "l2"}}. Files are little-endian: float32 features and inputs, int32 labels and
tokens, float64 depths.

index.json: diffusion: whether the labels are load_digits' targets; per level the noise the inputs
imply given load_digits' images and the schedule (mean, std), the model's denoising MSE against
that noise, per row the largest |difference| between the demo's features and the hooks' (spatial
means of each block's output; the pixel row is the inputs), and LogisticRegression's held-out
accuracy for the class and for the control labels. brackets: whether every sequence is one the
model's task draws (opening at depth 0, closing at maxDepth), whether the depths
equal the tokens' running count, the largest |difference| between the stored states and the
GRU's output, and Ridge's held-out R^2 per step (on the true and on the shuffled training depths)
and of one ridge over all steps, overall and per step.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge

from refio import read_request, write_index

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import probe_models  # noqa: E402


def read(file: str, dtype) -> np.ndarray:
    return np.fromfile(file, dtype=dtype)


def eager(factory, file: Path):
    """The eager model with the TorchScript file's weights."""
    model = factory()
    model.load_state_dict(torch.jit.load(str(file)).state_dict())
    return model.eval()


def diffusion(request: dict, models: Path) -> dict:
    record = json.loads((models / "digits-unet.json").read_text())
    model = eager(probe_models.unet_classes(), models / "digits-unet.pt")
    digits = load_digits()
    clean = digits.images.reshape(len(digits.target), 64).astype(np.float64) / 8 - 1
    labels = read(request["labels"], np.int32)
    train, validation = read(request["train"], np.int32), read(request["validation"], np.int32)
    captured = {}
    for block in record["blocks"]:
        model.get_submodule(block).register_forward_hook(lambda _m, _i, out, block=block: captured.__setitem__(block, out))
    out = {"labelsEqual": bool(np.array_equal(labels, digits.target)), "levels": []}
    for level in request["levels"]:
        t = level["t"]
        inputs = read(level["inputs"], np.float32).reshape(-1, 64)
        abar = record["alphasCumprod"][t]
        noise = (inputs.astype(np.float64) - np.sqrt(abar) * clean) / np.sqrt(1 - abar)
        with torch.no_grad():
            predicted = model(torch.from_numpy(inputs).reshape(-1, 1, 8, 8), torch.full((len(inputs),), t, dtype=torch.int64))
        ours = {"x_t": inputs, **{block: captured[block].mean(dim=(2, 3)).numpy() for block in record["blocks"]}}
        rows = {}
        for row, given in level["features"].items():
            # In float64, as the probe fits: scikit-learn would fit float32 features in float32.
            features = read(given["file"], np.float32).reshape(-1, given["dim"]).astype(np.float64)
            control = read(level["controlLabels"][row], np.int32)
            fit = lambda y: LogisticRegression(C=1 / request["l2"], tol=1e-10, max_iter=100000).fit(features[train], y[train])  # noqa: E731
            rows[row] = {
                "maxAbsDiff": float(np.abs(features - ours[row]).max()),
                "scale": float(np.abs(ours[row]).max()),
                "accuracy": float(fit(labels).score(features[validation], labels[validation])),
                "controlAccuracy": float(fit(control).score(features[validation], control[validation])),
            }
        out["levels"].append(
            {
                "t": t,
                "noiseMean": float(noise.mean()),
                "noiseStd": float(noise.std()),
                "denoisingMse": float(((predicted.numpy().reshape(-1, 64) - noise) ** 2).mean()),
                "rows": rows,
            }
        )
    return out


def brackets(request: dict, models: Path) -> dict:
    record = json.loads((models / "brackets-rnn.json").read_text())
    model = eager(probe_models.rnn_classes(), models / "brackets-rnn.pt")
    length, hidden, m = request["length"], request["hidden"], request["trainSequences"]
    tokens = read(request["tokens"], np.int32).reshape(-1, length)
    stored = read(request["states"], np.float32).reshape(-1, length, hidden)
    states = stored.astype(np.float64)
    depth = read(request["depth"], np.float64).reshape(-1, length)
    shuffled = read(request["shuffledDepth"], np.float64).reshape(-1, length)
    step = np.where(tokens == record["vocab"]["("], 1, -1)
    running = np.cumsum(step, axis=1)
    before = running - step
    drawn = (step[before == 0] == 1).all() and (step[before == record["maxDepth"]] == -1).all()
    with torch.no_grad():
        ours = model.rnn(model.embed(torch.from_numpy(tokens.astype(np.int64)))).numpy()
    alpha = request["l2"]
    ridge = lambda x, y: Ridge(alpha=alpha).fit(x, y)  # noqa: E731
    per_step = []
    pooled = ridge(states[:m].reshape(-1, hidden), depth[:m].reshape(-1))
    for s in range(1, length):
        x, held = states[:m, s], states[m:, s]
        per_step.append(
            {
                "step": s + 1,
                "r2": float(ridge(x, depth[:m, s]).score(held, depth[m:, s])),
                "shuffledR2": float(ridge(x, shuffled[:m, s]).score(held, depth[m:, s])),
                "pooledR2": float(pooled.score(held, depth[m:, s])),
            }
        )
    return {
        "drawnAsTrained": bool(drawn),
        "depthEqual": bool(np.array_equal(depth, running)),
        "statesMaxAbsDiff": float(np.abs(stored - ours).max()),
        "statesScale": float(np.abs(ours).max()),
        "pooledR2": float(pooled.score(states[m:].reshape(-1, hidden), depth[m:].reshape(-1))),
        "steps": per_step,
    }


def main() -> int:
    got = read_request("usage: probe_demos_reference.py request.json")
    if got is None:
        return 2
    request, out = got
    torch.set_num_threads(1)
    models = Path(request["models"])
    write_index(out, {"diffusion": diffusion(request["diffusion"], models), "brackets": brackets(request["brackets"], models)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
