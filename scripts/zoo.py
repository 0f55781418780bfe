#!/usr/bin/env python3
"""A zoo of small TorchScript models that torchscope did not design, for its tests.

    .venv/bin/python scripts/zoo.py [--out DIR] [--only NAME[,NAME...]] [--force] [--list]

writes DIR/<name>.pt for every entry below and DIR/manifest.json (default DIR:
<repo>/models/zoo). An entry whose file is up to date (same definition hash,
same torch/transformers versions, file sha256 as recorded) is skipped; --force
re-exports. Each export verifies itself before the file is written: the
TorchScript module must reproduce the eager module (max abs diff <= 1e-5,
exact for integer outputs) on the example inputs, on a second seed and, where
the architecture allows, on inputs of another batch size / sequence length /
image size (so a trace that baked in shapes is caught); the saved file is
reloaded and checked again, its state_dict must load strictly into a fresh
eager build, every capture/patch path must fire as a forward hook (multi_call
ones at least twice) and zeroing the patch path must change the output.

Entries (name: mode, what):
  gpt2-lm                       trace   HF GPT2LMHeadModel (2 layers, n_embd 32) behind a wrapper returning (logits,)
  distilbert                    trace   HF DistilBertModel (2 layers, dim 32), padded attention mask
  roberta                       trace   HF RobertaModel (2 layers, hidden 32) + pooler, padded attention mask
  vit                           trace   HF ViTModel (32x32 images, patch 8, hidden 32, 2 layers) + pooler
  mobilenet-v3                  script  MobileNetV3-style CNN: depthwise convs, inverted residuals, SE + Hardsigmoid,
                                        Hardswish (one shared instance called 3 times), calibrated BatchNorm
  efficientnet                  trace   EfficientNet-style CNN: MBConv, SiLU, SE, calibrated BatchNorm
  convnext                      script  ConvNeXt-style CNN: 7x7 depthwise, channels-last LayerNorm, Linear, GELU, layer scale
  lstm-scripted / lstm-traced   script/trace  Embedding + 2-layer LSTM + Linear heads (same class)
  gru-scripted / gru-traced     script/trace  Embedding + 2-layer GRU + Linear heads (same class)
  transformer-encoder-scripted / -traced   nn.TransformerEncoder (2 layers, d_model 32) with key padding mask
  unet                          trace   small UNet: skip connections (torch.cat), ConvTranspose2d, shared MaxPool2d
  dict-io-scripted / -traced    script/trace(strict=False)  Dict[str, Tensor] in and out; a submodule returning a
                                        dict whose value the caller then modifies in place
  list-io                       script  List[Tensor] in and out; a submodule returning a list, mutated in place
  mlp-float64                   script  Conv1d + MLP in float64
  cnn-bfloat16                  trace   small CNN + Linear head in bfloat16
  loop-scripted / loop-traced   script/trace  a shared block called twice in straight-line code and in a
                                        `for _ in range(self.steps)` loop (prim::Loop when scripted, unrolled when traced)
  overload-scripted             script  a submodule with an overloaded forward (forward__0 / forward__1) and an
                                        @torch.jit.export method the caller also calls; tuple input

manifest.json: {"version": 1, "torch", "transformers", "models": [{"name", "file", "mode",
"family", "dtype", "capture", "multiCall", "patch", "notes", "sha256", "definition_hash",
"bytes", "weights_sha256", "calls", "eagerOutputs", "torchscriptReturns"}]}; the last three
give, per capture/patch path, the eager forward-hook call count on inputs(0), the structure an
eager hook sees, and the return type of each forward-like method TorchScript compiled for it
(forward, forward1.. for repeated traced calls, forward__0.. for overloads). They differ:
a trace drops unused outputs and flattens nested tuples and dicts.

As a module (for test/python/zoo_reference.py):

    import zoo
    e = zoo.ENTRIES["gpt2-lm"]
    model = e.build()          # fresh seeded eager module in eval mode, same weights every call
    args = e.inputs(0)         # forward's positional inputs for a seed
    e.mode, e.capture, e.multi_call, e.patch, e.family, e.dtype, e.notes

Output is reproducible for the same torch/transformers versions and checkout path:
weights are seeded, PYTHONHASHSEED is pinned (the CLI re-executes itself) and each
entry is exported in a fresh fork so TorchScript's type-name mangling does not depend
on what else was exported in the run.
"""

if __name__ == "__main__":
    # Before anything else: pin the string hash seed (scripted modules list their
    # __constants__ in set order), then run as the importable module `zoo`, so that
    # TorchScript's qualified names are __torch__.zoo.X whichever way it is invoked.
    import os as _os
    import subprocess as _subprocess
    import sys as _sys

    if _os.environ.get("PYTHONHASHSEED") != "0":
        _env = dict(_os.environ, PYTHONHASHSEED="0")
        _sys.exit(_subprocess.call([_sys.executable, _os.path.abspath(__file__), *_sys.argv[1:]], env=_env))
    _sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))
    import zoo as _zoo

    _sys.exit(_zoo.main())

import argparse  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from collections import Counter, OrderedDict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from torch import Tensor  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torchscope_models as tm  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "models" / "zoo"
SEED = 0
TOL = 1e-5
MANIFEST_VERSION = 1


# ====================================================================== entries


