"""Higher-order regions of a torch.export program against eager PyTorch: a model with a
`torch.no_grad()` block, a `torch.autocast` (bfloat16) block and a `while_loop`, exported in the
training IR and in core ATen (`run_decompositions()`) into the request's folder, with eager
forward hooks' values.

Request (JSON): {"out"}. Writes regions.training.pt2, regions.core.pt2 and index.json: the input,
the output, the captures of `inp`, `frozen`, `cast` and `out` (forward hooks), x.grad of
output[:, 1].sum() (the no_grad block passes no gradient), and the same gradient of the model with
its no_grad block removed (what core ATen computes: run_decompositions inlines the block), and
the output of the whole forward under torch.autocast("cpu", bfloat16).
"""
import torch
import torch.nn as nn

from refio import read_request, write_index


class Regions(nn.Module):
    def __init__(self, no_grad: bool = True):
        super().__init__()
        self.no_grad = no_grad
        self.inp = nn.Linear(6, 6)
        self.frozen = nn.Linear(6, 6)
        self.cast = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        with torch.set_grad_enabled(not self.no_grad):
            f = self.frozen(h)
        h = h + f
        with torch.autocast("cpu", dtype=torch.bfloat16):
            c = self.cast(h)
        h = h + c.float()

        def cond_fn(i, v):
            return i < 3

        def body_fn(i, v):
            return i + 1, torch.sin(v) * 1.5

        _, h = torch._higher_order_ops.while_loop(cond_fn, body_fn, (torch.tensor(0), h))
        return self.out(h)


def build(no_grad: bool = True) -> Regions:
    torch.manual_seed(0)
    return Regions(no_grad).eval()


def flat(t: torch.Tensor) -> dict:
    return {"data": t.detach().float().flatten().tolist(), "shape": list(t.shape)}


def main() -> int:
    got = read_request("usage: pt2_regions_reference.py request.json")
    if got is None:
        return 2
    _, out = got
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    model = build()
    ep = torch.export.export(model, (x,))
    torch.export.save(ep, str(out / "regions.training.pt2"))
    torch.export.save(ep.run_decompositions(), str(out / "regions.core.pt2"))

    # The whole forward under autocast (torchscope's `precision: 'bf16'`), before any hook.
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = model(x)

    captures = {}
    for name in ["inp", "frozen", "cast", "out"]:
        model.get_submodule(name).register_forward_hook(lambda m, a, o, name=name: captures.__setitem__(name, o.detach().clone()))
    xg = x.clone().requires_grad_(True)
    y = model(xg)
    y[:, 1].sum().backward()

    plain = build(no_grad=False)
    xp = x.clone().requires_grad_(True)
    plain(xp)[:, 1].sum().backward()

    write_index(out, {
        "input": flat(x),
        "output": flat(y),
        "captures": {k: flat(v) for k, v in captures.items()},
        "grad": flat(xg.grad),
        "autocast": flat(autocast),
        "gradWithoutNoGrad": flat(xp.grad),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
