// Hook points as requests name them, whatever the model's format: a module path for the
// module's output, or the path with ":input" for its first tensor input; and, per submodule,
// whether a model's programs can hook it (and why not).
#pragma once

#include <map>
#include <string>

namespace torchscope {

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

// Every submodule of a model by path (root "" included), with its hookability.
using ModuleSurvey = std::map<std::string, Hookability>;

}  // namespace torchscope
