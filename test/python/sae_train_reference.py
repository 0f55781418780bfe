#!/usr/bin/env python3
"""Independent reference for torch.sae.train (test/sae-train.test.ts): a plain PyTorch training
loop written to SAELens v6.18.0's definitions (sae_lens/saes/{sae,standard_sae,topk_sae,
batchtopk_sae,jumprelu_sae}.py, sae_lens/training/{sae_trainer,optim,activation_scaler}.py).
SAELens itself is not imported (nor installable here); torch's own Adam, clip_grad_norm_ and
lr_scheduler classes are, as SAELens uses them.

    python test/python/sae_train_reference.py REQUEST.json

The request:

    {
      "out": "/abs/dir",
      "cases": [
        {"id": "c1", "op": "train",
         "architecture": "standard" | "topk" | "batchtopk" | "jumprelu", "d_in": 32, "d_sae": 64,
         "sae": {...},        # the training config's fields as SAELens names them: apply_b_dec_to_input,
                              # decoder_init_norm, normalize_activations, l1_coefficient, lp_norm,
                              # l1_warm_up_steps, k, aux_loss_coefficient, rescale_acts_by_decoder_norm,
                              # topk_threshold_lr, jumprelu_init_threshold, jumprelu_bandwidth,
                              # jumprelu_sparsity_loss_mode, l0_coefficient, l0_warm_up_steps,
                              # pre_act_loss_coefficient, jumprelu_tanh_scale (absent: SAELens's default)
         "trainer": {...},    # lr, adam_beta1, adam_beta2, lr_scheduler_name, lr_warm_up_steps,
                              # lr_decay_steps, lr_end, n_restart_cycles, total_training_steps,
                              # dead_feature_window, feature_sampling_window, n_batches_for_norm_estimate
         "seed": 42,          # torch.manual_seed before the SAE is built (the initialisation)
         "init": {"W_enc": TENSOR, "W_dec": ..., "b_enc": ..., "b_dec": ..., "threshold": ...} | null,
         "batches": TENSOR,   # [batches, tokens, d_in]: the norm estimate's first, then one per step
         "steps": 50,         # training steps run
         "snapshots": [3]},   # also the saved form after these steps
        {"id": "c2", "op": "saved", "folder": "/abs/sae", "x": TENSOR}
      ]
    }

Results (OUT/index.json, TENSOR and VALUE as reference.py writes them):
  train -> {"params": {name: VALUE} (W_enc, W_dec, b_enc, b_dec, log_threshold: the parameters as
            trained), "saved": {"tensors": {...}, "sparsity": VALUE} (save_inference_model's state
            dict after fit() folded the activation scale, and sparsity.safetensors' log10 feature
            sparsity), "scaling_factor", "topk_threshold", "steps": [{"lr", "loss", "losses",
            "l0", "dead"} per step: the learning rate the step used, its losses, its L0 and the dead
            latents after it], "snapshots": {"3": {"tensors", "sparsity"}}}. A snapshot is what
            save_inference_model would write at that step with the activation scale folded into a
            copy (SAELens's own checkpoints keep the scale apart, in activation_scaler.json).
  saved -> {"cfg": cfg.json as written, "problems": [what SAELens's SAE.load_from_disk would
            refuse], "features": the reference encoder's features of x (sae_reference.py)}
"""

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim import Adam
from torch.optim import lr_scheduler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from reference import Writer, read_tensor  # noqa: E402
from refio import read_request, run_cases, write_index  # noqa: E402
import sae_reference  # noqa: E402

