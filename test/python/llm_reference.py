#!/usr/bin/env python3
"""Eager Hugging Face reference for test/hf-export.test.ts: the causal LMs of models/llm/
(scripts/llm_fixtures.py) loaded from their save_pretrained folders with transformers, run on
the test's token ids with forward hooks; the config's facts; and the exporter's refusals.

    python test/python/llm_reference.py REQUEST.json

    {
      "out": "/tmp/dir",
      "cases": [
        {
          "id": "llama/1",
          "folder": "/abs/models/llm/llama",            # from_pretrained(eager, float32)
          "inputs": [{"file": ..., "dtype": "int64", "shape": [2, 11]}],   # input_ids
          "capture": ["model.layers.0", "model.layers.0:input"]            # forward hooks; ':input' a pre-hook
        }
      ],
      "facts": [{"id": "llama", "folder": "/abs/models/llm/llama"}],
      "tasks": [{"kind": "save_t5", "path": "/tmp/t5"}, {"kind": "refusals"}, {"kind": "encoders", "path": "/tmp/enc"}]
    }

Results: OUT/index.json = {"cases": {id: {"output": logits VALUE, "captures": {layer: [VALUE per
call]}}}, "facts": {id: {...}}, "tasks": {kind: ...}}; VALUE as in reference.py. The
"encoders" task exports a tiny BERT and ViT with scripts/hf_export.py and gives their eager
outputs on inputs made here. A module's
capture is the first tensor it returned (or, for ':input', received), which is what the trace
keeps of it.
"""

import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "scripts"))
from reference import Writer, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402
import hf_export  # noqa: E402

INPUT_SUFFIX = ":input"
_models: Dict[str, nn.Module] = {}


def load(folder: str) -> nn.Module:
    if folder not in _models:
        import transformers

        transformers.logging.set_verbosity_error()
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
        _models[folder] = model.eval()
    return _models[folder]


def first_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise TypeError(f"no first tensor in {type(value).__name__}")


def run_case(case: Dict[str, Any], writer: Writer) -> Dict[str, Any]:
    model = load(case["folder"])
    (ids,) = [read_tensor(t) for t in case["inputs"]]
    records: Dict[str, List[torch.Tensor]] = {}
    handles = []
    for layer in case.get("capture", []):
        records[layer] = []
        store = records[layer]
        if layer.endswith(INPUT_SUFFIX):
            module = model.get_submodule(layer[: -len(INPUT_SUFFIX)])

            def pre(_m: nn.Module, args: Tuple, kwargs: Dict, store: List[torch.Tensor] = store) -> None:
                store.append((args[0] if args else kwargs["hidden_states"]).detach().clone())

            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        else:

            def post(_m: nn.Module, _args: Tuple, out: Any, store: List[torch.Tensor] = store) -> None:
                store.append(first_tensor(out).detach().clone())

            handles.append(model.get_submodule(layer).register_forward_hook(post))
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False, return_dict=True).logits
    finally:
        for h in handles:
            h.remove()
    return {"output": writer.value(logits), "captures": {k: [writer.value(t) for t in v] for k, v in records.items()}}


def facts(folder: str) -> Dict[str, Any]:
    """What the manifest should say, read from transformers' own objects."""
    model = load(folder)
    config = model.config
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    generation = model.generation_config
    return {
        "modelType": config.model_type,
        "architecture": type(model).__name__,
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "kvHeads": getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        "hiddenSize": config.hidden_size,
        "vocabSize": config.vocab_size,
        "maxPositions": config.max_position_embeddings,
        "tiedEmbeddings": out.weight is inp.weight,
        "bosTokenId": generation.bos_token_id,
        "eosTokenId": generation.eos_token_id,
        "slidingWindow": getattr(config, "sliding_window", None),
        "modules": [name for name, _ in model.named_modules() if name],
    }


