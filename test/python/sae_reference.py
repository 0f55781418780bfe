#!/usr/bin/env python3
"""Independent Python reference for torchscope's SAEs (lib/sae/): loading and the math.

    python test/python/sae_reference.py REQUEST.json

Written from SAELens's published definitions (sae_lens/saes/*.py, sae_lens/loading/
pretrained_sae_loaders.py, v6.18), EleutherAI sparsify's SparseCoder (v1.3) and Gemma Scope's
params.npz as SAELens converts it; SAELens itself is not imported (nor installable here). Files
are read with the `safetensors` library and numpy, independently of torchscope's readers.

The request:

    {
      "out": "/abs/dir",
      "cases": [
        {"id": "c1", "sae": "/abs/folder-or-params.npz", "dtype": "float32" | null,
         "op": "load"},                                   # -> {"cfg": CFG, "tensors": {name: VALUE}, "sparsity": VALUE | null}
        {"id": "c2", "sae": ..., "op": "encode", "x": TENSOR},        # -> {"featuresPre", "features"}
        {"id": "c3", "sae": ..., "op": "decode", "features": TENSOR,
         "x": TENSOR | null, "skip": false},              # x: the encoded input, for a normalization's statistics
                                                          #    and hook_z's head shape; skip: a skip transcoder's
                                                          #    x W_skip^T added (SAELens's decode leaves it to
                                                          #    forward) -> {"output"}
        {"id": "c4", "sae": ..., "op": "forward", "x": TENSOR},       # -> {"output"}
        {"id": "c5", "sae": ..., "op": "error_term", "x": TENSOR,
         "target": TENSOR | null}                         # x - forward(x); transcoders: target - forward(x)
      ]
    }

TENSOR and VALUE are reference.py's (raw little-endian files). CFG is the configuration in SAELens 6's
shape: architecture, d_in, d_sae, dtype (the DTYPE_MAP key without 'torch.'), apply_b_dec_to_input,
normalize_activations, reshape_activations, metadata, plus k and rescale_acts_by_decoder_norm
(topk) and d_out (transcoders).

The math (SAE.process_sae_in, each architecture's encode/decode, SAE.forward):
  input: cast to the SAE's dtype; hook_z: [..., heads, d_head] -> [..., heads * d_head]; the
    normalization's input side; minus b_dec when apply_b_dec_to_input (transcoders: cast and
    normalization only);
  constant_norm_rescale: x * sqrt(d_in) / |x| per token, undone by dividing by that factor;
  layer_norm: (x - mean) / (std + 1e-5) with the unbiased std, "undone" by x * std + mean;
  standard / transcoder: ReLU(x W_enc + b_enc);
  jumprelu / jumprelu_transcoder: ReLU(h) * (h > threshold), h = x W_enc + b_enc (strictly greater);
  topk: h = x W_enc + b_enc (times |W_dec row| with rescale_acts_by_decoder_norm), the k largest
    kept with ReLU, zeros elsewhere; decode divides by |W_dec row| again when rescaling;
  gated: 1[x W_enc + b_gate > 0] * ReLU(x (W_enc * exp(r_mag)) + b_mag) (featuresPre: the magnitude path);
  decode: f W_dec + b_dec, then the normalization's output side, then hook_z's shape back
    (transcoders: neither);
  skip_transcoder: forward adds x W_skip^T (x the raw input, cast);
  featuresPre: the pre-activation hook_sae_acts_pre sees (topk: before the rescale).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from packaging.version import Version
from safetensors import safe_open

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reference import Writer, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# cfg.json spells dtypes either way (sae_lens/constants.py DTYPE_MAP).
DTYPE_NAMES = {**{name: name for name in DTYPES}, **{f"torch.{name}": name for name in DTYPES}}
TORCH_DTYPE_NAMES = {t: name for name, t in DTYPES.items()}

TRANSCODERS = {"transcoder", "skip_transcoder", "jumprelu_transcoder"}
NORMALIZATIONS = {"none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"}
REQUIRED = {
    "standard": ["W_enc", "b_enc", "W_dec", "b_dec"],
    "topk": ["W_enc", "b_enc", "W_dec", "b_dec"],
    "jumprelu": ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"],
    "gated": ["W_enc", "W_dec", "b_dec", "b_gate", "b_mag", "r_mag"],
    "transcoder": ["W_enc", "b_enc", "W_dec", "b_dec"],
    "skip_transcoder": ["W_enc", "b_enc", "W_dec", "b_dec", "W_skip"],
    "jumprelu_transcoder": ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"],
}
# What pre-6.0 conversion gathers into metadata.
LEGACY_METADATA = {
    "model_name", "hook_name", "model_class_name", "hook_head_index", "model_from_pretrained_kwargs",
    "prepend_bos", "exclude_special_tokens", "neuronpedia_id", "context_size", "seqpos_slice",
    "dataset_path", "sae_lens_version", "sae_lens_training_version", "hook_name_out", "hook_head_index_out",
}


# ---------------------------------------------------------------- configuration


def is_pre_6(cfg: dict) -> bool:
    version = cfg.get("sae_lens_version")
    if not version and isinstance(cfg.get("metadata"), dict):
        version = cfg["metadata"].get("sae_lens_version")
    return not version or Version(version) < Version("6.0.0-rc.0")


def convert_pre_6(cfg: dict) -> dict:
    """An old config brought to 6.0's keys, as SAELens's conversion does."""
    renames = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index", "activation_fn_str": "activation_fn"}
    new = {}
    for key, value in cfg.items():
        new[renames.get(key, key)] = value
    for key, default in (("prepend_bos", True), ("apply_b_dec_to_input", True), ("sae_lens_training_version", None),
                         ("architecture", "standard"), ("neuronpedia_id", None)):
        if key not in new:
            new[key] = default
    if "reshape_activations" not in new:
        new["reshape_activations"] = "hook_z" if "hook_z" in new.get("hook_name", "") else "none"
    kwargs = new.get("activation_fn_kwargs", {})
    if new.get("activation_fn", "relu") == "topk" and kwargs.get("k") is not None:
        new["architecture"] = "topk"
    if new["architecture"] == "topk" and "activation_fn_kwargs" in new:
        new["k"] = new["activation_fn_kwargs"]["k"]
    if isinstance(new.get("normalize_activations"), bool):
        new["normalize_activations"] = "expected_average_only_in" if new["normalize_activations"] else "none"
    if new.get("normalize_activations") is None:
        new["normalize_activations"] = "none"
    new["metadata"] = {key: value for key, value in new.items() if key in LEGACY_METADATA}
    return new


def saelens_config(raw: dict, dtype) -> dict:
    """cfg.json as SAELens 6 holds it: the architecture's fields with their class defaults."""
    cfg = convert_pre_6(raw) if is_pre_6(raw) else raw
    architecture = cfg["architecture"]
    if architecture not in REQUIRED:
        raise ValueError(f"unknown architecture {architecture}")
    out = {
        "architecture": architecture,
        "d_in": cfg["d_in"],
        "d_sae": cfg["d_sae"],
        "dtype": dtype or DTYPE_NAMES[cfg.get("dtype", "float32")],
        "apply_b_dec_to_input": cfg.get("apply_b_dec_to_input", True),
        "normalize_activations": cfg.get("normalize_activations", "none"),
        "reshape_activations": cfg.get("reshape_activations", "none"),
        "metadata": dict(cfg.get("metadata", {})),
    }
    if out["normalize_activations"] not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {out['normalize_activations']}")
    if architecture == "topk":
        out["k"] = cfg.get("k", 100)
        out["rescale_acts_by_decoder_norm"] = cfg.get("rescale_acts_by_decoder_norm", False)
    if architecture in TRANSCODERS:
        out["d_out"] = cfg.get("d_out", 768)
        if out["apply_b_dec_to_input"]:
            raise ValueError("apply_b_dec_to_input is not supported for transcoders")
    return out