# The training configs' defaults (StandardTrainingSAEConfig, TopKTrainingSAEConfig,
# BatchTopKTrainingSAEConfig, JumpReLUTrainingSAEConfig, TrainingSAEConfig, SAEConfig).
SAE_DEFAULTS = {
    "apply_b_dec_to_input": True,
    "decoder_init_norm": 0.1,
    "normalize_activations": "none",
    "l1_coefficient": 1.0,
    "lp_norm": 1.0,
    "l1_warm_up_steps": 0,
    "k": 100,
    "aux_loss_coefficient": 1.0,
    "rescale_acts_by_decoder_norm": True,
    "topk_threshold_lr": 0.01,
    "jumprelu_init_threshold": 0.01,
    "jumprelu_bandwidth": 0.05,
    "jumprelu_sparsity_loss_mode": "step",
    "l0_coefficient": 1.0,
    "l0_warm_up_steps": 0,
    "pre_act_loss_coefficient": None,
    "jumprelu_tanh_scale": 4.0,
}
# LanguageModelSAERunnerConfig's (lr_end: lr / 10 when None).
TRAINER_DEFAULTS = {
    "lr": 3e-4,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "lr_scheduler_name": "constant",
    "lr_warm_up_steps": 0,
    "lr_decay_steps": 0,
    "lr_end": None,
    "n_restart_cycles": 1,
    "dead_feature_window": 1000,
    "feature_sampling_window": 2000,
    "n_batches_for_norm_estimate": 1000,
}
# cfg.json: what SAE.load_from_disk needs (SAEConfig's fields without defaults, the registry's names).
INFERENCE_ARCHITECTURES = {"standard", "gated", "topk", "jumprelu", "transcoder", "skip_transcoder", "jumprelu_transcoder"}
DTYPE_MAP = {"float32", "float64", "float16", "bfloat16", "torch.float32", "torch.float64", "torch.float16", "torch.bfloat16"}


# ---------------------------------------------------------------- activation functions


def rectangle(x):
    return ((x > -0.5) & (x < 0.5)).to(x)


