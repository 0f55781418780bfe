#include "program/hook_points.h"

namespace torchscope {

HookPoint parseHookPoint(const std::string& name) {
  const std::string suffix = kInputSuffix;
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return {name.substr(0, name.size() - suffix.size()), true};
  }
  return {name, false};
}

bool containsModule(const std::string& outer, const std::string& inner) {
  if (outer.empty()) return !inner.empty();
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '.';
}

}  // namespace torchscope
