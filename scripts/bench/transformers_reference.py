"""Baseline for scripts/bench-transformers.js: Hugging Face GPT-2 small in PyTorch eager on the
weights of models/gpt2.pt (GPT2LMHeadModel, untied head, eager attention), as its users run it.

Usage: transformers_reference.py MODEL ROUNDS NEW_TOKENS

- run: forward with 12 forward hooks cloning each block's output (the residual stream), logits
  computed, no grad, use_cache=False, on seeded ids [1, 512] and [8, 128];
- generate: `model.generate` (greedy, its KV cache) of NEW_TOKENS tokens after a seeded
  128-token prompt, plain and with a steering hook adding a seeded vector to block 6's output.

Prints JSON {"threads", "torch", "transformers", "run": {"1x512": [ms...], "8x128": [ms...]},
"generate": {"plain": [tokens/s...], "steered": [...]}, "prompt": [ids], "steer": [768 floats],
"tokens": {"plain": [ids], "steered": [ids]}}.
"""
import json
import os
import sys
import time

import torch
import transformers
from transformers import GPT2LMHeadModel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import torchscope_models  # noqa: E402
from timing import timings  # noqa: E402

SHAPES = {"1x512": (1, 512), "8x128": (8, 128)}
PROMPT = 128
STEER_LAYER = 6


def first(output):
    """A block's hidden states: transformers 5 blocks return a tensor, earlier ones a tuple."""
    return output if isinstance(output, torch.Tensor) else output[0]


def steered(output, steer):
    return output + steer if isinstance(output, torch.Tensor) else (output[0] + steer,) + tuple(output[1:])


def seeded_ids(shape, seed):
    return torch.randint(0, 50257, shape, generator=torch.Generator().manual_seed(seed))


def main():
    model_file, rounds, new_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    transformers.logging.set_verbosity_error()
    model = GPT2LMHeadModel(torchscope_models.gpt2_config("small"))
    model.load_state_dict(torch.jit.load(model_file).state_dict(), strict=False)
    model.eval().requires_grad_(False)
    torch.set_grad_enabled(False)
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "transformers": transformers.__version__, "run": {}}

    cache = []
    hooks = [block.register_forward_hook(lambda m, a, o: cache.append(first(o).clone())) for block in model.transformer.h]
    for name, shape in SHAPES.items():
        ids = seeded_ids(shape, 0)

        def run():
            cache.clear()
            model(input_ids=ids, use_cache=False).logits

        out["run"][name] = timings(run, 1, rounds)
    for hook in hooks:
        hook.remove()

    prompt = seeded_ids((1, PROMPT), 1)
    steer = torch.randn(768, generator=torch.Generator().manual_seed(2)) * 4
    out["prompt"] = prompt[0].tolist()
    out["steer"] = steer.tolist()
    out["generate"] = {}
    out["tokens"] = {}
    for mode in ["plain", "steered"]:
        handle = None
        if mode == "steered":
            handle = model.transformer.h[STEER_LAYER].register_forward_hook(lambda m, a, o: steered(o, steer))
        rates = []
        for _ in range(rounds + 1):
            start = time.perf_counter()
            tokens = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                    do_sample=False, pad_token_id=0)
            rates.append(new_tokens / (time.perf_counter() - start))
        out["generate"][mode] = rates[1:]  # the first call warms up
        out["tokens"][mode] = tokens[0, PROMPT:].tolist()
        if handle is not None:
            handle.remove()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