class Step(torch.autograd.Function):
    """jumprelu_sae.Step: 1[x > threshold], the threshold's gradient through a rectangle kernel."""

    @staticmethod
    def forward(x, threshold, bandwidth):
        return (x > threshold).to(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, threshold, bandwidth = inputs
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        threshold_grad = torch.sum(-(1.0 / bandwidth) * rectangle((x - threshold) / bandwidth) * grad_output, dim=0)
        return None, threshold_grad, None


class JumpReLU(torch.autograd.Function):
    """jumprelu_sae.JumpReLU: x * 1[x > threshold]; no straight-through estimate for x."""

    @staticmethod
    def forward(x, threshold, bandwidth):
        return (x * (x > threshold)).to(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, threshold, bandwidth = inputs
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        x_grad = (x > threshold) * grad_output
        threshold_grad = torch.sum(-(threshold / bandwidth) * rectangle((x - threshold) / bandwidth) * grad_output, dim=0)
        return x_grad, threshold_grad, None


def topk_activation(x, k):
    values, indices = torch.topk(x, k=k, dim=-1, sorted=False)
    values = values.relu()
    result = torch.zeros_like(x)
    result.scatter_(-1, indices, values)
    return result


def batch_topk_activation(x, k):
    acts = x.relu()
    flat = acts.flatten()
    num_samples = acts.shape[:-1].numel()
    top = torch.topk(flat, int(k * num_samples), dim=-1)
    return torch.zeros_like(flat).scatter(-1, top.indices, top.values).reshape(acts.shape)


# ---------------------------------------------------------------- the training SAE


class TrainingSae(nn.Module):
    """The four training classes in one: parameters registered in their order (b_dec, W_dec,
    W_enc, b_enc, log_threshold), as clip_grad_norm_ walks them."""

    def __init__(self, arch, d_in, d_sae, cfg, init):
        super().__init__()
        self.arch, self.d_in, self.d_sae, self.cfg = arch, d_in, d_sae, cfg
        # SAE.initialize_weights, then TrainingSAE's decoder_init_norm, then the b_enc of each class.
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        w_dec = torch.empty(d_sae, d_in)
        nn.init.kaiming_uniform_(w_dec)
        self.W_dec = nn.Parameter(w_dec)
        self.W_enc = nn.Parameter(self.W_dec.data.T.clone().detach().contiguous())
        if cfg["decoder_init_norm"] is not None:
            with torch.no_grad():
                self.W_dec.data /= self.W_dec.norm(dim=-1, keepdim=True)
                self.W_dec.data *= cfg["decoder_init_norm"]
            self.W_enc.data = self.W_dec.data.T.clone().detach().contiguous()
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        if arch == "jumprelu":
            self.log_threshold = nn.Parameter(torch.ones(d_sae) * np.log(cfg["jumprelu_init_threshold"]))
        if arch == "batchtopk":
            self.register_buffer("topk_threshold", torch.tensor(0.0, dtype=torch.double))
        if init is not None:  # load_state_dict of these (threshold as process_state_dict_for_loading)
            with torch.no_grad():
                for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
                    getattr(self, name).copy_(init[name])
                if arch == "jumprelu" and "threshold" in init:
                    self.log_threshold.copy_(torch.log(init["threshold"]).detach().contiguous())

    @property
    def threshold(self):
        return torch.exp(self.log_threshold)

    @property
    def rescales(self):
        return self.arch in ("topk", "batchtopk") and self.cfg["rescale_acts_by_decoder_norm"]

    def process_sae_in(self, x):
        return x - self.b_dec * self.cfg["apply_b_dec_to_input"]

    def encode_with_hidden_pre(self, x):
        sae_in = self.process_sae_in(x)
        hidden_pre = sae_in @ self.W_enc + self.b_enc
        if self.arch == "standard":
            return torch.relu(hidden_pre), hidden_pre
        if self.arch == "jumprelu":
            return JumpReLU.apply(hidden_pre, self.threshold, self.cfg["jumprelu_bandwidth"]), hidden_pre
        if self.rescales:
            hidden_pre = hidden_pre * self.W_dec.norm(dim=-1)
        if self.arch == "topk":
            return topk_activation(hidden_pre, self.cfg["k"]), hidden_pre
        return batch_topk_activation(hidden_pre, self.cfg["k"]), hidden_pre

    def decode(self, feature_acts):
        if self.rescales:
            feature_acts = feature_acts * (1 / self.W_dec.norm(dim=-1))
        return feature_acts @ self.W_dec + self.b_dec

    def aux_losses(self, sae_in, feature_acts, hidden_pre, sae_out, dead, coefficients):
        if self.arch == "standard":
            weighted = feature_acts * self.W_dec.norm(dim=1)
            sparsity = weighted.norm(p=self.cfg["lp_norm"], dim=-1)
            return {"l1_loss": (coefficients["l1"] * sparsity).mean()}
        if self.arch == "jumprelu":
            threshold = self.threshold
            W_dec_norm = self.W_dec.norm(dim=1)
            if self.cfg["jumprelu_sparsity_loss_mode"] == "step":
                l0 = torch.sum(Step.apply(hidden_pre, threshold, self.cfg["jumprelu_bandwidth"]), dim=-1)
                l0_loss = (coefficients["l0"] * l0).mean()
            else:
                per_item = torch.tanh(self.cfg["jumprelu_tanh_scale"] * feature_acts * W_dec_norm).sum(dim=-1)
                l0_loss = (coefficients["l0"] * per_item).mean()
            losses = {"l0_loss": l0_loss}
            if self.cfg["pre_act_loss_coefficient"] is not None:
                if not dead.any():
                    losses["pre_act_loss"] = hidden_pre.new_tensor(0.0)
                else:
                    per_item = ((threshold - hidden_pre).relu() * dead * W_dec_norm).sum(dim=-1)
                    losses["pre_act_loss"] = self.cfg["pre_act_loss_coefficient"] * per_item.mean()
            return losses
        # topk, batchtopk: calculate_topk_aux_loss
        num_dead = int(dead.sum())
        if num_dead == 0:
            return {"auxiliary_reconstruction_loss": sae_out.new_tensor(0.0)}
        residual = (sae_in - sae_out).detach()
        k_aux = sae_in.shape[-1] // 2
        scale = min(num_dead / k_aux, 1.0)
        k_aux = min(k_aux, num_dead)
        latents = torch.where(dead[None], hidden_pre, -torch.inf)
        top = latents.topk(k_aux, sorted=False)
        acts = torch.zeros_like(hidden_pre)
        acts.scatter_(-1, top.indices, top.values)
        recons = self.decode(acts)
        loss = (recons - residual).pow(2).sum(dim=-1).mean()
        return {"auxiliary_reconstruction_loss": self.cfg["aux_loss_coefficient"] * scale * loss}

    def training_forward_pass(self, sae_in, dead, coefficients):
        feature_acts, hidden_pre = self.encode_with_hidden_pre(sae_in)
        sae_out = self.decode(feature_acts)
        mse_loss = torch.nn.functional.mse_loss(sae_out, sae_in, reduction="none").sum(dim=-1).mean()
        aux = self.aux_losses(sae_in, feature_acts, hidden_pre, sae_out, dead, coefficients)
        loss = mse_loss
        for value in aux.values():
            loss = loss + value
        if self.arch == "batchtopk":
            self.update_topk_threshold(feature_acts)
        return feature_acts, sae_out, loss, {"mse_loss": mse_loss, **aux}

    @torch.no_grad()
    def update_topk_threshold(self, acts):
        positive = acts > 0
        lr = self.cfg["topk_threshold_lr"]
        if positive.any():
            smallest = acts[positive].min().to(self.topk_threshold.dtype)
            self.topk_threshold = (1 - lr) * self.topk_threshold + lr * smallest

    @torch.no_grad()
    def inference_state_dict(self, scaling_factor):
        """save_inference_model's state dict, the activation scale folded in first."""
        state = {name: t.detach().clone() for name, t in self.state_dict().items()}
        if scaling_factor is not None:  # fold_activation_norm_scaling_factor
            state["W_enc"] *= scaling_factor
            state["W_dec"] /= scaling_factor
            state["b_dec"] /= scaling_factor
        if "log_threshold" in state:  # JumpReLUTrainingSAE.process_state_dict_for_saving
            state["threshold"] = torch.exp(state.pop("log_threshold")).detach().contiguous()
        if self.rescales:  # _fold_norm_topk
            W_dec_norm = state["W_dec"].norm(dim=-1)
            state["b_enc"] = state["b_enc"] * W_dec_norm
            W_dec_norms = W_dec_norm.unsqueeze(1)
            state["W_dec"] = state["W_dec"] / W_dec_norms
            state["W_enc"] = state["W_enc"] * W_dec_norms.T
        if self.arch == "batchtopk":  # BatchTopKTrainingSAE: saved as jumprelu
            state["threshold"] = torch.ones_like(state["b_enc"]) * state.pop("topk_threshold").item()
        return state


# ---------------------------------------------------------------- schedules (training/optim.py)


def get_lr_scheduler(name, optimizer, training_steps, lr, warm_up_steps, decay_steps, lr_end, num_cycles):
    base_steps = training_steps - warm_up_steps - decay_steps
    if name == "constant":
        main = lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda steps: 1.0)
    elif name == "cosineannealing":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=base_steps, eta_min=lr_end)
    elif name == "cosineannealingwarmrestarts":
        main = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=base_steps // num_cycles, eta_min=lr_end)
    else:
        raise ValueError(f"Unsupported scheduler: {name}")
    if name == "constant":
        lr_end = lr
    schedulers, milestones = [], []
    if warm_up_steps > 0:
        schedulers.append(lr_scheduler.LinearLR(optimizer, start_factor=1 / warm_up_steps, end_factor=1.0, total_iters=warm_up_steps - 1))
        milestones.append(warm_up_steps)
    schedulers.append(main)
    if decay_steps > 0:
        if lr_end == 0.0:
            raise ValueError("Cannot have decay_steps with lr_end=0.0")
        schedulers.append(lr_scheduler.LinearLR(optimizer, start_factor=lr_end / lr, end_factor=0.0, total_iters=decay_steps))
        milestones.append(training_steps - decay_steps)
    return lr_scheduler.SequentialLR(schedulers=schedulers, optimizer=optimizer, milestones=milestones)


