#!/usr/bin/env python3
"""Export the TorchScript reference models used by torchscope's tests.

    python scripts/export-models.py [--out DIR] [--pretrained] [--force]
                                    [--only resnet|bert|tiny]

Files (in DIR, default <repo>/models):
  resnet18.pt / resnet18-scripted.pt            torchvision-compatible ResNet-18
  resnet-tiny.pt / resnet-tiny-scripted.pt      ResNet [1,1,1,1], width 8, 10 classes
  bert.pt / bert-tiny.pt                        BertWithAttentions, traced
  bert-tiny-noattn.pt                           BertNoAttentions (tiny, bert-tiny's weights),
                                                traced: returns no attentions
  bert-tiny-cls.pt                              BertClassifier (tiny, 2 labels), traced: logits
  gpt2.pt / gpt2-tiny.pt                        Gpt2LM (GPT-2 small's shape / tiny; untied LM head),
                                                traced: logits
  resnet18.pt2 / gpt2.pt2                       the same weights as torch.export programs (training
                                                IR; dynamic batch, image size / sequence length)
  gpt2.decode.pt / gpt2.torchscope.json         gpt2.pt's cached decoding step and the manifest
                                                naming it (scripts/hf_decode.py, hf_export.py)
  induction.pt                                  AttnOnly (2 layers, attention only) trained on
                                                repeated random tokens, scripted
  digits-cnn.pt / digits-cnn-scripted.pt        DigitsCNN trained on scikit-learn's 8x8 digits
  digits-cnn-randomized.pt                      the same with its top layers re-initialised
  digits-samples.json                           held-out digits: {images: [[64 floats]], labels}
  bert-vocab.txt                                only with --pretrained
  manifest.json                                 provenance + sha256 per file

Output is reproducible: a fixed seed gives byte-identical files for the same
torch/transformers versions and the same checkout/venv path (TorchScript's
debug info records source file paths; `weights_sha256` does not depend on it).
"""

import os
import subprocess
import sys

