"""Reference models for torchscope tests and examples.

The ResNet mirrors torchvision's resnet.py so that module names, state_dict
keys, forward graph and seeded initialisation match torchvision exactly
(torchvision is not importable beside CPU-only torch wheels, so we carry our
own copy). BertWithAttentions wraps transformers' BertModel so submodule paths
stay identical to the Hugging Face checkpoints while returning a plain tuple,
which is what torch.jit.trace and the C++ side want.
"""

from typing import Callable, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
from torch import Tensor

try:
    # A CUDA torchvision wheel beside CPU torch fails with RuntimeError/OSError,
    # not ImportError, so catch everything.
    import torchvision as _torchvision  # type: ignore
except Exception:  # noqa: BLE001
    _torchvision = None

HAS_TORCHVISION = _torchvision is not None


# --------------------------------------------------------------------------
# ResNet (copy of torchvision.models.resnet, BasicBlock only)
# --------------------------------------------------------------------------


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Optional[Callable[..., nn.Module]] = None,
    ) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class ResNet(nn.Module):
    def __init__(
        self,
        block: Type[BasicBlock],
        layers: Sequence[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        width: int = 64,
        norm_layer: Optional[Callable[..., nn.Module]] = None,
    ) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer

        # Construction order matters: it fixes how the seeded RNG is consumed,
        # and we want the same seed to give torchvision's exact weights.
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: Type[BasicBlock], planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )

        layers: List[nn.Module] = []
        layers.append(
            block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation, norm_layer)
        )
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(
                block(
                    self.inplanes,
                    planes,
                    groups=self.groups,
                    base_width=self.base_width,
                    dilation=self.dilation,
                    norm_layer=norm_layer,
                )
            )

        return nn.Sequential(*layers)

    def _forward_impl(self, x: Tensor) -> Tensor:
        # See note [TorchScript super()]
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)

        return x

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


def resnet(layers: Sequence[int] = (2, 2, 2, 2), width: int = 64, num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, list(layers), num_classes=num_classes, width=width)


def resnet18(num_classes: int = 1000) -> nn.Module:
    if _torchvision is not None:
        return _torchvision.models.resnet18(weights=None, num_classes=num_classes)
    return resnet((2, 2, 2, 2), 64, num_classes=num_classes)


RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


def resnet18_pretrained() -> nn.Module:
    """ImageNet weights; raises on network failure (callers decide what to do)."""
    if _torchvision is not None:
        from torchvision.models import ResNet18_Weights  # type: ignore

        return _torchvision.models.resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
    model = resnet((2, 2, 2, 2), 64)
    state = torch.hub.load_state_dict_from_url(RESNET18_URL, progress=False, map_location="cpu")
    model.load_state_dict(state)
    return model


@torch.no_grad()
def calibrate_bn(model: nn.Module, seed: int, shape: Sequence[int], steps: int = 4) -> nn.Module:
    """Fill BatchNorm running stats with non-trivial values, then eval().

    Freshly initialised BN has mean 0 / var 1, so eval-mode BN is nearly the
    identity and bugs in how it is folded or inspected would go unnoticed.
    """
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        x = torch.randn(*shape, generator=gen) * 2.0 + 0.5
        model(x)
    return model.eval()


# --------------------------------------------------------------------------
# BERT with attention probabilities
# --------------------------------------------------------------------------

from transformers import BertConfig, BertForSequenceClassification, BertModel, GPT2Config, GPT2LMHeadModel  # noqa: E402

BERT_SIZES = {
    # bert-base-uncased
    "base": dict(
        num_hidden_layers=12,
        hidden_size=768,
        num_attention_heads=12,
        intermediate_size=3072,
        vocab_size=30522,
        max_position_embeddings=512,
    ),
    "tiny": dict(
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=30522,
        max_position_embeddings=512,
    ),
}


def bert_config(size: str = "base") -> BertConfig:
    if size not in BERT_SIZES:
        raise ValueError(f"unknown bert size {size!r}; expected one of {sorted(BERT_SIZES)}")
    # Eager attention is the only implementation that materialises the
    # softmax probabilities we want to return.
    return BertConfig(**BERT_SIZES[size], attn_implementation="eager")


class BertWithAttentions(BertModel):
    """BertModel returning (last_hidden_state, pooler_output, attentions).

    attentions is stacked to [batch, layers, heads, seq, seq]. Subclassing
    (rather than wrapping) keeps parameter/module paths identical to
    bert-base-uncased checkpoints, e.g. encoder.layer.3.attention.self.
    """

    def forward(  # type: ignore[override]
        self, input_ids: Tensor, attention_mask: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_attentions=True,
            return_dict=True,
        )
        attentions = torch.stack(out.attentions, dim=1)
        return out.last_hidden_state, out.pooler_output, attentions


class BertNoAttentions(BertModel):
    """BertModel returning only (last_hidden_state, pooler_output).

    A plain Hugging Face BERT as users trace it: no attention probabilities in the
    output. With eager attention each encoder.layer.N.attention.self still returns
    (context, probs), so the probabilities can be captured from those modules.
    Same class hierarchy and construction as BertWithAttentions, so the same seed
    gives the same weights.
    """

    def forward(  # type: ignore[override]
        self, input_ids: Tensor, attention_mask: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return out.last_hidden_state, out.pooler_output


class BertClassifier(BertForSequenceClassification):
    """BertForSequenceClassification returning its logits [batch, labels] alone (a traceable
    output), with Hugging Face's paths: bert.embeddings.word_embeddings is where token
    attributions are taken."""

    def forward(  # type: ignore[override]
        self, input_ids: Tensor, attention_mask: Optional[Tensor] = None
    ) -> Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).logits


# GPT-2 small's shape, and a tiny one for tests; both with GPT-2's 50,257-token vocabulary.
GPT2_SIZES = {
    "small": dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
    "tiny": dict(n_layer=4, n_embd=64, n_head=4, n_positions=128),
}


def gpt2_config(size: str = "small") -> GPT2Config:
    if size not in GPT2_SIZES:
        raise ValueError(f"unknown gpt2 size {size!r}; expected one of {sorted(GPT2_SIZES)}")
    # Untied: a trace of a tied lm_head takes the embedding weight as an argument, so the
    # unembedding could not be called on its own (the logit lens does that).
    return GPT2Config(**GPT2_SIZES[size], vocab_size=50257, tie_word_embeddings=False, attn_implementation="eager")


class Gpt2LM(GPT2LMHeadModel):
    """GPT2LMHeadModel returning its logits [batch, seq, vocab] alone, with Hugging Face's
    paths (transformer.h.N.attn.c_proj, transformer.ln_f, lm_head)."""

    def forward(  # type: ignore[override]
        self, input_ids: Tensor, attention_mask: Optional[Tensor] = None
    ) -> Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True).logits


def bert(size: str = "base") -> BertWithAttentions:
    return BertWithAttentions(bert_config(size)).eval()


__all__ = [
    "HAS_TORCHVISION",
    "BasicBlock",
    "ResNet",
    "resnet",
    "resnet18",
    "resnet18_pretrained",
    "calibrate_bn",
    "RESNET18_URL",
    "BERT_SIZES",
    "bert_config",
    "BertWithAttentions",
    "BertNoAttentions",
    "BertClassifier",
    "GPT2_SIZES",
    "gpt2_config",
    "Gpt2LM",
    "bert",
]
