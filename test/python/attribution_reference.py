#!/usr/bin/env python3
"""PyTorch reference for torchscope's gradients and attribution (test/gradients.test.ts,
test/attribution.test.ts): written to Captum's published definitions (captum/attr/_core,
current master; no Captum install here), not from native/.

    python test/python/attribution_reference.py REQUEST.json

Request: {"out": DIR, "cases": [CASE, ...]}. Every case names a TorchScript file ("model"),
the eager architecture with the same weights ("arch", optional: reference.ARCH_BY_FILE),
forward's arguments ("inputs": [TENSOR]) and the objective, as torchscope's native request
has it ("objective": {"layer": "", "objectives": [{"target": 3} | {"logit": n} |
{"channel": c} | {"neuron": {"channel", "y", "x"}}]}, one or one per row).

  {"kind": "gradients", "wrt": {"inputs": [0], "layers": ["layer4"]}, "patch": {layer: PATCH}}
      d(sum over rows of the objective)/d(input) (eager model, inputs requiring grad) and, per
      layer and per call, what register_full_backward_hook gets as grad_output[0]; or, with
      "layerGrads": "captum", Captum's own way (forward hook saving the output, made to
      require grad, returning a clone; torch.autograd.grad): for modules whose inputs do not
      require grad (token ids).
      -> {"objective": [..], "inputs": [TENSOR], "layers": {layer: [TENSOR per call]}}
      "autocast": "bf16" | "fp16" runs the forward under torch.autocast("cpu", dtype).
  {"kind": "attribute", "options": {method, input, baseline?: TENSOR, baselineValue, abs,
      multiplyByInputs, steps, integration, internalBatchSize, convergenceDelta, layer, relu,
      upsample, upsampleMode, window, strides, featureMask?: TENSOR, perturbationsPerEval,
      noise, samples, samplesBatchSize, stdev, seed}}
      -> {"attributions": TENSOR, "delta": [..]?}
      Input methods run the TorchScript file itself (torch.jit.load); layer methods the eager
      model with forward hooks, as Captum's layer classes do.

Results in OUT/index.json: {"torch": version, "cases": {id: result or {"error": "..."}}}.
"""

import math
import sys
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reference import ARCH_BY_FILE, Writer, autocast_for, load_eager, load_jit, patched_output, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402

# ---------------------------------------------------------------- objectives


def first_tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(f"no tensor in {type(value).__name__}")


