#!/usr/bin/env python3
"""Download a published SAE into a folder torch.sae.load reads (the --pretrained path).

    python scripts/fetch_sae.py RELEASE SAE_ID --out DIR      # a SAELens release and id
    python scripts/fetch_sae.py --repo REPO_ID --path FOLDER --out DIR   # any Hugging Face folder

    python scripts/fetch_sae.py gpt2-small-res-jb blocks.8.hook_resid_pre --out models/sae/gpt2-res-8
    python scripts/fetch_sae.py --repo google/gemma-scope-2b-pt-res --path layer_20/width_16k/average_l0_71 --out models/sae/gemma-20

RELEASE and SAE_ID are SAELens's (sae_lens/pretrained_saes.yaml): the release names a Hugging
Face repository and each id a folder in it. The YAML is sae_lens's own when sae_lens is installed,
else --yaml FILE, else downloaded from SAELens's GitHub repository. The folder's files are
copied into DIR as they are: a SAELens folder (cfg.json, sae_weights.safetensors,
sparsity.safetensors), a Gemma Scope params.npz (which names no hook point: load it with
{ hookPoint }) or a sparsify folder (cfg.json, sae.safetensors). Releases whose files need
another of SAELens's converters (pickled .pt files, dictionary_learning, Llama Scope...) are
refused, naming the converter.

--center-input is for SAEs trained on a TransformerLens model processed with
center_writing_weights (their cfg says model_from_pretrained_kwargs: {center_writing_weights:
true}, as the gpt2-small-res-jb SAEs do). There every write to the residual stream has zero mean
over d_model, so the stream is the Hugging Face model's minus its per-token mean. The flag folds
that subtraction into the encoder (center_folder below): the SAE then reads the raw stream and
gives the features TransformerLens's stream gives. Its reconstruction stays mean-free, which a
splice may leave so: every reader of GPT-2's residual stream is a LayerNorm, which removes the
mean anyway. test/sae-centering.test.ts checks both on GPT-2 against a model processed by
TransformerLens's definition.

Needs huggingface_hub (set-up's .venv has it, with transformers) and network access to
huggingface.co (and github.com for the YAML): it fails with that said when there is none. The
download has never run here (no network where set-up and the tests run); torch.sae.load's tests
cover the formats, and test/sae-centering.test.ts runs the fold.
"""

import argparse
import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional, Tuple

SAELENS_YAML_URL = "https://raw.githubusercontent.com/jbloomAus/SAELens/main/sae_lens/pretrained_saes.yaml"
# Architectures whose pre-activation is x W_enc + b_enc, into which a centring folds.
CENTERABLE = ("standard", "jumprelu", "topk")
# SAELens's conversion_func values whose files torchscope reads as they are.
READABLE = {None: "SAELens folder", "gemma_2": "Gemma Scope params.npz", "sparsify": "sparsify folder"}


def fail(message: str) -> NoReturn:
    print(f"fetch_sae: {message}", file=sys.stderr)
    sys.exit(1)


def releases(yaml_file: Optional[Path]) -> Dict[str, Any]:
    """SAELens's pretrained SAE directory: release -> {repo_id, conversion_func, saes: [{id, path}]}."""
    import yaml

    if yaml_file is not None:
        text = yaml_file.read_text()
    else:
        try:
            import sae_lens

            text = (Path(sae_lens.__file__).parent / "pretrained_saes.yaml").read_text()
        except (ImportError, OSError):
            try:
                with urllib.request.urlopen(SAELENS_YAML_URL, timeout=30) as response:
                    text = response.read().decode()
            except OSError as e:
                fail(f"could not read SAELens's release list ({SAELENS_YAML_URL}): {e}; this needs network access (or --yaml FILE)")
    data = yaml.safe_load(text)
    # Older files nest the releases under SAE_LOOKUP.
    return data.get("SAE_LOOKUP", data)


def resolve(release: str, sae_id: str, yaml_file: Optional[Path]) -> Tuple[str, str]:
    """(repo_id, folder) of a SAELens release and id; refuses files torchscope does not read."""
    known = releases(yaml_file)
    if release not in known:
        fail(f"no SAELens release '{release}'; releases include {', '.join(sorted(known)[:8])}, ...")
    entry = known[release]
    paths = {sae["id"]: sae["path"] for sae in entry.get("saes", [])}
    if sae_id not in paths:
        fail(f"release '{release}' has no SAE '{sae_id}'; it has {', '.join(list(paths)[:8])}{', ...' if len(paths) > 8 else ''}")
    converter = entry.get("conversion_func")
    if converter not in READABLE:
        fail(f"release '{release}' is converted by SAELens's '{converter}' loader; torchscope reads {', '.join(READABLE.values())}")
    return entry["repo_id"], paths[sae_id]