# Scripted modules list their __constants__ in set order, which follows
# Python's per-process string hash seed; pin it so saved files are identical
# run to run. Done before importing torch, via a child interpreter (portable,
# unlike os.execv on Windows).
if os.environ.get("PYTHONHASHSEED") != "0":
    env = dict(os.environ, PYTHONHASHSEED="0")
    sys.exit(subprocess.call([sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env=env))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from torch.export import Dim  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import digits as dg  # noqa: E402
import hf_decode  # noqa: E402
import hf_export  # noqa: E402
import induction  # noqa: E402
from file_hash import sha256_file  # noqa: E402
import torchscope_models as tm  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEED = 0
TOL = 1e-5
MANIFEST_VERSION = 1
EXIT_PRETRAINED = 3  # child exit code: pretrained download failed (message already printed)


class PretrainedUnavailable(Exception):
    pass


@dataclass
class Group:
    """Models that share one set of weights (traced + scripted of one module)."""

    key: str
    only: str  # value of --only that selects it
    architecture: str
    files: List[Tuple[str, str]]  # (file name, kind)
    inputs: List[dict]
    outputs: List[str]
    can_pretrain: bool
    build: Callable[[bool], torch.nn.Module] = field(repr=False)
    check: Callable[[torch.nn.Module, torch.nn.Module], None] = field(repr=False)
    example: Callable[[], tuple] = field(repr=False)
    # The "exported" (.pt2) files' torch.export inputs and dynamic_shapes (the sizes that may vary;
    # the example's batch is 2: torch.export specializes a size of 1).
    export_args: Optional[Callable[[], Tuple[tuple, tuple]]] = field(default=None, repr=False)


# ---------------------------------------------------------------- builders


def build_resnet18(pretrained: bool) -> torch.nn.Module:
    if pretrained:
        try:
            model = tm.resnet18_pretrained()
        except Exception as e:  # noqa: BLE001 - any download/IO failure
            raise PretrainedUnavailable(
                f"could not load pretrained ResNet-18 weights ({tm.RESNET18_URL}): {type(e).__name__}: {e}"
            ) from e
        # Pretrained BN statistics are meaningful: never recalibrate them.
        return model.eval()
    torch.manual_seed(SEED)
    model = tm.resnet18()
    return tm.calibrate_bn(model, SEED, (8, 3, 64, 64), steps=8)


def build_resnet_tiny(pretrained: bool) -> torch.nn.Module:
    torch.manual_seed(SEED)
    model = tm.resnet((1, 1, 1, 1), width=8, num_classes=10)
    return tm.calibrate_bn(model, SEED, (8, 3, 32, 32), steps=8)


def build_bert_noattn(pretrained: bool, size: str = "tiny") -> torch.nn.Module:
    # Same seed and construction order as build_bert: the same weights as bert-tiny.pt.
    torch.manual_seed(SEED)
    return tm.BertNoAttentions(tm.bert_config(size)).eval()


def build_bert(pretrained: bool, size: str = "base") -> torch.nn.Module:
    if pretrained:
        try:
            model = tm.BertWithAttentions.from_pretrained("bert-base-uncased", attn_implementation="eager")
        except Exception as e:  # noqa: BLE001
            raise PretrainedUnavailable(
                f"could not load pretrained bert-base-uncased from the Hugging Face hub: {type(e).__name__}: {e}"
            ) from e
        return model.eval()
    torch.manual_seed(SEED)
    return tm.BertWithAttentions(tm.bert_config(size)).eval()


def build_bert_classifier(pretrained: bool, size: str = "tiny") -> torch.nn.Module:
    torch.manual_seed(SEED)
    config = tm.bert_config(size)
    config.num_labels = 2
    return tm.BertClassifier(config).eval()


def build_gpt2(pretrained: bool, size: str) -> torch.nn.Module:
    if pretrained:
        try:
            model = tm.Gpt2LM.from_pretrained("gpt2", config=tm.gpt2_config("small"))
        except Exception as e:  # noqa: BLE001
            raise PretrainedUnavailable(f"could not load pretrained gpt2 from the Hugging Face hub: {type(e).__name__}: {e}") from e
        # The checkpoint ties the unembedding to the embedding; the untied head gets a copy.
        with torch.no_grad():
            model.lm_head.weight.copy_(model.transformer.wte.weight)
        return model.eval()
    torch.manual_seed(SEED)
    return tm.Gpt2LM(tm.gpt2_config(size)).eval()


def build_induction(pretrained: bool) -> torch.nn.Module:
    model, stats = induction.train()
    print("induction: " + ", ".join(f"{k} {v:.4g}" for k, v in stats.items()))
    return model


def build_digits(pretrained: bool) -> torch.nn.Module:
    model, accuracy = dg.train()
    print(f"digits-cnn: held-out accuracy {accuracy:.4f}")
    return model


def build_digits_randomized(pretrained: bool) -> torch.nn.Module:
    return dg.randomized(dg.train()[0])


def write_digits_samples(out: Path, count: int = 20) -> None:
    """Held-out digits for the demo and the CLI's examples (the tests take theirs from Python)."""
    images, labels = dg.held_out()
    data = {"images": images[:count].reshape(count, -1).tolist(), "labels": labels[:count].tolist(), "shape": [1, 8, 8]}
    tmp = out / "digits-samples.json.tmp"
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, out / "digits-samples.json")


