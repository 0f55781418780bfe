"""What scripts/bench-transformers.js measures beside models/gpt2.pt, made once into OUT (default
models/bench/) and reused:

  llama-bench/         a Llama of GPT-2 small's size (hidden 768, 12 layers, 12 heads, 4 key-value
                       heads, MLP 2048, vocabulary 32000, untied head: 125M parameters), seeded,
                       as save_pretrained writes it
  llama-bench.pt       its torchscope export (scripts/hf_export.py), with its decoding step
  sae-gpt2/, sae-llama/  a standard SAE (SAELens 6's format; 8 x 768 features) on block 6's output
                       of each, seeded

    python scripts/bench/transformer_fixtures.py [OUT]
"""
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

D_MODEL = 768
D_SAE = 8 * D_MODEL
SAE_LAYER = 6
LLAMA = dict(hidden_size=D_MODEL, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4, intermediate_size=2048,
             vocab_size=32000, max_position_embeddings=1024, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)


def llama(out: Path) -> None:
    import hf_export
    import transformers

    folder = out / "llama-bench"
    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        config = transformers.LlamaConfig(**LLAMA, attn_implementation="eager")
        transformers.LlamaForCausalLM(config).eval().save_pretrained(folder)
    if not (out / "llama-bench.pt").is_file():
        transformers.logging.set_verbosity_error()
        hf_export.export(str(folder), str(out / "llama-bench.pt"))


def sae(folder: Path, hook: str, seed: int) -> None:
    from safetensors.torch import save_file

    if (folder / "cfg.json").is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "W_enc": torch.randn(D_MODEL, D_SAE, generator=g) * D_MODEL**-0.5,
        "W_dec": torch.randn(D_SAE, D_MODEL, generator=g) * 0.05,
        "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
        "b_dec": torch.randn(D_MODEL, generator=g) * 0.1,
    }
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    cfg = {"architecture": "standard", "d_in": D_MODEL, "d_sae": D_SAE, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"hook_name": hook, "hook_head_index": None, "sae_lens_version": "6.18.0", "context_size": 128}}
    (folder / "cfg.json").write_text(json.dumps(cfg))


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "models" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    llama(out)
    sae(out / "sae-gpt2", f"blocks.{SAE_LAYER}.hook_resid_post", 1)
    sae(out / "sae-llama", f"blocks.{SAE_LAYER}.hook_resid_post", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
