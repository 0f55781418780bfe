"""A zoo of small TorchScript models that torchscope did not design, for its tests.

    .venv/bin/python scripts/zoo [--out DIR] [--only NAME[,NAME...]] [--force] [--list]

writes DIR/<name>.pt for every entry below and DIR/manifest.json (default DIR:
<repo>/models/zoo). An entry whose file is up to date (same definition hash,
same torch/transformers versions, file sha256 as recorded) is skipped; --force
re-exports. Each export verifies itself before the file is written: the
TorchScript module must reproduce the eager module (max abs diff <= 1e-5,
exact for integer outputs) on the example inputs, on a second seed and, where
the architecture allows, on inputs of another batch size / sequence length /
image size (so a trace that baked in shapes is caught); the saved file is
reloaded and checked again, its state_dict must load strictly into a fresh
eager build, every capture/patch path must fire as a forward hook (multi_call
ones at least twice) and zeroing the patch path must change the output.

Entries (name: mode, what), by file:
transformers_models.py
  gpt2-lm                       trace   HF GPT2LMHeadModel (2 layers, n_embd 32) behind a wrapper returning (logits,)
  distilbert                    trace   HF DistilBertModel (2 layers, dim 32), padded attention mask
  roberta                       trace   HF RobertaModel (2 layers, hidden 32) + pooler, padded attention mask
  vit                           trace   HF ViTModel (32x32 images, patch 8, hidden 32, 2 layers) + pooler
cnn_models.py
  mobilenet-v3                  script  MobileNetV3-style CNN: depthwise convs, inverted residuals, SE + Hardsigmoid,
                                        Hardswish (one shared instance called 3 times), calibrated BatchNorm
  efficientnet                  trace   EfficientNet-style CNN: MBConv, SiLU, SE, calibrated BatchNorm
  convnext                      script  ConvNeXt-style CNN: 7x7 depthwise, channels-last LayerNorm, Linear, GELU, layer scale
  unet                          trace   small UNet: skip connections (torch.cat), ConvTranspose2d, shared MaxPool2d
sequence_models.py
  lstm-scripted / lstm-traced   script/trace  Embedding + 2-layer LSTM + Linear heads (same class)
  gru-scripted / gru-traced     script/trace  Embedding + 2-layer GRU + Linear heads (same class)
  transformer-encoder-scripted / -traced   nn.TransformerEncoder (2 layers, d_model 32) with key padding mask
io_models.py
  dict-io-scripted / -traced    script/trace(strict=False)  Dict[str, Tensor] in and out; a submodule returning a
                                        dict whose value the caller then modifies in place
  list-io                       script  List[Tensor] in and out; a submodule returning a list, mutated in place
  mlp-float64                   script  Conv1d + MLP in float64
  mlp-float16                   trace   the same architecture in float16
  cnn-bfloat16                  trace   small CNN + Linear head in bfloat16
call_models.py
  loop-scripted / loop-traced   script/trace  a shared block called twice in straight-line code and in a
                                        `for _ in range(self.steps)` loop (prim::Loop when scripted, unrolled when traced)
  overload-scripted             script  a submodule with an overloaded forward (forward__0 / forward__1) and an
                                        @torch.jit.export method the caller also calls; tuple input

entry.py defines Entry and the seeded weights and inputs; export.py converts, verifies and
saves one entry (values.py: comparing nested outputs); manifest.py records what was written;
cli.py is the command line (__main__.py runs it).

manifest.json: {"version": 1, "torch", "transformers", "models": [{"name", "file", "mode",
"family", "dtype", "capture", "multiCall", "singleCalls", "patch", "notes", "sha256", "definition_hash",
"bytes", "weights_sha256", "calls", "eagerOutputs", "torchscriptReturns"}]}; the last three
give, per capture/patch path, the eager forward-hook call count on inputs(0), the structure an
eager hook sees, and the return type of each forward-like method TorchScript compiled for it
(forward, forward1.. for repeated traced calls, forward__0.. for overloads). They differ:
a trace drops unused outputs and flattens nested tuples and dicts.

As a package (for test/python/zoo_reference.py; scripts/ on sys.path):

    import zoo
    e = zoo.ENTRIES["gpt2-lm"]
    model = e.build()          # fresh seeded eager module in eval mode, same weights every call
    args = e.inputs(0)         # forward's positional inputs for a seed
    e.mode, e.capture, e.multi_call, e.patch, e.family, e.dtype, e.notes

Output is reproducible for the same torch/transformers versions and checkout path:
weights are seeded, PYTHONHASHSEED is pinned (the CLI re-executes itself) and each
entry is exported in a fresh fork so TorchScript's type-name mangling does not depend
on what else was exported in the run. TorchScript names the classes
__torch__.zoo.<file>.<class>.
"""

from collections import OrderedDict

from . import call_models, cnn_models, io_models, sequence_models, transformers_models
from .entry import Entry

_ENTRY_LIST = [
    *transformers_models.ENTRIES,
    *cnn_models.ENTRIES,
    *sequence_models.ENTRIES,
    *io_models.ENTRIES,
    *call_models.ENTRIES,
]
ENTRIES: "OrderedDict[str, Entry]" = OrderedDict((e.name, e) for e in _ENTRY_LIST)
assert len(ENTRIES) == len(_ENTRY_LIST), "duplicate entry names"

__all__ = ["ENTRIES", "Entry"]
