"""torch.export programs (`.pt2`) of small models, for torchscope's second model format.

    .venv/bin/python scripts/export_pt2.py [--out DIR] [--only NAME[,NAME...]] [--force] [--list]

writes, for every entry below, into DIR (default <repo>/models/pt2):
  <name>.training.pt2   torch.export.export of the eval-mode module: the training (pre-dispatch)
                        IR, which keeps conv2d / linear / lstm / softmax and in-place relu_ / add_
  <name>.core.pt2       the same program after run_decompositions(): core ATen, functional
                        (no in-place ops), the LSTM unrolled to the exported sequence length
  <name>.pt             (resnet, gpt2) a torch.jit.trace of the same weights, for speed comparisons
  manifest.json         what each entry is (pt2_export.py's docstring lists its fields)

Entries (name, preserve_module_call_signature, what):
  resnet    no   ResNet with BasicBlocks (torchscope_models), BatchNorm calibrated; each block's
                 ReLU (inplace) is called twice; in-place relu_ / add_ in the training IR
  bert      yes  HF BertModel (tiny config, eager attention), input_ids + attention_mask given
                 positionally; returns last_hidden_state and pooler_output
  gpt2      no   HF GPT2LMHeadModel (the zoo's gpt2-lm config), eager attention, use_cache=False,
                 lm_head tied to wte; input_ids given by keyword (HF's export recipe)
  llama     yes  HF LlamaForCausalLM (llm_fixtures' shape, grouped-query attention), eager
                 attention, use_cache=False; input_ids by keyword
  lstm      yes  the zoo's LSTM tagger (Embedding, 2-layer LSTM, Linear heads; Tanh called twice)
  unet      no   the zoo's UNet (skip connections, shared MaxPool2d called twice)
  cond      yes  torch.cond on the input's data: `pos` or `neg` (different submodules) runs
  dynbatch  no   an MLP exported with Dim('batch', min=1, max=64) on the input's dim 0

Weights are seeded (Hugging Face ones randomised everywhere, norms and biases included, as
scripts/llm_fixtures.py does) and every module is in eval(). As a package (scripts/ on sys.path):

    from zoo.pt2 import ENTRIES
    e = ENTRIES["bert"]
    model = e.build()          # fresh seeded eager module, eval(): the same weights every call
    call = e.inputs(0)         # Call(args, kwargs): forward's inputs for a seed
    reference = e.reference()  # the module test/python/pt2_reference.py hooks (see Entry)
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import transformers
from torch import Tensor

import llm_fixtures
import torchscope_models as tm

from .cnn_models import build_unet
from .entry import calibrated, generator, padding_mask, randn, seeded
from .sequence_models import RNN_VOCAB, build_lstm, rnn_inputs
from .transformers_models import VOCAB, GPT2LM


@dataclass
class Call:
    """Forward's inputs: positional and keyword (in export's order: args, then kwargs)."""

    args: List[Tensor]
    kwargs: Dict[str, Tensor] = field(default_factory=dict)

    def flat(self) -> List[Tensor]:
        return [*self.args, *self.kwargs.values()]


@dataclass
class DynamicDim:
    """torch.export.Dim(name, min, max) on dimension `dim` of flat input `input`."""

    input: int
    dim: int
    name: str
    min: int
    max: int


@dataclass
class NodePoint:
    """An operation inside a module, found in each IR's graph (pt2_export.node_point):
    kind 'softmax': the module's (first) softmax, which must equal the attention probabilities
    Hugging Face returns with output_attentions=True (`attention`: the layer's index there);
    kind 'residual': the module's first addition, which must equal the sum of `terms` (hook
    points: a module path for its output's first tensor, 'path:input' for its first tensor input)."""

    id: str
    kind: str
    module: str
    attention: Optional[int] = None
    terms: List[str] = field(default_factory=list)


@dataclass
class Branch:
    """A torch.cond branch: its module (and everything under it) runs for these seeds only."""

    module: str
    seeds: List[int]


@dataclass
class Entry:
    """One .pt2 model.

    build()        fresh seeded eager module in eval(), what is exported
    reference()    the module the Python reference hooks: build() itself, except where eager
                   PyTorch cannot hook what the program runs (cond: torch.cond's eager path
                   compiles its branches and refuses hooks with side effects, so the reference
                   takes the same branch with a Python `if`; the exporter checks both agree)
    inputs(seed)   a Call; alt_inputs(seed): another batch size, for a dynamic entry
    capture        module paths to capture, one nested at least; multi_call those called twice
    patch          a module path whose output, zeroed, changes the model's output
    nodes          operations as hook points ('<module path>/<node name>', named per IR)
    grad           what gradients are taken with respect to: forward's inputs by index (float
                   ones) and layer paths
    preserve       export with preserve_module_call_signature = every submodule path, except
                   those in `preserve_exclude` (path prefix -> why)
    """

    name: str
    family: str
    build: Callable[[], nn.Module] = field(repr=False)
    inputs: Callable[[int], Call] = field(repr=False)
    capture: List[str]
    multi_call: List[str]
    patch: str
    grad_inputs: List[int]
    grad_layers: List[str]
    preserve: bool
    single_calls: str = ""
    nodes: List[NodePoint] = field(default_factory=list)
    preserve_exclude: Dict[str, str] = field(default_factory=dict)
    dynamic: List[DynamicDim] = field(default_factory=list)
    alt_inputs: Optional[Callable[[int], Call]] = field(default=None, repr=False)
    branches: List[Branch] = field(default_factory=list)
    torchscript: Optional[Callable[[nn.Module], nn.Module]] = field(default=None, repr=False)
    build_reference: Optional[Callable[[], nn.Module]] = field(default=None, repr=False)
    notes: str = ""

    def reference(self) -> nn.Module:
        return (self.build_reference or self.build)()

    def files(self) -> Dict[str, str]:
        return {ir: f"{self.name}.{ir}.pt2" for ir in IRS}


IRS = ("training", "core")


# ---------------------------------------------------------------- Hugging Face models


def hf_model(ctor: Callable[[], nn.Module]) -> nn.Module:
    """Seeded, every weight random (llm_fixtures.randomize), no KV cache, eval()."""
    model = seeded(ctor)
    llm_fixtures.randomize(model)
    model.config.use_cache = False
    return model.eval()


def token_ids(seed: int, batch: int = 2, seq: int = 8) -> Tensor:
    return torch.randint(3, VOCAB, (batch, seq), generator=generator(seed))


def build_bert() -> nn.Module:
    config = tm.bert_config("tiny")  # eager attention: the softmax is a node of the graph
    config.vocab_size = VOCAB
    config.max_position_embeddings = 64
    return hf_model(lambda: transformers.BertModel(config))


def bert_inputs(seed: int) -> Call:
    ids = token_ids(seed)
    return Call([ids, (~padding_mask(*ids.shape)).long()])


def build_gpt2() -> nn.Module:
    return hf_model(lambda: GPT2LM().model)


def build_llama() -> nn.Module:
    config = transformers.LlamaConfig(
        **llm_fixtures.decoder_config(VOCAB), num_key_value_heads=llm_fixtures.KV_HEADS, attn_implementation="eager"
    )
    return hf_model(lambda: transformers.LlamaForCausalLM(config))


def lm_inputs(seed: int) -> Call:
    return Call([], {"input_ids": token_ids(seed)})


class GPT2Logits(transformers.GPT2LMHeadModel):
    """GPT2LMHeadModel returning its logits alone (a traceable output), with the same paths."""

    def forward(self, input_ids: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(input_ids=input_ids, return_dict=True).logits


def gpt2_torchscript(model: nn.Module) -> nn.Module:
    twin = GPT2Logits(model.config).eval()
    twin.load_state_dict(model.state_dict())
    return twin


# ---------------------------------------------------------------- torch.nn models


def build_resnet() -> nn.Module:
    return calibrated(seeded(lambda: tm.resnet((1, 1, 1, 1), width=16, num_classes=10)), (4, 3, 32, 32))


def image_inputs(seed: int) -> Call:
    return Call([randn(seed, 2, 3, 32, 32)])


class Branchy(nn.Module):
    """torch.cond on the input's data: `pos` (Linear, Tanh) when x.sum() > 0, else `neg`
    (Linear, ReLU, Linear); `pre` and `post` run either way."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(8, 16)
        self.pos = nn.Sequential(nn.Linear(16, 16), nn.Tanh())
        self.neg = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
        self.post = nn.Linear(16, 4)
        self.python_if = False  # Entry.reference: the same branch by a Python `if`

    def forward(self, x: Tensor) -> Tensor:
        h = self.pre(x)
        if self.python_if:
            y = self.pos(h) if bool(x.sum() > 0) else self.neg(h)
        else:
            y = torch.cond(x.sum() > 0, self.pos, self.neg, (h,))
        return self.post(y)


def build_cond() -> nn.Module:
    return seeded(Branchy).eval()


def cond_reference() -> nn.Module:
    model = build_cond()
    model.python_if = True
    return model


def cond_inputs(seed: int) -> Call:
    """Even seeds sum to > 0 (the `pos` branch), odd ones to < 0 (`neg`)."""
    return Call([randn(seed, 2, 8) + (0.75 if seed % 2 == 0 else -0.75)])


class MLP(nn.Module):
    """Linear layers with one ReLU instance called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def build_mlp() -> nn.Module:
    return seeded(MLP).eval()


# ---------------------------------------------------------------- entries

HF_SINGLE = "Hugging Face gives every layer its own modules: none is called twice."

_ENTRY_LIST = [
    Entry(
        name="resnet",
        family="CNN (ResNet, BasicBlocks [1,1,1,1], width 16, calibrated BatchNorm)",
        build=build_resnet,
        inputs=image_inputs,
        capture=["layer1.0.relu", "layer1.0.bn2", "layer2.0.downsample", "layer3", "fc"],
        multi_call=["layer1.0.relu"],
        patch="layer1.0.bn2",
        nodes=[
            NodePoint("layer1.0/residual", "residual", "layer1.0", terms=["layer1.0.bn2", "layer1.0:input"]),
            NodePoint("layer2.0/residual", "residual", "layer2.0", terms=["layer2.0.bn2", "layer2.0.downsample"]),
        ],
        grad_inputs=[0],
        grad_layers=["layer2", "layer1.0.relu"],
        preserve=False,
        torchscript=lambda model: model,
        notes=(
            "The training IR keeps in-place ops: bn1's output is relu_'d by the first call of the block's relu, "
            "bn2's output takes add_(identity) and then relu_ (the second call): captures must be copies taken "
            "when the hook fires. The core IR is functional (relu, add)."
        ),
    ),
    Entry(
        name="bert",
        family="encoder-only transformer (HF BertModel, 2 layers, hidden 32, eager attention)",
        build=build_bert,
        inputs=bert_inputs,
        capture=["embeddings", "encoder.layer.0.attention.self", "encoder.layer.1.intermediate",
                 "encoder.layer.1.output.LayerNorm", "pooler"],
        multi_call=[],
        single_calls=HF_SINGLE,
        patch="encoder.layer.0.attention.self",
        nodes=[
            NodePoint("attention0", "softmax", "encoder.layer.0.attention.self", attention=0),
            NodePoint("attention1", "softmax", "encoder.layer.1.attention.self", attention=1),
        ],
        grad_inputs=[],
        grad_layers=["embeddings", "encoder.layer.0.output"],
        preserve=True,
        notes=(
            "Exported with (input_ids, attention_mask) positional; row 1 is right-padded. Returns a "
            "BaseModelOutputWithPoolingAndCrossAttentions: last_hidden_state, pooler_output. "
            "encoder.layer.N.attention.self returns (context, probabilities); without the module call "
            "signature only the context is used outside it."
        ),
    ),
    Entry(
        name="gpt2",
        family="decoder-only transformer (HF GPT2LMHeadModel, 2 layers, n_embd 32, eager attention)",
        build=build_gpt2,
        inputs=lm_inputs,
        capture=["transformer.wte", "transformer.h.0.attn", "transformer.h.1.mlp", "transformer.ln_f", "lm_head"],
        multi_call=[],
        single_calls=HF_SINGLE,
        patch="transformer.h.0.mlp",
        nodes=[
            NodePoint("attention0", "softmax", "transformer.h.0.attn", attention=0),
            NodePoint("h.0/residual", "residual", "transformer.h.0", terms=["transformer.h.0.attn", "transformer.h.0:input"]),
        ],
        grad_inputs=[],
        grad_layers=["transformer.h.0", "transformer.ln_f"],
        preserve=False,
        torchscript=gpt2_torchscript,
        notes=(
            "Exported with input_ids by keyword, config.use_cache False; returns a "
            "CausalLMOutputWithCrossAttentions holding logits. lm_head.weight is tied to transformer.wte.weight "
            "(one storage in the archive). The .pt is GPT2Logits (same paths and weights) traced: logits only."
        ),
    ),
    Entry(
        name="llama",
        family="decoder-only transformer (HF LlamaForCausalLM, 2 layers, hidden 32, GQA 4/2 heads, eager)",
        build=build_llama,
        inputs=lm_inputs,
        capture=["model.embed_tokens", "model.layers.0.self_attn", "model.layers.1.mlp", "model.norm", "lm_head"],
        multi_call=[],
        single_calls=HF_SINGLE + " The rotary embedding runs once, its (cos, sin) passed to every layer.",
        patch="model.layers.0.mlp",
        nodes=[
            NodePoint("attention0", "softmax", "model.layers.0.self_attn", attention=0),
            NodePoint("layers.0/residual", "residual", "model.layers.0",
                      terms=["model.layers.0.self_attn", "model.layers.0:input"]),
        ],
        grad_inputs=[],
        grad_layers=["model.layers.0.mlp", "model.norm"],
        preserve=True,
        notes="Exported with input_ids by keyword, config.use_cache False; returns a CausalLMOutputWithPast holding logits.",
    ),
    Entry(
        name="lstm",
        family="RNN (Embedding + 2-layer LSTM + Linear heads; the zoo's tagger)",
        build=build_lstm,
        inputs=lambda seed: Call(rnn_inputs(seed)),
        alt_inputs=lambda seed: Call(rnn_inputs(seed, 2, 13)),
        capture=["embed", "rnn", "act", "head.0", "state_head"],
        multi_call=["act"],
        patch="head.0",
        grad_inputs=[],
        grad_layers=["embed", "act"],
        preserve=True,
        notes=(
            f"Token ids in [0, {RNN_VOCAB}), shape [2, 10], static. The training IR calls aten.lstm.input once; the "
            "core IR unrolls it into the cells of the 10 steps, so it only runs at that length (alt_inputs: 13). "
            "rnn returns (output, (h_n, c_n))."
        ),
    ),
    Entry(
        name="unet",
        family="encoder-decoder CNN (the zoo's UNet: skip concatenation, ConvTranspose2d, BatchNorm)",
        build=build_unet,
        inputs=image_inputs,
        capture=["enc1", "pool", "enc2.4", "up2", "dec1.0"],
        multi_call=["pool"],
        patch="up1",
        grad_inputs=[0],
        grad_layers=["enc2", "pool"],
        preserve=False,
        notes="pool (MaxPool2d) is shared: called twice. enc2.4 (BatchNorm) is relu_'d in place in the training IR.",
    ),
    Entry(
        name="cond",
        family="control flow (torch.cond on the input's data, different submodules in the two branches)",
        build=build_cond,
        build_reference=cond_reference,
        inputs=cond_inputs,
        capture=["pre", "post"],
        multi_call=[],
        single_calls="Each module runs once; `pos` and `neg` never both.",
        patch="pre",
        branches=[Branch("pos", seeds=[0]), Branch("neg", seeds=[1])],
        grad_inputs=[0],
        grad_layers=["pre"],
        preserve=True,
        preserve_exclude={
            "pos": "inside a torch.cond branch (export cannot preserve a call signature there)",
            "neg": "inside a torch.cond branch (export cannot preserve a call signature there)",
        },
        notes=(
            "The branch subgraphs' nodes carry no nn_module_stack. The eager reference takes the branch with a "
            "Python `if` (torch.cond's eager path compiles its branches and refuses hooks with side effects)."
        ),
    ),
    Entry(
        name="dynbatch",
        family="MLP with a dynamic batch dimension (Dim('batch', min=1, max=64))",
        build=build_mlp,
        inputs=lambda seed: Call([randn(seed, 5, 8)]),
        alt_inputs=lambda seed: Call([randn(seed, 7, 8)]),
        capture=["fc1", "act", "fc2", "fc3"],
        multi_call=["act"],
        patch="fc2",
        dynamic=[DynamicDim(input=0, dim=0, name="batch", min=1, max=64)],
        grad_inputs=[0],
        grad_layers=["fc2", "act"],
        preserve=False,
        notes="Exported at batch 5; alt_inputs have batch 7. The feature dimension (8) is static.",
    ),
]

ENTRIES: "OrderedDict[str, Entry]" = OrderedDict((e.name, e) for e in _ENTRY_LIST)
assert len(ENTRIES) == len(_ENTRY_LIST), "duplicate entry names"


def first_tensor(value: Any) -> Optional[Tensor]:
    """The first tensor of a value, depth first (ModelOutputs, tuples, lists, dicts)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def input_of(args: tuple, kwargs: dict) -> Tensor:
    """A module's first tensor input, positional or keyword, as a pre-hook with kwargs sees it."""
    found = first_tensor(list(args)) if args else None
    return found if found is not None else first_tensor(kwargs)


def residual_hooks(model: nn.Module, nodes: List[NodePoint]) -> Tuple[list, Callable[[], Dict[str, List[Tensor]]]]:
    """Hooks recording, per call, each residual node's terms (copies taken when they fire):
    their handles, and a function giving {node id: [sum of the terms, per call]} after forward."""
    recorded: Dict[str, List[Tensor]] = {}
    handles = []
    for node in nodes:
        for term in node.terms if node.kind == "residual" else []:
            if term in recorded:
                continue
            calls = recorded[term] = []
            path, _, what = term.partition(":")
            module = model.get_submodule(path)
            if what == "input":
                hook = lambda m, a, k, calls=calls: calls.append(input_of(a, k).clone())  # noqa: E731
                handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(lambda m, a, out, calls=calls: calls.append(first_tensor(out).clone())))

    def values() -> Dict[str, List[Tensor]]:
        out = {}
        for node in nodes:
            if node.kind == "residual":
                per_term = [recorded[t] for t in node.terms]
                out[node.id] = [sum(parts[1:], parts[0]) for parts in zip(*per_term)]
        return out

    return handles, values


def attention_probabilities(model: nn.Module, call: Call, nodes: List[NodePoint]) -> Dict[str, List[Tensor]]:
    """{node id: [probabilities]} for the softmax nodes: Hugging Face's output_attentions."""
    wanted = [n for n in nodes if n.kind == "softmax"]
    if not wanted:
        return {}
    out = model(*call.args, **call.kwargs, output_attentions=True)
    return {n.id: [out.attentions[n.attention].clone()] for n in wanted}


__all__ = ["ENTRIES", "IRS", "Branch", "Call", "DynamicDim", "Entry", "NodePoint", "attention_probabilities",
           "first_tensor", "input_of", "residual_hooks"]
