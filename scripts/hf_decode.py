"""A causal LM's cached decoding step, traced beside the full model by scripts/hf_export.py.

The step is the Hugging Face model itself (so hook points keep their module paths) with forward
replaced, for the trace, by one taking `input_ids` [batch, new] and each layer's past keys and
values [batch, kv heads, past, head dim], and returning the logits of the new positions followed
by each layer's keys and values over past + new. torch.generate prefills through it with an empty
past and then decodes one token per step. The past is a plain (unwindowed) DynamicCache: sliding
windows come from the masks, as in the full forward, so every family computes what its full
forward computes. check() runs the trace chained on itself (prefill, then steps) against the eager
full forward, so a trace that baked in a length is refused, not written.
"""

import inspect
import warnings
from typing import Any, Dict, List, Tuple

import torch
import torch.nn as nn

# The trace's example: batch 2 (see hf_export.TRACE_SHAPE), a past of 5, 2 new tokens.
TRACE_BATCH = 2
TRACE_PAST = 5
TRACE_NEW = 2
# Each check: (batch, prompt length, steps of one token after it).
CHECK_RUNS = ((1, 5, 3), (3, 13, 2), (2, 1, 4))
TOLERANCE = 1e-5


class DecodeRefused(Exception):
    """Why the model gets no cached step (the message is for the user)."""


def flat(cache: Any) -> List[torch.Tensor]:
    """A DynamicCache's tensors: layer 0's keys, its values, layer 1's keys..."""
    out: List[torch.Tensor] = []
    for layer in cache.layers:
        out += [layer.keys, layer.values]
    return out


def cache_of(past: Tuple[torch.Tensor, ...]) -> Any:
    from transformers import DynamicCache

    # No config: every layer keeps its whole past (a sliding layer would drop it).
    return DynamicCache(ddp_cache_data=[(past[i], past[i + 1]) for i in range(0, len(past), 2)])


def step_names(layers: int) -> List[str]:
    return ["input_ids"] + [f"past_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def eager_past(model: nn.Module, ids: torch.Tensor) -> List[torch.Tensor]:
    """The keys and values of `ids` as the eager model caches them."""
    out = hf_forward(model)(model, input_ids=ids, past_key_values=cache_of(()), use_cache=True, return_dict=True)
    return flat(out.past_key_values)


def hf_forward(model: nn.Module) -> Any:
    """The forward of the model's Hugging Face class (a subclass may narrow it: logits alone, no cache)."""
    return next(c for c in type(model).__mro__ if c.__module__.startswith("transformers.")).forward


def trace_step(model: nn.Module) -> Tuple[torch.jit.ScriptModule, List[List[int]]]:
    """The traced step, and each past tensor's [heads, head dim]."""
    config = model.config
    layers = config.num_hidden_layers
    forward = hf_forward(model)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (TRACE_BATCH, TRACE_PAST + TRACE_NEW), generator=g)
    with torch.no_grad():
        past = eager_past(model, ids[:, :TRACE_PAST])
    if len(past) != 2 * layers:
        raise DecodeRefused(f"its cache holds {len(past)} tensors, not keys and values for each of {layers} layers")

    def step(input_ids: torch.Tensor, *past: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = forward(model, input_ids=input_ids, past_key_values=cache_of(past), use_cache=True, return_dict=True)
        return (out.logits, *flat(out.past_key_values))

    step.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in step_names(layers)]
    )
    model.forward = step
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            ts = torch.jit.trace(model, (ids[:, TRACE_PAST:], *past), strict=False, check_trace=False)
    except Exception as e:  # noqa: BLE001 - whatever the model's cache code does under trace
        raise DecodeRefused(f"tracing it with a key-value cache failed: {type(e).__name__}: {str(e).strip().splitlines()[-1]}") from e
    finally:
        del model.forward
    return ts, [[int(t.shape[1]), int(t.shape[3])] for t in past]


def check_step(ts: torch.jit.ScriptModule, model: nn.Module, shapes: List[List[int]]) -> Dict[str, Any]:
    """Chains the step on itself from an empty past and compares each step's logits with the
    eager full forward's at the same positions."""
    vocab = model.config.vocab_size
    worst = 0.0
    for i, (batch, prompt, steps) in enumerate(CHECK_RUNS):
        g = torch.Generator().manual_seed(100 + i)
        ids = torch.randint(0, vocab, (batch, prompt + steps), generator=g)
        with torch.no_grad():
            want = hf_forward(model)(model, input_ids=ids, use_cache=False, return_dict=True).logits
            past = [torch.zeros(batch, heads, 0, dim) for heads, dim in shapes]
            start = 0
            for end in [prompt] + list(range(prompt + 1, prompt + steps + 1)):
                try:
                    out = ts(ids[:, start:end], *past)
                except Exception as e:  # noqa: BLE001 - a trace that baked a shape
                    raise DecodeRefused(
                        f"the traced step fails at a past of {start} and {end - start} new tokens: {str(e).strip().splitlines()[-1]}"
                    ) from e
                logits, past = out[0], list(out[1:])
                expect = want[:, start:end]
                diff = (logits - expect).abs().max().item() if logits.shape == expect.shape else float("inf")
                bar = TOLERANCE * max(1.0, expect.abs().max().item())
                if not diff <= bar:
                    raise DecodeRefused(
                        f"the traced step differs from the full forward at a past of {start} and {end - start} new tokens "
                        f"by {diff:.3g} (bar {bar:.3g}): the model's cache code takes a branch or size the trace baked in"
                    )
                worst = max(worst, diff)
                start = end
    return {"inputs": len(CHECK_RUNS), "maxAbsDiff": worst}


def decode_step(model: nn.Module, check: bool) -> Tuple[torch.jit.ScriptModule, Dict[str, Any]]:
    """The traced step and its manifest entry (less the file name); DecodeRefused says why not."""
    if getattr(model.config, "num_hidden_layers", None) is None:
        raise DecodeRefused("its config gives no num_hidden_layers")
    ts, shapes = trace_step(model)
    return ts, {"past": shapes, "check": check_step(ts, model, shapes) if check else None}