# ---------------------------------------------------------------- loading


class Sae:
    def __init__(self, cfg: dict, tensors: dict, sparsity):
        self.cfg = cfg
        self.arch = cfg["architecture"]
        self.dtype = DTYPES[cfg["dtype"]]
        self.t = tensors
        self.sparsity = sparsity

    @property
    def transcoder(self) -> bool:
        return self.arch in TRANSCODERS


def read_safetensors(file: Path) -> dict:
    with safe_open(str(file), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}


def load_saelens(folder: Path, dtype) -> Sae:
    cfg = saelens_config(json.loads((folder / "cfg.json").read_text()), dtype)
    target = DTYPES[cfg["dtype"]]
    raw = read_safetensors(folder / "sae_weights.safetensors")
    scaling = raw.pop("scaling_factor", None)
    if scaling is not None and not torch.allclose(scaling.to(target), torch.ones_like(scaling.to(target))):
        raise ValueError("finetuning scaling factor")
    if sorted(raw) != sorted(REQUIRED[cfg["architecture"]]):
        raise ValueError(f"keys {sorted(raw)}")
    tensors = {key: value.to(target) for key, value in raw.items()}
    sparsity_file = folder / "sparsity.safetensors"
    sparsity = read_safetensors(sparsity_file)["sparsity"] if sparsity_file.exists() else None
    return Sae(cfg, tensors, sparsity)


