#!/usr/bin/env python3
"""Independent Python reference for SAEs spliced into a forward (test/sae-splice.test.ts).

    python test/python/sae_splice_reference.py REQUEST.json

SAE files are spliced into the eager Hugging Face model (transformers, from a save_pretrained
folder of models/llm/, loaded by llm_reference.py's `load`) with forward hooks and pre-hooks, as
SAELens's HookedSAETransformer splices them into a TransformerLens model:
  - the SAE's output replaces the value at its hook point (an ':input' point: the module's first
    tensor argument, through a pre-hook; otherwise the module's output, or its first tensor);
  - a transcoder reads its input at one point and its output replaces another point's value;
  - with the error term, the clean error (the value being replaced, minus the SAE's output on the
    clean input, computed under no_grad) is added, so edits of the features still change the
    output while an unedited splice changes nothing;
  - an hook_z SAE sees TransformerLens's hook_z, [batch, seq, heads, d_head]: the output
    projection's input [batch, seq, heads * d_head] unflattened to the model's heads, and its
    output flattened back;
  - hook_resid_mid (the residual stream between attention and MLP) is one value in
    TransformerLens that feeds both the MLP's norm and the residual sum after the MLP. The HF
    blocks keep that sum in a local variable, so the splice replaces the norm's input through a
    pre-hook and adds (output - clean value) to the MLP's output: the block's output is then
    output + MLP(norm(output)), as TransformerLens computes it.
The SAE math is sae_reference.py's (SAELens's definitions); an edit of the features ('add',
'set', 'scale', 'zero', on channels and positions) is reference.py's apply_patch, applied to
hook_sae_acts_post's value before decoding. The SAE folders are written here first, with
sae_fixtures.py's writers.

The request:

    {
      "out": "/abs/dir",
      "saes": {NAME: {"arch": "standard", "hook_name": "blocks.1.hook_resid_pre",
                      "hook_name_out": "blocks.0.hook_mlp_out" | null,      # transcoders
                      "d_in": 32, "d_out": 32 | null, "seed": 1,
                      "fields": {...}}},             # more cfg.json fields (k, normalize_activations...)
      "cases": [
        {"id": "c1", "folder": "/abs/models/llm/gpt2", "ids": TENSOR,   # input_ids [batch, seq]
         "splices": [{"sae": NAME, "read": "transformer.h.1:input", "write": "transformer.h.1",
                      "errorTerm": true, "heads": 4 | null,             # hook_z: the model's heads
                      "residMid": {"mlp": "transformer.h.1.mlp",          # hook_resid_mid, above; torchscope reads
                                   "norm": "transformer.h.1.ln_2:input"} | null,  # the block's first add
                      "edit": PATCH | null}],                            # of the features
         "capture": ["transformer.h.1:input:features", ...],   # '<read><stage>', stages below
         "generate": 6,                                        # optional: greedy new tokens
         "gradient": {"token": 7}},                            # optional: d logits[:, -1, token].sum() / d features
        {"id": "d1", "folder": ..., "sae": NAME, "direct": {"head": ["transformer.ln_f", "lm_head"],
         "features": [0, 5], "k": 3}}                          # decoder rows through the head
      ]
    }

TENSOR and PATCH are reference.py's. Stages: ':featuresPre' (hook_sae_acts_pre), ':features'
(hook_sae_acts_post, after the edit), ':reconstruction' (hook_sae_recons, the decoded edited
features, heads merged) and ':error' (hook_sae_error, heads merged).

Results: OUT/index.json = {"saes": {NAME: folder}, "cases": {id: {"output": logits VALUE,
"captures": {name: VALUE}} or, with "generate", {"newIds": [...]} (one full forward per token,
no cache, argmax, the hooks at every step)}}. With "gradient", captures also hold
'<read>:features.grad', the gradient of the logit with respect to each SAE's (edited) features.
A "direct" case answers {"top": [[ids]...], "bottom": [[ids]...]} per feature: the head's modules
applied in order to W_dec's rows, its k largest and smallest logits (largest first, smallest
first).
"""

import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from llm_reference import load as load_model  # noqa: E402
from reference import Writer, apply_patch, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402
import sae_fixtures  # noqa: E402
import sae_reference  # noqa: E402