def save_bert_vocab(out: Path) -> Path:
    from transformers.utils import cached_file

    try:
        src = cached_file("bert-base-uncased", "vocab.txt")
    except Exception as e:  # noqa: BLE001
        raise PretrainedUnavailable(f"could not fetch bert-base-uncased vocab.txt: {type(e).__name__}: {e}") from e
    dst = out / "bert-vocab.txt"
    tmp = dst.with_suffix(".txt.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


# ---------------------------------------------------------------- checks


def assert_close(name: str, got, want, tol: float = TOL) -> None:
    got = got if isinstance(got, (tuple, list)) else (got,)
    want = want if isinstance(want, (tuple, list)) else (want,)
    assert len(got) == len(want), f"{name}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{name}[{i}]: shape {tuple(g.shape)} != {tuple(w.shape)}"
        err = (g - w).abs().max().item()
        assert err <= tol, f"{name}[{i}]: max abs diff {err:.3g} > {tol}"


def check_resnet(size: int) -> Callable:
    def check(ts: torch.nn.Module, eager: torch.nn.Module) -> None:
        gen = torch.Generator().manual_seed(SEED + 1)
        # A batch and spatial size other than the trace example, so shapes
        # baked into the trace would show up here.
        for shape in [(1, 3, size, size), (2, 3, size + 32, size + 32)]:
            x = torch.randn(*shape, generator=gen)
            assert_close(f"resnet {shape}", ts(x), eager(x))

    return check


def check_bert_outputs(name: str, ts: torch.nn.Module, eager: torch.nn.Module, attentions: bool) -> None:
    gen = torch.Generator().manual_seed(SEED + 1)
    vocab = eager.config.vocab_size
    for b, s in [(2, 7), (1, 128)]:
        ids = torch.randint(0, vocab, (b, s), generator=gen)
        mask = torch.ones(b, s, dtype=torch.long)
        if b > 1:
            mask[1, 4:] = 0
        got = ts(ids, mask)
        assert_close(f"{name} [{b},{s}]", got, eager(ids, mask))
        if b > 1:
            # Padding must be honoured by the trace, not baked in from the
            # all-ones example mask: padded keys get ~0 probability and the
            # real tokens match the unpadded sequence.
            if attentions:
                assert got[2][1, :, :, :, 4:].abs().max().item() < 1e-6, "padded keys receive attention"
            alone = ts(ids[1:, :4], mask[1:, :4])
            assert_close(f"{name} padded vs unpadded", got[0][1:, :4], alone[0], tol=1e-4)


def check_logits(example: Callable[[], tuple]) -> Callable:
    def check(ts: torch.nn.Module, eager: torch.nn.Module) -> None:
        with torch.no_grad():
            assert_close("logits", ts(*example()), eager(*example()))

    return check


def check_bert(ts: torch.nn.Module, eager: torch.nn.Module) -> None:
    check_bert_outputs("bert", ts, eager, attentions=True)


def check_bert_noattn(ts: torch.nn.Module, eager: torch.nn.Module) -> None:
    check_bert_outputs("bert-noattn", ts, eager, attentions=False)
    gen = torch.Generator().manual_seed(SEED + 2)
    vocab = eager.config.vocab_size
    # What makes this model useful: attention must be captured from encoder.layer.N.attention.self.
    # Eager attention returns (context, probs) there, probs being what output_attentions gives...
    ids = torch.randint(0, vocab, (2, 9), generator=gen)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, 6:] = 0
    want = transformers.BertModel.forward(eager, input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    probs: List[torch.Tensor] = []
    hooks = [
        layer.attention.self.register_forward_hook(lambda _m, _i, out: probs.append(out[1])) for layer in eager.encoder.layer
    ]
    try:
        eager(ids, mask)
    finally:
        for h in hooks:
            h.remove()
    assert len(probs) == len(want), f"{len(probs)} attention.self calls, expected {len(want)} layers"
    for i, (g, w) in enumerate(zip(probs, want)):
        assert_close(f"encoder.layer.{i}.attention.self probs", g, w)
    # ...but the trace does not keep them: torch.jit.trace drops submodule outputs that
    # nothing uses, so with forward returning no attentions each traced attention.self
    # returns the context tensor alone (the softmax stays inside it, uncapturable as a
    # module output). Checked here so a torch/transformers change in this is noticed:
    # lib/methods/attention.ts then recomputes the probabilities from attention.self.query/.key.
    for i in range(eager.config.num_hidden_layers):
        sa = getattr(ts.encoder.layer, str(i)).attention.self
        out = list(sa.graph.outputs())
        kinds = [o.type().kind() for o in out]
        assert kinds == ["TensorType"], f"traced encoder.layer.{i}.attention.self returns {kinds}, expected the context alone"
        assert "aten::softmax" in str(sa.graph), f"traced encoder.layer.{i}.attention.self computes no softmax"


# ---------------------------------------------------------------- groups

# Every BERT variant is traced on the same ids and mask.
BERT_INPUTS = [
    {"name": "input_ids", "shape": [1, 16], "dtype": "int64"},
    {"name": "attention_mask", "shape": [1, 16], "dtype": "int64"},
]


def bert_example() -> Tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.randint(0, 30522, (1, 16), generator=torch.Generator().manual_seed(SEED)),
        torch.ones(1, 16, dtype=torch.long),
    )


