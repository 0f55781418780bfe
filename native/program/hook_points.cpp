#include "program/hook_points.h"

#include "core/errors.h"

namespace torchscope {

namespace {

bool endsWith(const std::string& name, const std::string& suffix) {
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

HookPoint parseHookPoint(const std::string& name) {
  const size_t separator = name.find(kNodeSeparator);
  if (separator != std::string::npos) {
    const std::string node = name.substr(separator + 1);
    TS_CHECK(!node.empty() && node.find_first_of(":/") == std::string::npos, code::kUnknownLayer, "no layer '", name,
             "' in this model: an operation is named '<module path>/<node>' (model.nodes(path) lists them)");
    return {name.substr(0, separator), false, node};
  }
  if (endsWith(name, kInputSuffix)) return {name.substr(0, name.size() - std::string(kInputSuffix).size()), true, ""};
  if (endsWith(name, kPatternSuffix)) return {name.substr(0, name.size() - std::string(kPatternSuffix).size()), false, kPatternSuffix};
  return {name, false, ""};
}

bool containsModule(const std::string& outer, const std::string& inner) {
  if (outer.empty()) return !inner.empty();
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '.';
}

}  // namespace torchscope
