#!/usr/bin/env python3
"""Python reference for lib/methods/attention.ts: Hugging Face BertModel, eager attention,
output_attentions=True, with the weights of a torchscope TorchScript file.

    python test/python/attention_reference.py REQUEST.json

    {
      "out": "/tmp/dir",
      "vocab": "/abs/models/bert-vocab.txt",
      "cases": [
        {"id": "c1", "model": "/abs/models/bert-tiny.pt", "size": "tiny" | "base",
         "input": "text" | ["text", ...] | [["a", "b"], ...], "maxLength": 512},
        {"id": "g1", "model": "/abs/models/gpt2-tiny.pt", "gpt2": "tiny" | "small",
         "ids": [[...]], "mask": [[...]]}
      ],
      "exports": [{"from": "/abs/models/bert-tiny.pt", "path": "/tmp/x.pt"}]
    }

exports: bert-tiny's weights traced as a model that returns (last_hidden_state, pooler_output,
attentions averaged over heads [B, L, S, S]): no [B, L, H, S, S] output, but the trace keeps
each attention.self's (context, probs), so lib/methods/attention.ts takes the 'capture' path.
{"kind": "noattention", "path": ...}: a scripted model taking (input_ids, attention_mask) with
no attention in it, for the error.

The text is tokenized by transformers' BertTokenizer (the fast one, over the same vocab
file; batches padded to the longest), and BertModel runs forward(input_ids, attention_mask)
as the TorchScript files do: no token_type_ids, so a pair's second text has type 0 there too.

OUT/index.json = {"cases": {id: {"tokens": [[...]], "ids": [[...]], "mask": [[...]],
"shape": [B, L, H, S, S], "file": "id.bin"}}}; the .bin holds the stacked attentions,
float32 little-endian, C order.

GPT-2 cases ("gpt2": size) take ids and mask as torchscope's GPT-2 tokenizer made them (the
reference for that tokenizer is test/circuits.test.ts) and run GPT2LMHeadModel (eager) with the
file's weights, output_attentions=True.
"""

import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertModel, GPT2LMHeadModel  # noqa: E402
from transformers import BertTokenizer as FastBertTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import torchscope_models as tm  # noqa: E402

_models = {}
BUFFERS = {"embeddings.position_ids", "embeddings.token_type_ids"}


def model_for(path: str, size: str) -> BertModel:
    key = (path, size)
    if key not in _models:
        model = BertModel(tm.bert_config(size), add_pooling_layer=True).eval()
        state = torch.jit.load(path, map_location="cpu").state_dict()
        missing, unexpected = model.load_state_dict(state, strict=False)
        buffers = {name for name, _ in model.named_buffers()}
        # position_ids / token_type_ids are non-persistent buffers in transformers 5, but
        # TorchScript saves them: they come back as unexpected, holding the same values.
        assert set(unexpected) <= BUFFERS, f"{path}: unexpected keys {unexpected}"
        assert set(missing) <= buffers, f"{path}: missing weights {sorted(set(missing) - buffers)}"
        assert model.config._attn_implementation == "eager", model.config._attn_implementation
        _models[key] = model
    return _models[key]


def gpt2_for(path: str, size: str) -> GPT2LMHeadModel:
    key = (path, "gpt2", size)
    if key not in _models:
        model = GPT2LMHeadModel(tm.gpt2_config(size)).eval()
        missing, unexpected = model.load_state_dict(torch.jit.load(path, map_location="cpu").state_dict(), strict=False)
        assert not missing and not unexpected, (path, missing, unexpected)
        assert model.config._attn_implementation == "eager", model.config._attn_implementation
        _models[key] = model
    return _models[key]


def gpt2_case(case: dict) -> torch.Tensor:
    model = gpt2_for(case["model"], case["gpt2"])
    ids = torch.tensor(case["ids"], dtype=torch.long)
    mask = torch.tensor(case["mask"], dtype=torch.long)
    res = model(input_ids=ids, attention_mask=mask, use_cache=False, output_attentions=True)
    return torch.stack(res.attentions, dim=1).contiguous()


class BertMeanAttentions(tm.BertWithAttentions):
    def forward(self, input_ids, attention_mask=None):  # type: ignore[override]
        hidden, pooled, attentions = super().forward(input_ids, attention_mask)
        return hidden, pooled, attentions.mean(dim=2)


def export_mean(source: str, path: str) -> None:
    model = BertMeanAttentions(tm.bert_config("tiny")).eval()
    missing, unexpected = model.load_state_dict(torch.jit.load(source).state_dict(), strict=False)
    assert not missing and set(unexpected) <= BUFFERS, (missing, unexpected)
    example = (torch.ones(1, 8, dtype=torch.long), torch.ones(1, 8, dtype=torch.long))
    torch.jit.save(torch.jit.trace(model, example, check_trace=False), path)


class NoAttention(torch.nn.Module):
    """Takes (input_ids, attention_mask) like BERT, has no attention at all."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(30522, 4)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.embed(input_ids) * attention_mask.unsqueeze(-1)


def main() -> int:
    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path(request["out"])
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = FastBertTokenizer(vocab=request["vocab"], do_lower_case=True)
    results = {}
    torch.set_grad_enabled(False)
    for task in request.get("exports", []):
        if task.get("kind") == "noattention":
            torch.jit.save(torch.jit.script(NoAttention().eval()), task["path"])
        else:
            export_mean(task["from"], task["path"])
    for case in request["cases"]:
        if "gpt2" in case:
            att = gpt2_case(case)
            file = out / f"{case['id'].replace('/', '_')}.bin"
            file.write_bytes(att.numpy().astype(np.float32).tobytes())
            results[case["id"]] = {"ids": case["ids"], "mask": case["mask"], "shape": list(att.shape), "file": str(file)}
            continue
        text = case["input"]
        kwargs = dict(padding="longest", truncation=True, max_length=case.get("maxLength", 512), return_tensors="pt")
        if isinstance(text, str):
            enc = tokenizer([text], **kwargs)
        elif all(isinstance(t, str) for t in text):
            enc = tokenizer(list(text), **kwargs)
        else:
            enc = tokenizer([t[0] for t in text], [t[1] for t in text], **kwargs)
        model = model_for(case["model"], case["size"])
        res = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
        att = torch.stack(res.attentions, dim=1).contiguous()
        file = out / f"{case['id'].replace('/', '_')}.bin"
        file.write_bytes(att.numpy().astype(np.float32).tobytes())
        results[case["id"]] = {
            "tokens": [tokenizer.convert_ids_to_tokens(row) for row in enc["input_ids"].tolist()],
            "ids": enc["input_ids"].tolist(),
            "mask": enc["attention_mask"].tolist(),
            "shape": list(att.shape),
            "file": str(file),
        }
    (out / "index.json").write_text(json.dumps({"cases": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
