#!/usr/bin/env python3
"""Small seeded SAE files of every architecture and format, and hostile ones, for torchscope's tests.

    python test/python/sae_fixtures.py REQUEST.json        # {"out": "/abs/scratch"}

Writes OUT/good/NAME (a folder, or a params.npz inside one) and OUT/hostile/NAME, and
OUT/index.json = {"good": {NAME: PATH}, "hostile": {NAME: PATH}}. The good files are written
the way their tools write them (safetensors.torch.save_file, numpy.savez, json.dump of SAELens's
or sparsify's config keys); each hostile one is a good one with one thing wrong, said in HOSTILE.
What a good file holds, once loaded, comes from sae_reference.py's loader, not from here.
"""

import io
import json
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from refio import read_request, write_index  # noqa: E402

D_IN, D_SAE, D_OUT = 16, 48, 12  # d_out != d_in, so a transposed transcoder decoder cannot pass
HEADS, D_HEAD = 4, 4  # hook_z SAEs: d_in = HEADS * D_HEAD
TORCH = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}

GPT2 = {"model_name": "gpt2", "context_size": 128, "prepend_bos": True, "dataset_path": "Skylion007/openwebtext"}


def weights(arch: str, seed: int, d_in=D_IN, d_sae=D_SAE, d_out=None) -> dict:
    """Seeded weights of `arch` whose features fire on unit-normal inputs about half the time."""
    g = torch.Generator().manual_seed(seed)
    d_out = d_out or d_in

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64).float() * scale

    t = {"W_enc": randn(d_in, d_sae, scale=d_in**-0.5), "W_dec": randn(d_sae, d_out, scale=0.3), "b_dec": randn(d_out, scale=0.1)}
    if arch == "gated":
        t.update(b_gate=randn(d_sae, scale=0.1), b_mag=randn(d_sae, scale=0.1), r_mag=randn(d_sae, scale=0.1))
    else:
        t["b_enc"] = randn(d_sae, scale=0.1)
    if arch in ("jumprelu", "jumprelu_transcoder"):
        t["threshold"] = torch.rand(d_sae, generator=g) * 0.4
    if arch == "skip_transcoder":
        t["W_skip"] = randn(d_out, d_in, scale=0.1)
    return t


def cfg6(arch: str, hook: str, dtype="float32", d_in=D_IN, **fields) -> dict:
    """A config as SAELens 6 saves it (SAEConfig.to_dict), sae_lens_version in metadata."""
    metadata = {**GPT2, "hook_name": hook, "hook_head_index": None, "sae_lens_version": "6.18.0", "sae_lens_training_version": "6.18.0"}
    metadata.update(fields.pop("metadata", {}))
    cfg = {
        "d_in": d_in, "d_sae": D_SAE, "dtype": dtype, "device": "cpu", "apply_b_dec_to_input": arch not in TRANSCODERS,
        "normalize_activations": "none", "reshape_activations": "none", "metadata": metadata, "architecture": arch,
    }
    if arch in TRANSCODERS:
        cfg["d_out"] = D_OUT
    cfg.update(fields)
    return cfg


TRANSCODERS = ("transcoder", "skip_transcoder", "jumprelu_transcoder")


def saelens_folder(folder: Path, cfg: dict, tensors: dict, file_dtype="float32", sparsity=None) -> Path:
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({k: v.to(TORCH[file_dtype]).contiguous() for k, v in tensors.items()}, str(folder / "sae_weights.safetensors"))
    if sparsity is not None:
        save_file({"sparsity": sparsity}, str(folder / "sparsity.safetensors"))
    return folder


def transcoder_cfg(arch: str, **fields) -> dict:
    return cfg6(arch, "blocks.0.mlp.hook_in", metadata={"hook_name_out": "blocks.0.hook_mlp_out", "hook_head_index_out": None}, **fields)