def objective_row(objective: dict, act_row: Optional[torch.Tensor], out_row: Optional[torch.Tensor]) -> torch.Tensor:
    if "target" in objective:
        if out_row.dim() != 1:
            raise ValueError("target needs an [N, C] output")
        return out_row[objective["target"]]
    if "logit" in objective:
        return out_row.reshape(-1)[objective["logit"]]
    if "channel" in objective:
        return act_row[objective["channel"]].mean()
    if "neuron" in objective:
        n = objective["neuron"]
        return act_row[n["channel"]][n.get("y", act_row.shape[1] // 2)][n.get("x", act_row.shape[2] // 2)]
    raise ValueError(f"unsupported objective {objective}")


def objective_values(spec: dict, act: Optional[torch.Tensor], out: Optional[torch.Tensor]) -> torch.Tensor:
    rows = (out if out is not None else act).shape[0]
    objectives = spec["objectives"]
    if len(objectives) not in (1, rows):
        raise ValueError(f"{len(objectives)} objectives for {rows} rows")
    # Captum's _select_targets: output[:, t] for one int target, a gather for one per row.
    if all("target" in o for o in objectives):
        if len(objectives) == 1:
            return out[:, objectives[0]["target"]]
        return torch.gather(out, 1, torch.tensor([o["target"] for o in objectives]).reshape(rows, 1)).squeeze(-1)
    return torch.stack([
        objective_row(objectives[0 if len(objectives) == 1 else r], None if act is None else act[r], None if out is None else out[r])
        for r in range(rows)
    ])


def repeated(spec: dict, times: int, interleave: bool) -> dict:
    objectives = spec["objectives"]
    if len(objectives) == 1:
        return spec
    rows = [o for o in objectives for _ in range(times)] if interleave else objectives * times
    return {"layer": spec["layer"], "objectives": rows}


def reads_layer(spec: dict) -> bool:
    return any("target" not in o and "logit" not in o for o in spec["objectives"])


def forward_objective(model, modules, args: list, spec: dict, extra_hooks=()) -> torch.Tensor:
    """The objective per row of one forward of `model` (a layer objective read by a hook)."""
    captured: List[torch.Tensor] = []
    handles = [modules[spec["layer"]].register_forward_hook(lambda m, a, out: captured.append(first_tensor(out)))] if reads_layer(spec) else []
    handles += [h() for h in extra_hooks]
    try:
        out = model(*args)
    finally:
        for h in handles:
            h.remove()
    return objective_values(spec, captured[-1] if captured else None, first_tensor(out))


# ---------------------------------------------------------------- gradients


def run_gradients(case: dict, writer: Writer) -> dict:
    arch = case.get("arch") or ARCH_BY_FILE[Path(case["model"]).name]
    model = load_eager(case["model"], arch)
    modules = dict(model.named_modules())
    inputs = [read_tensor(t) for t in case["inputs"]]
    wrt = case["wrt"]
    for i in wrt.get("inputs", []):
        inputs[i] = inputs[i].clone().requires_grad_()
    layers = wrt.get("layers", [])
    captum_style = case.get("layerGrads") == "captum"
    grads = {layer: [] for layer in layers}
    saved = {layer: [] for layer in layers}
    handles = []
    for layer, patch in (case.get("patch") or {}).items():
        handles.append(modules[layer].register_forward_hook(lambda m, a, out, p=patch: patched_output(out, p)))
    for layer in layers:
        if captum_style:
            def save(m, a, out, layer=layer):
                t = first_tensor(out)
                if not t.requires_grad:
                    t.requires_grad_()
                saved[layer].append(t)
                if isinstance(out, torch.Tensor):
                    return t.clone()
                items = list(out)
                items[items.index(t) if any(x is t for x in items) else 0] = t.clone()
                return tuple(items)

            handles.append(modules[layer].register_forward_hook(save))
        else:
            # Backward hooks fire last call first.
            handles.append(modules[layer].register_full_backward_hook(
                lambda m, gin, gout, layer=layer: grads[layer].insert(0, gout[0].detach().clone())))
    try:
        with torch.enable_grad():
            # "autocast": the forward (not the backward) under torch.autocast, as PyTorch advises.
            with autocast_for(case):
                values = forward_objective(model, modules, inputs, case["objective"])
            sources = [inputs[i] for i in wrt.get("inputs", [])]
            if captum_style:
                flat = [t for layer in layers for t in saved[layer]]
                found = torch.autograd.grad(values.sum(), sources + flat, allow_unused=True)
                found = [torch.zeros_like(s) if g is None else g for s, g in zip(sources + flat, found)]
                input_grads = found[: len(sources)]
                rest = found[len(sources):]
                for layer in layers:
                    grads[layer] = rest[: len(saved[layer])]
                    rest = rest[len(saved[layer]):]
            else:
                values.sum().backward()
                input_grads = [s.grad for s in sources]
    finally:
        for h in handles:
            h.remove()
    return {
        "objective": values.detach().double().tolist(),
        "inputs": [writer.tensor(g) for g in input_grads],
        "layers": {layer: [writer.tensor(g) for g in calls] for layer, calls in grads.items()},
    }


# ---------------------------------------------------------------- Captum's methods


def approximation(method: str, n: int):
    """(step sizes, alphas) as Captum's approximation_methods.py."""
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return list(0.5 * w), list(0.5 * (1 + x))
    step = [1 / n] * n
    if method == "riemann_trapezoid":
        step[0] /= 2
        step[-1] /= 2
        return step, torch.linspace(0, 1, n).tolist()
    if method == "riemann_left":
        return step, torch.linspace(0, 1 - 1 / n, n).tolist()
    if method == "riemann_right":
        return step, torch.linspace(1 / n, 1, n).tolist()
    if method == "riemann_middle":
        return step, torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n).tolist()
    raise ValueError(method)


class Problem:
    """The forward function Captum would be given, its arguments and the attributed one."""

    def __init__(self, case: dict):
        self.case = case
        self.opt = case["options"]
        self.arch = case.get("arch") or ARCH_BY_FILE[Path(case["model"]).name]
        self.args = [read_tensor(t) for t in case["inputs"]]
        self.index = self.opt["input"]
        self.objective = case["objective"]
        self.rows = self.args[self.index].shape[0]
        self.layer_method = self.opt["method"] in ("layerIntegratedGradients", "layerGradCam")
        self.model = load_eager(case["model"], self.arch) if self.layer_method or reads_layer(self.objective) else load_jit(case["model"])
        self.modules = dict(self.model.named_modules()) if isinstance(self.model, torch.nn.Module) and not isinstance(self.model, torch.jit.ScriptModule) else {}
        self.baseline = read_tensor(self.opt["baseline"]) if self.opt.get("baseline") else None

    def baseline_value(self):
        return self.baseline if self.baseline is not None else self.opt["baselineValue"]

    def tensor_baseline(self) -> torch.Tensor:
        x = self.args[self.index]
        if self.baseline is None:
            return torch.full_like(x, self.opt["baselineValue"])
        return torch.broadcast_to(self.baseline.to(x.dtype), x.shape).contiguous()

    def expand_args(self, args: list, times: int, interleave: bool, rows: int) -> list:
        def one(a):
            if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == rows:
                return a.repeat_interleave(times, 0) if interleave else torch.cat([a] * times)
            return a
        return [one(a) for a in args]

    def F(self, args: list, spec: dict, hooks=()) -> torch.Tensor:
        return forward_objective(self.model, self.modules, args, spec, hooks)


def gradient_of(problem: Problem, args: list, spec: dict, source_index: int) -> torch.Tensor:
    args = list(args)
    args[source_index] = args[source_index].detach().requires_grad_()
    with torch.enable_grad():
        values = problem.F(args, spec)
        return torch.autograd.grad(torch.unbind(values), args[source_index])[0]


def integrated(problem: Problem, x: torch.Tensor, b, gradients: Callable[[torch.Tensor, int, dict], torch.Tensor], args: list, rows: int, spec: dict):
    """Captum's IntegratedGradients._attribute / _batch_attribution over x from b."""
    opt = problem.opt
    n_steps = opt["steps"]
    step_sizes, alphas = approximation(opt["integration"], n_steps)
    per_chunk = n_steps if not opt["internalBatchSize"] else max(1, opt["internalBatchSize"] // rows)
    total = None
    for start in range(0, n_steps, per_chunk):
        stop = min(n_steps, start + per_chunk)
        n = stop - start
        scaled = torch.cat([b + a * (x - b) for a in alphas[start:stop]], dim=0)
        grads = gradients(scaled, n, repeated(spec, n, False))
        steps = torch.tensor(step_sizes[start:stop]).float()
        scaled_grads = grads.contiguous().view(n, -1) * steps.view(n, 1)
        total_grads = scaled_grads.reshape((n, rows) + tuple(grads.shape[1:])).sum(0)
        current = total_grads * (x - b) if opt["multiplyByInputs"] else total_grads
        total = current if total is None else current.detach() + total
    return total


def delta_of(problem: Problem, attributions: torch.Tensor, args: list, spec: dict, baseline_args: list, rows: int) -> torch.Tensor:
    with torch.no_grad():
        end = problem.F(args, spec)
        start = problem.F(baseline_args, spec)
    return attributions.reshape(rows, -1).sum(1) - (end - start)


def run_method(problem: Problem, args: list, spec: dict, rows: int):
    """(attributions, delta or None) of the method on `args` (rows per forward argument)."""
    opt = problem.opt
    method = opt["method"]
    i = problem.index
    x = args[i]
    if method == "saliency":
        g = gradient_of(problem, args, spec, i)
        return (g.abs() if opt["abs"] else g), None
    if method == "inputXGradient":
        return x * gradient_of(problem, args, spec, i), None
    if method == "integratedGradients":
        b = problem.baseline_value()

        def grads(scaled, n, s):
            expanded = problem.expand_args(args, n, False, rows)
            expanded[i] = scaled
            return gradient_of(problem, expanded, s, i)

        attributions = integrated(problem, x, b, grads, args, rows, spec)
        delta = None
        if opt["convergenceDelta"]:
            base = list(args)
            base[i] = torch.full_like(x, b) if not isinstance(b, torch.Tensor) else torch.broadcast_to(b.to(x.dtype), x.shape).contiguous()
            delta = delta_of(problem, attributions, args, spec, base, rows)
        return attributions, delta
    if method == "layerIntegratedGradients":
        module = problem.modules[opt["layer"]]
        base = list(args)
        base[i] = torch.full_like(x, opt["baselineValue"]) if problem.baseline is None else torch.broadcast_to(problem.baseline.to(x.dtype), x.shape).contiguous()

        def activation(a):
            saved = []
            h = module.register_forward_hook(lambda m, _a, out: saved.append(first_tensor(out).clone()))
            try:
                with torch.no_grad():
                    problem.model(*a)
            finally:
                h.remove()
            return saved[-1]

        act_in, act_base = activation(args), activation(base)

        def grads(scaled, n, s):
            scaled = scaled.detach().requires_grad_()

            def replace(m, _a, out):
                if isinstance(out, torch.Tensor):
                    return scaled
                items = list(out)
                items[0] = scaled
                return tuple(items)

            h = module.register_forward_hook(replace)
            try:
                with torch.enable_grad():
                    values = problem.F(problem.expand_args(args, n, False, rows), s)
                    return torch.autograd.grad(torch.unbind(values), scaled)[0]
            finally:
                h.remove()

        attributions = integrated(problem, act_in, act_base, grads, args, rows, spec)
        delta = delta_of(problem, attributions, args, spec, base, rows) if opt["convergenceDelta"] else None
        return attributions, delta
    if method == "layerGradCam":
        module = problem.modules[opt["layer"]]
        saved = []

        def keep(m, _a, out):
            t = first_tensor(out)
            if not t.requires_grad:
                t.requires_grad_()
            saved.append(t)
            return t.clone() if isinstance(out, torch.Tensor) else (t.clone(),) + tuple(out[1:])

        h = module.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                values = problem.F(args, spec)
                G = torch.autograd.grad(torch.unbind(values), saved[-1])[0]
        finally:
            h.remove()
        A = saved[-1].detach()
        w = torch.mean(G, dim=tuple(range(2, G.dim())), keepdim=True) if G.dim() > 2 else G
        cam = torch.sum(w * A, dim=1, keepdim=True)
        if opt["relu"]:
            cam = torch.relu(cam)
        if opt["upsample"]:
            cam = torch.nn.functional.interpolate(cam, size=tuple(opt["upsample"]), mode=opt["upsampleMode"])
        return cam, None
    raise ValueError(f"not a gradient method: {method}")


def noise_tunnel(problem: Problem):
    opt = problem.opt
    x = problem.args[problem.index]
    rows = problem.rows
    n = opt["samples"]
    bs = n if not opt["samplesBatchSize"] else min(n, opt["samplesBatchSize"])
    parts = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    torch.manual_seed(opt["seed"])
    total = squares = None
    deltas = []
    baseline = problem.baseline
    for m in parts:
        std = torch.tensor(float(opt["stdev"])).repeat((rows * m,) + tuple(x.shape[1:]))
        noise = torch.normal(0, std)
        args = problem.expand_args(problem.args, m, True, rows)
        args[problem.index] = x.repeat_interleave(m, 0) + noise
        # Captum's _expand_partial: a per-row baseline follows its row's samples.
        per_row = baseline is not None and baseline.dim() == x.dim() and baseline.shape[0] == rows and rows > 1
        problem.baseline = baseline.repeat_interleave(m, 0) if per_row else baseline
        attributions, delta = run_method(problem, args, repeated(problem.objective, m, True), rows * m)
        a = attributions.view((rows, m) + tuple(attributions.shape[1:]))
        total = a.sum(1) if total is None else total + a.sum(1)
        squares = torch.pow(a, 2).sum(1) if squares is None else squares + torch.pow(a, 2).sum(1)
        if delta is not None:
            deltas.append(delta.reshape(rows, -1))
    mean, mean_sq = total * 1 / n, squares * 1 / n
    result = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean * mean}[opt["noise"]]
    return result, (torch.cat(deltas, dim=1).reshape(-1) if deltas else None)


def perturbation(problem: Problem):
    """Captum's FeatureAblation / Occlusion with one attributed input."""
    opt = problem.opt
    x = problem.args[problem.index]
    rows = problem.rows
    spec = problem.objective
    k = opt["perturbationsPerEval"]
    with torch.no_grad():
        initial = problem.F(problem.args, spec)
        total = torch.zeros(x.shape, dtype=initial.dtype)
        if opt["method"] == "occlusion":
            shape = x.shape[1:]
            window = opt["window"]
            strides = opt["strides"] or [1]
            strides = strides * len(shape) if len(strides) == 1 else strides
            counts = [math.ceil((shape[d] - window[d]) / strides[d]) + 1 for d in range(len(shape))]

            def mask_of(f):
                start = []
                for d in range(len(shape)):
                    start.append((f % counts[d]) * strides[d])
                    f //= counts[d]
                pad = []
                for d in reversed(range(len(shape))):
                    pad += [start[d], shape[d] - start[d] - window[d]]
                return torch.nn.functional.pad(torch.ones(window), pad).reshape((1,) + tuple(shape))

            masks_all = [mask_of(f) for f in range(math.prod(counts))]
            weights = torch.zeros((1,) + tuple(shape))
        else:
            mask = read_tensor(opt["featureMask"]) if opt.get("featureMask") else torch.arange(x[0].numel()).reshape((1,) + tuple(x.shape[1:]))
            masks_all = [(mask == f).long() for f in torch.unique(mask).tolist()]
            weights = None
        base = problem.baseline_value()
        if isinstance(base, torch.Tensor):
            base = torch.broadcast_to(base.to(x.dtype), x.shape)
        for start in range(0, len(masks_all), k):
            masks = masks_all[start:start + k]
            kk = len(masks)
            xr = torch.cat([x] * kk)
            if opt["method"] == "occlusion":
                stacked = torch.stack(masks)
                b = base.reshape((1,) + tuple(base.shape)) if isinstance(base, torch.Tensor) else base
                ablated = torch.where(stacked.bool(), b, xr.reshape((kk, rows) + tuple(x.shape[1:]))).reshape(xr.shape)
            else:
                ablated = torch.cat([x * (1 - m).to(x.dtype) + base * m.to(x.dtype) for m in masks])
                stacked = torch.stack(masks)
            args = problem.expand_args(problem.args, kk, False, rows)
            args[problem.index] = ablated
            modified = problem.F(args, repeated(spec, kk, False)).reshape(-1, rows)
            diff = (initial.reshape(1, -1) - modified).reshape((kk, rows) + (1,) * (x.dim() - 1))
            total += (diff * stacked.to(total.dtype)).sum(0)
            if weights is not None:
                weights += stacked.float().sum(0)
    return (total.float() / weights if weights is not None else total), None


def run_attribute(case: dict, writer: Writer) -> dict:
    problem = Problem(case)
    if problem.opt["noise"]:
        attributions, delta = noise_tunnel(problem)
    elif problem.opt["method"] in ("occlusion", "featureAblation"):
        attributions, delta = perturbation(problem)
    else:
        attributions, delta = run_method(problem, problem.args, problem.objective, problem.rows)
    result = {"attributions": writer.tensor(attributions)}
    if delta is not None:
        result["delta"] = delta.detach().double().tolist()
    return result


def main() -> int:
    parsed = read_request(__doc__)
    if parsed is None:
        return 2
    request, out = parsed
    torch.set_grad_enabled(False)
    writer = Writer(out)

    def run_case(case: dict, _i: int) -> dict:
        return run_gradients(case, writer) if case["kind"] == "gradients" else run_attribute(case, writer)

    cases = run_cases(request.get("cases", []), run_case)
    write_index(out, {"torch": torch.__version__, "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
