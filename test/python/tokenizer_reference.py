#!/usr/bin/env python3
"""Python reference for torchscope's BERT tokenizer (lib/text/bert-tokenizer.ts).

    python test/python/tokenizer_reference.py REQUEST.json OUT.json

One process answers every case of a test run. The request:

    {
      "vocab": "/abs/models/bert-vocab.txt",
      "cases": [
        {"id": "e1", "kind": "encode", "input": "text" | ["text a", "text b"],
         "maxLength": 16, "truncation": false | "longest_first" | "only_first" | "only_second",
         "lowercase": true},
        {"id": "b1", "kind": "batch", "inputs": ["a", "b"] | [["a1", "b1"], ["a2", "b2"]],
         "padding": "longest" | "max_length", "maxLength": 16, "truncation": ...},
        {"id": "t1", "kind": "tokenize", "text": "...", "lowercase": true},
        {"id": "d1", "kind": "decode", "ids": [101, ...], "skipSpecialTokens": true},
        {"id": "s1", "kind": "sweep", "codepoints": [65, 66, ...], "classes": ["", "", ...],
         "chunk": 2000}
      ]
    }

Each case is answered by two tokenizers over the same vocab file:
  - "slow": transformers' pure-Python BertTokenizer, the reference implementation. In
    transformers 5 it is BertTokenizerLegacy; `BertTokenizer` there is the fast one.
  - "fast": transformers' BertTokenizer (5.x; BertTokenizerFast before), built on the Rust
    `tokenizers`. Note: in 5.x, BertTokenizer(vocab_file=...) silently ignores the file and
    builds a 5-token vocabulary; the file goes in `vocab=`.

OUT.json = {"meta": {...versions, "unidata": Python's Unicode version},
            "cases": {id: {"slow": RESULT | {"error": str}, "fast": RESULT | {"error": str}}}}
  encode / batch: {"ids", "tokens", "typeIds", "attentionMask"} (lists, or lists of lists)
  tokenize: {"tokens"}; decode: {"text"}
  sweep: "classes" holds, per code point, what the caller's Unicode tables say of it, in the
    terms the tokenizer uses: "C" (category C*: control, format, unassigned...), "Z" (Zs), "P"
    (P*), "M" (Mn) or "". Code points where Python's tables (another Unicode version) say
    otherwise are left out ("skipped": [[cp, Python's category, caller's class]...]); the others
    ("kept") are written as "Ab{c}cD {c}", joined by spaces, `chunk` code points per text, and
    each text's ids are returned: {"kept", "skipped", "chunks": [[id...]...]}, for "fast" too.
"""

import json
import logging
import sys
import unicodedata
import warnings

warnings.filterwarnings("ignore")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import BertTokenizer as FastBertTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
logging.disable(logging.WARNING)

try:
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBertTokenizer
except ImportError:  # transformers 4.x: BertTokenizer is the slow one
    from transformers import BertTokenizer as SlowBertTokenizer  # noqa: F811
    from transformers import BertTokenizerFast as FastBertTokenizer  # noqa: F811


def char_class(ch):
    """What the tokenizer asks of a character's category: C (control), Z (Zs), P, M (Mn) or ''."""
    cat = unicodedata.category(ch)
    if cat[0] == "C":
        return "C"
    if cat == "Zs":
        return "Z"
    if cat[0] == "P":
        return "P"
    if cat == "Mn":
        return "M"
    return ""


def sweep_text(codepoints):
    return " ".join(f"Ab{chr(c)}cD {chr(c)}" for c in codepoints)


class Pair:
    def __init__(self, vocab, lowercase):
        self.slow = SlowBertTokenizer(vocab_file=vocab, do_lower_case=lowercase)
        if SlowBertTokenizer is FastBertTokenizer:
            raise RuntimeError("no distinct slow tokenizer in this transformers")
        try:
            self.fast = FastBertTokenizer(vocab=vocab, do_lower_case=lowercase)
        except TypeError:
            self.fast = FastBertTokenizer(vocab_file=vocab, do_lower_case=lowercase)
        if self.fast.vocab_size != self.slow.vocab_size:
            raise RuntimeError(f"fast tokenizer has {self.fast.vocab_size} tokens, slow {self.slow.vocab_size}")


def encoding(tok, enc, batch):
    ids = enc["input_ids"]
    tokens = [tok.convert_ids_to_tokens(x) for x in ids] if batch else tok.convert_ids_to_tokens(ids)
    return {"ids": ids, "tokens": tokens, "typeIds": enc["token_type_ids"], "attentionMask": enc["attention_mask"]}


def call_kwargs(case):
    truncation = case.get("truncation", False)
    kwargs = {"add_special_tokens": True, "return_token_type_ids": True, "return_attention_mask": True,
              "truncation": truncation}
    if truncation or case.get("padding") == "max_length":
        kwargs["max_length"] = case["maxLength"]
    return kwargs


def answer(tok, case, which):
    kind = case["kind"]
    if kind == "encode":
        inp = case["input"]
        a, b = (inp, None) if isinstance(inp, str) else inp
        return encoding(tok, tok(a, b, **call_kwargs(case)), batch=False)
    if kind == "batch":
        inputs = case["inputs"]
        kwargs = call_kwargs(case)
        kwargs["padding"] = case["padding"]
        if inputs and not isinstance(inputs[0], str):
            enc = tok([x[0] for x in inputs], [x[1] for x in inputs], **kwargs)
        else:
            enc = tok(inputs, **kwargs)
        return encoding(tok, enc, batch=True)
    if kind == "tokenize":
        return {"tokens": tok.tokenize(case["text"])}
    if kind == "decode":
        return {"text": tok.decode(case["ids"], skip_special_tokens=case.get("skipSpecialTokens", True))}
    if kind == "sweep":
        kept, skipped = [], []
        for c, js in zip(case["codepoints"], case["classes"]):
            mine = char_class(chr(c))
            if mine == js:
                kept.append(c)
            else:
                skipped.append([c, unicodedata.category(chr(c)), js])
        size = case.get("chunk", 2000)
        texts = [sweep_text(kept[i:i + size]) for i in range(0, len(kept), size)]
        if which == "slow":
            chunks = [tok.convert_tokens_to_ids(tok.tokenize(t)) for t in texts]
        else:
            chunks = tok(texts, add_special_tokens=False)["input_ids"] if texts else []
        return {"kept": kept, "skipped": skipped, "chunks": chunks}
    raise ValueError(f"unknown case kind {kind!r}")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        request = json.load(f)
    pairs = {}
    results = {}
    for case in request["cases"]:
        lowercase = case.get("lowercase", True)
        if lowercase not in pairs:
            pairs[lowercase] = Pair(request["vocab"], lowercase)
        pair = pairs[lowercase]
        result = {}
        for which, tok in (("slow", pair.slow), ("fast", pair.fast)):
            try:
                result[which] = answer(tok, case, which)
            except Exception as e:  # noqa: BLE001 - the test decides what an error means
                result[which] = {"error": f"{type(e).__name__}: {e}"}
        results[case["id"]] = result
    meta = {
        "python": sys.version.split()[0],
        "unidata": unicodedata.unidata_version,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "slow": f"{SlowBertTokenizer.__module__}.{SlowBertTokenizer.__name__}",
        "fast": f"{FastBertTokenizer.__module__}.{FastBertTokenizer.__name__}",
    }
    with open(argv[2], "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "cases": results}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
