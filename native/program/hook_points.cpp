#include "program/hook_points.h"

#include "core/errors.h"

namespace torchscope {

namespace {

bool endsWith(const std::string& name, const std::string& suffix) {
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A hook point without an SAE stage: a module's output, its input or pattern, or an operation.
HookPoint parseBase(const std::string& name) {
  HookPoint point;
  point.base = name;
  const size_t separator = name.find(kNodeSeparator);
  if (separator != std::string::npos) {
    point.module = name.substr(0, separator);
    point.node = name.substr(separator + 1);
    TS_CHECK(!point.node.empty() && point.node.find_first_of(":/") == std::string::npos, code::kUnknownLayer, "no layer '", name,
             "' in this model: an operation is named '<module path>/<node>' (model.nodes(path) lists them)");
  } else if (endsWith(name, kInputSuffix)) {
    point.module = name.substr(0, name.size() - std::string(kInputSuffix).size());
    point.input = true;
  } else if (endsWith(name, kPatternSuffix)) {
    point.module = name.substr(0, name.size() - std::string(kPatternSuffix).size());
    point.node = kPatternSuffix;
  } else {
    point.module = name;
  }
  return point;
}

}  // namespace

HookPoint parseHookPoint(const std::string& name) {
  for (const char* stage : {kSaeFeaturesPreSuffix, kSaeFeaturesSuffix, kSaeReconstructionSuffix, kSaeErrorSuffix}) {
    if (!endsWith(name, stage)) continue;
    HookPoint point = parseBase(name.substr(0, name.size() - std::string(stage).size()));
    point.stage = stage;
    return point;
  }
  return parseBase(name);
}

bool containsModule(const std::string& outer, const std::string& inner) {
  if (outer.empty()) return !inner.empty();
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '.';
}

}  // namespace torchscope
