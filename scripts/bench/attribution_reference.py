"""Baseline for scripts/bench-attribution.js: Captum's IntegratedGradients and Occlusion, as
Captum computes them, in PyTorch eager.

Usage: attribution_reference.py MODEL SIZE TARGET ROUNDS STEPS WINDOW STRIDE PER_EVAL

The weights are the TorchScript file's, in the eager architecture of
scripts/torchscope_models.py, eval(), frozen (a Captum user's nn.Module). Input: a seeded
[1, 3, SIZE, SIZE] image.

  integrated_gradients  STEPS Gauss-Legendre points, all in one batch (Captum's default
                        internal_batch_size=None): scaled inputs, one forward and backward,
                        step-weighted sum times (x - 0)
  occlusion             windows (3, WINDOW, WINDOW), strides (3, STRIDE, STRIDE), baseline 0,
                        PER_EVAL occluded copies per forward (perturbations_per_eval)

Prints JSON {"threads": n, "torch": version, "integrated_gradients": [ms...],
"occlusion": [ms...]}: ROUNDS timed runs each after one untimed run.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402
from timing import timings  # noqa: E402


def integrated_gradients(model, x, target, steps):
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, step_sizes = list(0.5 * (1 + nodes)), list(0.5 * weights)
    scaled = torch.cat([0 + a * (x - 0) for a in alphas], dim=0).requires_grad_()
    with torch.enable_grad():
        out = model(scaled)[:, target]
        grads = torch.autograd.grad(torch.unbind(out), scaled)[0]
    total = (grads.contiguous().view(steps, -1) * torch.tensor(step_sizes).float().view(steps, 1)).reshape((steps,) + tuple(x.shape)).sum(0)
    return total * (x - 0)


def occlusion(model, x, target, window, stride, per_eval):
    shape = x.shape[1:]
    win, strides = (3, window, window), (3, stride, stride)
    counts = [math.ceil((shape[d] - win[d]) / strides[d]) + 1 for d in range(3)]

    def mask(f):
        start = []
        for d in range(3):
            start.append((f % counts[d]) * strides[d])
            f //= counts[d]
        pad = []
        for d in reversed(range(3)):
            pad += [start[d], shape[d] - start[d] - win[d]]
        return torch.nn.functional.pad(torch.ones(win), pad).reshape((1,) + tuple(shape))

    with torch.no_grad():
        initial = model(x)[:, target]
        total = torch.zeros(x.shape)
        weights = torch.zeros((1,) + tuple(shape))
        n = math.prod(counts)
        for first in range(0, n, per_eval):
            masks = torch.stack([mask(f) for f in range(first, min(n, first + per_eval))])
            k = masks.shape[0]
            ablated = torch.where(masks.bool(), 0.0, torch.cat([x] * k).reshape((k, 1) + tuple(shape))).reshape((k,) + tuple(shape))
            modified = model(ablated)[:, target].reshape(-1, 1)
            diff = (initial.reshape(1, -1) - modified).reshape(k, 1, 1, 1, 1)
            total += (diff * masks).sum(0)
            weights += masks.sum(0)
        return total / weights


def main():
    model_file = sys.argv[1]
    size, target, rounds, steps, window, stride, per_eval = (int(v) for v in sys.argv[2:9])
    model = torchscope_models.resnet((2, 2, 2, 2), 64, num_classes=1000)
    model.load_state_dict(torch.jit.load(model_file).state_dict())
    model.eval().requires_grad_(False)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    print(json.dumps({
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'integrated_gradients': timings(lambda: integrated_gradients(model, x, target, steps), 1, rounds),
        'occlusion': timings(lambda: occlusion(model, x, target, window, stride, per_eval), 1, rounds),
    }))


if __name__ == '__main__':
    main()
