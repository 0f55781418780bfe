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

// True when the module at `outer` contains the module at `inner` (and is not it).
bool containsModule(const std::string& outer, const std::string& inner);

// A hook point as a request names it: a module path for the module's output, or the path with
// kInputSuffix for its first tensor input (what a forward pre-hook sees): "transformer.h.3:input".
inline constexpr const char* kInputSuffix = ":input";
struct HookPoint {
  std::string module;  // the module's path
  bool input = false;  // its first tensor input rather than its output
};
HookPoint parseHookPoint(const std::string& name);

// Whether a submodule can be hooked: it can when forward reaches at least one call of its
// forward through attribute reads (every such call is a hook point) and no call of it any
// other way (through a container indexed at run time), which hooks would miss.
struct Hookability {
  int callSites = 0;   // static call sites of its forward reachable from the model's forward
  std::string reason;  // why it cannot be hooked; empty when it can
};

// Every submodule path (named_modules order, root "" included) with its hookability.
std::vector<std::pair<std::string, Hookability>> surveyModules(const torch::jit::Module& module);

}  // namespace torchscope
