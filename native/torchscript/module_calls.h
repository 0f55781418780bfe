// What a TorchScript forward calls: which methods are a module's forward, how a call names
// the module it calls, and, per submodule, whether torchscope can hook it (and why not).
// TorchScript compiles module calls as prim::CallMethod on a chain of attribute reads from
// `self`; that chain is the module's path.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include <map>
#include <optional>
#include <string>

#include "program/hook_points.h"

namespace torchscope {

// A call of a module's forward, which is what a forward hook sees. Besides `forward`:
// traced models compile the 2nd, 3rd... call of one module (a ReLU used twice) as methods
// forward1, forward2...; scripted modules with an overloaded forward (nn.LSTM, nn.GRU) have
// forward__0, forward__1... and no `forward` at all.
bool isForwardMethod(const std::string& method);

// The module path `value` (a module object) refers to, "" for `self`; nullopt when it is
// not a chain of attribute reads starting at `self` (a module picked from a container at
// run time), which no path names.
std::optional<std::string> modulePath(torch::jit::Value* value, const torch::jit::Value* self);

// Every submodule path (named_modules order, root "" included) with its hookability.
std::vector<std::pair<std::string, Hookability>> surveyModules(const torch::jit::Module& module);

}  // namespace torchscope
