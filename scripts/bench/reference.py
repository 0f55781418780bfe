"""Baseline for `npm run bench`: Python PyTorch on the same weights.

Usage: reference.py MODEL BATCH WARMUP REPEATS
Prints JSON {"eager_hook": [ms...], "jit_forward": [ms...]}: the eager torchvision-style
ResNet-18 (weights from the TorchScript file) with a forward hook on layer4 storing
output.clone(), and the TorchScript file's forward, both under torch.no_grad().
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402
from timing import timings  # noqa: E402


def main():
    model_file, batch, warmup, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    scripted = torch.jit.load(model_file).eval()
    eager = torchscope_models.resnet18()
    eager.load_state_dict(scripted.state_dict())
    eager.eval()
    captured = {}
    eager.layer4.register_forward_hook(lambda module, args, output: captured.__setitem__('layer4', output.clone()))
    torch.manual_seed(0)
    x = torch.rand(batch, 3, 224, 224)
    with torch.no_grad():
        result = {
            'eager_hook': timings(lambda: eager(x), warmup, repeats),
            'jit_forward': timings(lambda: scripted(x), warmup, repeats),
        }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