def digits_example() -> Tuple[torch.Tensor]:
    return (dg.held_out()[0][:4],)


def bert_cls_example() -> Tuple[torch.Tensor, torch.Tensor]:
    ids, mask = bert_example()
    mask = mask.clone()
    mask[0, 12:] = 0
    return ids, mask


def gpt2_example() -> Tuple[torch.Tensor]:
    # Traced on ids alone: forward(input_ids) -> logits, every token attended (causal).
    return (torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(SEED)),)


def induction_example() -> Tuple[torch.Tensor]:
    return (induction.sequences(2, SEED),)


DIGITS_ARCHITECTURE = f"DigitsCNN on sklearn digits (seed {dg.SEED}, {dg.EPOCHS} epochs, batch {dg.BATCH}, lr {dg.LR})"

GROUPS = [
    Group(
        key="resnet18",
        only="resnet",
        architecture="resnet18",
        files=[("resnet18.pt", "traced"), ("resnet18-scripted.pt", "scripted"), ("resnet18.pt2", "exported")],
        inputs=[{"name": "x", "shape": [1, 3, 224, 224], "dtype": "float32"}],
        outputs=["logits"],
        can_pretrain=True,
        build=build_resnet18,
        check=check_resnet(224),
        example=lambda: (torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(SEED)),),
        export_args=lambda: (
            (torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(SEED)),),
            ({0: Dim("batch", min=1, max=256), 2: Dim("height", min=33, max=2048), 3: Dim("width", min=33, max=2048)},),
        ),
    ),
    Group(
        key="resnet-tiny",
        only="tiny",
        architecture="resnet(layers=[1,1,1,1],width=8,num_classes=10)",
        files=[("resnet-tiny.pt", "traced"), ("resnet-tiny-scripted.pt", "scripted")],
        inputs=[{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float32"}],
        outputs=["logits"],
        can_pretrain=False,
        build=build_resnet_tiny,
        check=check_resnet(32),
        example=lambda: (torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(SEED)),),
    ),
    Group(
        key="bert",
        only="bert",
        architecture="BertWithAttentions(bert-base-uncased)",
        files=[("bert.pt", "traced")],
        inputs=BERT_INPUTS,
        outputs=["last_hidden_state", "pooler_output", "attentions"],
        can_pretrain=True,
        build=lambda p: build_bert(p, "base"),
        check=check_bert,
        example=bert_example,
    ),
    Group(
        key="bert-tiny",
        only="tiny",
        architecture="BertWithAttentions(tiny: 2 layers, hidden 32, 2 heads)",
        files=[("bert-tiny.pt", "traced")],
        inputs=BERT_INPUTS,
        outputs=["last_hidden_state", "pooler_output", "attentions"],
        can_pretrain=False,
        build=lambda p: build_bert(p, "tiny"),
        check=check_bert,
        example=bert_example,
    ),
    Group(
        key="bert-tiny-noattn",
        only="tiny",
        architecture="BertNoAttentions(tiny: 2 layers, hidden 32, 2 heads)",
        files=[("bert-tiny-noattn.pt", "traced")],
        inputs=BERT_INPUTS,
        outputs=["last_hidden_state", "pooler_output"],
        can_pretrain=False,
        build=lambda p: build_bert_noattn(p, "tiny"),
        check=check_bert_noattn,
        example=bert_example,
    ),
    Group(
        key="bert-tiny-cls",
        only="tiny",
        architecture="BertClassifier(tiny: 2 layers, hidden 32, 2 heads; 2 labels)",
        files=[("bert-tiny-cls.pt", "traced")],
        inputs=BERT_INPUTS,
        outputs=["logits"],
        can_pretrain=False,
        build=lambda p: build_bert_classifier(p, "tiny"),
        check=check_logits(bert_cls_example),
        example=bert_example,
    ),
    Group(
        key="gpt2",
        only="gpt2",
        architecture="Gpt2LM(GPT-2 small: 12 layers, 768 wide, 12 heads, vocab 50257, untied LM head; traced on ids)",
        files=[("gpt2.pt", "traced"), ("gpt2.pt2", "exported"), ("gpt2.decode.pt", "decode-step"), ("gpt2.torchscope.json", "hf-manifest")],
        inputs=[{"name": "input_ids", "shape": [1, 16], "dtype": "int64"}],
        outputs=["logits"],
        can_pretrain=True,
        build=lambda p: build_gpt2(p, "small"),
        check=check_logits(gpt2_example),
        example=gpt2_example,
        export_args=lambda: (
            (torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(SEED)),),
            ({0: Dim("batch", min=1, max=256), 1: Dim("seq", min=2, max=1024)},),
        ),
    ),
    Group(
        key="gpt2-tiny",
        only="tiny",
        architecture="Gpt2LM(tiny: 4 layers, 64 wide, 4 heads, vocab 50257, untied LM head; traced on ids)",
        files=[("gpt2-tiny.pt", "traced")],
        inputs=[{"name": "input_ids", "shape": [1, 16], "dtype": "int64"}],
        outputs=["logits"],
        can_pretrain=False,
        build=lambda p: build_gpt2(p, "tiny"),
        check=check_logits(gpt2_example),
        example=gpt2_example,
    ),
    Group(
        key="induction",
        only="induction",
        architecture=(f"AttnOnly({induction.LAYERS} layers, {induction.HEADS} heads, d_model {induction.D_MODEL}, vocab "
                      f"{induction.VOCAB}) on repeated random tokens (halves of {induction.HALF_RANGE[0]}-{induction.HALF_RANGE[1]}, "
                      f"seed {induction.SEED}, batch {induction.BATCH}, lr {induction.LR}, {induction.THREADS} threads, until the "
                      f"repeated half's loss < {induction.TARGET_LOSS})"),
        files=[("induction.pt", "scripted")],
        inputs=[{"name": "ids", "shape": [1, 1 + 2 * induction.HALF], "dtype": "int64"}],
        outputs=["logits"],
        can_pretrain=False,
        build=build_induction,
        check=check_logits(induction_example),
        example=induction_example,
    ),
    Group(
        key="digits",
        only="digits",
        architecture=DIGITS_ARCHITECTURE,
        files=[("digits-cnn.pt", "traced"), ("digits-cnn-scripted.pt", "scripted")],
        inputs=[{"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"}],
        outputs=["logits"],
        can_pretrain=False,
        build=build_digits,
        check=check_logits(digits_example),
        example=digits_example,
    ),
    Group(
        key="digits-randomized",
        only="digits",
        architecture=DIGITS_ARCHITECTURE + f", top layers {dg.TOP_LAYERS} re-initialised (seed {dg.SEED + 1})",
        files=[("digits-cnn-randomized.pt", "traced")],
        inputs=[{"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"}],
        outputs=["logits"],
        can_pretrain=False,
        build=build_digits_randomized,
        check=check_logits(digits_example),
        example=digits_example,
    ),
]


