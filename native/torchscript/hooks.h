// Native forward hooks for TorchScript modules. TorchScript has no runtime hooks (they are
// compiled into the caller at script time), so a hook is built by rewriting the forward
// graph: calls to modules on the way to a requested layer are inlined, and after each call
// of the layer itself (a hook point; before the call for its ':input') the graph runs its
// hooks, by kind: replace the value whole (patching sweeps); patch it (later uses see the
// patched value); tap it for its gradient (record the value itself, later uses see a copy);
// then record it: a deep copy when captured, a count otherwise.
// Fused kernels that would skip a hooked module (a TransformerEncoderLayer's fast path) are
// turned off in the modules that are hooked or hold a hooked module, as Python does while
// hooks are attached.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <map>
#include <memory>
#include <string>

#include "program/program.h"

namespace torchscope {

// Rewrites `graph` (a copy of forward's graph, input 0 being self) to run the hooks of
// `spec`. Afterwards the graph takes, after forward's own inputs, five inputs per patched
// layer (mode, value, scale, channels, positions, in spec.patch order), then one tensor per
// replaced hook point (spec.replace order), then one SAE object per splice (spec.saes order;
// torchscript/sae_ops.h), and returns one tuple:
// (forward's output if spec.returnOutput, then per layer of spec.targets() its record list:
// the deep-copied values of each call for a captured layer, one int per call otherwise; then
// per layer of spec.gradient its tapped tensors, one per call).
// Returns the hook points per layer; when a layer has none, the graph is unusable and the
// caller reports the layer.
std::map<std::string, int> instrumentGraph(const std::shared_ptr<torch::jit::Graph>& graph, const ProgramSpec& spec);

}  // namespace torchscope
