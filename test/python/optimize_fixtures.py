"""Models whose optimized programs take the rewrites' other paths (test/optimize-transformers.test.ts).

    python test/python/optimize_fixtures.py OUT_DIR

Writes OUT_DIR/attention3d.pt: a traced module with attention over 3-D [batch x heads, seq,
dim] tensors written with negative transpose dimensions (matched when the graph is rewritten,
run through the recorded ops since the operands are not 4-D), scaled by division, its mask
added on the left, a linear with an exact GELU after it, and a linear applied to a 1-D input
(ATen's path of the prepacked linear). Seeded; OUT_DIR/attention3d.json holds its inputs.
"""
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn


class Attention3d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.up = nn.Linear(8, 16)
        self.single = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, vector: torch.Tensor):
        q, k, v = self.qkv(x).split(8, dim=-1)
        scores = mask + torch.matmul(q, k.transpose(-2, -1)) / 2.0
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        return context, nn.functional.gelu(self.up(context)), self.single(vector)


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = Attention3d().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, 8, generator=g)
    mask = torch.zeros(6, 5, 5)
    mask[:, :, 3:] = torch.finfo(torch.float32).min
    vector = torch.randn(8, generator=g)
    with torch.no_grad():
        traced = torch.jit.trace(model, (x, mask, vector))
    traced.save(str(out / "attention3d.pt"))
    inputs = {"x": x.flatten().tolist(), "xShape": list(x.shape), "mask": mask.flatten().tolist(), "vector": vector.tolist()}
    (out / "attention3d.json").write_text(json.dumps(inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