# ---------------------------------------------------------------- hashing / manifest


def sha256_state(model: torch.nn.Module) -> str:
    """Hash of the weights alone, independent of TorchScript code/debug info."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}\n".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def spec_for(group: Group, name: str, kind: str, pretrained: bool) -> dict:
    """The fields that decide whether an existing file is still what we'd write."""
    return {
        "name": name,
        "kind": kind,
        "architecture": group.architecture,
        "seed": None if pretrained else SEED,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "pretrained": pretrained,
    }


def load_manifest(out: Path) -> Dict[str, dict]:
    path = out / "manifest.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {e["name"]: e for e in data.get("files", [])}
    except (ValueError, KeyError, TypeError):
        print(f"warning: ignoring unreadable {path}", file=sys.stderr)
        return {}


def write_manifest(out: Path, entries: Dict[str, dict]) -> None:
    data = {"version": MANIFEST_VERSION, "files": [entries[k] for k in sorted(entries)]}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")


def up_to_date(out: Path, entry: Optional[dict], spec: dict) -> bool:
    if entry is None or any(entry.get(k) != v for k, v in spec.items()):
        return False
    path = out / spec["name"]
    return path.exists() and sha256_file(path) == entry.get("sha256")


# ---------------------------------------------------------------- export (runs in a fresh fork)


