"""Baseline for scripts/bench-sae.js: a 24,576-feature SAE on GPT-2 small's residual stream, its
math in PyTorch eager (SAELens's standard architecture: ReLU(x - b_dec) W_enc + b_enc, f W_dec +
b_dec) and spliced into the eager GPT-2 with a forward pre-hook, as SAELens's HookedSAETransformer
does (output + error term, the error computed without gradient).

Usage: sae_reference.py MODEL SAE_DIR LENGTH ROUNDS

Writes the SAE (seeded, SAELens's folder format) into SAE_DIR first, so torchscope times the same
weights. Prints JSON {"threads", "torch", "encode": [ms], "forward": [ms], "plain": [ms],
"spliced": [ms]} (encode and forward of x [1, LENGTH, 768]; plain and spliced GPT-2 forwards).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402
from timing import timings  # noqa: E402

D_IN, D_SAE, LAYER = 768, 24576, 6


def write_sae(folder):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g) / D_IN**0.5,
        "b_enc": torch.randn(D_SAE, generator=g) * 0.1 - 0.5,
        "W_dec": torch.randn(D_SAE, D_IN, generator=g) / D_SAE**0.5,
        "b_dec": torch.randn(D_IN, generator=g) * 0.1,
    }
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "sae_weights.safetensors"))
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"hook_name": f"blocks.{LAYER}.hook_resid_pre", "sae_lens_version": "6.18.0", "model_name": "gpt2"}}
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    return tensors


def main():
    model_file, folder, length, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    w = write_sae(folder)
    torch.set_grad_enabled(False)
    encode = lambda x: torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])  # noqa: E731
    forward = lambda x: encode(x) @ w["W_dec"] + w["b_dec"]  # noqa: E731
    x = torch.randn(1, length, D_IN, generator=torch.Generator().manual_seed(1))
    model = torchscope_models.Gpt2LM(torchscope_models.gpt2_config("small"))
    model.load_state_dict(torch.jit.load(model_file).state_dict(), strict=False)
    model.eval()
    ids = torch.randint(0, 50257, (1, length), generator=torch.Generator().manual_seed(0))

    def splice(_module, args):
        resid = args[0]
        return (forward(resid) + (resid - forward(resid)),) + args[1:]

    plain = timings(lambda: model(ids), 1, rounds)
    hook = model.transformer.h[LAYER].register_forward_pre_hook(splice)
    spliced = timings(lambda: model(ids), 1, rounds)
    hook.remove()
    print(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__, "encode": timings(lambda: encode(x), 1, rounds),
                      "forward": timings(lambda: forward(x), 1, rounds), "plain": plain, "spliced": spliced}))


if __name__ == "__main__":
    main()