def load_sparsify(folder: Path, dtype) -> Sae:
    raw_cfg = json.loads((folder / "cfg.json").read_text())
    d_in = raw_cfg["d_in"]
    d_sae = raw_cfg.get("num_latents", 0) or d_in * raw_cfg.get("expansion_factor", 32)
    with safe_open(str(folder / "sae.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        file_dtype = f.get_tensor(keys[0]).dtype  # sparsify: the SAE takes its first tensor's dtype
        raw = {key: f.get_tensor(key) for key in keys}
    target = DTYPES[dtype] if dtype else file_dtype
    cfg = {
        "architecture": "topk",
        "d_in": d_in,
        "d_sae": d_sae,
        "dtype": TORCH_DTYPE_NAMES[target],
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {},
        "k": raw_cfg.get("k", 32),
        "rescale_acts_by_decoder_norm": False,
    }
    tensors = {
        # nn.Linear keeps [d_sae, d_in]: x @ weight.T is x @ W_enc.
        "W_enc": raw["encoder.weight"].to(target).T.contiguous(),
        "b_enc": raw["encoder.bias"].to(target),
        "W_dec": raw["W_dec"].to(target),
        "b_dec": raw["b_dec"].to(target),
    }
    return Sae(cfg, tensors, None)


def load_gemma_scope(file: Path, dtype) -> Sae:
    target = DTYPES[dtype or "float32"]
    with np.load(file) as data:
        tensors = {("W_" + key[2:] if key.startswith("w_") else key): torch.tensor(data[key]).to(target) for key in data}
    tensors.pop("scaling_factor", None)
    d_in, d_sae = tensors["W_enc"].shape
    cfg = {
        "architecture": "jumprelu",
        "d_in": d_in,
        "d_sae": d_sae,
        "dtype": TORCH_DTYPE_NAMES[target],
        "apply_b_dec_to_input": False,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {},
    }
    return Sae(cfg, tensors, None)


def load(path: str, dtype=None) -> Sae:
    p = Path(path)
    if p.is_file():
        return load_gemma_scope(p, dtype)
    if (p / "sae_weights.safetensors").exists():
        return load_saelens(p, dtype)
    if (p / "sae.safetensors").exists():
        return load_sparsify(p, dtype)
    return load_gemma_scope(p / "params.npz", dtype)


# ---------------------------------------------------------------- the math


class Stats:
    """What decoding needs of the encoded input: the normalization's factors and hook_z's d_head."""

    def __init__(self):
        self.coeff = None
        self.mu = None
        self.std = None
        self.d_head = None


def process_in(sae: Sae, x: torch.Tensor, stats: Stats) -> torch.Tensor:
    x = x.to(sae.dtype)
    if sae.cfg["reshape_activations"] == "hook_z" and not sae.transcoder:
        stats.d_head = x.shape[-1]
        x = x.flatten(-2)
    norm = sae.cfg["normalize_activations"]
    if norm == "constant_norm_rescale":
        stats.coeff = (sae.cfg["d_in"] ** 0.5) / x.norm(dim=-1, keepdim=True)
        x = x * stats.coeff
    elif norm == "layer_norm":
        stats.mu = x.mean(dim=-1, keepdim=True)
        x = x - stats.mu
        stats.std = x.std(dim=-1, keepdim=True)
        x = x / (stats.std + 1e-5)
    if sae.transcoder:
        return x
    return x - sae.t["b_dec"] * sae.cfg["apply_b_dec_to_input"]


def encode(sae: Sae, x: torch.Tensor, stats: Stats):
    t = sae.t
    h_in = process_in(sae, x, stats)
    if sae.arch == "gated":
        gate = (h_in @ t["W_enc"] + t["b_gate"]) > 0
        pre = h_in @ (t["W_enc"] * t["r_mag"].exp()) + t["b_mag"]
        return pre, gate.to(sae.dtype) * torch.relu(pre)
    pre = h_in @ t["W_enc"] + t["b_enc"]
    if sae.arch in ("jumprelu", "jumprelu_transcoder"):
        return pre, torch.relu(pre) * (pre > t["threshold"]).to(sae.dtype)
    if sae.arch == "topk":
        scored = pre * t["W_dec"].norm(dim=-1) if sae.cfg["rescale_acts_by_decoder_norm"] else pre
        values, indices = torch.topk(scored, sae.cfg["k"], dim=-1, sorted=False)
        return pre, torch.zeros_like(scored).scatter(-1, indices, torch.relu(values))
    return pre, torch.relu(pre)


def decode(sae: Sae, features: torch.Tensor, stats: Stats) -> torch.Tensor:
    t = sae.t
    if sae.arch == "topk" and sae.cfg["rescale_acts_by_decoder_norm"]:
        features = features / t["W_dec"].norm(dim=-1)
    y = features @ t["W_dec"] + t["b_dec"]
    if sae.transcoder:
        return y
    norm = sae.cfg["normalize_activations"]
    if norm == "constant_norm_rescale":
        y = y / stats.coeff
    elif norm == "layer_norm":
        y = y * stats.std + stats.mu
    if stats.d_head is not None:
        y = y.unflatten(-1, (-1, stats.d_head))
    return y


def skip_term(sae: Sae, x: torch.Tensor) -> torch.Tensor:
    """A skip transcoder's x W_skip^T, of the raw input (SkipTranscoder.forward), cast to match."""
    return x.to(sae.dtype) @ sae.t["W_skip"].T


def forward(sae: Sae, x: torch.Tensor) -> torch.Tensor:
    stats = Stats()
    _, features = encode(sae, x, stats)
    y = decode(sae, features, stats)
    return y + skip_term(sae, x) if sae.arch == "skip_transcoder" else y


# ---------------------------------------------------------------- requests

_cache: dict = {}


def cached(path: str, dtype) -> Sae:
    key = (path, dtype)
    if key not in _cache:
        _cache[key] = load(path, dtype)
    return _cache[key]


def run_case(case: dict, writer: Writer) -> dict:
    op = case["op"]
    dtype = case.get("dtype")
    if op == "load":
        sae = load(case["sae"], dtype)
        return {
            "cfg": sae.cfg,
            "tensors": {name: writer.tensor(value) for name, value in sae.t.items()},
            "sparsity": None if sae.sparsity is None else writer.tensor(sae.sparsity),
        }
    sae = cached(case["sae"], dtype)
    x = read_tensor(case["x"]) if case.get("x") else None
    with torch.no_grad():
        if op == "encode":
            pre, features = encode(sae, x, Stats())
            return {"featuresPre": writer.tensor(pre), "features": writer.tensor(features)}
        if op == "decode":
            stats = Stats()
            if x is not None:
                encode(sae, x, stats)  # the statistics of the input that was encoded
            y = decode(sae, read_tensor(case["features"]).to(sae.dtype), stats)
            if case.get("skip") and sae.arch == "skip_transcoder":
                y = y + skip_term(sae, x)
            return {"output": writer.tensor(y)}
        if op == "forward":
            return {"output": writer.tensor(forward(sae, x))}
        if op == "error_term":
            # SAE.forward's error term: the clean input (as given, not cast) minus its reconstruction.
            clean = read_tensor(case["target"]) if case.get("target") else x
            return {"output": writer.tensor(clean - forward(sae, x))}
    raise ValueError(f"unknown op {op!r}")


def main() -> int:
    request = read_request(__doc__)
    if request is None:
        return 2
    req, out = request
    writer = Writer(out)
    results = run_cases(req["cases"], lambda case, _i: run_case(case, writer))
    write_index(out, {"cases": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
