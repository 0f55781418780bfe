#!/usr/bin/env python3
"""Reference for test/probe.test.ts: scikit-learn's linear models, the exact optimum of the
documented logistic objective (Newton's method), the mass-mean probe computed in numpy from
geometry-of-truth's probes.py, and the project / add patches and the direction objective as
PyTorch forward hooks and autograd on the eager models.

    python test/python/probe_reference.py REQUEST.json

    {"out": "/tmp/dir", "task": "digits"}
        -> index.json {"x": TENSOR float64 [1797, 64] (load_digits().data / 16: intensities in
           [0, 1]), "y": TENSOR int64 [1797]}

    {"out": "/tmp/dir", "task": "check", "cases": [CASE, ...]}
        -> index.json {"cases": {id: RESULT}}

    CASE (TENSOR = {"file", "dtype", "shape"}, raw little-endian; "rows": int32 row indices):
      {"id", "kind": "logistic", "x", "labels", "rows"?, "l2", "fitIntercept", "multiclass",
       "scores": [{"x"?, "labels", "rows"?}]}
          LogisticRegression(C=1/l2, solver='lbfgs', tol=1e-10, max_iter=100000) fitted on the
          rows (OneVsRestClassifier of it for 'ovr'): coef, intercept, predict / predict_proba of
          every row of x, score of each scores entry (x default: the case's x); and "optimum":
          the minimizer of sum_i loss_i + (l2 / 2) ||W||^2 by damped Newton in float64.
      {"id", "kind": "ridge", "x", "labels", "rows"?, "l2", "fitIntercept", "scores": [...]}
          Ridge(alpha=l2): coef, intercept, predict of every row of x, r2 of each scores entry.
      {"id", "kind": "massMean", "x", "labels", "iid"}
          probes.py's MMProbe in numpy: direction, weight (pinv(Sigma, hermitian, atol=1e-3)
          direction with iid), round(sigmoid(x . weight)) of every row, and the accuracy.
      {"id", "kind": "run", "model": "gpt2" | "digits", "inputs", "patch"?: {"layer", "mode":
       "project" | "add", "value", "positions"?}}
          the model's output with the patch as a forward hook on the layer's first tensor output.
      {"id", "kind": "gradient", "model": "gpt2", "inputs", "layer", "direction", "wrt"}
          per batch element, the mean over positions of the layer's output projected on the
          direction (dim 2 of [N, S, H]), and the gradient of their sum with respect to the output
          of `wrt`, by autograd.

RESULT: tensors as reference.py's Writer writes them, numbers as JSON.
"""

import sys
import warnings
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "scripts"))
from reference import Writer, load_eager, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402

TOL = 1e-10
MAX_ITER = 100000
PINV_ATOL = 1e-3  # probes.py: MMProbe(..., atol=1e-3)


def array(spec: Dict[str, Any]) -> np.ndarray:
    return read_tensor(spec).numpy()


def fitted_rows(case: Dict[str, Any]):
    x = array(case["x"]).astype(np.float64)
    y = array(case["labels"])
    if "rows" in case:
        rows = array(case["rows"]).astype(np.int64)
        return x, y, x[rows], y[rows]
    return x, y, x, y


def scores(model, case: Dict[str, Any], x: np.ndarray, y: np.ndarray):
    out = []
    for entry in case["scores"]:
        sx = array(entry["x"]).astype(np.float64) if "x" in entry else x
        sy = array(entry["labels"]) if "labels" in entry else y
        if "rows" in entry:
            rows = array(entry["rows"]).astype(np.int64)
            sx, sy = sx[rows], sy[rows]
        out.append(float(model.score(sx, sy)))
    return out


# ---------------------------------------------------------------- the exact optimum


def newton(objective, theta: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """Damped Newton on a smooth convex objective (value, gradient, Hessian), the step by lstsq
    (the multinomial intercepts are free up to a constant: the least-norm step keeps them centered)."""
    for _ in range(steps):
        value, gradient, hessian = objective(theta)
        step = torch.linalg.lstsq(hessian, -gradient.unsqueeze(1), driver="gelsd").solution.squeeze(1)
        t = 1.0
        while objective(theta + t * step)[0] > value + 1e-4 * t * gradient.dot(step) and t > 1e-10:
            t /= 2
        theta = theta + t * step
        if step.abs().max() * t <= 1e-15 * max(1.0, float(theta.abs().max())):
            break
    return theta


def binomial_optimum(x: torch.Tensor, y: torch.Tensor, l2: float, intercept: bool) -> torch.Tensor:
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) if intercept else x
    penalty = torch.ones(xa.shape[1], dtype=x.dtype)
    if intercept:
        penalty[-1] = 0

    def objective(theta):
        z = xa @ theta
        value = (torch.nn.functional.softplus(z, threshold=1000) - y * z).sum() + 0.5 * l2 * (penalty * theta * theta).sum()
        p = torch.sigmoid(z)
        gradient = xa.T @ (p - y) + l2 * penalty * theta
        hessian = xa.T @ (xa * (p * (1 - p)).unsqueeze(1)) + torch.diag(l2 * penalty)
        return float(value), gradient, hessian

    return newton(objective, torch.zeros(xa.shape[1], dtype=x.dtype))