def export_group(group: Group, out: Path, pretrained: bool, names: List[str]) -> dict:
    """Build, convert, verify and save; returns {file name: weights_sha256}."""
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    transformers.logging.set_verbosity_error()

    model = group.build(pretrained)
    weights = sha256_state(model)
    result = {}
    with torch.no_grad():
        converted = {}
        # Always convert every kind in the same order so TorchScript's type
        # name mangling (and hence the bytes) doesn't depend on which files
        # happen to need rewriting.
        for name, kind in group.files:
            if kind == "traced":
                converted[name] = torch.jit.trace(model, group.example(), check_trace=False)
            elif kind == "decode-step":
                # A causal LM's cached decoding step and the manifest naming it, as `torchscope export` writes them.
                step, entry = hf_decode.decode_step(model, check=True)
                converted[name] = step
                decode = {"file": name, **entry}
            elif kind == "hf-manifest":
                names_in = [group.inputs[0]["name"]]
                converted[name] = hf_export.manifest(model, "scripts/export-models.py", "causal-lm", names_in, None, None, (decode, None))
            elif kind == "exported":
                inputs, dynamic = group.export_args()
                converted[name] = torch.export.export(model, inputs, dynamic_shapes=dynamic)
            else:
                converted[name] = torch.jit.script(model)
        # torch.jit.save names the archive's root folder after the file, so
        # stage under the final name in a scratch dir rather than "x.pt.tmp".
        with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as scratch:
            for name in names:
                if name not in converted:
                    continue
                if isinstance(converted[name], dict):
                    hf_export.write_json(converted[name], out / name)
                    result[name] = weights
                    continue
                if dict(group.files)[name] == "decode-step":
                    tmp = Path(scratch) / name
                    torch.jit.save(converted[name], str(tmp))
                    hf_decode.check_step(torch.jit.load(str(tmp)), model, decode["past"])
                    os.replace(tmp, out / name)
                    result[name] = weights
                    continue
                exported = isinstance(converted[name], torch.export.ExportedProgram)
                group.check(converted[name].module() if exported else converted[name], model)
                tmp = Path(scratch) / name
                (torch.export.save if exported else torch.jit.save)(converted[name], str(tmp))
                # Check what a consumer will actually load, not the in-memory module.
                group.check(torch.export.load(str(tmp)).module() if exported else torch.jit.load(str(tmp)), model)
                os.replace(tmp, out / name)
                result[name] = weights
        if pretrained and group.key == "bert" and "bert-vocab.txt" in names:
            save_bert_vocab(out)
            result["bert-vocab.txt"] = None
    return result