def write_good(root: Path) -> dict:
    good = {}

    def sae(name, arch, cfg, seed, **kw):
        good[name] = str(saelens_folder(root / name, cfg, weights(arch, seed, d_in=cfg["d_in"], d_out=cfg.get("d_out")), **kw))

    sparsity = torch.log10(torch.rand(D_SAE, generator=torch.Generator().manual_seed(99)) + 1e-10)
    sae("standard", "standard", cfg6("standard", "blocks.1.hook_resid_pre"), 1, sparsity=sparsity)
    sae("standard-cnr", "standard", cfg6("standard", "blocks.1.hook_resid_post", normalize_activations="constant_norm_rescale"), 2)
    sae("standard-ln", "standard", cfg6("standard", "blocks.0.hook_mlp_out", normalize_activations="layer_norm"), 3)
    sae("standard-expavg", "standard", cfg6("standard", "blocks.1.hook_attn_out", normalize_activations="expected_average_only_in"), 4)
    sae("standard-nobdec", "standard", cfg6("standard", "blocks.1.hook_resid_pre", apply_b_dec_to_input=False), 5)
    sae("standard-hookz", "standard", cfg6("standard", "blocks.1.attn.hook_z", reshape_activations="hook_z"), 6)
    sae("standard-hookz-ln", "standard", cfg6("standard", "blocks.0.attn.hook_z", reshape_activations="hook_z", normalize_activations="layer_norm"), 7)
    sae("standard-f64", "standard", cfg6("standard", "blocks.1.hook_resid_pre", dtype="float64"), 8, file_dtype="float64")
    sae("standard-bf16", "standard", cfg6("standard", "blocks.1.hook_resid_pre", dtype="bfloat16"), 9)
    sae("standard-f16-from-f64", "standard", cfg6("standard", "blocks.1.hook_resid_pre", dtype="torch.float16"), 10, file_dtype="float64")
    sae("standard-f32-from-bf16", "standard", cfg6("standard", "blocks.1.hook_resid_pre"), 11, file_dtype="bfloat16")
    sae("standard-f32-from-f16", "standard", cfg6("standard", "blocks.1.hook_resid_pre"), 12, file_dtype="float16")
    sae("jumprelu", "jumprelu", cfg6("jumprelu", "blocks.1.hook_resid_post", apply_b_dec_to_input=False), 13)
    sae("jumprelu-cnr", "jumprelu", cfg6("jumprelu", "blocks.1.hook_resid_post", normalize_activations="constant_norm_rescale"), 14)
    sae("topk", "topk", cfg6("topk", "blocks.1.hook_resid_post", k=5), 15)
    sae("topk-rescale", "topk", cfg6("topk", "blocks.1.hook_resid_post", k=7, rescale_acts_by_decoder_norm=True), 16)
    sae("topk-hookz", "topk", cfg6("topk", "blocks.1.attn.hook_z", k=4, reshape_activations="hook_z"), 17)
    sae("gated", "gated", cfg6("gated", "blocks.0.hook_resid_pre"), 18)
    sae("gated-ln", "gated", cfg6("gated", "blocks.0.hook_resid_pre", normalize_activations="layer_norm"), 19)
    sae("transcoder", "transcoder", transcoder_cfg("transcoder"), 20)
    sae("transcoder-cnr", "transcoder", transcoder_cfg("transcoder", normalize_activations="constant_norm_rescale"), 21)
    sae("transcoder-ln", "transcoder", transcoder_cfg("transcoder", normalize_activations="layer_norm"), 22)
    sae("skip_transcoder", "skip_transcoder", transcoder_cfg("skip_transcoder"), 23)
    # SAELens adds the skip term of the raw input, not of the normalized one.
    sae("skip_transcoder-ln", "skip_transcoder", transcoder_cfg("skip_transcoder", normalize_activations="layer_norm"), 37)
    sae("jumprelu_transcoder", "jumprelu_transcoder", transcoder_cfg("jumprelu_transcoder"), 24)

    # scaling_factor all ones: SAELens drops it.
    folder = root / "scaling-ones"
    t = weights("standard", 25)
    t["scaling_factor"] = torch.ones(D_SAE)
    good["scaling-ones"] = str(saelens_folder(folder, cfg6("standard", "blocks.1.hook_resid_pre"), t))

    # Pre-6.0 configs, as SAELens 2.x-5.x wrote them.
    legacy = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "torch.float32", "device": "cpu", "context_size": 128, "model_name": "gpt2-small",
              "prepend_bos": True, "dataset_path": "Skylion007/openwebtext", "apply_b_dec_to_input": True, "finetuning_scaling_factor": False,
              "sae_lens_training_version": "2.1.3", "neuronpedia_id": "gpt2-small/2-res-jb", "lp_norm": 1.0, "dataset_trust_remote_code": True}
    sae("legacy-hook-point", "standard", {**legacy, "hook_point": "blocks.1.hook_resid_pre", "hook_point_layer": 1, "hook_point_head_index": None,
                                          "activation_fn_str": "relu", "normalize_activations": False,
                                          "model_from_pretrained_kwargs": {"center_writing_weights": True}}, 26)
    sae("legacy-topk", "topk", {**legacy, "sae_lens_version": "5.9.1", "hook_name": "blocks.0.hook_resid_post", "hook_layer": 0,
                                "hook_head_index": None, "activation_fn": "topk", "activation_fn_kwargs": {"k": 6},
                                "normalize_activations": True}, 27)
    sae("legacy-hookz", "standard", {**legacy, "hook_point": "blocks.1.attn.hook_z", "hook_point_layer": 1, "normalize_activations": None}, 28)
    sae("legacy-dev-version", "standard", {**legacy, "sae_lens_version": "6.0.0.dev1", "hook_point": "blocks.0.hook_mlp_out",
                                           "normalize_activations": "layer_norm"}, 29)
    # SAELens 6: the version inside metadata only (a top-level check would convert it and lose
    # metadata.hook_name), and a release candidate of 6.0.
    sae("v6-metadata-version", "standard", cfg6("standard", "blocks.1.attn.hook_z", reshape_activations="hook_z"), 30)
    sae("v6-rc", "jumprelu", {**cfg6("jumprelu", "blocks.1.hook_resid_post", metadata={"sae_lens_version": None}),
                              "sae_lens_version": "6.0.0-rc.1"}, 31)

    # Gemma Scope: params.npz, stored (numpy.savez) in a release's folder layout, and deflated
    # (savez_compressed) with the lower-case keys SAELens renames.
    t = {k: v.numpy() for k, v in weights("jumprelu", 32).items()}
    folder = root / "gemma-scope-2b-pt-res" / "layer_1" / "width_48" / "average_l0_5"
    folder.mkdir(parents=True)
    np.savez(folder / "params.npz", **t)
    good["gemma-scope"] = str(folder / "params.npz")
    good["gemma-scope-folder"] = str(folder)
    folder = root / "gemma-scope-compressed"
    folder.mkdir()
    t = {k: v.numpy() for k, v in weights("jumprelu", 33).items()}
    np.savez_compressed(folder / "params.npz", w_enc=t["W_enc"], w_dec=t["W_dec"], b_enc=t["b_enc"], b_dec=t["b_dec"], threshold=t["threshold"],
                        scaling_factor=np.ones(D_SAE, dtype=np.float32))
    good["gemma-scope-compressed"] = str(folder / "params.npz")
    folder = root / "gemma-scope-f64"
    folder.mkdir()
    np.savez(folder / "params.npz", **{k: v.numpy().astype(np.float64) for k, v in weights("jumprelu", 34).items()})
    good["gemma-scope-f64"] = str(folder / "params.npz")

    # sparsify: SparseCoder.save_to_disk (save_model of encoder.weight/bias, W_dec, b_dec; cfg plus d_in).
    for name, hook, dtype, cfg_extra, seed in (
        ("sparsify", "layers.1", "float32", {"num_latents": D_SAE, "expansion_factor": 32}, 35),
        ("sparsify-bf16", "h.0", "bfloat16", {"num_latents": 0, "expansion_factor": D_SAE // D_IN}, 36),
    ):
        folder = root / name / hook
        folder.mkdir(parents=True)
        t = weights("standard", seed)
        (folder / "cfg.json").write_text(json.dumps({"activation": "topk", "normalize_decoder": True, "k": 5, "multi_topk": False,
                                                     "skip_connection": False, "transcode": False, "d_in": D_IN, **cfg_extra}))
        save_file({"encoder.weight": t["W_enc"].T.contiguous().to(TORCH[dtype]), "encoder.bias": t["b_enc"].to(TORCH[dtype]),
                   "W_dec": t["W_dec"].to(TORCH[dtype]), "b_dec": t["b_dec"].to(TORCH[dtype])}, str(folder / "sae.safetensors"))
        good[name] = str(folder)
    return good


# ---------------------------------------------------------------- hostile files


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def standard_header(tensors: dict) -> tuple:
    """A safetensors header and data for float32 tensors, laid out as save_file lays them out."""
    header, chunks, at = {}, [], 0
    for name, value in tensors.items():
        raw = value.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    return header, b"".join(chunks)


def npy_bytes(array: np.ndarray, header_text=None, magic=b"\x93NUMPY", version=(1, 0)) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    if header_text is None:
        return magic + buffer.getvalue()[6:]
    text = header_text.encode()
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return magic + bytes(version) + struct.pack("<H", len(text)) + text + array.tobytes()


def zip_of(entries: dict, method=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def write_hostile(root: Path) -> dict:
    hostile = {}
    base_cfg = cfg6("standard", "blocks.1.hook_resid_pre")
    t = weights("standard", 40)

    def folder_with(name: str, cfg=None, weights_bytes=None, tensors=None, cfg_text=None) -> Path:
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "cfg.json").write_text(cfg_text if cfg_text is not None else json.dumps(cfg or base_cfg))
        if weights_bytes is not None:
            (folder / "sae_weights.safetensors").write_bytes(weights_bytes)
        else:
            save_file(tensors if tensors is not None else t, str(folder / "sae_weights.safetensors"))
        hostile[name] = str(folder)
        return folder

    header, data = standard_header(t)
    whole = safetensors_bytes(header, data)
    folder_with("st-truncated", weights_bytes=whole[:-64])
    folder_with("st-short", weights_bytes=b"\x01\x02\x03\x04")
    folder_with("st-header-past-file", weights_bytes=struct.pack("<Q", len(whole)) + whole[8:])
    folder_with("st-header-2p40", weights_bytes=struct.pack("<Q", 1 << 40) + whole[8:])
    folder_with("st-header-not-json", weights_bytes=struct.pack("<Q", 9) + b"not json{" + data)
    folder_with("st-header-array", weights_bytes=struct.pack("<Q", 3) + b"[1]" + data)
    h = json.loads(json.dumps(header))
    last = list(h)[-1]  # moved 8 bytes back, into the tensor before it
    h[last]["data_offsets"] = [o - 8 for o in h[last]["data_offsets"]]
    folder_with("st-overlap", weights_bytes=safetensors_bytes(h, data))
    last = list(header)[-1]  # moved 4 bytes on: the 4 before it belong to no tensor
    folder_with("st-gap", weights_bytes=safetensors_bytes({**header, last: {**header[last], "data_offsets": [o + 4 for o in header[last]["data_offsets"]]}},
                                                          data + b"\0" * 4))
    folder_with("st-trailing", weights_bytes=safetensors_bytes(header, data + b"\0" * 16))
    h = json.loads(json.dumps(header))
    h["W_enc"]["shape"] = [D_IN, D_SAE + 1]  # claims 64 more bytes than its range: wrong-size data
    folder_with("st-wrong-size", weights_bytes=safetensors_bytes(h, data))
    h = json.loads(json.dumps(header))
    h["b_dec"]["dtype"] = "I32"
    folder_with("st-dtype-int", weights_bytes=safetensors_bytes(h, data))
    h = json.loads(json.dumps(header))
    h["b_dec"]["shape"] = [-4, -4]
    folder_with("st-negative-shape", weights_bytes=safetensors_bytes(h, data))
    h = json.loads(json.dumps(header))
    h["b_dec"]["data_offsets"] = [0, 2**70]
    folder_with("st-huge-offsets", weights_bytes=safetensors_bytes(h, data))
    folder_with("st-shape-mismatch", tensors={**t, "W_enc": torch.zeros(D_IN, D_SAE - 1)})
    folder_with("st-transposed", tensors={**t, "W_dec": t["W_dec"].T.contiguous()})
    folder_with("st-missing-key", cfg=cfg6("jumprelu", "blocks.1.hook_resid_post"), tensors=t)
    folder_with("st-extra-key", tensors={**t, "threshold": torch.zeros(D_SAE)})
    folder_with("st-scaling-factor", tensors={**t, "scaling_factor": torch.full((D_SAE,), 2.0)})
    folder = folder_with("sparsity-wrong-shape")
    save_file({"sparsity": torch.zeros(D_SAE - 1)}, str(folder / "sparsity.safetensors"))
    folder = folder_with("sparsity-no-key")
    save_file({"log_sparsity": torch.zeros(D_SAE)}, str(folder / "sparsity.safetensors"))

    folder_with("cfg-not-json", cfg_text="{ d_in: 16 ")
    folder_with("cfg-array", cfg_text="[16, 48]")
    folder_with("cfg-arch-newer", cfg={**base_cfg, "architecture": "matching_pursuit"})
    folder_with("cfg-arch-bogus", cfg={**base_cfg, "architecture": "resnet"})
    folder_with("cfg-norm-unknown", cfg={**base_cfg, "normalize_activations": "batch_norm"})
    folder_with("cfg-reshape-unknown", cfg={**base_cfg, "reshape_activations": "hook_q"})
    folder_with("cfg-d-in-string", cfg={**base_cfg, "d_in": "16"})
    folder_with("cfg-no-d-sae", cfg={k: v for k, v in base_cfg.items() if k != "d_sae"})
    folder_with("cfg-dtype-int", cfg={**base_cfg, "dtype": "int8"})
    folder_with("cfg-transcoder-bdec", cfg={**transcoder_cfg("transcoder"), "apply_b_dec_to_input": True},
                tensors=weights("transcoder", 41, d_out=D_OUT))
    folder_with("cfg-version-invalid", cfg={**base_cfg, "metadata": {**base_cfg["metadata"], "sae_lens_version": "banana"}})
    folder_with("cfg-topk-k", cfg={**cfg6("topk", "blocks.1.hook_resid_post"), "k": D_SAE + 1})
    folder_with("cfg-hookz-name", cfg={**base_cfg, "reshape_activations": "hook_z"})
    folder_with("cfg-huge", cfg_text=json.dumps({**base_cfg, "padding": "x" * (1 << 20)}))

    # params.npz
    jt = {k: v.numpy() for k, v in weights("jumprelu", 42).items()}

    def npz(name: str, data: bytes) -> None:
        folder = root / name
        folder.mkdir()
        (folder / "params.npz").write_bytes(data)
        hostile[name] = str(folder / "params.npz")

    good_zip = zip_of({f"{k}.npy": npy_bytes(v) for k, v in jt.items()})
    npz("npz-truncated", good_zip[: len(good_zip) // 2])
    npz("npz-not-zip", b"PK\x03\x04" + bytes(range(256)) * 4)
    fortran = np.asfortranarray(jt["W_enc"])
    npz("npz-fortran", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "W_enc.npy": npy_bytes(fortran)}))
    npz("npz-big-endian", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "b_dec.npy": npy_bytes(jt["b_dec"].astype(">f4"))}))
    npz("npz-int", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "b_dec.npy": npy_bytes(jt["b_dec"].astype("<i8"))}))
    npz("npz-bad-magic", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "b_enc.npy": npy_bytes(jt["b_enc"], magic=b"\x93NUMPZ")}))
    npz("npz-size-mismatch", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()},
                                     "b_enc.npy": npy_bytes(jt["b_enc"], header_text=f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({D_SAE + 1},), }}")}))
    npz("npz-header-evaluated", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()},
                                        "b_enc.npy": npy_bytes(jt["b_enc"], header_text="{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (48,), }")}))
    long_header = b"\x93NUMPY\x02\x00" + struct.pack("<I", 60000) + b"{" + b" " * 59998 + b"\n"
    npz("npz-header-huge", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "b_enc.npy": long_header}))
    npz("npz-shape-mismatch", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "W_dec.npy": npy_bytes(jt["W_dec"][:-1])}))
    npz("npz-missing-threshold", zip_of({f"{k}.npy": npy_bytes(v) for k, v in jt.items() if k != "threshold"}))
    npz("npz-extra-entry", zip_of({**{f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, "notes.txt": b"hello"}))
    # A deflated entry whose central directory claims 2 GB: more than its bytes can inflate to.
    bomb = bytearray(zip_of({f"{k}.npy": npy_bytes(v) for k, v in jt.items()}, zipfile.ZIP_DEFLATED))
    central = bomb.index(b"PK\x01\x02")
    bomb[central + 24: central + 28] = struct.pack("<I", 0x7FFFFFF0)
    npz("npz-size-claim", bytes(bomb))

    def sparsify(name: str, cfg: dict, tensors=None) -> None:
        folder = root / name / "layers.0"
        folder.mkdir(parents=True)
        (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "num_latents": D_SAE, "k": 5, **cfg}))
        s = weights("standard", 43)
        save_file(tensors or {"encoder.weight": s["W_enc"].T.contiguous(), "encoder.bias": s["b_enc"], "W_dec": s["W_dec"], "b_dec": s["b_dec"]},
                  str(folder / "sae.safetensors"))
        hostile[name] = str(folder)

    sparsify("sparsify-groupmax", {"activation": "groupmax"})
    sparsify("sparsify-transcode", {"transcode": True})
    sparsify("sparsify-skip", {"skip_connection": True})
    s = weights("standard", 44)
    sparsify("sparsify-untransposed", {}, {"encoder.weight": s["W_enc"], "encoder.bias": s["b_enc"], "W_dec": s["W_dec"], "b_dec": s["b_dec"]})

    (root / "empty-folder").mkdir()
    hostile["empty-folder"] = str(root / "empty-folder")
    (root / "cfg-only").mkdir()
    (root / "cfg-only" / "cfg.json").write_text(json.dumps(base_cfg))
    hostile["cfg-only"] = str(root / "cfg-only")
    (root / "notes.txt").write_text("not an SAE")
    hostile["not-an-sae-file"] = str(root / "notes.txt")
    return hostile


def main() -> int:
    request = read_request(__doc__)
    if request is None:
        return 2
    _, out = request
    good = write_good(out / "good")
    hostile = write_hostile(out / "hostile")
    write_index(out, {"good": good, "hostile": hostile})
    return 0


if __name__ == "__main__":
    sys.exit(main())