def multinomial_optimum(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, intercept: bool) -> torch.Tensor:
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) if intercept else x
    width = xa.shape[1]
    penalty = torch.ones(classes, width, dtype=x.dtype)
    if intercept:
        penalty[:, -1] = 0
    onehot = torch.nn.functional.one_hot(y, classes).to(x.dtype)
    outer = (xa.unsqueeze(2) * xa.unsqueeze(1)).reshape(len(x), -1)  # [n, width * width]

    def objective(theta):
        w = theta.view(classes, width)
        z = xa @ w.T
        value = (torch.logsumexp(z, 1) - (z * onehot).sum(1)).sum() + 0.5 * l2 * (penalty * w * w).sum()
        p = torch.softmax(z, 1)
        gradient = ((p - onehot).T @ xa + l2 * penalty * w).reshape(-1)
        weights = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)  # [n, k, k]
        hessian = (weights.reshape(len(x), -1).T @ outer).view(classes, classes, width, width)
        hessian = hessian.permute(0, 2, 1, 3).reshape(classes * width, classes * width) + torch.diag((l2 * penalty).reshape(-1))
        return float(value), gradient, hessian

    return newton(objective, torch.zeros(classes * width, dtype=x.dtype)).view(classes, width)


def split_rows(theta: torch.Tensor, intercept: bool, d: int):
    rows = theta.view(-1, theta.shape[-1]) if theta.dim() == 2 else theta.view(1, -1)
    weight = rows[:, :d]
    bias = rows[:, d] if intercept else torch.zeros(rows.shape[0], dtype=rows.dtype)
    return weight, bias


