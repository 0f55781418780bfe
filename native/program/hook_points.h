// Hook points as requests name them, whatever the model's format: a module path for the
// module's output, or the path with ":input" for its first tensor input; and, per submodule,
// whether a model's programs can hook it (and why not).
#pragma once

#include <map>
#include <string>

namespace torchscope {

// True when the module at `outer` contains the module at `inner` (and is not it).
bool containsModule(const std::string& outer, const std::string& inner);

// A hook point as a request names it: a module path for the module's output; the path with
// kInputSuffix for its first tensor input (what a forward pre-hook sees): "transformer.h.3:input";
// an operation inside the module's own forward, the path, kNodeSeparator and the node's name
// (ModelFormat::nodes): "model.layers.3.self_attn/softmax"; or the path with kPatternSuffix for
// its attention pattern, the probabilities of the one softmax in its forward (TransformerLens's
// hook_pattern): "model.layers.3.self_attn:pattern".
inline constexpr const char* kInputSuffix = ":input";
inline constexpr const char* kPatternSuffix = ":pattern";
inline constexpr char kNodeSeparator = '/';
// The values of a sparse autoencoder spliced at a hook point (ProgramNeeds::saes), named by the
// hook point it reads and a suffix: "transformer.h.1:input:features".
inline constexpr const char* kSaeFeaturesPreSuffix = ":featuresPre";
inline constexpr const char* kSaeFeaturesSuffix = ":features";
inline constexpr const char* kSaeReconstructionSuffix = ":reconstruction";
inline constexpr const char* kSaeErrorSuffix = ":error";
struct HookPoint {
  std::string module;  // the module's path
  bool input = false;  // its first tensor input rather than its output
  // An operation inside its forward: a node's name, or kPatternSuffix for the pattern's softmax;
  // empty for the module's output or input.
  std::string node;
  // A value of the SAE spliced at the hook point named `base`: one of the kSae*Suffix; empty for
  // the hook point's own value.
  std::string stage;
  std::string base;
  bool inside() const { return !node.empty(); }
};
// Throws UNKNOWN_LAYER for a malformed name (an empty node, a suffix after a node).
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
