#!/usr/bin/env python3
"""Reference for SAEs trained on a TransformerLens model processed with center_writing_weights,
used on the raw Hugging Face model (test/sae-centering.test.ts).

    python test/python/sae_centering_reference.py REQUEST.json
    REQUEST: {"out": "/abs/dir", "folder": "/abs/models/llm/gpt2", "layer": 1, "ids": [[...], ...]}

The processed model is the Hugging Face GPT-2 with TransformerLens's center_writing_weights
applied as weight_processing.py defines it (W_E, W_pos, every W_O and W_out minus their mean over
d_model, b_O and b_out minus their mean), the unembedding untied first as TransformerLens keeps
it. Its other processing (fold_ln, fold_value_biases, center_unembed) changes no residual value
nor any softmax, so it is left out. A seeded standard SAE stands for one trained on the
processed model's blocks.LAYER.hook_resid_pre (its b_dec has a mean, as a trained one's may).

Writes OUT/trained (that SAE, as SAELens writes it), OUT/centered (the same folded by
scripts/fetch_sae.py's center_folder) and OUT/index.json: whether the processed residual is the
raw one minus its per-token mean, whether the processed model's logits are the raw model's, and,
from the processed model, the SAE's features at the point and the logits with the SAE spliced
there without the error term (what SAELens's HookedSAETransformer computes on that model).
"""

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "scripts"))
import fetch_sae  # noqa: E402
from llm_reference import load  # noqa: E402
from refio import read_request, write_index  # noqa: E402

D_SAE = 64
SEED = 3


def center_writing_weights(raw: nn.Module) -> nn.Module:
    """TransformerLens's center_writing_weights on a GPT2LMHeadModel (Conv1D weights are [in, out])."""
    model = copy.deepcopy(raw)
    model.lm_head.weight = nn.Parameter(raw.transformer.wte.weight.detach().clone())
    with torch.no_grad():
        for embedding in (model.transformer.wte, model.transformer.wpe):
            embedding.weight -= embedding.weight.mean(-1, keepdim=True)
        for block in model.transformer.h:
            for projection in (block.attn.c_proj, block.mlp.c_proj):
                projection.weight -= projection.weight.mean(-1, keepdim=True)
                projection.bias -= projection.bias.mean()
    return model.eval()


def sae_tensors(d_in: int) -> Dict[str, Tensor]:
    g = torch.Generator().manual_seed(SEED)
    w_dec = torch.randn(D_SAE, d_in, generator=g)
    return {
        "W_enc": (torch.randn(d_in, D_SAE, generator=g) / d_in**0.5).contiguous(),
        "b_enc": -0.1 * torch.rand(D_SAE, generator=g),
        "W_dec": (w_dec / w_dec.norm(dim=1, keepdim=True)).contiguous(),
        "b_dec": 0.3 + 0.5 * torch.randn(d_in, generator=g),
    }


def encode(w: Dict[str, Tensor], x: Tensor) -> Tensor:
    return torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])


def run(model: nn.Module, ids: Tensor, layer: int, edit: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, Tensor]:
    """Logits, and block `layer`'s input (what a pre-hook sees), replaced by edit(input) when given."""
    seen: List[Tensor] = []

    def hook(_module: nn.Module, args: Any) -> Any:
        seen.append(args[0].detach().clone())
        return (edit(args[0]), *args[1:]) if edit else None

    handle = model.transformer.h[layer].register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits
    finally:
        handle.remove()
    return {"logits": logits, "resid": seen[0]}


def main() -> int:
    got = read_request(__doc__.split("\n\n")[1])
    if got is None:
        return 2
    request, out = got
    layer = int(request["layer"])
    ids = torch.tensor(request["ids"], dtype=torch.long)
    raw = load(request["folder"])
    processed = center_writing_weights(raw)
    w = sae_tensors(raw.config.n_embd)
    for name in ("trained", "centered"):
        shutil.rmtree(out / name, ignore_errors=True)
        (out / name).mkdir(parents=True)
        save_file(w, str(out / name / "sae_weights.safetensors"))
        cfg = json.dumps(
            {
                "architecture": "standard",
                "d_in": raw.config.n_embd,
                "d_sae": D_SAE,
                "dtype": "float32",
                "apply_b_dec_to_input": True,
                "normalize_activations": "none",
                "metadata": {
                    "hook_name": f"blocks.{layer}.hook_resid_pre",
                    "model_name": "gpt2",
                    "model_from_pretrained_kwargs": {"center_writing_weights": True},
                    "sae_lens_version": "6.0.0",
                },
            },
            indent=2,
        )
        (out / name / "cfg.json").write_text(cfg + "\n")
    fetch_sae.center_folder(out / "centered")

    plain, clean = run(raw, ids, layer), run(processed, ids, layer)
    centred = plain["resid"] - plain["resid"].mean(-1, keepdim=True)
    spliced = run(processed, ids, layer, lambda x: encode(w, x) @ w["W_dec"] + w["b_dec"])
    write_index(
        out,
        {
            "residMinusMean": (clean["resid"] - centred).abs().max().item(),
            "logitsProcessedVsRaw": (clean["logits"] - plain["logits"]).abs().max().item(),
            "features": encode(w, clean["resid"]).flatten().tolist(),
            "featuresShape": list(clean["resid"].shape[:-1]) + [D_SAE],
            "splicedLogits": spliced["logits"].flatten().tolist(),
            "logitsShape": list(spliced["logits"].shape),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
