#!/usr/bin/env python3
"""Tiny seeded Hugging Face causal LMs of today's families, and their torchscope exports.

    python scripts/llm_fixtures.py [--out DIR] [--force] [--only NAME ...]

For each family (FAMILIES below: Llama with grouped-query attention, Qwen2 and Gemma 2/3 with
tied embeddings, Gemma 2's soft-capping, sliding windows in Gemma 2/3 and Mistral, Pythia's
partial rotary, Phi-3, GPT-2 with its real tied head) it writes, in DIR (default models/llm):

  <name>/                   the model as save_pretrained writes it, with a tokenizer
                            (scripts/hf_tokenizers.py) and, for Llama and Gemma, a chat template
  <name>.pt                 the model traced by scripts/hf_export.py's export(), checked there
  <name>.torchscope.json    export()'s manifest
  <name>.tokenizer/         the tokenizer files
  fixtures.json             what was written (sha256 of each .pt) and from what (a hash of the
                            definitions and versions): an up-to-date set is skipped

Weights are seeded and random everywhere (norm scales and biases too, which Hugging Face
initialises to constants), so a test that mixes up two of them fails.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from importlib.metadata import version

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from file_hash import sha256_file  # noqa: E402

REPO = HERE.parent
LIBRARIES = ("torch", "transformers", "tokenizers")
SEED = 0
FIXTURES_VERSION = 1
LAYERS = 2
HIDDEN = 32
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
INTERMEDIATE = 64
MAX_POSITIONS = 128
# Sliding windows this small matter at the tests' lengths (8 and more).
SLIDING_WINDOW = 4
# Gemma 2's soft caps, small enough to bend these models' scores and logits.
ATTN_SOFTCAP = 2.0
FINAL_SOFTCAP = 1.5
# Matrices: normal(0, INIT_STD) (Hugging Face's initializer_range); vectors (norm scales,
# biases) get normal(0, VECTOR_STD) added to their constant initial values.
INIT_STD = 0.15
VECTOR_STD = 0.1

LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
    "+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
# Each kind's special tokens (hf_tokenizers.SPECIALS): beginning, end, padding, and the extra
# ends of a chat turn that generation stops at.
SPECIAL_TOKENS = {
    "byte-bpe": {"bos": "<|begin_of_text|>", "eos": "<|endoftext|>", "pad": "<|endoftext|>", "turn_end": "<|eot_id|>"},
    "sp-bpe": {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "turn_end": "<end_of_turn>"},
}


@dataclass
class Family:
    """One fixture: its transformers classes, its tokenizer kind and size, and its config beyond
    the shared one (decoder_config; `shared` False for GPT-2, whose config names differ)."""

    name: str
    config: str
    model: str
    tokenizer: str
    vocab: int
    extra: Dict[str, Any]
    chat_template: Optional[str] = None
    shared: bool = True


def decoder_config(vocab: int) -> Dict[str, Any]:
    """What the Llama-like families share."""
    return dict(
        vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, max_position_embeddings=MAX_POSITIONS, initializer_range=INIT_STD, attention_dropout=0.0,
    )


FAMILIES: List[Family] = [
    Family("llama", "LlamaConfig", "LlamaForCausalLM", "byte-bpe", 384, dict(num_key_value_heads=KV_HEADS), LLAMA3_TEMPLATE),
    Family("qwen2", "Qwen2Config", "Qwen2ForCausalLM", "byte-bpe", 320,
           dict(num_key_value_heads=KV_HEADS, tie_word_embeddings=True)),
    Family(
        "gemma2", "Gemma2Config", "Gemma2ForCausalLM", "sp-bpe", 512,
        dict(num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM, query_pre_attn_scalar=HEAD_DIM, tie_word_embeddings=True,
             attn_logit_softcapping=ATTN_SOFTCAP, final_logit_softcapping=FINAL_SOFTCAP, sliding_window=SLIDING_WINDOW),
        GEMMA_TEMPLATE,
    ),
    Family(
        "gemma3", "Gemma3TextConfig", "Gemma3ForCausalLM", "sp-bpe", 448,
        dict(num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM, query_pre_attn_scalar=HEAD_DIM, tie_word_embeddings=True,
             sliding_window=SLIDING_WINDOW, layer_types=["sliding_attention", "full_attention"]),
        GEMMA_TEMPLATE,
    ),
    Family("mistral", "MistralConfig", "MistralForCausalLM", "sp-bpe", 384,
           dict(num_key_value_heads=KV_HEADS, sliding_window=SLIDING_WINDOW)),
    Family("pythia", "GPTNeoXConfig", "GPTNeoXForCausalLM", "byte-bpe", 352, dict(rotary_pct=0.25, hidden_dropout=0.0)),
    Family("phi3", "Phi3Config", "Phi3ForCausalLM", "sp-bpe", 400,
           dict(num_key_value_heads=KV_HEADS, original_max_position_embeddings=MAX_POSITIONS, resid_pdrop=0.0, embd_pdrop=0.0)),
    Family(
        "gpt2", "GPT2Config", "GPT2LMHeadModel", "byte-bpe", 300,
        dict(n_layer=LAYERS, n_embd=HIDDEN, n_head=HEADS, n_positions=MAX_POSITIONS, n_inner=INTERMEDIATE,
             initializer_range=INIT_STD, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
        shared=False,
    ),
]


def special_ids(folder: Path, kind: str) -> Dict[str, Any]:
    """The config's token ids, read from the tokenizer just written (chat models end at either)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = {role: tok.token_to_id(token) for role, token in SPECIAL_TOKENS[kind].items()}
    return {"bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"], "turn_end": ids["turn_end"]}


