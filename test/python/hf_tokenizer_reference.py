#!/usr/bin/env python3
"""Python reference for torchscope's Hugging Face tokenizer (lib/text/tokenizer.ts).

    python test/python/hf_tokenizer_reference.py REQUEST.json

One process builds the tokenizers and answers every case of a test run. The request:

    {
      "out": "/abs/dir",
      "build": [{"name": "sp-bpe", "kind": "sp-bpe", "vocabSize": 700, "chatTemplate": "..." | null,
                 "byteFallback": false} | {"name": "bpe-unk", "json": {...tokenizer.json...}}],
      "cases": [
        {"id": "e1", "kind": "encode", "tok": "sp-bpe", "input": "text" | ["a", "b"], "addSpecialTokens": true},
        {"id": "d1", "kind": "decode", "tok": "sp-bpe", "ids": [1, 2, ...]},
        {"id": "h1", "kind": "hf", "tok": "sp-bpe", "inputs": ["text" | ["a", "b"], ...], "padding": "longest" |
         "max_length" | false, "maxLength": 16 | null, "truncation": true | false | "only_first" | ... | null,
         "paddingSide": "left" | "right", "truncationSide": "left" | "right", "addSpecialTokens": true},
        {"id": "c1", "kind": "chat", "tok": "sp-bpe", "messages": [...], "addGenerationPrompt": true,
         "tools": [...] | null, "variables": {...}},
        {"id": "s1", "kind": "sweep", "tok": "sp-bpe", "codepoints": [65, ...], "chunk": 2000, "assignedOnly": false}
      ]
    }

Each built tokenizer is a folder out/NAME written by scripts/hf_tokenizers.py's build_tokenizer
(tokenizer.json + tokenizer_config.json), or the given tokenizer.json with a bare config; "byteFallback" turns a Unigram one into Unigram with
byte fallback (<0x00>..<0xFF> appended to its pieces, byte_fallback: true). Answers:
  encode: the Rust `tokenizers` (Tokenizer.from_file): {"ids", "tokens", "typeIds", "decode",
    "decodeSkip"} (decode of those ids, keeping / skipping special tokens), and transformers'
    decode of the same ids: {"hfDecode", "hfDecodeSkip"} (its clean-up as the config says).
  decode: {"decode", "decodeSkip", "hfDecode", "hfDecodeSkip"} of the given ids.
  hf: transformers' fast tokenizer loaded from the folder (AutoTokenizer) called on the inputs:
    {"ids", "tokens", "typeIds", "attentionMask"} (lists of lists).
  chat: apply_chat_template(messages, tokenize=False, add_generation_prompt=...) -> {"text"}, and
    tokenize=True -> {"ids"}; a template error -> {"error": its message}.
  sweep: the texts "Ab{c}cD {c}" for each code point, joined by spaces, `chunk` code points per
    text, encoded without special tokens: {"kept", "chunks": [[id...]...]}; with "assignedOnly",
    only the code points Python's Unicode tables have assigned are kept.
"""

import json
import logging
import sys
import unicodedata
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "scripts"))
import transformers  # noqa: E402
from hf_tokenizers import build_tokenizer  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
logging.disable(logging.WARNING)


def add_byte_fallback(folder: Path) -> None:
    """Unigram with byte fallback: the 256 byte pieces appended (scored below every other piece)."""
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text())
    model = data["model"]
    low = min(score for _, score in model["vocab"]) - 1.0
    model["vocab"] += [[f"<0x{b:02X}>", low] for b in range(256)]
    model["byte_fallback"] = True
    # Added tokens keep their ids past the new pieces.
    shift = 256
    for token in data["added_tokens"]:
        if token["id"] >= len(model["vocab"]) - shift:
            token["id"] += shift
    path.write_text(json.dumps(data, ensure_ascii=False))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in data["added_tokens"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False))


def main() -> int:
    got = read_request(__doc__)
    if got is None:
        return 2
    request, out = got
    rust = {}
    fast = {}
    for spec in request["build"]:
        folder = out / spec["name"]
        if "json" in spec:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "tokenizer.json").write_text(json.dumps(spec["json"]))
            (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
        else:
            build_tokenizer(spec["kind"], spec["vocabSize"], str(folder), spec.get("chatTemplate"))
        if spec.get("byteFallback"):
            add_byte_fallback(folder)
        rust[spec["name"]] = Tokenizer.from_file(str(folder / "tokenizer.json"))
        fast[spec["name"]] = AutoTokenizer.from_pretrained(str(folder))

    def decodes(name, ids):
        return {
            "decode": rust[name].decode(ids, skip_special_tokens=False),
            "decodeSkip": rust[name].decode(ids, skip_special_tokens=True),
            "hfDecode": fast[name].decode(ids, skip_special_tokens=False),
            "hfDecodeSkip": fast[name].decode(ids, skip_special_tokens=True),
        }

    def run_case(case, _i):
        name = case["tok"]
        kind = case["kind"]
        if kind == "encode":
            text = case["input"]
            pair = (text[0], text[1]) if isinstance(text, list) else (text, None)
            enc = rust[name].encode(pair[0], pair[1], add_special_tokens=case["addSpecialTokens"])
            return {"ids": enc.ids, "tokens": enc.tokens, "typeIds": enc.type_ids, **decodes(name, enc.ids)}
        if kind == "decode":
            return decodes(name, case["ids"])
        if kind == "hf":
            tok = fast[name]
            tok.padding_side = case["paddingSide"]
            tok.truncation_side = case["truncationSide"]
            inputs = [tuple(x) if isinstance(x, list) else x for x in case["inputs"]]
            enc = tok(
                inputs,
                padding=case["padding"],
                truncation=case["truncation"],
                max_length=case["maxLength"],
                add_special_tokens=case["addSpecialTokens"],
                return_token_type_ids=True,
            )
            return {
                "ids": enc["input_ids"],
                "tokens": [tok.convert_ids_to_tokens(ids) for ids in enc["input_ids"]],
                "typeIds": enc["token_type_ids"],
                "attentionMask": enc["attention_mask"],
            }
        if kind == "chat":
            tok = fast[name]
            kwargs = dict(add_generation_prompt=case["addGenerationPrompt"], tools=case.get("tools"), **case.get("variables", {}))
            try:
                text = tok.apply_chat_template(case["messages"], tokenize=False, **kwargs)
                ids = tok.apply_chat_template(case["messages"], tokenize=True, return_dict=False, **kwargs)
            except Exception as e:  # noqa: BLE001 - the template's own error is the answer
                return {"error": str(e)}
            return {"text": text, "ids": ids}
        if kind == "sweep":
            cps, chunk = case["codepoints"], case["chunk"]
            if case.get("assignedOnly"):
                cps = [c for c in cps if unicodedata.category(chr(c)) != "Cn"]
            texts = [" ".join(f"Ab{chr(c)}cD {chr(c)}" for c in cps[i : i + chunk]) for i in range(0, len(cps), chunk)]
            return {"kept": cps, "chunks": [e.ids for e in rust[name].encode_batch(texts, add_special_tokens=False)]}
        raise ValueError(f"unknown case kind {kind!r}")

    write_index(out, {"meta": {"tokenizers": __import__("tokenizers").__version__, "transformers": transformers.__version__}, "cases": run_cases(request["cases"], run_case)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