def download(repo_id: str, folder: str, out: Path) -> None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        fail("needs huggingface_hub: pip install huggingface_hub")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            snapshot_download(repo_id, allow_patterns=[f"{folder}/*"], local_dir=scratch)
        except Exception as e:  # noqa: BLE001 - offline, unknown repository, refused: all end here
            fail(f"could not download {repo_id}/{folder} from the Hugging Face Hub: {type(e).__name__}: {e}")
        source = Path(scratch) / folder
        files = [f for f in source.iterdir() if f.is_file()] if source.is_dir() else []
        if not files:
            fail(f"{repo_id} has no files under '{folder}' (a file rather than a folder is not an SAE torchscope reads)")
        out.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copyfile(file, out / file.name)
            print(f"wrote {out / file.name}")
    if (out / "params.npz").exists():
        print("params.npz names no hook point: load it with torch.sae.load(dir, { hookPoint }) (a layer name of the model)")


def center_folder(folder: Path) -> None:
    """Folds x - mean(x) into the SAELens SAE in `folder` (--center-input, module docstring).

    (x - mean(x)) W = x (W - W's column means over d_in), and with b_dec subtracted from the input
    first, b_enc takes - mean(b_dec) * (W's column sums) for the b_dec term that loses its mean.
    """
    import torch
    from safetensors.torch import load_file, save_file

    cfg_file, weights_file = folder / "cfg.json", folder / "sae_weights.safetensors"
    cfg = json.loads(cfg_file.read_text())
    architecture = cfg.get("architecture", "standard")
    if architecture not in CENTERABLE:
        fail(f"--center-input folds into {', '.join(CENTERABLE)} SAEs; this one is {architecture}")
    normalization = cfg.get("normalize_activations")
    if normalization == "layer_norm":
        print("--center-input: nothing to fold, the SAE's layer_norm normalization centres its input already")
        return
    if normalization not in (None, False, "none", "expected_average_only_in"):
        fail(f"--center-input: the SAE rescales its input by its norm ({normalization}), which the mean changes: no fold is exact")
    tensors = load_file(str(weights_file))
    w_enc = tensors["W_enc"].to(torch.float64)
    centred = w_enc - w_enc.mean(0, keepdim=True)
    b_enc = tensors["b_enc"].to(torch.float64)
    if cfg.get("apply_b_dec_to_input", True):
        b_enc = b_enc - tensors["b_dec"].to(torch.float64).mean() * w_enc.sum(0)
    tensors["W_enc"] = centred.to(tensors["W_enc"].dtype).contiguous()
    tensors["b_enc"] = b_enc.to(tensors["b_enc"].dtype).contiguous()
    save_file(tensors, str(weights_file))
    # It now reads the raw model: say so where SAELens looks (6.x: in metadata; before: at the top).
    for holder in (cfg, cfg.get("metadata") or {}):
        kwargs = holder.get("model_from_pretrained_kwargs")
        if isinstance(kwargs, dict) and "center_writing_weights" in kwargs:
            kwargs["center_writing_weights"] = False
    cfg_file.write_text(json.dumps(cfg, indent=2) + "\n")
    print(f"folded the per-token centring into {weights_file}: it reads the raw residual stream")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Download a published SAE into a folder torch.sae.load reads.")
    parser.add_argument("release", nargs="?", help="SAELens release, e.g. gpt2-small-res-jb")
    parser.add_argument("sae_id", nargs="?", help="SAELens id in the release, e.g. blocks.8.hook_resid_pre")
    parser.add_argument("--repo", help="a Hugging Face repository instead of a release, e.g. google/gemma-scope-2b-pt-res")
    parser.add_argument("--path", help="with --repo: the SAE's folder in it, e.g. layer_20/width_16k/average_l0_71")
    parser.add_argument("--yaml", type=Path, help="a local copy of SAELens's pretrained_saes.yaml")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write")
    parser.add_argument("--center-input", action="store_true", help="fold TransformerLens's per-token centring into the encoder")
    args = parser.parse_args(argv)
    if args.repo:
        if not args.path or args.release:
            parser.error("--repo takes --path, and no release or id")
        repo_id, folder = args.repo, args.path.strip("/")
    elif args.release and args.sae_id:
        repo_id, folder = resolve(args.release, args.sae_id, args.yaml)
    else:
        parser.error("give RELEASE and SAE_ID, or --repo and --path")
    download(repo_id, folder, args.out)
    if args.center_input:
        center_folder(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