class CoefficientScheduler:
    def __init__(self, warm_up_steps, final_value):
        self.warm_up_steps = warm_up_steps
        self.final_value = final_value
        self.current_step = 0
        self.current_value = 0.0 if warm_up_steps > 0 else final_value

    def step(self):
        if self.current_step < self.warm_up_steps:
            self.current_value = self.final_value * ((self.current_step + 1) / self.warm_up_steps)
        else:
            self.current_value = self.final_value
        self.current_step += 1


# ---------------------------------------------------------------- the trainer (SAETrainer)


class Trainer:
    """SAETrainer's state and _train_step (the benchmark, scripts/bench/sae_train_reference.py, runs it too)."""

    def __init__(self, arch, d_in, d_sae, sae_cfg, trainer_cfg, init=None, seed=42):
        self.cfg = {**SAE_DEFAULTS, **sae_cfg}
        self.tcfg = {**TRAINER_DEFAULTS, **trainer_cfg}
        if self.tcfg["lr_end"] is None:
            self.tcfg["lr_end"] = self.tcfg["lr"] / 10
        torch.manual_seed(seed)
        self.sae = TrainingSae(arch, d_in, d_sae, self.cfg, init)
        t = self.tcfg
        self.optimizer = Adam(self.sae.parameters(), lr=t["lr"], betas=(t["adam_beta1"], t["adam_beta2"]))
        self.scheduler = get_lr_scheduler(
            t["lr_scheduler_name"], self.optimizer, t["total_training_steps"], t["lr"], t["lr_warm_up_steps"],
            t["lr_decay_steps"], t["lr_end"], t["n_restart_cycles"],
        )
        self.coefficients = {}
        if arch == "standard":
            self.coefficients["l1"] = CoefficientScheduler(self.cfg["l1_warm_up_steps"], self.cfg["l1_coefficient"])
        if arch == "jumprelu":
            self.coefficients["l0"] = CoefficientScheduler(self.cfg["l0_warm_up_steps"], self.cfg["l0_coefficient"])
        self.scaling_factor = None
        self.act_freq_scores = torch.zeros(d_sae)
        self.n_forward_passes_since_fired = torch.zeros(d_sae)
        self.n_frac_active_samples = 0
        self.n_training_steps = 0

    def estimate_scaling_factor(self, batches):
        """ActivationScaler.estimate_scaling_factor over `batches`."""
        norms = [batch.norm(dim=-1).mean().item() for batch in batches]
        self.scaling_factor = (self.sae.d_in**0.5) / statistics.mean(norms)

    def dead(self):
        return (self.n_forward_passes_since_fired > self.tcfg["dead_feature_window"]).bool()

    def step(self, batch):
        """fit()'s scaling, then _train_step; returns the learning rate used, the losses and the features."""
        sae_in = batch if self.scaling_factor is None else batch * self.scaling_factor
        if (self.n_training_steps + 1) % self.tcfg["feature_sampling_window"] == 0:
            self.act_freq_scores = torch.zeros(self.sae.d_sae)
            self.n_frac_active_samples = 0
        lr = self.optimizer.param_groups[0]["lr"]
        coefficients = {name: s.current_value for name, s in self.coefficients.items()}
        feature_acts, _, loss, losses = self.sae.training_forward_pass(sae_in, self.dead(), coefficients)
        with torch.no_grad():
            firing = feature_acts.bool().float()
            did_fire = firing.sum(-2).bool()
            self.n_forward_passes_since_fired += 1
            self.n_forward_passes_since_fired[did_fire] = 0
            self.act_freq_scores += firing.sum(0)
            self.n_frac_active_samples += sae_in.shape[0]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.sae.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.scheduler.step()
        for s in self.coefficients.values():
            s.step()
        self.n_training_steps += 1
        return lr, loss, losses, firing

    def sparsity(self):
        return torch.log10(self.act_freq_scores / self.n_frac_active_samples + 1e-10).detach().cpu()


