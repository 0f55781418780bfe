"""PyTorch eager for `npm run bench:runtimes`, in its own process, on the weights of a torchscope file.

Usage: runtime_reference.py MODEL BATCHES CALLS WARMUP
Prints JSON {"1": {"forward": [ms...], "layer4": [ms...]}, ..., "logits": [first 10 of batch 0]}:
the eager ResNet-18's forward, and its forward with a hook on layer4 storing output.clone(),
under torch.no_grad(), on the same pseudo-random batch as the other runtimes.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402
from timing import timings  # noqa: E402


def input_data(batch):
    seed, values = 1, []
    for _ in range(batch * 3 * 224 * 224):
        seed = (seed * 16807) % 2147483647
        values.append(seed / 2147483647)
    return torch.tensor(values, dtype=torch.float32).reshape(batch, 3, 224, 224)


def main():
    model_file, batches, calls, warmup = sys.argv[1], [int(b) for b in sys.argv[2].split(',')], int(sys.argv[3]), int(sys.argv[4])
    net = torchscope_models.resnet18()
    net.load_state_dict(torch.jit.load(model_file).state_dict())
    net.eval()
    captured = {}
    out = {}
    with torch.no_grad():
        for batch in batches:
            x = input_data(batch)
            forward = timings(lambda: net(x), warmup, calls)
            handle = net.layer4.register_forward_hook(lambda m, a, output: captured.__setitem__('layer4', output.clone()))
            layer4 = timings(lambda: net(x), warmup, calls)
            handle.remove()
            out[str(batch)] = {'forward': forward, 'layer4': layer4}
            if 'logits' not in out:
                out['logits'] = net(x)[0, :10].tolist()
    print(json.dumps(out))


if __name__ == '__main__':
    main()
