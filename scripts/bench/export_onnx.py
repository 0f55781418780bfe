"""ONNX files of ResNet-18 for `npm run bench:runtimes`, with the weights of a torchscope file.

Usage: export_onnx.py MODEL OUT_DIR
Writes OUT_DIR/resnet18.onnx (input -> logits) and OUT_DIR/resnet18-layer4.onnx (input ->
logits, layer4): layer4 added as an extra graph output, which is how a Node user reads an
intermediate activation with onnxruntime-node. Batch is a dynamic axis. torch.onnx's
TorchScript-based exporter (dynamo=False): the new one needs onnxscript, not in the mirror.
"""
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402

warnings.filterwarnings('ignore')


class WithLayer4(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        seen = {}
        handle = self.net.layer4.register_forward_hook(lambda m, a, out: seen.__setitem__('layer4', out))
        try:
            logits = self.net(x)
        finally:
            handle.remove()
        return logits, seen['layer4']


def main():
    model_file, out_dir = sys.argv[1], sys.argv[2]
    net = torchscope_models.resnet18()
    net.load_state_dict(torch.jit.load(model_file).state_dict())
    net.eval()
    x = torch.rand(1, 3, 224, 224)
    common = dict(dynamo=False, opset_version=17, input_names=['input'], do_constant_folding=True)
    torch.onnx.export(net, (x,), os.path.join(out_dir, 'resnet18.onnx'), output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, **common)
    torch.onnx.export(WithLayer4(net), (x,), os.path.join(out_dir, 'resnet18-layer4.onnx'), output_names=['logits', 'layer4'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}, 'layer4': {0: 'batch'}}, **common)


if __name__ == '__main__':
    main()