INPUT_SUFFIX = ":input"
STAGES = (":featuresPre", ":features", ":reconstruction", ":error")


# ---------------------------------------------------------------- SAE files


def write_saes(root: Path, specs: Dict[str, Dict[str, Any]]) -> Dict[str, str]:
    """Each SAE folder as SAELens saves it (sae_fixtures.py's config and seeded weights)."""
    folders = {}
    for name, spec in specs.items():
        arch = spec["arch"]
        fields = dict(spec.get("fields") or {})
        if spec.get("hook_name_out"):
            fields["metadata"] = {"hook_name_out": spec["hook_name_out"], "hook_head_index_out": None}
        if spec.get("d_out"):
            fields["d_out"] = spec["d_out"]
        cfg = sae_fixtures.cfg6(arch, spec["hook_name"], d_in=spec["d_in"], **fields)
        tensors = sae_fixtures.weights(arch, spec["seed"], d_in=spec["d_in"], d_sae=cfg["d_sae"], d_out=spec.get("d_out"))
        folders[name] = str(sae_fixtures.saelens_folder(root / name, cfg, tensors))
    return folders


# ---------------------------------------------------------------- hooks


def first_tensor_index(items: List[Any]) -> int:
    return next(i for i, item in enumerate(items) if isinstance(item, torch.Tensor))


def hook_value(module: nn.Module, pre: bool, fn: Callable[[torch.Tensor], torch.Tensor]):
    """Replaces the module's first tensor input (pre) or output by fn(it); returns the handle."""
    if pre:

        def pre_hook(_m: nn.Module, args: tuple, kwargs: dict):
            if any(isinstance(a, torch.Tensor) for a in args):
                items = list(args)
                i = first_tensor_index(items)
                items[i] = fn(items[i])
                return tuple(items), kwargs
            return args, {**kwargs, "hidden_states": fn(kwargs["hidden_states"])}

        return module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def post_hook(_m: nn.Module, _args: tuple, output: Any):
        if isinstance(output, torch.Tensor):
            return fn(output)
        items = list(output)
        i = first_tensor_index(items)
        items[i] = fn(items[i])
        return type(output)(items)

    return module.register_forward_hook(post_hook)


def point(model: nn.Module, name: str):
    """(module, pre) of a torchscope hook point: '<path>' its output, '<path>:input' its input."""
    pre = name.endswith(INPUT_SUFFIX)
    return model.get_submodule(name[: -len(INPUT_SUFFIX)] if pre else name), pre


class Splice:
    """One SAE in the forward: encodes at its read point, replaces its write point's value."""

    def __init__(self, sae: sae_reference.Sae, spec: Dict[str, Any], records: Dict[str, torch.Tensor]):
        self.sae = sae
        self.read = spec["read"]
        self.write = spec["write"]
        self.error_term = spec["errorTerm"]
        self.heads = spec.get("heads")
        self.resid_mid = spec.get("residMid")
        edit = spec.get("edit")
        if edit is not None and edit.get("value") is not None:
            edit = {**edit, "_value": read_tensor(edit["value"])}
        self.edit = edit
        self.records = records
        self.x: Optional[torch.Tensor] = None
        self.features: Optional[torch.Tensor] = None
        self.track_gradient = False
        self.stats: Optional[sae_reference.Stats] = None
        self.delta: Optional[torch.Tensor] = None

    def record(self, stage: str, value: torch.Tensor) -> None:
        self.records[self.read + stage] = value.detach().clone()

    def sae_input(self, value: torch.Tensor) -> torch.Tensor:
        # TransformerLens's hook_z: [..., heads, d_head].
        return value.unflatten(-1, (self.heads, -1)) if self.heads else value

    def merged(self, value: torch.Tensor) -> torch.Tensor:
        return value.flatten(-2) if self.heads else value

    def encode(self, value: torch.Tensor) -> None:
        self.x = self.sae_input(value)
        self.stats = sae_reference.Stats()
        pre, features = sae_reference.encode(self.sae, self.x, self.stats)
        self.record(":featuresPre", pre)
        if self.edit is not None:
            features = apply_patch(features, self.edit)
        self.record(":features", features)
        if self.track_gradient:
            features = features.detach().requires_grad_(True)
        self.features = features

    def output(self, target: torch.Tensor) -> torch.Tensor:
        y = sae_reference.decode(self.sae, self.features, self.stats)
        if self.sae.arch == "skip_transcoder":
            y = y + sae_reference.skip_term(self.sae, self.x)
        y = self.merged(y)
        self.record(":reconstruction", y)
        if self.error_term:
            with torch.no_grad():
                clean = self.merged(sae_reference.forward(self.sae, self.x))
            error = target - clean
            self.record(":error", error)
            y = y + error
        return y.to(target.dtype)

    def install(self, model: nn.Module) -> list:
        # resid_mid is the block's first residual addition; Python reaches it through the MLP norm's input.
        read_module, read_pre = point(model, self.resid_mid["norm"] if self.resid_mid else self.read)
        if self.read == self.write:

            def replace(value: torch.Tensor) -> torch.Tensor:
                self.encode(value)
                out = self.output(value)
                self.delta = out - value
                return out

            handles = [hook_value(read_module, read_pre, replace)]
            if self.resid_mid:
                # The rest of the residual stream sees the SAE's output too (see the docstring).
                mlp = model.get_submodule(self.resid_mid["mlp"])
                handles.append(hook_value(mlp, False, lambda out: out + self.delta))
            return handles

        def read(value: torch.Tensor) -> torch.Tensor:
            self.encode(value)
            return value

        write_module, write_pre = point(model, self.write)
        return [hook_value(read_module, read_pre, read), hook_value(write_module, write_pre, self.output)]