@dataclass
class Entry:
    """One zoo model; what the Python reference (test/python/zoo_reference.py) uses.

    build()       fresh eager module: seeded, eval(), the same weights every call
    inputs(seed)  forward's positional inputs (tensors, Dict[str, Tensor], List/Tuple of
                  tensors); deterministic; the same structure and shapes for every seed
    capture       >= 3 module paths (named_modules() names) to capture, one nested at least
    multi_call    the capture paths forward calls more than once (eager hook count >= 2)
    patch         a path whose output's first tensor, zeroed, visibly changes the output
    """

    name: str
    mode: str  # 'script' | 'trace'
    family: str
    build: Callable[[], nn.Module] = field(repr=False)
    inputs: Callable[[int], list] = field(repr=False)
    capture: List[str]
    multi_call: List[str]
    patch: str
    dtype: str = "float32"
    notes: str = ""
    # Inputs of another batch size / length / image size, for the export check only
    # (None: the architecture fixes the shapes; only a second seed is checked).
    alt_inputs: Optional[Callable[[int], list]] = field(default=None, repr=False)
    trace_strict: bool = True  # torch.jit.trace(strict=...); False allows dict outputs
    # Context manager entered around torch.jit.trace (e.g. to trace a slow path).
    trace_context: Optional[Callable[[], Any]] = field(default=None, repr=False)
    tol: float = TOL

    @property
    def file(self) -> str:
        return f"{self.name}.pt"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _seeded(ctor: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(SEED)
    return ctor()


def _persist_buffers(model: nn.Module) -> nn.Module:
    """Make non-persistent buffers persistent.

    TorchScript's state_dict() lists every buffer, persistent or not (e.g. HF
    embeddings' position_ids), so without this an exported file's state_dict
    would not load strictly into the eager module. The values are what the
    module computes with either way.
    """
    for m in model.modules():
        m._non_persistent_buffers_set.clear()
    return model


@contextlib.contextmanager
def one_thread():
    """Single-threaded ATen: reductions then do not depend on the core count (and tiny
    models run faster than with contended OpenMP threads)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _calibrated(model: nn.Module, shape: Tuple[int, ...], steps: int = 6) -> nn.Module:
    """Non-trivial BatchNorm running statistics (train-mode passes on seeded data), then eval()."""
    with one_thread():
        return tm.calibrate_bn(model, SEED + 100, shape, steps=steps)


def _tokens(seed: int, batch: int, seq: int, vocab: int, pad_id: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """(input_ids, attention_mask): row i > 0 is padded on the right by a different amount."""
    g = _gen(seed)
    ids = torch.randint(3, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    for i in range(1, batch):
        mask[i, max(1, seq - 2 - 3 * i):] = 0
    if pad_id is not None:
        ids = ids.masked_fill(mask == 0, pad_id)
    return ids, mask


def _randn(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=_gen(seed)).to(dtype)


# ---------------------------------------------------------------- Hugging Face

HF_VOCAB = 128


class GPT2LM(nn.Module):
    """GPT2LMHeadModel behind forward(input_ids) -> (logits,)."""

    def __init__(self) -> None:
        super().__init__()
        cfg = transformers.GPT2Config(
            n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=HF_VOCAB,
            bos_token_id=0, eos_token_id=0, attn_implementation="eager",
        )
        self.model = transformers.GPT2LMHeadModel(cfg)

    def forward(self, input_ids: Tensor) -> Tuple[Tensor]:
        out = self.model(input_ids, use_cache=False, return_dict=False)
        return (out[0],)


def build_gpt2() -> nn.Module:
    return _persist_buffers(_seeded(GPT2LM)).eval()


class DistilBert(transformers.DistilBertModel):
    """DistilBertModel returning (last_hidden_state,); subclassed so paths match HF checkpoints."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[Tensor]:  # type: ignore[override]
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return (out.last_hidden_state,)


def build_distilbert() -> nn.Module:
    cfg = transformers.DistilBertConfig(
        vocab_size=HF_VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64,
        attn_implementation="eager",
    )
    return _persist_buffers(_seeded(lambda: DistilBert(cfg))).eval()


class Roberta(transformers.RobertaModel):
    """RobertaModel returning (last_hidden_state, pooler_output)."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[Tensor, Tensor]:  # type: ignore[override]
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return out.last_hidden_state, out.pooler_output


def build_roberta() -> nn.Module:
    cfg = transformers.RobertaConfig(
        vocab_size=HF_VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=66, pad_token_id=1, attn_implementation="eager",
    )
    return _persist_buffers(_seeded(lambda: Roberta(cfg))).eval()


class ViT(transformers.ViTModel):
    """ViTModel returning (last_hidden_state, pooler_output)."""

    def forward(self, pixel_values: Tensor) -> Tuple[Tensor, Tensor]:  # type: ignore[override]
        out = super().forward(pixel_values=pixel_values, return_dict=True)
        return out.last_hidden_state, out.pooler_output


def build_vit() -> nn.Module:
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, attn_implementation="eager",
    )
    return _persist_buffers(_seeded(lambda: ViT(cfg))).eval()


# ---------------------------------------------------------------- MobileNetV3-style (scripted)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBN(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + activation (Identity when act is None)."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: Optional[nn.Module] = None
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int, act: Callable[[], nn.Module], gate: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x: Tensor) -> Tensor:
        s = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, use_se: bool, hswish: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        self.use_res = stride == 1 and cin == cout
        self.expand = ConvBN(cin, exp, 1, act=act()) if exp != cin else nn.Identity()
        self.dw = ConvBN(exp, exp, k, stride, groups=exp, act=act())
        self.se = (
            SqueezeExcite(exp, _make_divisible(exp / 4), lambda: nn.ReLU(inplace=True), nn.Hardsigmoid)
            if use_se
            else nn.Identity()
        )
        self.project = ConvBN(exp, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        if self.use_res:
            y = y + x
        return y


class MobileNetV3(nn.Module):
    # (kernel, expanded, out, squeeze-excite, hardswish, stride)
    CONFIG = [
        (3, 16, 16, True, False, 2),
        (3, 48, 24, False, False, 2),
        (3, 64, 24, False, False, 1),
        (5, 72, 40, True, True, 2),
        (5, 120, 40, True, True, 1),
    ]

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        # One Hardswish instance used after the stem, the head conv and the first
        # classifier layer: a module forward calls three times.
        self.act = nn.Hardswish()
        cin = 16
        blocks: List[nn.Module] = []
        for k, exp, cout, se, hs, stride in self.CONFIG:
            blocks.append(InvertedResidual(cin, exp, cout, k, stride, se, hs))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head_conv = nn.Conv2d(cin, 96, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(96)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(96, 64)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        x = self.act(self.head_bn(self.head_conv(x)))
        x = torch.flatten(self.pool(x), 1)
        x = self.dropout(self.act(self.fc1(x)))
        return self.fc2(x)


def build_mobilenet() -> nn.Module:
    return _calibrated(_seeded(MobileNetV3), (8, 3, 32, 32))


# ---------------------------------------------------------------- EfficientNet-style (traced)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        exp = cin * expand_ratio
        self.use_res = stride == 1 and cin == cout
        self.expand = ConvBN(cin, exp, 1, act=nn.SiLU()) if expand_ratio != 1 else nn.Identity()
        self.dw = ConvBN(exp, exp, k, stride, groups=exp, act=nn.SiLU())
        self.se = SqueezeExcite(exp, max(1, cin // 4), nn.SiLU, nn.Sigmoid)
        self.project = ConvBN(exp, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        if self.use_res:
            y = y + x  # no stochastic depth
        return y


class EfficientNet(nn.Module):
    # (in, out, kernel, stride, expand ratio)
    CONFIG = [(16, 16, 3, 1, 1), (16, 24, 3, 2, 4), (24, 24, 3, 1, 4), (24, 40, 5, 2, 4), (40, 40, 5, 1, 6)]

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = ConvBN(3, 16, 3, 2, act=nn.SiLU())
        self.blocks = nn.Sequential(*[MBConv(*c) for c in self.CONFIG])
        self.head = ConvBN(40, 128, 1, act=nn.SiLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(128, num_classes)
        for m in self.modules():  # torchvision's EfficientNet init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / m.out_features**0.5
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


def build_efficientnet() -> nn.Module:
    return _calibrated(_seeded(EfficientNet), (8, 3, 32, 32))


# ---------------------------------------------------------------- ConvNeXt-style (scripted)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor, via channels-last permutes."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        # Layer scale: real ConvNeXt starts at 1e-6, which would make every block
        # nearly the identity (and patches invisible); use seeded values in [0.2, 1).
        self.gamma = nn.Parameter(torch.empty(dim).uniform_(0.2, 1.0))

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        x = self.gamma * x
        x = x.permute(0, 3, 1, 2)
        return shortcut + x


class ConvNeXt(nn.Module):
    def __init__(self, dims: Tuple[int, int] = (16, 32), depths: Tuple[int, int] = (2, 2), num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6)),
            nn.Sequential(*[ConvNeXtBlock(dims[0]) for _ in range(depths[0])]),
            nn.Sequential(LayerNorm2d(dims[0], eps=1e-6), nn.Conv2d(dims[0], dims[1], 2, 2)),
            nn.Sequential(*[ConvNeXtBlock(dims[1]) for _ in range(depths[1])]),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_norm = LayerNorm2d(dims[1], eps=1e-6)
        self.classifier = nn.Linear(dims[1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head_norm(self.pool(self.features(x)))
        return self.classifier(torch.flatten(x, 1))


def build_convnext() -> nn.Module:
    return _seeded(ConvNeXt).eval()


# ---------------------------------------------------------------- recurrent (scripted + traced)

RNN_VOCAB = 50


class LSTMTagger(nn.Module):
    """Token tagger; uses output, h and c so a trace keeps all three LSTM outputs."""

    def __init__(self, vocab: int = RNN_VOCAB, emb: int = 16, hidden: int = 32, classes: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, classes))
        self.state_head = nn.Linear(2 * hidden, classes)

    def forward(self, ids: Tensor) -> Tensor:
        out, (h, c) = self.rnn(self.embed(ids))
        y = self.head(out)
        s = self.state_head(torch.cat([h[-1], c[-1]], dim=1))
        return y + s.unsqueeze(1)


class GRUTagger(nn.Module):
    def __init__(self, vocab: int = RNN_VOCAB, emb: int = 16, hidden: int = 32, classes: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.rnn = nn.GRU(emb, hidden, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, classes))
        self.state_head = nn.Linear(hidden, classes)

    def forward(self, ids: Tensor) -> Tensor:
        out, h = self.rnn(self.embed(ids))
        y = self.head(out)
        return y + self.state_head(h[-1]).unsqueeze(1)


def build_lstm() -> nn.Module:
    return _seeded(LSTMTagger).eval()


def build_gru() -> nn.Module:
    return _seeded(GRUTagger).eval()


def rnn_inputs(seed: int, batch: int = 2, seq: int = 10) -> list:
    return [torch.randint(0, RNN_VOCAB, (batch, seq), generator=_gen(seed))]


# ---------------------------------------------------------------- nn.TransformerEncoder


class EncoderClassifier(nn.Module):
    def __init__(self, d_in: int = 8, d_model: int = 32, classes: int = 5) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        h = self.encoder(self.inp(x), src_key_padding_mask=padding_mask)
        return self.head(h)


def build_transformer_encoder() -> nn.Module:
    return _seeded(EncoderClassifier).eval()


def encoder_inputs(seed: int, batch: int = 2, seq: int = 10) -> list:
    """x [batch, seq, 8] and a bool key padding mask (True = padding), row i > 0 padded."""
    x = _randn(seed, batch, seq, 8)
    mask = torch.zeros(batch, seq, dtype=torch.bool)
    for i in range(1, batch):
        mask[i, max(1, seq - 2 - 3 * i):] = True
    return [x, mask]


def _mha_slow_path():
    """Trace the composite (unfused) TransformerEncoderLayer path, so its submodules are called."""

    @contextlib.contextmanager
    def ctx():
        old = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            yield
        finally:
            torch.backends.mha.set_fastpath_enabled(old)

    return ctx()


# ---------------------------------------------------------------- UNet (traced)


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, cin: int = 3, classes: int = 2, w: int = 8) -> None:
        super().__init__()
        self.enc1 = double_conv(cin, w)
        self.enc2 = double_conv(w, 2 * w)
        self.bottleneck = double_conv(2 * w, 4 * w)
        self.pool = nn.MaxPool2d(2)  # shared: called twice
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = double_conv(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = double_conv(2 * w, w)
        self.out = nn.Conv2d(w, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottleneck(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1)


def build_unet() -> nn.Module:
    return _calibrated(_seeded(UNet), (4, 3, 32, 32))


# ---------------------------------------------------------------- dict in / dict out


class PyramidFeatures(nn.Module):
    def __init__(self, cin: int = 4) -> None:
        super().__init__()
        self.c2 = nn.Conv2d(cin, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        p2 = self.c2(x)
        p3 = self.c3(p2)
        return {"p2": p2, "p3": p3}


class DictNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fpn = PyramidFeatures(4)
        self.head = nn.Conv2d(8, 3, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        x = torch.cat([batch["image"], batch["mask"]], dim=1)
        feats = self.fpn(x)
        # In place on a value of the dict fpn returned (which is fpn.c2's output
        # tensor itself): captures of fpn / fpn.c2 must be copies taken before this.
        p2 = torch.relu_(feats["p2"])
        logits = self.head(p2) * batch["mask"]
        features = self.fc(torch.flatten(self.pool(feats["p3"]), 1))
        return {"logits": logits, "features": features}


def build_dictnet() -> nn.Module:
    return _seeded(DictNet).eval()


def dict_inputs(seed: int, batch: int = 2, size: int = 16) -> list:
    g = _gen(seed)
    image = torch.randn(batch, 3, size, size, generator=g)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.3).to(torch.float32)
    return [{"image": image, "mask": mask}]


# ---------------------------------------------------------------- list in / list out (scripted)


class Branches(nn.Module):
    def __init__(self, n: int = 3, d: int = 8, h: int = 16) -> None:
        super().__init__()
        self.lins = nn.ModuleList([nn.Linear(d, h) for _ in range(n)])

    def forward(self, xs: List[Tensor]) -> List[Tensor]:
        out: List[Tensor] = []
        for i, lin in enumerate(self.lins):
            out.append(lin(xs[i]))
        return out


class ListNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branches = Branches()
        self.act = nn.ReLU()  # called twice
        self.mix = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, xs: List[Tensor]) -> List[Tensor]:
        hs = self.branches(xs)
        # In place on elements of the list branches returned (branches.lins.0's
        # and branches.lins.1's output tensors themselves).
        hs[0].mul_(2.0)
        torch.relu_(hs[1])
        s = hs[0] + hs[1] + hs[2]
        m = self.mix(s)
        return [self.head(self.act(m)), self.act(s), hs[1]]


def build_listnet() -> nn.Module:
    return _seeded(ListNet).eval()


def list_inputs(seed: int, batch: int = 2) -> list:
    g = _gen(seed)
    return [[torch.randn(batch, 8, generator=g) for _ in range(3)]]


# ---------------------------------------------------------------- float64 / bfloat16


class SignalMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 5, padding=2)
        self.pool = nn.AdaptiveAvgPool1d(8)
        self.mlp = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh())
        self.out = nn.Linear(32, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.flatten(self.pool(torch.tanh(self.conv(x))), 1)
        return self.out(self.mlp(h))


def build_mlp64() -> nn.Module:
    return _seeded(SignalMLP).double().eval()


class TinyCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def build_cnn_bf16() -> nn.Module:
    # Calibrate BatchNorm in float32, then convert everything (stats included).
    return _calibrated(_seeded(TinyCNN), (8, 3, 32, 32)).to(torch.bfloat16).eval()


# ---------------------------------------------------------------- loops / repeated calls


class ResidualBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.lin(x))


class LoopNet(nn.Module):
    def __init__(self, d_in: int = 8, d: int = 16, classes: int = 4, steps: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.block = ResidualBlock(d)  # shared: 2 + steps calls
        self.act = nn.GELU()  # shared: 3 + steps calls
        self.head = nn.Linear(d, classes)
        self.steps = steps  # plain int attribute (not Final): the loop stays a prim::Loop

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.inp(x))
        h = self.act(self.block(h))
        h = self.act(self.block(h))
        for _ in range(self.steps):
            h = self.act(self.block(h))
        return self.head(h)


def build_loopnet() -> nn.Module:
    return _seeded(LoopNet).eval()


# ---------------------------------------------------------------- overloads / exported methods


class Fuse(nn.Module):
    """forward is overloaded (TorchScript compiles forward__0 / forward__1); project is exported."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.lin = nn.Linear(d, d)

    @torch.jit._overload_method  # noqa: F811
    def forward(self, x: Tensor) -> Tensor:  # noqa: F811
        pass

    @torch.jit._overload_method  # noqa: F811
    def forward(self, x: Tuple[Tensor, Tensor]) -> Tensor:  # noqa: F811
        pass

    def forward(self, x):  # noqa: F811
        if isinstance(x, Tensor):
            return torch.tanh(self.lin(x))
        return torch.tanh(self.lin(x[0]) + x[1])

    @torch.jit.export
    def project(self, x: Tensor) -> Tensor:
        # Not forward: calling it must not count as a call of `fuse` (eager hooks
        # on fuse do not fire), but fuse.lin's forward runs inside it.
        return self.lin(x) * 0.5


class OverloadNet(nn.Module):
    def __init__(self, d_in: int = 8, d: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.enc = nn.Linear(d_in, d)  # called twice
        self.fuse = Fuse(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x: Tensor, pair: Tuple[Tensor, Tensor]) -> Tensor:
        a = self.fuse(self.enc(x))  # Fuse.forward(Tensor)   -> forward__0
        b = self.fuse((a, self.enc(pair[0]) * pair[1]))  # Fuse.forward(tuple) -> forward__1
        c = self.fuse.project(b)  # exported method, not a forward call
        return self.head(c)


def build_overloadnet() -> nn.Module:
    return _seeded(OverloadNet).eval()


def overload_inputs(seed: int, batch: int = 2) -> list:
    g = _gen(seed)
    return [torch.randn(batch, 8, generator=g), (torch.randn(batch, 8, generator=g), torch.randn(batch, 16, generator=g))]


# ---------------------------------------------------------------- the list

TRACE_DROPS = (
    "torch.jit.trace keeps only the submodule outputs that are used and flattens nested tuples/dicts: "
)

_ENTRY_LIST: List[Entry] = [
    Entry(
        name="gpt2-lm",
        mode="trace",
        family="decoder-only transformer (HF GPT-2 + LM head, traced)",
        build=build_gpt2,
        inputs=lambda seed: [_tokens(seed, 2, 12, HF_VOCAB)[0]],
        alt_inputs=lambda seed: [_tokens(seed, 3, 7, HF_VOCAB)[0]],
        capture=["model.transformer.h.0.attn", "model.transformer.h.1.mlp", "model.transformer.ln_f",
                 "model.lm_head"],
        multi_call=[],
        patch="model.transformer.h.0.mlp",
        notes=(
            "Wrapper module: paths start with 'model.'; lm_head.weight is tied to transformer.wte.weight (both "
            "keys are in the state_dict). Eager attention; the causal mask is built inside the trace from the "
            "input's shape. " + TRACE_DROPS + "eager h.N.attn returns (attn_output, attn_weights), the traced "
            "h.N.attn returns the attn_output Tensor only."
        ),
    ),
    Entry(
        name="distilbert",
        mode="trace",
        family="encoder-only transformer (HF DistilBERT, traced)",
        build=build_distilbert,
        inputs=lambda seed: list(_tokens(seed, 2, 12, HF_VOCAB)),
        alt_inputs=lambda seed: list(_tokens(seed, 3, 9, HF_VOCAB)),
        capture=["embeddings", "transformer.layer.0.attention", "transformer.layer.1.ffn.lin1",
                 "transformer.layer.1.output_layer_norm"],
        multi_call=[],
        patch="transformer.layer.0.ffn",
        notes=(
            "Subclass of DistilBertModel (HF paths) returning (last_hidden_state,). Inputs (input_ids, "
            "attention_mask int64); row 1 is right-padded. The non-persistent embeddings.position_ids buffer is "
            "made persistent (TorchScript state_dict lists it). Do not capture 'transformer': eager it returns a "
            "BaseModelOutput (a dict-like ModelOutput). " + TRACE_DROPS + "eager transformer.layer.N.attention "
            "returns (context, weights), traced only the context Tensor."
        ),
    ),
    Entry(
        name="roberta",
        mode="trace",
        family="encoder-only transformer (HF RoBERTa + pooler, traced)",
        build=build_roberta,
        inputs=lambda seed: list(_tokens(seed, 2, 12, HF_VOCAB, pad_id=1)),
        alt_inputs=lambda seed: list(_tokens(seed, 3, 9, HF_VOCAB, pad_id=1)),
        capture=["embeddings", "encoder.layer.0.attention.self", "encoder.layer.1.intermediate", "pooler"],
        multi_call=[],
        patch="encoder.layer.0.attention.self",
        notes=(
            "Subclass of RobertaModel returning (last_hidden_state, pooler_output). Padded positions hold "
            "pad_token_id 1, so position ids (computed from input_ids) differ from BERT's. position_ids / "
            "token_type_ids buffers made persistent. " + TRACE_DROPS + "eager encoder.layer.N.attention.self "
            "returns (context, probs), traced only the context Tensor; the patch zeroes the context in both."
        ),
    ),
    Entry(
        name="vit",
        mode="trace",
        family="vision transformer (HF ViT + pooler, traced)",
        build=build_vit,
        inputs=lambda seed: [_randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [_randn(seed, 3, 3, 32, 32)],
        capture=["embeddings.patch_embeddings", "layers.0.attention", "layers.0.dropout", "layers.1.mlp.fc1",
                 "layernorm"],
        multi_call=["layers.0.dropout"],
        patch="layers.0.mlp",
        notes=(
            "transformers 5 ViT layout: layers.N.{layernorm_before,attention.{q,k,v,o}_proj,dropout,"
            "layernorm_after,mlp.{fc1,fc2}}. layers.N.dropout (identity in eval) is called twice per layer "
            "(after attention and after the MLP): traced as forward and forward1. Image size is fixed at 32 "
            "(position embeddings; interpolate_pos_encoding is off); only the batch size varies. "
            + TRACE_DROPS + "eager layers.N.attention returns (output, weights), traced only the output."
        ),
    ),
    Entry(
        name="mobilenet-v3",
        mode="script",
        family="CNN (MobileNetV3-style: depthwise, inverted residuals, SE + Hardsigmoid, Hardswish; scripted)",
        build=build_mobilenet,
        inputs=lambda seed: [_randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [_randn(seed, 3, 3, 40, 40)],
        capture=["stem_bn", "act", "blocks.0.se", "blocks.3.se.gate", "blocks.4"],
        multi_call=["act"],
        patch="blocks.3",
        notes=(
            "BatchNorm running stats calibrated (train-mode passes on seeded data). One nn.Hardswish instance "
            "`act` is called 3 times (stem, head conv, classifier). SE's ReLU is inplace=True (acts on fc1's "
            "output). Blocks without SE/expansion have nn.Identity submodules that are still called."
        ),
    ),
    Entry(
        name="efficientnet",
        mode="trace",
        family="CNN (EfficientNet-style: MBConv, SiLU, SE; traced)",
        build=build_efficientnet,
        inputs=lambda seed: [_randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [_randn(seed, 3, 3, 48, 48)],
        capture=["stem", "blocks.1.se", "blocks.3.dw.act", "blocks.4", "head"],
        multi_call=[],
        patch="blocks.3.se",
        notes="BatchNorm running stats calibrated; no stochastic depth; blocks.0 has an nn.Identity expand.",
    ),
    Entry(
        name="convnext",
        mode="script",
        family="CNN (ConvNeXt-style: 7x7 depthwise, channels-last LayerNorm, Linear MLP, GELU, layer scale; scripted)",
        build=build_convnext,
        inputs=lambda seed: [_randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [_randn(seed, 1, 3, 48, 48)],
        capture=["features.0", "features.1.0.dwconv", "features.1.1.norm", "features.3.1", "head_norm"],
        multi_call=[],
        patch="features.1.0.pwconv2",
        notes=(
            "features.N.M.norm and pwconv1/pwconv2 work on channels-last [N, H, W, C] tensors (after a "
            "permute); dwconv outputs are NCHW. LayerNorm2d subclasses nn.LayerNorm (permute, layer_norm, "
            "permute). gamma (layer scale) is seeded in [0.2, 1) instead of 1e-6."
        ),
    ),
    Entry(
        name="lstm-scripted",
        mode="script",
        family="RNN (Embedding + 2-layer LSTM + Linear heads; scripted)",
        build=build_lstm,
        inputs=lambda seed: rnn_inputs(seed),
        alt_inputs=lambda seed: rnn_inputs(seed, 3, 13),
        capture=["embed", "rnn", "head.0", "head", "state_head"],
        multi_call=[],
        patch="rnn",
        notes=(
            "nn.LSTM's forward is overloaded in TorchScript: the call compiles to "
            "prim::CallMethod[name=\"forward__0\"] (the module has forward__0 and forward__1, no 'forward'). "
            "rnn returns (output, (h_n, c_n)) in eager and scripted; the patch zeroes output only."
        ),
    ),
    Entry(
        name="lstm-traced",
        mode="trace",
        family="RNN (Embedding + 2-layer LSTM + Linear heads; traced)",
        build=build_lstm,
        inputs=lambda seed: rnn_inputs(seed),
        alt_inputs=lambda seed: rnn_inputs(seed, 3, 13),
        capture=["embed", "rnn", "head.0", "head", "state_head"],
        multi_call=[],
        patch="rnn",
        notes=(
            "Same class and weights as lstm-scripted. " + TRACE_DROPS + "eager rnn returns (output, (h_n, c_n)), "
            "the traced rnn.forward returns the flat tuple (output, h_n, c_n). The patch zeroes output only."
        ),
    ),
    Entry(
        name="gru-scripted",
        mode="script",
        family="RNN (Embedding + 2-layer GRU + Linear heads; scripted)",
        build=build_gru,
        inputs=lambda seed: rnn_inputs(seed),
        alt_inputs=lambda seed: rnn_inputs(seed, 3, 13),
        capture=["embed", "rnn", "head.2", "state_head"],
        multi_call=[],
        patch="rnn",
        notes=(
            "nn.GRU's forward is overloaded: called as forward__0. rnn returns (output, h_n); the patch zeroes "
            "output only."
        ),
    ),
    Entry(
        name="gru-traced",
        mode="trace",
        family="RNN (Embedding + 2-layer GRU + Linear heads; traced)",
        build=build_gru,
        inputs=lambda seed: rnn_inputs(seed),
        alt_inputs=lambda seed: rnn_inputs(seed, 3, 13),
        capture=["embed", "rnn", "head.2", "state_head"],
        multi_call=[],
        patch="rnn",
        notes="Same class and weights as gru-scripted. rnn returns (output, h_n) eager and traced.",
    ),
    Entry(
        name="transformer-encoder-scripted",
        mode="script",
        family="transformer encoder (torch.nn.TransformerEncoder, batch_first, key padding mask; scripted)",
        build=build_transformer_encoder,
        inputs=lambda seed: encoder_inputs(seed),
        alt_inputs=lambda seed: encoder_inputs(seed, 3, 7),
        capture=["inp", "encoder.layers.0.self_attn", "encoder.layers.0.linear1", "encoder.layers.1",
                 "encoder.layers.1.norm2"],
        multi_call=[],
        patch="encoder.layers.0.linear2",
        notes=(
            "FUSED FAST PATH: in eval mode with grad disabled, the scripted TransformerEncoderLayer.forward "
            "takes the torch._transformer_encoder_layer_fwd branch (the scripted hook check compiles to empty "
            "dicts, i.e. 'no hooks'), so self_attn/linear1/linear2/norm1/norm2/dropout* are never called and "
            "only encoder.layers.N itself is; with grad enabled (params require grad) or "
            "torch.backends.mha.set_fastpath_enabled(False) the composite path runs. In eager Python any "
            "forward hook on the layer or its submodules disables the fast path (hooks fire); fast and slow "
            "paths agree to ~1e-6. self_attn returns (attn_output, None) (need_weights=False); "
            "self_attn.out_proj is never called as a module. padding_mask is bool (True = pad)."
        ),
    ),
    Entry(
        name="transformer-encoder-traced",
        mode="trace",
        family="transformer encoder (torch.nn.TransformerEncoder, batch_first, key padding mask; traced)",
        build=build_transformer_encoder,
        inputs=lambda seed: encoder_inputs(seed),
        alt_inputs=lambda seed: encoder_inputs(seed, 3, 7),
        capture=["inp", "encoder.layers.0.self_attn", "encoder.layers.0.linear1", "encoder.layers.1",
                 "encoder.layers.1.norm2"],
        multi_call=[],
        patch="encoder.layers.0.linear2",
        trace_context=_mha_slow_path,
        notes=(
            "Traced with torch.backends.mha.set_fastpath_enabled(False), so the trace records the composite "
            "path and every submodule call (a no-grad trace with the fast path on records a single "
            "aten::_transformer_encoder_layer_fwd per layer and none of its submodules). Same weights as "
            "transformer-encoder-scripted. " + TRACE_DROPS + "eager self_attn returns (attn_output, None), "
            "traced the attn_output Tensor; self_attn.out_proj is never called as a module."
        ),
    ),
    Entry(
        name="unet",
        mode="trace",
        family="encoder-decoder CNN (UNet: skip concatenation, ConvTranspose2d, BatchNorm; traced)",
        build=build_unet,
        inputs=lambda seed: [_randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [_randn(seed, 1, 3, 48, 48)],
        capture=["enc1", "pool", "enc2.4", "up2", "dec1.0"],
        multi_call=["pool"],
        patch="up1",
        notes=(
            "pool (MaxPool2d) is shared: called twice, traced as forward and forward1. Every double_conv ends "
            "in ReLU(inplace=True), so e.g. enc2.4 (BatchNorm) output is overwritten in place by enc2.5 right "
            "after the call: captures must be copies. enc1/enc2 outputs are reused as skip connections."
        ),
    ),
    Entry(
        name="dict-io-scripted",
        mode="script",
        family="dict in / dict out CNN (Dict[str, Tensor] forward, submodule returning a dict; scripted)",
        build=build_dictnet,
        inputs=lambda seed: dict_inputs(seed),
        alt_inputs=lambda seed: dict_inputs(seed, 3, 24),
        capture=["fpn", "fpn.c2", "fpn.c3", "head", "fc"],
        multi_call=[],
        patch="fpn.c2",
        notes=(
            "forward(batch: Dict[str, Tensor]) with keys image [N,3,H,W], mask [N,1,H,W] (0/1 float) -> "
            "{'logits': [N,3,H,W], 'features': [N,5]}. fpn returns {'p2', 'p3'}; the caller then runs "
            "torch.relu_ on feats['p2'], which is fpn.c2's output tensor itself: captures of fpn and fpn.c2 "
            "must be deep copies taken at return time."
        ),
    ),
    Entry(
        name="dict-io-traced",
        mode="trace",
        trace_strict=False,
        family="dict in / dict out CNN (Dict[str, Tensor] forward, submodule returning a dict; traced strict=False)",
        build=build_dictnet,
        inputs=lambda seed: dict_inputs(seed),
        alt_inputs=lambda seed: dict_inputs(seed, 3, 24),
        capture=["fpn", "fpn.c2", "fpn.c3", "head", "fc"],
        multi_call=[],
        patch="fpn.c2",
        notes=(
            "torch.jit.trace(..., strict=False): the top-level forward keeps Dict[str, Tensor] in and out, but "
            "the traced fpn.forward returns the tuple (p2, p3), not a dict (eager: {'p2', 'p3'}). The caller's "
            "torch.relu_ on p2 overwrites fpn.c2's output in place, as in dict-io-scripted."
        ),
    ),
    Entry(
        name="list-io",
        mode="script",
        family="list in / list out MLP (List[Tensor] forward, submodule returning a list; scripted)",
        build=build_listnet,
        inputs=lambda seed: list_inputs(seed),
        alt_inputs=lambda seed: list_inputs(seed, 5),
        capture=["branches", "branches.lins.0", "branches.lins.1", "act", "mix"],
        multi_call=["act"],
        patch="mix",
        notes=(
            "forward(xs: List[Tensor]) with 3 tensors [N, 8] -> list of 3 tensors. branches returns a list "
            "whose elements the caller mutates in place (hs[0].mul_(2), torch.relu_(hs[1])): they are "
            "branches.lins.0/1's output tensors. act (ReLU) is called twice. The ModuleList loop is unrolled "
            "by the TorchScript compiler."
        ),
    ),
    Entry(
        name="mlp-float64",
        mode="script",
        family="Conv1d + MLP in float64 (scripted)",
        dtype="float64",
        build=build_mlp64,
        inputs=lambda seed: [_randn(seed, 2, 4, 16, dtype=torch.float64)],
        alt_inputs=lambda seed: [_randn(seed, 3, 4, 24, dtype=torch.float64)],
        capture=["conv", "mlp.0", "mlp", "out"],
        multi_call=[],
        patch="mlp.2",
        notes="All parameters and inputs are float64; input [N, 4, L] (AdaptiveAvgPool1d makes L free).",
    ),
    Entry(
        name="cnn-bfloat16",
        mode="trace",
        family="small CNN + Linear head in bfloat16 (traced)",
        dtype="bfloat16",
        build=build_cnn_bf16,
        inputs=lambda seed: [_randn(seed, 2, 3, 32, 32, dtype=torch.bfloat16)],
        alt_inputs=lambda seed: [_randn(seed, 3, 3, 24, 24, dtype=torch.bfloat16)],
        capture=["features.0", "features.5", "features", "fc"],
        multi_call=[],
        patch="features.4",
        notes="Parameters, BatchNorm stats (calibrated in float32 first) and inputs are bfloat16.",
    ),
    Entry(
        name="loop-scripted",
        mode="script",
        family="repeated calls (shared block in straight-line code and a prim::Loop; scripted)",
        build=build_loopnet,
        inputs=lambda seed: [_randn(seed, 2, 8)],
        alt_inputs=lambda seed: [_randn(seed, 5, 8)],
        capture=["inp", "block", "block.lin", "act", "head"],
        multi_call=["block", "block.lin", "act"],
        patch="block.lin",
        notes=(
            "block is called 5 times (twice in straight-line code, then 3 times inside `for _ in "
            "range(self.steps)`, a prim::Loop whose trip count is the int attribute steps); block.lin and "
            "block.norm 5 times; act (GELU) 6 times. The patch zeroes block.lin at every call."
        ),
    ),
    Entry(
        name="loop-traced",
        mode="trace",
        family="repeated calls (shared block; traced, loop unrolled)",
        build=build_loopnet,
        inputs=lambda seed: [_randn(seed, 2, 8)],
        alt_inputs=lambda seed: [_randn(seed, 5, 8)],
        capture=["inp", "block", "block.lin", "act", "head"],
        multi_call=["block", "block.lin", "act"],
        patch="block.lin",
        notes=(
            "Same class and weights as loop-scripted. The trace unrolls the loop: each call of a shared module "
            "becomes its own method (block: forward, forward1 .. forward4; act: forward .. forward5; block.lin: "
            "forward .. forward4, called from the matching block.forwardN)."
        ),
    ),
    Entry(
        name="overload-scripted",
        mode="script",
        family="overloaded forward + @torch.jit.export method, tuple input (scripted)",
        build=build_overloadnet,
        inputs=lambda seed: overload_inputs(seed),
        alt_inputs=lambda seed: overload_inputs(seed, 5),
        capture=["enc", "fuse", "fuse.lin", "head"],
        multi_call=["enc", "fuse", "fuse.lin"],
        patch="fuse.lin",
        notes=(
            "forward(x: Tensor [N,8], pair: Tuple[Tensor [N,8], Tensor [N,16]]). fuse has an overloaded forward "
            "(torch.jit._overload_method): fuse(Tensor) compiles to forward__0, fuse(tuple) to forward__1 — 2 "
            "forward calls. fuse.project(...) is an @torch.jit.export method: NOT a forward call of fuse (eager "
            "hooks on fuse fire 2 times), but fuse.lin runs inside it, so fuse.lin is called 3 times (twice "
            "from forward__0/__1, once from project). enc is called twice."
        ),
    ),
]

ENTRIES: "OrderedDict[str, Entry]" = OrderedDict((e.name, e) for e in _ENTRY_LIST)
assert len(ENTRIES) == len(_ENTRY_LIST), "duplicate entry names"


# ====================================================================== structure helpers


def clone_tree(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.clone()
    if isinstance(x, dict):
        return type(x)((k, clone_tree(v)) for k, v in x.items())
    if isinstance(x, tuple):
        return tuple(clone_tree(v) for v in x)
    if isinstance(x, list):
        return [clone_tree(v) for v in x]
    return x


def describe(x: Any) -> str:
    """Nested structure of a value, e.g. 'tuple(Tensor[2,12,32] float32, None)'."""
    if isinstance(x, Tensor):
        return f"Tensor[{','.join(map(str, x.shape))}] {str(x.dtype).replace('torch.', '')}"
    if x is None:
        return "None"
    if isinstance(x, dict):
        inner = ", ".join(f"{k!r}: {describe(v)}" for k, v in x.items())
        return f"dict{{{inner}}}" if type(x) is dict else f"{type(x).__name__}{{{inner}}}"
    if isinstance(x, (tuple, list)):
        return f"{type(x).__name__}({', '.join(describe(v) for v in x)})"
    return type(x).__name__


def tensors_of(x: Any) -> List[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in tensors_of(v)]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in tensors_of(v)]
    return []


def zero_first_tensor(x: Any) -> Any:
    """A copy of x (same structure) whose first tensor (depth-first) is zeros."""
    done = [False]

    def go(v: Any) -> Any:
        if isinstance(v, Tensor):
            if not done[0]:
                done[0] = True
                return torch.zeros_like(v)
            return v
        if isinstance(v, dict):
            return type(v)((k, go(u)) for k, u in v.items())
        if isinstance(v, tuple):
            return tuple(go(u) for u in v)
        if isinstance(v, list):
            return [go(u) for u in v]
        return v

    out = go(x)
    if not done[0]:
        raise ValueError("output has no tensor to patch")
    return out


def assert_same(where: str, got: Any, want: Any, tol: float) -> float:
    """Same structure and values; returns the largest float difference seen."""
    if isinstance(want, Tensor):
        assert isinstance(got, Tensor), f"{where}: got {describe(got)}, expected a tensor"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {tuple(got.shape)} != {tuple(want.shape)}"
        if not want.is_floating_point():
            assert torch.equal(got, want), f"{where}: integer values differ"
            return 0.0
        g, w = got.double(), want.double()
        assert torch.equal(g.isnan(), w.isnan()), f"{where}: NaNs differ"
        if g.numel() == 0:
            return 0.0
        err = (g - w).nan_to_num(0.0).abs().max().item()
        assert err <= tol, f"{where}: max abs diff {err:.3g} > {tol}"
        return err
    if want is None:
        assert got is None, f"{where}: got {describe(got)}, expected None"
        return 0.0
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: got {describe(got)}, expected a dict"
        assert list(got.keys()) == list(want.keys()), f"{where}: keys {list(got)} != {list(want)}"
        return max([assert_same(f"{where}[{k!r}]", got[k], want[k], tol) for k in want] or [0.0])
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want), f"{where}: got {type(got).__name__}, expected {type(want).__name__}"
        assert len(got) == len(want), f"{where}: {len(got)} items, expected {len(want)}"
        return max([assert_same(f"{where}[{i}]", g, w, tol) for i, (g, w) in enumerate(zip(got, want))] or [0.0])
    assert got == want, f"{where}: {got!r} != {want!r}"
    return 0.0


def state_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}\n".encode())
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        h.update(raw.numpy().tobytes())
    return h.hexdigest()


def hook_calls(model: nn.Module, inputs: list, paths: List[str]) -> Tuple[Dict[str, int], Dict[str, str]]:
    """Forward-hook call counts and the (first call's) output structure of each path."""
    counts: Counter = Counter()
    kinds: Dict[str, str] = {}
    handles = []
    for p in paths:
        def hook(_m, _i, out, p=p):
            counts[p] += 1
            kinds.setdefault(p, describe(out))
        handles.append(model.get_submodule(p).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*clone_tree(inputs))
    finally:
        for h in handles:
            h.remove()
    return {p: counts[p] for p in paths}, kinds


def script_method_returns(ts: torch.jit.ScriptModule, path: str) -> Dict[str, str]:
    """Return type of each forward-like method TorchScript compiled for a submodule."""
    sub = ts
    for part in path.split(".") if path else []:
        sub = getattr(sub, part)
    out = {}
    for name in sub._c._method_names():
        if re.fullmatch(r"forward(\d+|__\d+)?", name):
            out[name] = str(sub._c._get_method(name).schema.returns[0].type)
    return out


# ====================================================================== export


def convert(entry: Entry, model: nn.Module) -> torch.jit.ScriptModule:
    if entry.mode == "script":
        return torch.jit.script(model)
    if entry.mode != "trace":
        raise ValueError(f"{entry.name}: unknown mode {entry.mode!r}")
    ctx = entry.trace_context() if entry.trace_context else contextlib.nullcontext()
    with ctx:
        return torch.jit.trace(model, tuple(entry.inputs(SEED)), check_trace=False, strict=entry.trace_strict)


def verify(entry: Entry, ts: Any, eager: nn.Module, label: str) -> float:
    cases = [("seed 0", entry.inputs(SEED)), ("seed 1", entry.inputs(SEED + 1))]
    if entry.alt_inputs is not None:
        cases.append(("other shapes", entry.alt_inputs(SEED + 2)))
    worst = 0.0
    with torch.no_grad():
        for what, inputs in cases:
            want = eager(*clone_tree(inputs))
            got = ts(*clone_tree(inputs))
            worst = max(worst, assert_same(f"{entry.name} ({label}, {what})", got, want, entry.tol))
    return worst


def check_entry_paths(entry: Entry, model: nn.Module) -> Tuple[Dict[str, int], Dict[str, str], float]:
    names = dict(model.named_modules())
    assert len(entry.capture) >= 3, f"{entry.name}: needs >= 3 capture paths"
    assert any("." in p for p in entry.capture), f"{entry.name}: needs a nested capture path"
    assert set(entry.multi_call) <= set(entry.capture), f"{entry.name}: multi_call must be a subset of capture"
    for p in [*entry.capture, entry.patch]:
        assert p in names and p, f"{entry.name}: no module {p!r}"
    paths = list(dict.fromkeys([*entry.capture, entry.patch]))
    counts, kinds = hook_calls(model, entry.inputs(SEED), paths)
    for p, n in counts.items():
        assert n >= 1, f"{entry.name}: hook on {p!r} never fired"
    for p in entry.capture:
        assert (counts[p] >= 2) == (p in entry.multi_call), (
            f"{entry.name}: {p!r} called {counts[p]} times but multi_call is {entry.multi_call}"
        )
    # The zero patch must visibly change the output.
    inputs = entry.inputs(SEED)
    handle = model.get_submodule(entry.patch).register_forward_hook(lambda _m, _i, out: zero_first_tensor(out))
    try:
        with torch.no_grad():
            patched = tensors_of(model(*clone_tree(inputs)))
    finally:
        handle.remove()
    with torch.no_grad():
        plain = tensors_of(model(*clone_tree(inputs)))
    effect = max((a.double() - b.double()).abs().max().item() for a, b in zip(patched, plain))
    scale = max(t.double().abs().max().item() for t in plain)
    assert effect > max(1e-3, 0.005 * scale), (
        f"{entry.name}: zeroing {entry.patch!r} changes the output by only {effect:.3g} (output scale {scale:.3g})"
    )
    return counts, kinds, effect


def export_entry(entry: Entry, out: Path) -> dict:
    """Build, convert, verify, save; returns facts for the manifest and the table."""
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    transformers.logging.set_verbosity_error()
    t0 = time.perf_counter()
    eager = entry.build()
    assert not eager.training, f"{entry.name}: build() must return an eval-mode module"
    weights = state_hash(eager)
    assert state_hash(entry.build()) == weights, f"{entry.name}: build() is not deterministic"
    with torch.no_grad():
        ts = convert(entry, eager)
    diff = verify(entry, ts, eager, "in memory")
    with tempfile.TemporaryDirectory(dir=out, prefix=".zoo-") as scratch:
        # torch.jit.save names the archive's root folder after the file: stage
        # under the final name, not "x.pt.tmp".
        tmp = Path(scratch) / entry.file
        torch.jit.save(ts, str(tmp))
        loaded = torch.jit.load(str(tmp))
        diff = max(diff, verify(entry, loaded, eager, "saved file"))
        fresh = entry.build()
        fresh.load_state_dict(loaded.state_dict(), strict=True)
        assert state_hash(fresh) == weights, f"{entry.name}: saved weights differ from build()'s"
        counts, kinds, effect = check_entry_paths(entry, fresh)
        returns = {p: script_method_returns(loaded, p) for p in dict.fromkeys([*entry.capture, entry.patch])}
        os.replace(tmp, out / entry.file)
    return {
        "seconds": time.perf_counter() - t0,
        "weights_sha256": weights,
        "max_abs_diff": diff,
        "calls": counts,
        "eager_outputs": kinds,
        "torchscript_returns": returns,
        "patch_effect": effect,
    }


CHILD_TIMEOUT_S = 300


def _child(fn: Callable, args: tuple, conn) -> None:
    try:
        torch.set_num_threads(1)
        conn.send(("ok", fn(*args)))
    except BaseException:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def in_fork(fn: Callable, *args: Any) -> Tuple[str, Any]:
    """Run fn(*args) in a fresh fork; returns ("ok", result) or ("error", traceback text).

    Each export gets its own fork so TorchScript's global type registry (name
    mangling, and so the saved bytes) does not depend on what ran before. The
    parent itself never runs a tensor op: forking after ATen's intra-op thread
    pool has started can deadlock the child.
    """
    if "fork" not in mp.get_all_start_methods() or sys.platform == "win32":
        try:
            return "ok", fn(*args)
        except Exception:  # noqa: BLE001
            return "error", traceback.format_exc()
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(CHILD_TIMEOUT_S):
            proc.kill()
            proc.join()
            return "error", f"timed out after {CHILD_TIMEOUT_S}s"
        status, payload = parent.recv()
    except EOFError:
        proc.join()
        return "error", f"child process died (exit code {proc.exitcode})"
    proc.join()
    return status, payload


# ====================================================================== hashing / manifest

# Code outside an entry's own builder/classes that still shapes its file.
_COMMON = (_seeded, _persist_buffers, one_thread, _calibrated, tm.calibrate_bn, convert)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return repr(obj)


def definition_hash(entry: Entry) -> str:
    """Hash of what defines the entry's file: its metadata, builder, inputs, classes, versions."""
    meta = {
        k: getattr(entry, k)
        for k in ("name", "mode", "family", "capture", "multi_call", "patch", "dtype", "notes", "trace_strict", "tol")
    }
    parts = [json.dumps(meta, sort_keys=True), torch.__version__, transformers.__version__]
    for fn in (entry.build, entry.inputs, entry.alt_inputs, entry.trace_context, *_COMMON):
        if fn is not None:
            parts.append(_source(fn))
    me = sys.modules[__name__]
    classes = []
    for m in entry.build().modules():
        for cls in type(m).__mro__:
            if sys.modules.get(cls.__module__) is me and cls not in classes:
                classes.append(cls)
    for cls in sorted(classes, key=lambda c: c.__qualname__):
        parts.append(_source(cls))
    for fn in (_tokens, _randn, _gen, rnn_inputs, encoder_inputs, dict_inputs, list_inputs, overload_inputs,
               double_conv, _make_divisible, _mha_slow_path):
        parts.append(_source(fn))
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(out: Path) -> Dict[str, dict]:
    path = out / "manifest.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != MANIFEST_VERSION:
            return {}
        return {m["name"]: m for m in data.get("models", [])}
    except (ValueError, KeyError, TypeError):
        print(f"warning: ignoring unreadable {path}", file=sys.stderr)
        return {}


def write_manifest(out: Path, records: Dict[str, dict]) -> None:
    data = {
        "version": MANIFEST_VERSION,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "models": [records[n] for n in ENTRIES if n in records],
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")


def up_to_date(out: Path, record: Optional[dict], dhash: str) -> bool:
    if record is None or record.get("definition_hash") != dhash:
        return False
    path = out / record.get("file", "")
    return path.is_file() and sha256_file(path) == record.get("sha256")


def manifest_record(entry: Entry, out: Path, dhash: str, facts: dict) -> dict:
    path = out / entry.file
    return {
        "name": entry.name,
        "file": entry.file,
        "mode": entry.mode,
        "family": entry.family,
        "dtype": entry.dtype,
        "capture": entry.capture,
        "multiCall": entry.multi_call,
        "patch": entry.patch,
        "notes": entry.notes,
        "sha256": sha256_file(path),
        "definition_hash": dhash,
        "bytes": path.stat().st_size,
        "weights_sha256": facts["weights_sha256"],
        # Forward-hook call counts in eager Python on inputs(0) (capture + patch paths).
        "calls": facts["calls"],
        # What an eager forward hook sees, and what TorchScript's methods return, per path.
        "eagerOutputs": facts["eager_outputs"],
        "torchscriptReturns": facts["torchscript_returns"],
    }


# ====================================================================== main


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Export torchscope's zoo of third-party-style TorchScript models.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: <repo>/models/zoo)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME[,NAME...]", help="export only these entries")
    ap.add_argument("--force", action="store_true", help="re-export even if the manifest says a file is current")
    ap.add_argument("--list", action="store_true", help="list the entries and exit")
    args = ap.parse_args(argv)

    if args.list:
        for e in ENTRIES.values():
            print(f"{e.name:30s} {e.mode:6s} {e.dtype:8s} {e.family}")
        return 0
    only = [n.strip() for arg in args.only for n in arg.split(",") if n.strip()]
    unknown = [n for n in only if n not in ENTRIES]
    if unknown:
        print(f"error: unknown entries {unknown}; known: {', '.join(ENTRIES)}", file=sys.stderr)
        return 2
    selected = [e for e in ENTRIES.values() if not only or e.name in only]

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    transformers.logging.set_verbosity_error()
    old = load_manifest(out)
    records = {n: r for n, r in old.items() if n in ENTRIES}
    for n in old:
        if n not in ENTRIES:
            print(f"note: dropping {n!r} from the manifest (no such entry); its file is left alone")

    t_start = time.perf_counter()
    rows = []
    failed = []
    # Hashing builds every model (BatchNorm calibration runs forwards): do it in a
    # child too, so that this process forks with a pristine ATen thread pool.
    status, hashes = in_fork(lambda: {e.name: definition_hash(e) for e in selected})
    if status != "ok":
        print(f"error: hashing entry definitions failed:\n{hashes}", file=sys.stderr)
        return 1
    for entry in selected:
        dhash = hashes[entry.name]
        if not args.force and up_to_date(out, records.get(entry.name), dhash):
            rows.append((entry.name, entry.mode, records[entry.name]["bytes"], None, "up to date"))
            continue
        status, payload = in_fork(export_entry, entry, out)
        if status != "ok":
            print(f"error: exporting {entry.name} failed:\n{payload}", file=sys.stderr)
            failed.append(entry.name)
            records.pop(entry.name, None)
            rows.append((entry.name, entry.mode, None, None, "FAILED"))
            write_manifest(out, records)
            continue
        records[entry.name] = manifest_record(entry, out, dhash, payload)
        rows.append((entry.name, entry.mode, records[entry.name]["bytes"], payload["seconds"],
                     f"wrote (max diff {payload['max_abs_diff']:.2g})"))
        write_manifest(out, records)  # keep what finished if interrupted

    write_manifest(out, records)
    print(f"{'name':30s} {'mode':6s} {'size':>9s} {'seconds':>8s}  status")
    for name, mode, size, secs, status in rows:
        size_s = f"{size / 1024:.1f} KB" if size is not None else "-"
        secs_s = f"{secs:.2f}" if secs is not None else "-"
        print(f"{name:30s} {mode:6s} {size_s:>9s} {secs_s:>8s}  {status}")
    print(f"done in {time.perf_counter() - t_start:.1f}s -> {out / 'manifest.json'}")
    if failed:
        print(f"error: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
