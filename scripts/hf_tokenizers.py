"""Small Hugging Face tokenizers of the four kinds today's models ship, trained here, seeded by
nothing but the corpus below (no download can be made), for tests and tiny model folders.

    from hf_tokenizers import build_tokenizer, KINDS
    build_tokenizer("sp-bpe", 512, "out/llama-tiny", chat_template=LLAMA2_TEMPLATE)

writes out_dir/tokenizer.json and out_dir/tokenizer_config.json (what `save_pretrained` writes
for a fast tokenizer; AutoTokenizer and tokenizers.Tokenizer.from_file load them). Kinds:

- 'byte-bpe': GPT-2 / Llama 3 / Qwen / Pythia: byte-level BPE, the Llama 3 split regex, a
  ByteLevel decoder; <|begin_of_text|> is prepended as Llama 3's post-processor does.
- 'sp-bpe': Llama 2 / Mistral / Gemma (SentencePiece converted): spaces become '▁' and one is
  prepended by the normalizer, BPE with byte fallback (<0x00>..<0xFF> in the vocabulary) and
  fused unknowns, decoder Replace + ByteFallback + Fuse + Strip; <s> prepended.
- 'unigram': T5-like: NFKC, Metaspace pre-tokenizer, Unigram with <unk>, </s> appended.
- 'wordpiece': BERT: lower-casing BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP].

The vocabulary has exactly `vocab_size` tokens: training stops there, and when the corpus
yields fewer, reserved special tokens fill the rest (as Llama 3's <|reserved_special_token_N|>).
The same arguments write the same files on every run and machine: where a trainer of
`tokenizers` breaks ties in hash order (limit_alphabet, WordPieceTrainer's '##' pieces,
UnigramTrainer's pruning), the vocabulary is made another way from the deterministic BPE trainer.
"""

import json
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

KINDS = ("byte-bpe", "sp-bpe", "unigram", "wordpiece")

# Llama 3's (and GPT-4's cl100k) pre-tokenizer split.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Special tokens by kind, in id order (they come first in the vocabulary), and their roles.
SPECIALS: Dict[str, List[str]] = {
    "byte-bpe": [
        "<|begin_of_text|>",
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
    ],
    "sp-bpe": ["<unk>", "<s>", "</s>", "<pad>", "<start_of_turn>", "<end_of_turn>"],
    "unigram": ["<pad>", "</s>", "<unk>"],
    "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
}
ROLES: Dict[str, Dict[str, Optional[str]]] = {
    "byte-bpe": {"bos_token": "<|begin_of_text|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": None},
    "sp-bpe": {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "unigram": {"bos_token": None, "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "wordpiece": {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"},
}
MODEL_MAX_LENGTH = 2048
# Unigram scores are rounded to this many decimals: the file reads the same on every machine.
UNIGRAM_SCORE_DIGITS = 6

_LINES = [
    "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "Transformers read tokens; attention heads move information between positions.",
    "Induction heads copy what followed the previous occurrence of the current token.",
    "A residual stream carries features from layer to layer, and MLPs write new ones.",
    "In 2024, 3 researchers measured 1,234.56 units at 12:30pm on 2024-01-15 (about 42%).",
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]  # 0x41 == 65",
    "Email me at user@example.com or visit https://example.com/path?q=1&r=two#frag today.",
    "It's what they're doing: we've seen it, I'm sure you'll agree, and he'd say they'd won.",
    "Héllò wörld! Crème brûlée à la française; naïve façade, coöperate, Ångström, señor.",
    "Привет, мир! Как дела? Γειά σου Κόσμε. Добро пожаловать в город.",
    "日本語のテキストです。東京タワーに行きました。我爱北京天安门。今天天气很好！",
    "한국어 텍스트입니다. 안녕하세요, 세계!",
    "مرحبا بالعالم. שלום עולם. नमस्ते दुनिया. สวัสดีชาวโลก",
    "Emoji: 😀 🥰 🫠 👍🏽 👨‍👩‍👧 🇺🇸 1️⃣ ❤️ and ✨ sparkle in the text 🎉.",
    "Tabs\tand  double  spaces,   triple   spaces, and\nnew lines\r\nare whitespace too.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 10000 3.14159 2.71828 1e-9 007 42nd 1st.",
    "Symbols: $100 €50 £3 ¥5 ©®™ ° ± × ÷ § ¶ ℃ ½ — – … « » „ “ ” ‘ ’ • → ← ∑ ∫ √ ∞.",
    "The model predicts the next token; the loss is the cross-entropy of that prediction.",
    "Sparse autoencoders find features: some fire on French, some on code, some on DNA.",
    "Logit lens: decode each layer's residual stream with the unembedding to see its guess.",
    "Once upon a time there was a little robot who wanted to learn how to read and write.",
    "She sells sea shells by the sea shore; the shells she sells are surely sea shells.",
    '<tag attr="x">a < b > c</tag> | pipes | snake_case_name [brackets] {braces} @at #hash ~ ^ `code` \\path',
]
# The corpus: every line, and again with its words in reverse order (more distinct pairs to
# merge). Shipped here: nothing can be downloaded where the tests run.
CORPUS: List[str] = _LINES + [" ".join(reversed(line.split(" "))) for line in _LINES]