def logistic(case: Dict[str, Any], writer: Writer) -> Dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    x, y, fx, fy = fitted_rows(case)
    l2, intercept, scheme = case["l2"], case["fitIntercept"], case["multiclass"]
    classes = int(fy.max()) + 1
    base = LogisticRegression(C=1.0 / l2, solver="lbfgs", tol=TOL, max_iter=MAX_ITER, fit_intercept=intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning fails the case
        model = OneVsRestClassifier(base) if scheme == "ovr" and classes > 2 else base
        model.fit(fx, fy)
    if isinstance(model, OneVsRestClassifier):
        coef = np.concatenate([e.coef_ for e in model.estimators_])
        bias = np.concatenate([np.atleast_1d(e.intercept_) for e in model.estimators_])
        iterations = [int(e.n_iter_[0]) for e in model.estimators_]
    else:
        coef, bias, iterations = model.coef_, np.atleast_1d(model.intercept_), [int(i) for i in np.atleast_1d(model.n_iter_)]
    tx, ty = torch.from_numpy(fx), torch.from_numpy(fy).long()
    d = fx.shape[1]
    if classes == 2:
        optimum = [split_rows(binomial_optimum(tx, ty.double(), l2, intercept), intercept, d)]
    elif scheme == "ovr":
        optimum = [split_rows(binomial_optimum(tx, (ty == c).double(), l2, intercept), intercept, d) for c in range(classes)]
    else:
        optimum = [split_rows(multinomial_optimum(tx, ty, classes, l2, intercept), intercept, d)]
    return {
        "coef": writer.tensor(torch.from_numpy(np.ascontiguousarray(coef))),
        "intercept": writer.tensor(torch.from_numpy(np.ascontiguousarray(bias))),
        "optimumWeight": writer.tensor(torch.cat([w for w, _ in optimum])),
        "optimumBias": writer.tensor(torch.cat([b for _, b in optimum])),
        "predict": writer.tensor(torch.from_numpy(model.predict(x).astype(np.int64))),
        "proba": writer.tensor(torch.from_numpy(model.predict_proba(x))),
        "scores": scores(model, case, x, y),
        "iterations": iterations,
    }


def ridge(case: Dict[str, Any], writer: Writer) -> Dict[str, Any]:
    from sklearn.linear_model import Ridge

    x, y, fx, fy = fitted_rows(case)
    y = y.astype(np.float64)
    model = Ridge(alpha=case["l2"], fit_intercept=case["fitIntercept"]).fit(fx, fy.astype(np.float64))
    return {
        "coef": writer.tensor(torch.from_numpy(np.ascontiguousarray(model.coef_.reshape(1, -1)))),
        "intercept": writer.tensor(torch.tensor([float(model.intercept_)], dtype=torch.float64)),
        "predict": writer.tensor(torch.from_numpy(model.predict(x))),
        "scores": scores(model, case, x, y),
    }


def mass_mean(case: Dict[str, Any], writer: Writer) -> Dict[str, Any]:
    x, y, _, _ = fitted_rows(case)
    pos, neg = x[y == 1], x[y == 0]
    pos_mean, neg_mean = pos.mean(0), neg.mean(0)
    direction = pos_mean - neg_mean
    weight = direction
    if case["iid"]:
        centered = np.concatenate([pos - pos_mean, neg - neg_mean], 0)
        covariance = centered.T @ centered / x.shape[0]
        values, vectors = np.linalg.eigh(covariance)
        kept = np.abs(values) > PINV_ATOL
        inverse = (vectors[:, kept] / values[kept]) @ vectors[:, kept].T
        weight = inverse @ direction
    probability = 1 / (1 + np.exp(-(x @ weight)))
    predict = np.round(probability).astype(np.int64)  # round half to even, as torch.round
    return {
        "direction": writer.tensor(torch.from_numpy(direction)),
        "weight": writer.tensor(torch.from_numpy(np.ascontiguousarray(weight))),
        "predict": writer.tensor(torch.from_numpy(predict)),
        "proba": writer.tensor(torch.from_numpy(probability)),
        "accuracy": float((predict == y).mean()),
    }


# ---------------------------------------------------------------- patches and objectives

_models: Dict[str, torch.nn.Module] = {}


def model_of(name: str) -> torch.nn.Module:
    if name not in _models:
        if name == "gpt2":
            from llm_reference import load

            _models[name] = load(str(REPO / "models" / "llm" / "gpt2"))
        else:
            _models[name] = load_eager(str(REPO / "models" / "digits-cnn.pt"), "digits")
    return _models[name]


def projected(x: torch.Tensor, rows: torch.Tensor, positions) -> torch.Tensor:
    """x without its component along the rows' span over the channels dim (dim 1 of [N, C] and
    [N, C, H, W], dim 2 of [N, S, H]); the basis: the right singular vectors whose singular values
    exceed max(k, C) * eps(rows' dtype) * the largest (numpy's matrix_rank)."""
    dim = 2 if x.dim() == 3 else 1
    v = rows.reshape(-1, x.shape[dim])
    _, s, vh = np.linalg.svd(v.double().numpy(), full_matrices=False)
    cut = s.max() * max(v.shape) * torch.finfo(rows.dtype).eps
    basis = torch.from_numpy(vh[s > cut]).to(x.dtype)
    moved = x.movedim(dim, -1)
    out = (moved - (moved @ basis.T) @ basis).movedim(-1, dim)
    if positions:
        keep = torch.zeros(x.shape[1], dtype=torch.bool)
        keep[positions] = True
        out = torch.where(keep.view(1, -1, 1), out, x)
    return out


def patch_hook(module: torch.nn.Module, spec: Dict[str, Any]):
    value = read_tensor(spec["value"])

    def edit(t: torch.Tensor) -> torch.Tensor:
        if spec["mode"] == "add":
            return t + value
        return projected(t, value, spec.get("positions"))

    def hook(_m, _args, output):
        if isinstance(output, torch.Tensor):
            return edit(output)
        items = list(output)
        items[0] = edit(items[0])
        return type(output)(items)

    return module.register_forward_hook(hook)


def forward(model: torch.nn.Module, name: str, inputs: torch.Tensor) -> torch.Tensor:
    return model(input_ids=inputs, use_cache=False).logits if name == "gpt2" else model(inputs)


def run(case: Dict[str, Any], writer: Writer) -> Dict[str, Any]:
    model = model_of(case["model"])
    inputs = read_tensor(case["inputs"])
    handles = [patch_hook(model.get_submodule(case["patch"]["layer"]), case["patch"])] if "patch" in case else []
    try:
        with torch.no_grad():
            output = forward(model, case["model"], inputs)
    finally:
        for h in handles:
            h.remove()
    return {"output": writer.tensor(output)}


def gradient(case: Dict[str, Any], writer: Writer) -> Dict[str, Any]:
    model = model_of(case["model"])
    inputs = read_tensor(case["inputs"])
    direction = read_tensor(case["direction"]).float()
    seen: Dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_m, _args, output):
            first = output if isinstance(output, torch.Tensor) else output[0]
            if name == case["wrt"]:
                first.retain_grad()
            seen[name] = first

        return hook

    handles = [model.get_submodule(name).register_forward_hook(keep(name)) for name in {case["layer"], case["wrt"]}]
    try:
        with torch.enable_grad():
            forward(model, case["model"], inputs)
            values = (seen[case["layer"]] @ direction).mean(1)
            values.sum().backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    return {"values": values.detach().tolist(), "gradient": writer.tensor(seen[case["wrt"]].grad)}


KINDS = {"logistic": logistic, "ridge": ridge, "massMean": mass_mean, "run": run, "gradient": gradient}


def main() -> int:
    got = read_request(__doc__.split("\n\n")[1])
    if got is None:
        return 2
    request, out = got
    writer = Writer(out)
    if request["task"] == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        index = {"x": writer.tensor(torch.from_numpy(digits.data / 16.0)), "y": writer.tensor(torch.from_numpy(digits.target.astype(np.int64)))}
    else:
        index = {"cases": run_cases(request["cases"], lambda case, _i: KINDS[case["kind"]](case, writer))}
    write_index(out, index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