def train(case, writer):
    arch, d_in = case["architecture"], case["d_in"]
    init = {name: read_tensor(spec) for name, spec in case["init"].items()} if case.get("init") else None
    trainer_cfg = {**case.get("trainer", {})}
    trainer = Trainer(arch, d_in, case["d_sae"], case.get("sae", {}), trainer_cfg, init, case.get("seed", 42))
    batches = list(read_tensor(case["batches"]))
    if trainer.cfg["normalize_activations"] == "expected_average_only_in":
        estimate = trainer.tcfg["n_batches_for_norm_estimate"]
        trainer.estimate_scaling_factor(batches[:estimate])
        batches = batches[estimate:]
    steps, snapshots = [], {}
    for batch in batches[: case["steps"]]:
        lr, loss, losses, firing = trainer.step(batch)
        steps.append({
            "lr": lr,
            "loss": loss.item(),
            "losses": {name: value.item() for name, value in losses.items()},
            "l0": firing.sum(-1).mean().item(),
            "dead": int(trainer.dead().sum()),
        })
        if trainer.n_training_steps in case.get("snapshots", []):
            state = trainer.sae.inference_state_dict(trainer.scaling_factor)
            snapshots[str(trainer.n_training_steps)] = {
                "tensors": {name: writer.tensor(t) for name, t in state.items()},
                "sparsity": writer.tensor(trainer.sparsity()),
            }
    sae = trainer.sae
    state = sae.inference_state_dict(trainer.scaling_factor)
    return {
        "params": {name: writer.tensor(p.detach()) for name, p in sae.named_parameters()},
        "saved": {"tensors": {name: writer.tensor(t) for name, t in state.items()}, "sparsity": writer.tensor(trainer.sparsity())},
        "scaling_factor": trainer.scaling_factor,
        "topk_threshold": sae.topk_threshold.item() if arch == "batchtopk" else None,
        "steps": steps,
        "snapshots": snapshots,
    }