def save_t5(path: str) -> str:
    """A tiny encoder-decoder folder: the exporter refuses it."""
    import transformers

    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    transformers.T5ForConditionalGeneration(config).save_pretrained(path)
    return path


class Branchy(nn.Module):
    """A model whose forward branches on its input's length: its trace keeps the traced branch."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=16, max_position_embeddings=64)
        self.embed = nn.Embedding(16, 4)

    def forward(self, input_ids: torch.Tensor, return_dict: bool = False) -> Tuple[torch.Tensor]:
        x = self.embed(input_ids)
        if input_ids.shape[1] > 4:
            x = x * 2
        return (x,)


class Fused(nn.Module):
    """A model whose attention is one scaled_dot_product_attention call: no probabilities in its program."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=16, max_position_embeddings=64)
        self.embed = nn.Embedding(16, 4)

    def forward(self, input_ids: torch.Tensor, return_dict: bool = False) -> Tuple[torch.Tensor]:
        q = self.embed(input_ids).unsqueeze(1)
        return (F.scaled_dot_product_attention(q, q, q, is_causal=True).squeeze(1),)


def encoders(out: str, writer: Writer) -> Dict[str, Any]:
    """A tiny BERT (input_ids, attention_mask; padded) and ViT classifier (pixel_values), saved,
    exported by hf_export.export() (task auto) and run eagerly on inputs of other shapes than the trace's."""
    import transformers

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    bert = transformers.BertModel(transformers.BertConfig(
        vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
    ))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    vit = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=16, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=5,
    ))
    cases = {"bert": (bert, [torch.randint(0, 96, (2, 7), generator=g), mask]), "vit": (vit, [torch.randn(3, 3, 16, 16, generator=g)])}
    results: Dict[str, Any] = {}
    for name, (model, inputs) in cases.items():
        folder = Path(out) / name
        model.save_pretrained(folder)
        file = str(Path(out) / f"{name}.pt")
        exported = hf_export.export(str(folder), file)
        eager = load_any(folder)
        with torch.no_grad():
            want = eager(*inputs, return_dict=False)[0]
        results[name] = {"file": file, "inputs": [writer.value(t) for t in inputs], "output": writer.value(want), "task": exported["task"]}
    return results


def load_any(folder: Path) -> nn.Module:
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    model = getattr(transformers, config.architectures[0]).from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def refusal(action: Any) -> str:
    try:
        action()
    except hf_export.ExportRefused as e:
        return str(e)
    return "not refused"


def refusals() -> Dict[str, str]:
    """The exporter's checks on models no Hugging Face folder here makes: a trace that does not
    generalize to other lengths, and fused attention."""
    names = ["input_ids"]
    example = [torch.randint(0, 16, hf_export.TRACE_SHAPE, generator=torch.Generator().manual_seed(0))]
    torch.manual_seed(0)
    branchy = Branchy().eval()
    fused = Fused().eval()
    return {
        "shape": refusal(lambda: hf_export.check(hf_export.trace(branchy, names, example), branchy, names)),
        "fused": refusal(lambda: hf_export.refuse_fused_attention(hf_export.trace(fused, names, example))),
    }


def run_task(task: Dict[str, Any], writer: Writer) -> Any:
    if task["kind"] == "encoders":
        return encoders(task["path"], writer)
    if task["kind"] == "save_t5":
        return save_t5(task["path"])
    if task["kind"] == "refusals":
        return refusals()
    raise ValueError(f"unknown task {task['kind']!r}")


def main() -> int:
    request = read_request(__doc__ or "")
    if request is None:
        return 2
    spec, out = request
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    writer = Writer(out)
    index = {
        "cases": run_cases(spec.get("cases", []), lambda case, _i: run_case(case, writer)),
        "facts": run_cases(spec.get("facts", []), lambda fact, _i: facts(fact["folder"])),
        "tasks": {task["kind"]: run_task(task, writer) for task in spec.get("tasks", [])},
    }
    write_index(out, index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
