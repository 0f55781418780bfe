"""Sequence models from torch.nn: LSTM and GRU taggers, a TransformerEncoder classifier."""

import contextlib
from dataclasses import replace
from typing import Iterator, List, Type

import torch
import torch.nn as nn
from torch import Tensor

from .entry import TRACE_DROPS, Entry, generator, padding_mask, randn, seeded


RNN_VOCAB = 50


class RNNTagger(nn.Module):
    """Token tagger: Embedding, a 2-layer RNN, a per-token head and a head on the final state(s)."""

    def __init__(self, rnn: Type[nn.RNNBase], states: int, vocab: int = RNN_VOCAB, emb: int = 16, hidden: int = 32,
                 classes: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.rnn = rnn(emb, hidden, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, classes))
        self.state_head = nn.Linear(states * hidden, classes)
        self.act = nn.Tanh()  # on the sequence output and on the final state(s): called twice


class LSTMTagger(RNNTagger):
    """Uses output, h and c so a trace keeps all three LSTM outputs."""

    def __init__(self) -> None:
        super().__init__(nn.LSTM, states=2)

    def forward(self, ids: Tensor) -> Tensor:
        out, (h, c) = self.rnn(self.embed(ids))
        y = self.head(self.act(out))
        s = self.state_head(self.act(torch.cat([h[-1], c[-1]], dim=1)))
        return y + s.unsqueeze(1)


class GRUTagger(RNNTagger):
    def __init__(self) -> None:
        super().__init__(nn.GRU, states=1)

    def forward(self, ids: Tensor) -> Tensor:
        out, h = self.rnn(self.embed(ids))
        y = self.head(self.act(out))
        return y + self.state_head(self.act(h[-1])).unsqueeze(1)


def build_lstm() -> nn.Module:
    return seeded(LSTMTagger).eval()


def build_gru() -> nn.Module:
    return seeded(GRUTagger).eval()


def rnn_inputs(seed: int, batch: int = 2, seq: int = 10) -> list:
    return [torch.randint(0, RNN_VOCAB, (batch, seq), generator=generator(seed))]


class EncoderClassifier(nn.Module):
    def __init__(self, d_in: int = 8, d_model: int = 32, classes: int = 5) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)
        self.act = nn.GELU()  # after the input projection and after the encoder: called twice

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        h = self.encoder(self.act(self.inp(x)), src_key_padding_mask=padding_mask)
        return self.head(self.act(h))


def build_transformer_encoder() -> nn.Module:
    return seeded(EncoderClassifier).eval()


def encoder_inputs(seed: int, batch: int = 2, seq: int = 10) -> list:
    """x [batch, seq, 8] and a bool key padding mask (True = padding), row i > 0 padded."""
    return [randn(seed, batch, seq, 8), padding_mask(batch, seq)]


@contextlib.contextmanager
def mha_slow_path() -> Iterator[None]:
    """Trace the composite (unfused) TransformerEncoderLayer path, so its submodules are called."""
    old = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(old)


LSTM_SCRIPTED = Entry(
    name="lstm-scripted",
    mode="script",
    family="RNN (Embedding + 2-layer LSTM + Linear heads; scripted)",
    build=build_lstm,
    inputs=rnn_inputs,
    alt_inputs=lambda seed: rnn_inputs(seed, 3, 13),
    capture=["embed", "rnn", "act", "head.0", "head", "state_head"],
    multi_call=["act"],
    patch="rnn",
    notes=(
        "nn.LSTM's forward is overloaded in TorchScript: the call compiles to "
        "prim::CallMethod[name=\"forward__0\"] (the module has forward__0 and forward__1, no 'forward'). "
        "rnn returns (output, (h_n, c_n)) in eager and scripted; the patch zeroes output only."
    ),
)

GRU_SCRIPTED = Entry(
    name="gru-scripted",
    mode="script",
    family="RNN (Embedding + 2-layer GRU + Linear heads; scripted)",
    build=build_gru,
    inputs=rnn_inputs,
    alt_inputs=lambda seed: rnn_inputs(seed, 3, 13),
    capture=["embed", "rnn", "act", "head.2", "state_head"],
    multi_call=["act"],
    patch="rnn",
    notes=(
        "nn.GRU's forward is overloaded: called as forward__0. rnn returns (output, h_n); the patch zeroes "
        "output only."
    ),
)

ENCODER_SCRIPTED = Entry(
    name="transformer-encoder-scripted",
    mode="script",
    family="transformer encoder (torch.nn.TransformerEncoder, batch_first, key padding mask; scripted)",
    build=build_transformer_encoder,
    inputs=encoder_inputs,
    alt_inputs=lambda seed: encoder_inputs(seed, 3, 7),
    capture=["inp", "act", "encoder.layers.0.self_attn", "encoder.layers.0.linear1", "encoder.layers.1",
             "encoder.layers.1.norm2"],
    multi_call=["act"],
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
)

# The traced twins: same classes, weights, inputs and paths as the scripted ones.
ENTRIES: List[Entry] = [
    LSTM_SCRIPTED,
    replace(
        LSTM_SCRIPTED,
        name="lstm-traced",
        mode="trace",
        family="RNN (Embedding + 2-layer LSTM + Linear heads; traced)",
        notes=(
            "Same class and weights as lstm-scripted. " + TRACE_DROPS + "eager rnn returns (output, (h_n, c_n)), "
            "the traced rnn.forward returns the flat tuple (output, h_n, c_n). The patch zeroes output only."
        ),
    ),
    GRU_SCRIPTED,
    replace(
        GRU_SCRIPTED,
        name="gru-traced",
        mode="trace",
        family="RNN (Embedding + 2-layer GRU + Linear heads; traced)",
        notes="Same class and weights as gru-scripted. rnn returns (output, h_n) eager and traced.",
    ),
    ENCODER_SCRIPTED,
    replace(
        ENCODER_SCRIPTED,
        name="transformer-encoder-traced",
        mode="trace",
        family="transformer encoder (torch.nn.TransformerEncoder, batch_first, key padding mask; traced)",
        trace_context=mha_slow_path,
        notes=(
            "Traced with torch.backends.mha.set_fastpath_enabled(False), so the trace records the composite "
            "path and every submodule call (a no-grad trace with the fast path on records a single "
            "aten::_transformer_encoder_layer_fwd per layer and none of its submodules). Same weights as "
            "transformer-encoder-scripted. " + TRACE_DROPS + "eager self_attn returns (attn_output, None), "
            "traced the attn_output Tensor; self_attn.out_proj is never called as a module."
        ),
    ),
]
