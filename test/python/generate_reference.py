#!/usr/bin/env python3
"""Python reference for torch.generate with Hugging Face tokenizers (test/generate-llm.test.ts):
transformers' tokenizer and eager model loaded from a save_pretrained folder of models/llm/
(scripts/llm_fixtures.py), greedy decoding as one full forward per new token (argmax, first of
ties), no cache and no stop.

    python test/python/generate_reference.py REQUEST.json

    {"out": "/tmp/dir", "cases": [{"id": "llama/text", "folder": "/abs/models/llm/llama",
      "prompt": "text" | null, "messages": [...] | null, "steps": 8,
      "steer": {"layer": "model.layers.0", "add": TENSOR} (optional)}]}

A case's prompt is the text through the tokenizer (its special tokens added, as tokenizer(text)
does), or the messages through apply_chat_template(add_generation_prompt=True, tokenize=True).
With `steer`, a forward hook on that module adds the vector to its output's first tensor at every
step (activation steering, what torchscope's { patch: { layer: { add } } } does). TENSOR as
reference.py's read_tensor takes it.
Answer: {"ids": the prompt's ids, "newIds": [...], "text": tokenizer.decode(newIds)}.
"""

import sys
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reference import read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402


def main() -> int:
    got = read_request(__doc__)
    if got is None:
        return 2
    request, out = got
    import transformers

    transformers.logging.set_verbosity_error()
    loaded = {}

    def run_case(case, _i):
        folder = case["folder"]
        if folder not in loaded:
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
            model = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
            loaded[folder] = (tokenizer, model)
        tokenizer, model = loaded[folder]
        if case.get("messages") is not None:
            ids = list(tokenizer.apply_chat_template(case["messages"], add_generation_prompt=True, tokenize=True, return_dict=False))
        else:
            ids = tokenizer(case["prompt"])["input_ids"]
        sequence = list(ids)
        handle = None
        if case.get("steer"):
            vector = read_tensor(case["steer"]["add"])

            def add(_m, _args, output):
                if isinstance(output, tuple):
                    return (output[0] + vector, *output[1:])
                return output + vector

            handle = model.get_submodule(case["steer"]["layer"]).register_forward_hook(add)
        try:
            with torch.no_grad():
                for _ in range(case["steps"]):
                    logits = model(torch.tensor([sequence]), use_cache=False).logits
                    sequence.append(int(logits[0, -1].argmax()))
        finally:
            if handle is not None:
                handle.remove()
        new = sequence[len(ids) :]
        return {"ids": ids, "newIds": new, "text": tokenizer.decode(new)}

    write_index(out, {"cases": run_cases(request["cases"], run_case)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