# ---------------------------------------------------------------- cases


def direct(case: Dict[str, Any], folders: Dict[str, str]) -> Dict[str, Any]:
    model = load_model(case["folder"])
    spec = case["direct"]
    rows = sae_reference.cached(folders[case["sae"]], None).t["W_dec"][spec["features"]]
    with torch.no_grad():
        for name in spec["head"]:
            rows = model.get_submodule(name)(rows)
    k = spec["k"]
    return {"top": rows.topk(k, -1).indices.tolist(), "bottom": (-rows).topk(k, -1).indices.tolist()}


def run_case(case: Dict[str, Any], folders: Dict[str, str], writer: Writer) -> Dict[str, Any]:
    if "direct" in case:
        return direct(case, folders)
    model = load_model(case["folder"])
    ids = read_tensor(case["ids"])
    records: Dict[str, torch.Tensor] = {}
    splices = [Splice(sae_reference.cached(folders[s["sae"]], None), s, records) for s in case.get("splices", [])]
    handles = [h for s in splices for h in s.install(model)]
    if "gradient" in case:
        for splice in splices:
            splice.track_gradient = True
        try:
            with torch.enable_grad():
                logits = model(input_ids=ids, use_cache=False).logits
                logits[:, -1, case["gradient"]["token"]].sum().backward()
        finally:
            for h in handles:
                h.remove()
            model.zero_grad(set_to_none=True)
        for splice in splices:
            records[splice.read + ":features.grad"] = splice.features.grad
        return {"output": writer.tensor(logits.detach()), "captures": {name: writer.tensor(records[name]) for name in case.get("capture", [])}}
    try:
        with torch.no_grad():
            if "generate" in case:
                sequence = ids[0].tolist()
                for _ in range(case["generate"]):
                    logits = model(input_ids=torch.tensor([sequence]), use_cache=False).logits
                    sequence.append(int(logits[0, -1].argmax()))
                return {"newIds": sequence[ids.shape[1]:]}
            logits = model(input_ids=ids, use_cache=False).logits
    finally:
        for h in handles:
            h.remove()
    captures = {}
    for name in case.get("capture", []):
        if name not in records:
            raise KeyError(f"no value recorded at {name!r} (recorded: {sorted(records)})")
        captures[name] = writer.tensor(records[name])
    return {"output": writer.tensor(logits), "captures": captures}


def main() -> int:
    got = read_request(__doc__)
    if got is None:
        return 2
    request, out = got
    folders = write_saes(out / "saes", request.get("saes", {}))
    writer = Writer(out)
    results = run_cases(request["cases"], lambda case, _i: run_case(case, folders, writer))
    write_index(out, {"saes": folders, "cases": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
