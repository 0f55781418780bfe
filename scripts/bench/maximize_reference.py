"""Baseline for scripts/bench-maximize.js: the activation-maximization loop in PyTorch eager.

Usage: maximize_reference.py MODEL SIZE WARMUP STEPS LAYER:CHANNEL [LAYER:CHANNEL ...]

The loop torchscope runs with parameterization 'pixel', transforms [], normalize false:
the image [1, 3, SIZE, SIZE] is the parameter (requires grad), the objective is the mean of
one channel of LAYER, loss = -objective, backward, torch.optim.Adam(lr 0.05, foreach=False)
step, clamp to [0, 1]. The weights are the TorchScript file's, in the eager architecture of
scripts/torchscope_models.py, eval(), frozen. Two variants per layer:

  truncated  the eager forward run by hand up to LAYER (what a careful user writes; the
             layers after LAYER never run)
  full_hook  "Example 2": the whole model's forward with a forward hook storing LAYER's
             output; the backward still only goes through the layers up to LAYER

Prints JSON {"threads": n, "results": {"LAYER": {"truncated": [ms per step...],
"full_hook": [ms per step...]}}}, WARMUP steps excluded.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402

STEMS = ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4']


def truncated(model, layer):
    if layer not in STEMS:
        raise ValueError(f'the truncated variant takes a top-level layer ({", ".join(STEMS)}), got {layer!r}')
    modules = [getattr(model, name) for name in STEMS[: STEMS.index(layer) + 1]]

    def forward(x):
        for module in modules:
            x = module(x)
        return x

    return forward


def full_hook(model, layer):
    module = dict(model.named_modules())[layer]
    captured = {}
    module.register_forward_hook(lambda _m, _args, output: captured.__setitem__('output', output))

    def forward(x):
        model(x)
        return captured.pop('output')

    return forward


def loop(forward, channel, size, warmup, steps):
    torch.manual_seed(0)
    p = (0.5 + 0.01 * torch.randn(1, 3, size, size)).requires_grad_(True)
    optimizer = torch.optim.Adam([p], lr=0.05, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        objective = forward(p)[0][channel].mean()
        loss = -objective
        loss.backward()
        objective.item()
        optimizer.step()
        with torch.no_grad():
            p.data.clamp_(0, 1)
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return times


def main():
    model_file, size, warmup, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    targets = [(t.split(':')[0], int(t.split(':')[1])) for t in sys.argv[5:]]
    scripted = torch.jit.load(model_file).eval()
    results = {}
    for layer, channel in targets:
        results[layer] = {}
        for name, variant in (('truncated', truncated), ('full_hook', full_hook)):
            model = torchscope_models.resnet((2, 2, 2, 2), 64, num_classes=1000)  # fresh: no hooks left over
            model.load_state_dict(scripted.state_dict())
            model.eval().requires_grad_(False)
            results[layer][name] = loop(variant(model, layer), channel, size, warmup, steps)
    print(json.dumps({'threads': torch.get_num_threads(), 'torch': torch.__version__, 'results': results}))


if __name__ == '__main__':
    main()
