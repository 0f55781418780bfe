"""Today's open LLM families as torch.export programs, against eager PyTorch: each Hugging Face
fixture of scripts/llm_fixtures.py (Llama, Qwen2, Gemma 2 and 3, Mistral, Pythia, Phi-3, GPT-2;
eager attention) exported now with a dynamic sequence length, in the training IR and core ATen,
into the request's folder, with eager's values on seeded ids.

Request (JSON): {"out", "models": "/abs/models/llm", "families": [...]}. Writes
<family>.training.pt2, <family>.core.pt2 and index.json: per family the ids [2, 9], the logits,
the first block's path and its output (a forward hook), the first block's attention
probabilities (output_attentions) and the logits with the first block's MLP output zeroed (a
forward hook returning zeros).
"""
import warnings

import torch
import transformers

from refio import read_request, run_cases, write_index


def flat(t: torch.Tensor) -> dict:
    return {"data": t.detach().float().flatten().tolist(), "shape": list(t.shape)}


def first(output):
    return output if isinstance(output, torch.Tensor) else output[0]


def run_family(family: str, models: str, out) -> dict:
    model = transformers.AutoModelForCausalLM.from_pretrained(f"{models}/{family}", attn_implementation="eager").eval()
    model.config.use_cache = False
    ids = torch.randint(3, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    names = [name for name, _ in model.named_modules()]
    block = next(n for n in names if n.endswith("layers.0") or n.endswith("h.0"))
    mlp = next(n for n in names if n.startswith(block + ".") and n.endswith("mlp"))
    attention = next(n for n in names if n.startswith(block + ".") and n.rsplit(".", 1)[1] in ("self_attn", "attention", "attn"))
    captured = {}
    handle = model.get_submodule(block).register_forward_hook(lambda m, a, o: captured.__setitem__("block", first(o).clone()))
    with torch.no_grad():
        result = model(input_ids=ids, output_attentions=True)
    handle.remove()
    zero = model.get_submodule(mlp).register_forward_hook(lambda m, a, o: torch.zeros_like(o))
    with torch.no_grad():
        patched = model(input_ids=ids).logits
    zero.remove()
    seq = torch.export.Dim("seq", min=2, max=64)
    program = torch.export.export(model, (), {"input_ids": ids}, dynamic_shapes={"input_ids": {1: seq}})
    torch.export.save(program, str(out / f"{family}.training.pt2"))
    torch.export.save(program.run_decompositions(), str(out / f"{family}.core.pt2"))
    return {
        "ids": ids.flatten().tolist(),
        "logits": flat(result.logits),
        "block": block,
        "blockOutput": flat(captured["block"]),
        "attention": attention,
        "pattern": flat(result.attentions[0]),
        "mlp": mlp,
        "patched": flat(patched),
    }


def main() -> int:
    got = read_request("usage: pt2_llm_reference.py request.json")
    if got is None:
        return 2
    request, out = got
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cases = [{"id": family} for family in request["families"]]
    write_index(out, {"families": run_cases(cases, lambda case, _i: run_family(case["id"], request["models"], out))})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