# ---------------------------------------------------------------- a saved folder


def saved(case, writer):
    folder = Path(case["folder"])
    cfg = json.loads((folder / "cfg.json").read_text())
    problems = []
    # SAE.load_from_disk -> SAEConfig.from_dict: the architecture's class, its required fields,
    # a dtype DTYPE_MAP knows, metadata as a dict (and 6.x so no legacy conversion runs).
    if cfg.get("architecture") not in INFERENCE_ARCHITECTURES:
        problems.append(f"architecture {cfg.get('architecture')!r}")
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int):
            problems.append(f"{key} {cfg.get(key)!r}")
    if cfg.get("dtype") not in DTYPE_MAP:
        problems.append(f"dtype {cfg.get('dtype')!r}")
    if not isinstance(cfg.get("metadata"), dict):
        problems.append("metadata")
    elif sae_reference.is_pre_6(cfg):
        problems.append("sae_lens_version: read as a pre-6.0 config")
    sae = sae_reference.load(str(folder))
    with torch.no_grad():
        _, features = sae_reference.encode(sae, read_tensor(case["x"]), sae_reference.Stats())
    return {"cfg": cfg, "problems": problems, "features": writer.tensor(features)}


def main() -> int:
    request = read_request(__doc__)
    if request is None:
        return 2
    req, out = request
    writer = Writer(out)
    ops = {"train": train, "saved": saved}
    results = run_cases(req["cases"], lambda case, _i: ops[case["op"]](case, writer))
    write_index(out, {"cases": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
