#!/usr/bin/env python3
"""Python side of scripts/bench-bert.js: BERT attention extraction with transformers.

    python scripts/bench/bert_reference.py REQUEST.json

REQUEST = {"model": "/abs/models/bert.pt", "vocab": "/abs/models/bert-vocab.txt",
           "texts": {"single": [text], "batch8": [8 texts]}, "warmup": 1, "repeats": 5,
           "tokenizerText": text, "tokenizerCount": 2000}
Prints {"times": {name: [ms...]}, "tokenizer": sentences/s, "tokens": {name: [S...]}}.
Each timed call: fast-tokenizer encode (padded to longest) + BertModel (eager,
output_attentions=True, torch.no_grad) + stacking the attentions to [B, L, H, S, S].
"""

import json
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertModel  # noqa: E402
from transformers import BertTokenizer as FastBertTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torchscope_models as tm  # noqa: E402


def main() -> int:
    req = json.loads(Path(sys.argv[1]).read_text())
    tokenizer = FastBertTokenizer(vocab=req["vocab"], do_lower_case=True)
    model = BertModel(tm.bert_config("base")).eval()
    state = torch.jit.load(req["model"], map_location="cpu").state_dict()
    model.load_state_dict(state, strict=False)

    def extract(texts):
        with torch.no_grad():
            enc = tokenizer(texts, padding="longest", truncation=True, max_length=512, return_tensors="pt")
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
            return torch.stack(out.attentions, dim=1), enc["input_ids"].shape[1]

    times, tokens = {}, {}
    for name, texts in req["texts"].items():
        for _ in range(req["warmup"]):
            extract(texts)
        samples = []
        for _ in range(req["repeats"]):
            t0 = time.perf_counter()
            _, s = extract(texts)
            samples.append((time.perf_counter() - t0) * 1e3)
        times[name] = samples
        tokens[name] = s

    text, count = req["tokenizerText"], req["tokenizerCount"]
    backend = tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else tokenizer._tokenizer
    for _ in range(50):
        backend.encode(text)
    t0 = time.perf_counter()
    for _ in range(count):
        backend.encode(text)
    per_s = count / (time.perf_counter() - t0)
    print(json.dumps({"times": times, "tokens": tokens, "tokenizer": per_s, "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
