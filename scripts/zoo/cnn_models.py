"""Convolutional networks: MobileNetV3-, EfficientNet- and ConvNeXt-style classifiers, a UNet."""

from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .entry import Entry, calibrated, randn, seeded


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
    return calibrated(seeded(MobileNetV3), (8, 3, 32, 32))


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
        self.stem = ConvBN(3, 16, 3, 2)
        self.blocks = nn.Sequential(*[MBConv(*c) for c in self.CONFIG])
        self.head = ConvBN(40, 128, 1)
        self.act = nn.SiLU()  # one instance for the stem and the head: called twice
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
        x = self.act(self.head(self.blocks(self.act(self.stem(x)))))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


def build_efficientnet() -> nn.Module:
    return calibrated(seeded(EfficientNet), (8, 3, 32, 32))


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
    return seeded(ConvNeXt).eval()

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
    return calibrated(seeded(UNet), (4, 3, 32, 32))


ENTRIES: List[Entry] = [
    Entry(
        name="mobilenet-v3",
        mode="script",
        family="CNN (MobileNetV3-style: depthwise, inverted residuals, SE + Hardsigmoid, Hardswish; scripted)",
        build=build_mobilenet,
        inputs=lambda seed: [randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [randn(seed, 3, 3, 40, 40)],
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
        inputs=lambda seed: [randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [randn(seed, 3, 3, 48, 48)],
        capture=["stem", "act", "blocks.1.se", "blocks.3.dw.act", "blocks.4", "head"],
        multi_call=["act"],
        patch="blocks.3.se",
        notes=(
            "BatchNorm running stats calibrated; no stochastic depth; blocks.0 has an nn.Identity expand. One "
            "nn.SiLU `act` follows the stem and the head (called twice, traced as forward and forward1)."
        ),
    ),
    Entry(
        name="convnext",
        mode="script",
        family="CNN (ConvNeXt-style: 7x7 depthwise, channels-last LayerNorm, Linear MLP, GELU, layer scale; scripted)",
        build=build_convnext,
        inputs=lambda seed: [randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [randn(seed, 1, 3, 48, 48)],
        capture=["features.0", "features.1.0.dwconv", "features.1.1.norm", "features.3.1", "head_norm"],
        multi_call=[],
        single_calls="ConvNeXt gives every block its own modules: none is called twice.",
        patch="features.1.0.pwconv2",
        notes=(
            "features.N.M.norm and pwconv1/pwconv2 work on channels-last [N, H, W, C] tensors (after a "
            "permute); dwconv outputs are NCHW. LayerNorm2d subclasses nn.LayerNorm (permute, layer_norm, "
            "permute). gamma (layer scale) is seeded in [0.2, 1) instead of 1e-6."
        ),
    ),
    Entry(
        name="unet",
        mode="trace",
        family="encoder-decoder CNN (UNet: skip concatenation, ConvTranspose2d, BatchNorm; traced)",
        build=build_unet,
        inputs=lambda seed: [randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [randn(seed, 1, 3, 48, 48)],
        capture=["enc1", "pool", "enc2.4", "up2", "dec1.0"],
        multi_call=["pool"],
        patch="up1",
        notes=(
            "pool (MaxPool2d) is shared: called twice, traced as forward and forward1. Every double_conv ends "
            "in ReLU(inplace=True), so e.g. enc2.4 (BatchNorm) output is overwritten in place by enc2.5 right "
            "after the call: captures must be copies. enc1/enc2 outputs are reused as skip connections."
        ),
    ),
]