def randomize(model: Any) -> None:
    """Seeded random weights everywhere: Hugging Face's init leaves norms and biases constant."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, INIT_STD)
            else:
                p.add_(torch.randn_like(p) * VECTOR_STD)


def build_folder(family: Family, folder: Path) -> None:
    """The seeded model and its tokenizer, written as save_pretrained does."""
    import torch
    import transformers
    from hf_tokenizers import build_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(family.tokenizer, family.vocab, str(folder), family.chat_template)
    ids = special_ids(folder, family.tokenizer)
    eos: Any = [ids["eos_token_id"], ids["turn_end"]] if family.chat_template else ids["eos_token_id"]
    settings = {**(decoder_config(family.vocab) if family.shared else {"vocab_size": family.vocab}), **family.extra}
    config = getattr(transformers, family.config)(
        **settings, bos_token_id=ids["bos_token_id"], eos_token_id=eos, pad_token_id=ids["pad_token_id"],
        attn_implementation="eager",
    )
    torch.manual_seed(SEED)
    model = getattr(transformers, family.model)(config).eval()
    randomize(model)
    model.save_pretrained(folder)


def definition_hash() -> str:
    """What decides the files: these scripts and the library versions (read without importing them)."""
    parts = [(HERE / name).read_text() for name in ("llm_fixtures.py", "hf_export.py", "hf_decode.py", "hf_tokenizers.py")]
    parts += [version(library) for library in LIBRARIES]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


def written(name: str, data: Dict[str, Any], manifest_suffix: str) -> List[str]:
    """What one family's export wrote, relative to the output folder (recorded; up_to_date checks them)."""
    step = [data["decodeStep"]["file"]] if data["decodeStep"] else []
    return [f"{name}/config.json", f"{name}.pt", f"{name}{manifest_suffix}", f"{data['tokenizer']}/tokenizer.json", *step]


def up_to_date(out: Path, record: Dict[str, Any], definition: str, name: str) -> bool:
    if record.get("version") != FIXTURES_VERSION or record.get("definition") != definition:
        return False
    entry = record.get("files", {}).get(name)
    if not isinstance(entry, dict) or not all((out / p).exists() for p in entry.get("paths", [])):
        return False
    return entry.get("sha256") == sha256_file(out / f"{name}.pt")


def read_record(out: Path) -> Dict[str, Any]:
    try:
        return json.loads((out / "fixtures.json").read_text())
    except (OSError, ValueError):
        return {}


def write_record(out: Path, definition: str, files: Dict[str, Any]) -> None:
    tmp = out / "fixtures.json.tmp"
    tmp.write_text(json.dumps({"version": FIXTURES_VERSION, "definition": definition, "files": files}, indent=2) + "\n")
    os.replace(tmp, out / "fixtures.json")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Tiny Hugging Face causal LMs of seven families and GPT-2, exported for torchscope.")
    ap.add_argument("--out", type=Path, default=REPO / "models" / "llm")
    ap.add_argument("--force", action="store_true", help="rewrite even what is up to date")
    ap.add_argument("--only", action="append", choices=[f.name for f in FAMILIES], help="this family only (repeatable)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    definition = definition_hash()
    record = read_record(out)
    files: Dict[str, Any] = dict(record.get("files", {})) if record.get("definition") == definition else {}
    todo = [f for f in FAMILIES if not args.only or f.name in args.only]
    for family in [f for f in todo if not args.force and up_to_date(out, record, definition, f.name)]:
        print(f"skipped {out / family.name}.pt (up to date)")
        todo.remove(family)
    if todo:
        # Only now: importing torch and transformers is most of an up-to-date run's time.
        import hf_export
        import transformers

        warnings.filterwarnings("ignore")
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    for family in todo:
        t0 = time.perf_counter()
        build_folder(family, out / family.name)
        try:
            data = hf_export.export(str(out / family.name), str(out / f"{family.name}.pt"))
        except hf_export.ExportRefused as e:
            print(f"error: exporting {family.name}: {e}", file=sys.stderr)
            return 1
        paths = written(family.name, data, hf_export.MANIFEST_SUFFIX)
        files[family.name] = {"sha256": sha256_file(out / f"{family.name}.pt"), "paths": paths}
        write_record(out, definition, files)  # after each family: an interrupted run keeps what it finished
        diff, took = data["check"]["maxAbsDiff"], time.perf_counter() - t0
        print(f"wrote   {out / family.name}.pt ({data['architecture']}, max |traced - eager| {diff:.2g}, {took:.1f} s)")
    write_record(out, definition, files)
    print(f"done in {time.perf_counter() - started:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
