"""Hugging Face transformers (GPT-2, DistilBERT, RoBERTa, ViT), small seeded configs, traced."""

from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn
import transformers
from torch import Tensor

from .entry import TRACE_DROPS, Entry, generator, padding_mask, randn, seeded

VOCAB = 128


def tokens(seed: int, batch: int, seq: int, pad_id: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """(input_ids, attention_mask int64) with padding_mask()'s padding."""
    ids = torch.randint(3, VOCAB, (batch, seq), generator=generator(seed))
    pad = padding_mask(batch, seq)
    if pad_id is not None:
        ids = ids.masked_fill(pad, pad_id)
    return ids, (~pad).long()


def build_hf(ctor: Callable[[], nn.Module]) -> nn.Module:
    """Seeded, eval(), non-persistent buffers made persistent.

    TorchScript's state_dict() lists every buffer, persistent or not (e.g. the
    embeddings' position_ids), so without this an exported file's state_dict would
    not load strictly into the eager module. The values are what the module computes
    with either way.
    """
    model = seeded(ctor)
    for m in model.modules():
        m._non_persistent_buffers_set.clear()
    return model.eval()


class GPT2LM(nn.Module):
    """GPT2LMHeadModel behind forward(input_ids) -> (logits,)."""

    def __init__(self) -> None:
        super().__init__()
        cfg = transformers.GPT2Config(
            n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=VOCAB,
            bos_token_id=0, eos_token_id=0, attn_implementation="eager",
        )
        self.model = transformers.GPT2LMHeadModel(cfg)

    def forward(self, input_ids: Tensor) -> Tuple[Tensor]:
        out = self.model(input_ids, use_cache=False, return_dict=False)
        return (out[0],)


def build_gpt2() -> nn.Module:
    return build_hf(GPT2LM)


class DistilBert(transformers.DistilBertModel):
    """DistilBertModel returning (last_hidden_state,); subclassed so paths match HF checkpoints."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[Tensor]:  # type: ignore[override]
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return (out.last_hidden_state,)


def build_distilbert() -> nn.Module:
    cfg = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64,
        attn_implementation="eager",
    )
    return build_hf(lambda: DistilBert(cfg))


class Roberta(transformers.RobertaModel):
    """RobertaModel returning (last_hidden_state, pooler_output)."""

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tuple[Tensor, Tensor]:  # type: ignore[override]
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return out.last_hidden_state, out.pooler_output


def build_roberta() -> nn.Module:
    cfg = transformers.RobertaConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=66, pad_token_id=1, attn_implementation="eager",
    )
    return build_hf(lambda: Roberta(cfg))


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
    return build_hf(lambda: ViT(cfg))


ENTRIES: List[Entry] = [
    Entry(
        name="gpt2-lm",
        mode="trace",
        family="decoder-only transformer (HF GPT-2 + LM head, traced)",
        build=build_gpt2,
        inputs=lambda seed: [tokens(seed, 2, 12)[0]],
        alt_inputs=lambda seed: [tokens(seed, 3, 7)[0]],
        capture=["model.transformer.h.0.attn", "model.transformer.h.1.mlp", "model.transformer.ln_f",
                 "model.lm_head"],
        multi_call=[],
        single_calls="Hugging Face GPT-2 gives every block its own modules (its activation and dropouts included): no module is called twice.",
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
        inputs=lambda seed: list(tokens(seed, 2, 12)),
        alt_inputs=lambda seed: list(tokens(seed, 3, 9)),
        capture=["embeddings", "transformer.layer.0.attention", "transformer.layer.1.ffn.lin1",
                 "transformer.layer.1.output_layer_norm"],
        multi_call=[],
        single_calls="Hugging Face DistilBERT gives every layer its own modules: no module is called twice.",
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
        inputs=lambda seed: list(tokens(seed, 2, 12, pad_id=1)),
        alt_inputs=lambda seed: list(tokens(seed, 3, 9, pad_id=1)),
        capture=["embeddings", "encoder.layer.0.attention.self", "encoder.layer.1.intermediate", "pooler"],
        multi_call=[],
        single_calls="Hugging Face RoBERTa gives every layer its own modules: no module is called twice.",
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
        inputs=lambda seed: [randn(seed, 2, 3, 32, 32)],
        alt_inputs=lambda seed: [randn(seed, 3, 3, 32, 32)],
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
]