def _child(group: Group, out: Path, pretrained: bool, names: List[str], conn) -> None:
    try:
        conn.send(("ok", export_group(group, out, pretrained, names)))
    except PretrainedUnavailable as e:
        conn.send(("pretrained", str(e)))
    except BaseException:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def run_group(group: Group, out: Path, pretrained: bool, names: List[str]) -> Tuple[str, object]:
    # A fresh fork per group keeps TorchScript's global type registry (and so
    # the saved bytes) independent of what else was exported in this run.
    if "fork" not in mp.get_all_start_methods() or sys.platform == "win32":
        try:
            return "ok", export_group(group, out, pretrained, names)
        except PretrainedUnavailable as e:
            return "pretrained", str(e)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(group, out, pretrained, names, child))
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()
    except EOFError:
        proc.join()
        return "error", f"export process died (exit code {proc.exitcode})"
    proc.join()
    return status, payload


# ---------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Export TorchScript reference models for torchscope.")
    ap.add_argument("--out", type=Path, default=REPO / "models", help="output directory (default: <repo>/models)")
    ap.add_argument("--pretrained", action="store_true", help="ImageNet ResNet-18 and bert-base-uncased weights")
    ap.add_argument("--force", action="store_true", help="rewrite files even if the manifest says they are current")
    ap.add_argument(
        "--only",
        choices=sorted({g.only for g in GROUPS}),
        action="append",
        help="export only this group (repeatable); tiny = resnet-tiny + bert-tiny + bert-tiny-noattn + bert-tiny-cls + gpt2-tiny",
    )
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out)
    t_start = time.perf_counter()

    for group in GROUPS:
        if args.only and group.only not in args.only:
            continue
        pretrained = args.pretrained and group.can_pretrain
        specs = {name: spec_for(group, name, kind, pretrained) for name, kind in group.files}
        if pretrained and group.key == "bert":
            specs["bert-vocab.txt"] = spec_for(group, "bert-vocab.txt", "vocab", True)
            specs["bert-vocab.txt"]["architecture"] = "bert-base-uncased tokenizer vocab"
        todo = [n for n, s in specs.items() if args.force or not up_to_date(out, manifest.get(n), s)]
        if group.key == "bert" and not pretrained and "bert-vocab.txt" in manifest and todo:
            # The vocab belongs to pretrained weights; keeping it beside a
            # random-init bert.pt would suggest they go together.
            (out / "bert-vocab.txt").unlink(missing_ok=True)
            del manifest["bert-vocab.txt"]
            print(f"removed {out / 'bert-vocab.txt'} (only valid with --pretrained)")
        for name in specs:
            if name not in todo:
                print(f"skipped {out / name} (up to date)")
        if not todo:
            continue

        t0 = time.perf_counter()
        status, payload = run_group(group, out, pretrained, todo)
        if status == "pretrained":
            print(f"error: {payload}", file=sys.stderr)
            print("error: --pretrained needs network access (or a warm cache); not falling back to random weights.",
                  file=sys.stderr)
            write_manifest(out, manifest)
            return 1
        if status != "ok":
            print(f"error: exporting {group.key} failed:\n{payload}", file=sys.stderr)
            write_manifest(out, manifest)
            return 1
        dt = time.perf_counter() - t0
        for name in todo:
            path = out / name
            entry = dict(specs[name])
            entry["sha256"] = sha256_file(path)
            if payload.get(name):
                entry["weights_sha256"] = payload[name]
            if entry["kind"] != "vocab":
                entry["inputs"] = group.inputs
                entry["outputs"] = group.outputs
            entry["bytes"] = path.stat().st_size
            manifest[name] = entry
            print(f"wrote   {path} ({entry['kind']}, {entry['bytes'] / 1e6:.1f} MB, {dt:.1f}s for {group.key})")
        # Persist after each group so an interrupted run keeps what it finished.
        write_manifest(out, manifest)

    if not args.only or "digits" in args.only:
        write_digits_samples(out)
    write_manifest(out, manifest)
    print(f"done in {time.perf_counter() - t_start:.1f}s -> {out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