def _byte_bpe(vocab_size: int) -> Tokenizer:
    specials = SPECIALS["byte-bpe"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    bos = specials[0]
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, tok.token_to_id(bos))]),
        ]
    )
    return tok


def _alphabet(words: List[str], size: int, keep: str = "") -> List[str]:
    """The `size` most frequent characters of `words` (ties by code point), and `keep`: the
    trainers' own limit_alphabet breaks ties in hash order, which changes from run to run."""
    counts: Dict[str, int] = {}
    for word in words:
        for ch in word:
            counts[ch] = counts.get(ch, 0) + 1
    ranked = sorted((ch for ch in counts if ch not in keep), key=lambda ch: (-counts[ch], ch))
    return sorted(set(keep) | set(ranked[: max(0, size - len(keep))]))


def _learned(words: List[str], vocab_size: int, alphabet: List[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """BPE tokens learned on `words` (each a whitespace-free string) in the order they were made
    (the alphabet, sorted, then one token per merge), and the merges. Words are reduced to the
    alphabet first, so the trainer has no characters to rank against each other."""
    allowed = set(alphabet)
    texts = ["".join(ch for ch in word if ch in allowed) for word in words]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([t for t in texts if t], trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False))
    model = json.loads(tok.to_str())["model"]
    return sorted(model["vocab"], key=model["vocab"].get), [(a, b) for a, b in model["merges"]]


def _sp_bpe(vocab_size: int) -> Tokenizer:
    # SentencePiece's BPE learns pieces within words that start with '▁'; assembled as
    # transformers' LlamaConverter writes tokenizer.json (no pre-tokenizer: the normalizer makes
    # the whole text one sequence, '▁' for each space and one prepended).
    specials = SPECIALS["sp-bpe"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    learned = vocab_size - len(specials) - len(byte_tokens)
    if learned < 2:
        raise ValueError(f"sp-bpe needs vocab_size >= {len(specials) + len(byte_tokens) + 2}, got {vocab_size}")
    words = [w for line in CORPUS for w in re.findall("▁[^▁]*", "▁" + line.replace(" ", "▁"))]
    tokens, merges = _learned(words, learned, _alphabet(words, learned // 2, keep="▁"))
    vocab = {token: i for i, token in enumerate(specials + byte_tokens + tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", vocab["<s>"])])
    return tok


def _unigram(vocab_size: int) -> Tokenizer:
    # UnigramTrainer prunes in hash order: among pieces of equal loss it keeps different ones from
    # run to run. The pieces here are BPE's (learned as sp-bpe's, deterministic), each scored by
    # the log of its frequency in the corpus cut into those pieces: a one-step Unigram LM.
    specials = SPECIALS["unigram"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    words = [w for line in CORPUS for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(line))]
    learned = vocab_size - len(specials)
    if learned < 2:
        raise ValueError(f"unigram needs vocab_size >= {len(specials) + 2}, got {vocab_size}")
    tokens, merges = _learned(words, learned, _alphabet(words, learned // 2, keep="▁"))
    bpe = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    counts = {token: 1 for token in tokens}  # add-one: every piece a finite score
    for encoding in bpe.encode_batch([w for w in words if all(ch in counts for ch in w)]):
        for token in encoding.tokens:
            counts[token] += 1
    total = sum(counts.values())
    pieces = [(t, 0.0) for t in specials] + [(t, round(math.log(counts[t] / total), UNIGRAM_SCORE_DIGITS)) for t in tokens]
    tok.model = models.Unigram(pieces, specials.index("<unk>"), False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return tok


def _wordpiece(vocab_size: int) -> Tokenizer:
    # WordPieceTrainer numbers its '##' pieces in hash order, and ties between merges go by
    # those numbers: the vocabulary changes from run to run. The same pieces come from BPE over
    # words marked '▁' at their start: '▁xy' is the word-start piece 'xy', 'xy' is '##xy'.
    specials = SPECIALS["wordpiece"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = ["▁" + w for line in CORPUS for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(line))]
    room = vocab_size - len(specials)
    chars = [ch for ch in _alphabet(words, room // 3 + 1, keep="▁") if ch != "▁"]
    pieces = [p for ch in chars for p in (ch, "##" + ch)]
    if len(pieces) > room:
        raise ValueError(f"wordpiece needs vocab_size >= {len(specials) + len(pieces)}, got {vocab_size}")
    for token in _learned(words, vocab_size * 2, ["▁"] + chars)[0]:
        piece = token[1:] if token.startswith("▁") else "##" + token
        if len(token) > 1 and piece not in pieces and len(pieces) < room:
            pieces.append(piece)
    tok.model = models.WordPiece({t: i for i, t in enumerate(specials + pieces)}, unk_token="[UNK]", max_input_chars_per_word=100)
    tok.add_special_tokens([AddedToken(t, special=True) for t in specials])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tok


BUILDERS = {"byte-bpe": _byte_bpe, "sp-bpe": _sp_bpe, "unigram": _unigram, "wordpiece": _wordpiece}


def _config(kind: str, tok: Tokenizer, chat_template: Optional[str]) -> Dict[str, Any]:
    """tokenizer_config.json as save_pretrained writes it for a PreTrainedTokenizerFast."""
    decoder = {}
    for token_id, added in sorted(tok.get_added_tokens_decoder().items()):
        decoder[str(token_id)] = {
            "content": added.content,
            "lstrip": added.lstrip,
            "normalized": added.normalized,
            "rstrip": added.rstrip,
            "single_word": added.single_word,
            "special": added.special,
        }
    config: Dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": decoder,
        "model_max_length": MODEL_MAX_LENGTH,
        "clean_up_tokenization_spaces": kind == "wordpiece",
        "padding_side": "right",
    }
    config.update({role: token for role, token in ROLES[kind].items() if token is not None})
    if kind in ("byte-bpe", "sp-bpe"):
        config.update({"add_bos_token": True, "add_eos_token": False})
    if chat_template is not None:
        config["chat_template"] = chat_template
    return config


def build_tokenizer(kind: str, vocab_size: int, out_dir: str, chat_template: Optional[str] = None) -> None:
    """Trains a tokenizer of `kind` (one of KINDS) with exactly `vocab_size` tokens and writes
    tokenizer.json and tokenizer_config.json (with `chat_template` when given) into out_dir."""
    if kind not in BUILDERS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    tok = BUILDERS[kind](vocab_size)
    size = tok.get_vocab_size(with_added_tokens=True)
    if size > vocab_size:
        raise ValueError(f"{kind} needs vocab_size >= {size} (its alphabet and special tokens), got {vocab_size}")
    if size < vocab_size:
        reserved = [f"<|reserved_special_token_{i}|>" for i in range(vocab_size - size)]
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in reserved])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(_config(kind, tok, chat_template), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    import sys

    if len(sys.argv) not in (4, 5):
        print("usage: hf_tokenizers.py KIND VOCAB_SIZE OUT_DIR [CHAT_TEMPLATE_FILE]", file=sys.stderr)
        sys.exit(2)
    template = Path(sys.argv[4]).read_text() if len(sys.argv) == 5 else None
    build_tokenizer(sys.argv[1], int(sys.argv[2]), sys.argv[3], template)
