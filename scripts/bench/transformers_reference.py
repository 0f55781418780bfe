"""Baseline worker for scripts/bench-transformers.js: Hugging Face models in PyTorch eager, as
their users run them, timed one call at a time on request so that the bench can interleave them
with torchscope's calls (the machine's speed drifts; ratios of neighbouring calls do not).

Usage: transformers_reference.py SPEC.json, then one JSON request per line on stdin, one JSON
answer per line on stdout. SPEC: {"models": {key: {"kind": "gpt2", "file": models/gpt2.pt} |
{"kind": "hf", "folder": save_pretrained folder}}, "saes": {key: SAELens folder}}.

- {"op": "ids", "model", "shape", "seed"}: the seeded ids the runs take, {"ids": [...]}; {"op":
  "steer", "model"}: the seeded steering vector, {"steer": [...]}.
- {"op": "run", "model", "shape": [b, s], "seed", "sae": bool, "precision": "fp32"|"bf16"}: one
  forward with forward hooks cloning each block's output (the residual stream), logits computed,
  no grad, use_cache=False; with "sae", block 6's output replaced by the SAE's reconstruction
  (SAELens's standard SAE: relu((x - b_dec) W_enc + b_enc) W_dec + b_dec); bf16 under
  torch.autocast. Answers {"ms", "last": the last position's logits of row 0 (with "sae")}.
- {"op": "generate", "model", "prompt": [ids], "new_tokens", "steer": [floats] | null}: greedy
  `model.generate` with its KV cache, a steering hook adding the vector to block 6's output.
  Answers {"rate": tokens/s, "tokens": the new ids}.
"""
import json
import sys
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torchscope_models  # noqa: E402

LAYER = 6


def load(spec):
    if spec["kind"] == "gpt2":
        model = transformers.GPT2LMHeadModel(torchscope_models.gpt2_config("small"))
        model.load_state_dict(torch.jit.load(spec["file"]).state_dict(), strict=False)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(spec["folder"], attn_implementation="eager", dtype=torch.float32)
    return model.eval().requires_grad_(False)


def blocks(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def first(output):
    """A block's hidden states: transformers 5 blocks return a tensor, earlier ones a tuple."""
    return output if isinstance(output, torch.Tensor) else output[0]


def replaced(output, value):
    return value if isinstance(output, torch.Tensor) else (value,) + tuple(output[1:])


def load_sae(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "sae_weights.safetensors"))


def reconstruct(sae, x):
    features = torch.relu((x - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"])
    return features @ sae["W_dec"] + sae["b_dec"]


def seeded_ids(shape, vocab, seed):
    return torch.randint(0, vocab, tuple(shape), generator=torch.Generator().manual_seed(seed))


def main():
    spec = json.loads(Path(sys.argv[1]).read_text())
    transformers.logging.set_verbosity_error()
    torch.set_grad_enabled(False)
    models = {key: load(s) for key, s in spec["models"].items()}
    saes = {key: load_sae(folder) for key, folder in spec["saes"].items()}
    cache = []
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        model = models[request["model"]]
        handles = []
        if request["op"] == "ids":
            answer = {"ids": seeded_ids(request["shape"], model.config.vocab_size, request["seed"]).flatten().tolist()}
        elif request["op"] == "steer":
            answer = {"steer": (torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(2)) * 4).tolist()}
        elif request["op"] == "run":
            ids = seeded_ids(request["shape"], model.config.vocab_size, request["seed"])
            if request.get("sae"):
                sae = saes[request["model"]]
                handles.append(blocks(model)[LAYER].register_forward_hook(lambda m, a, o: replaced(o, reconstruct(sae, first(o)))))
            handles += [block.register_forward_hook(lambda m, a, o: cache.append(first(o).clone())) for block in blocks(model)]
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=request.get("precision") == "bf16"):
                logits = model(input_ids=ids, use_cache=False).logits
            answer = {"ms": (time.perf_counter() - start) * 1000}
            if request.get("sae"):
                answer["last"] = logits[0, -1].float().tolist()
        else:
            prompt = torch.tensor([request["prompt"]])
            if request["steer"] is not None:
                steer = torch.tensor(request["steer"])
                handles.append(blocks(model)[LAYER].register_forward_hook(lambda m, a, o: replaced(o, first(o) + steer)))
            new = request["new_tokens"]
            start = time.perf_counter()
            tokens = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                    pad_token_id=0)
            answer = {"rate": new / (time.perf_counter() - start), "tokens": tokens[0, prompt.shape[1]:].tolist()}
        for handle in handles:
            handle.remove()
        cache.clear()
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
