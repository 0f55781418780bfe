#include "torchscript/module_calls.h"

#include <torch/csrc/jit/api/function_impl.h>

#include <algorithm>
#include <set>

namespace torchscope {

namespace jit = torch::jit;
namespace prim = c10::prim;
namespace attr = c10::attr;

bool isForwardMethod(const std::string& method) {
  static const std::string name = "forward";
  if (method.rfind(name, 0) != 0) return false;
  auto digits = [](std::string::const_iterator from, std::string::const_iterator to) {
    return std::all_of(from, to, [](char c) { return c >= '0' && c <= '9'; });
  };
  const auto rest = method.begin() + static_cast<std::ptrdiff_t>(name.size());
  if (digits(rest, method.end())) return true;  // forward, forward1, forward2...
  return method.size() > name.size() + 2 && method.compare(name.size(), 2, "__") == 0 &&
         digits(rest + 2, method.end());  // forward__0, forward__1...
}

std::optional<std::string> modulePath(jit::Value* value, const jit::Value* self) {
  std::vector<std::string> names;
  while (value != self) {
    jit::Node* node = value->node();
    if (node->kind() != prim::GetAttr) return std::nullopt;
    names.push_back(node->s(attr::name));
    value = node->input(0);
  }
  std::string path;
  for (auto name = names.rbegin(); name != names.rend(); ++name) path += (path.empty() ? "" : ".") + *name;
  return path;
}

namespace {

std::string join(const std::string& prefix, const std::string& path) {
  if (prefix.empty()) return path;
  return path.empty() ? prefix : prefix + "." + path;
}

// What the calls reachable from forward say about each module path.
struct CallGraph {
  std::map<std::string, int> forwardCalls;
  std::map<std::string, std::set<std::string>> otherMethods;  // non-forward methods called
  std::set<std::string> pickedContainers;                     // indexed by a run-time value
  std::set<std::string> interfaces;                           // called through an interface type

  // `block` belongs to a method of the module at `prefix`, whose `self` is `self`.
  void walk(jit::Block* block, const jit::Value* self, const std::string& prefix) {
    for (jit::Node* node : block->nodes()) {
      if (node->kind() == prim::CallMethod) call(node, self, prefix);
      for (jit::Block* nested : node->blocks()) walk(nested, self, prefix);
    }
  }

  void call(jit::Node* node, const jit::Value* self, const std::string& prefix) {
    jit::Value* callee = node->input(0);
    const auto relative = modulePath(callee, self);
    if (!relative) {
      if (callee->node()->kind() == prim::ModuleContainerIndex) {
        if (auto container = modulePath(callee->node()->input(0), self)) pickedContainers.insert(join(prefix, *container));
      }
      return;
    }
    const std::string path = join(prefix, *relative);
    const std::string method = node->s(attr::name);
    if (isForwardMethod(method)) {
      forwardCalls[path] += 1;
    } else {
      otherMethods[path].insert(method);
    }
    auto classType = callee->type()->cast<c10::ClassType>();
    if (!classType) {
      interfaces.insert(path);
      return;
    }
    auto graph = jit::toGraphFunction(classType->getMethod(method)).graph();
    walk(graph->block(), graph->inputs().at(0), path);
  }

  // The first of `paths` that is `path` or contains it.
  static std::optional<std::string> enclosing(const std::set<std::string>& paths, const std::string& path) {
    for (const std::string& outer : paths) {
      if (outer == path || containsModule(outer, path)) return outer;
    }
    return std::nullopt;
  }

  // Why a module that forward calls through its path at some sites cannot be hooked all the
  // same: other calls of it have no path, and hooks that miss some calls would be wrong.
  std::optional<std::string> whySomeCallsMissed(const std::string& path) const {
    if (auto container = enclosing(pickedContainers, path)) {
      return "forward also calls it as an element of '" + *container +
             "' picked at run time (prim::ModuleContainerIndex): hooks would miss those calls";
    }
    if (auto holder = enclosing(interfaces, path); holder && *holder != path) {
      return "forward may also reach it through '" + *holder + "', an attribute of a module interface type: hooks would miss those calls";
    }
    return std::nullopt;
  }

  std::string whyNot(const std::string& path) const {
    if (path.empty()) return "the model itself: its output is what forward returns";
    if (auto container = enclosing(pickedContainers, path)) {
      return "forward calls it only as an element of '" + *container +
             "' picked at run time (prim::ModuleContainerIndex), and no module path names such a call";
    }
    if (auto holder = enclosing(interfaces, path)) {
      return "forward reaches it only through '" + *holder +
             "', an attribute of a module interface type whose module is chosen at run time";
    }
    if (auto found = otherMethods.find(path); found != otherMethods.end()) {
      std::string methods;
      for (const auto& method : found->second) methods += (methods.empty() ? "'" : ", '") + method + "'";
      return "forward never calls its forward, only its method(s) " + methods + ", and forward hooks run on forward calls only";
    }
    const bool holdsCalledModules =
        std::any_of(forwardCalls.begin(), forwardCalls.end(), [&](const auto& call) { return containsModule(path, call.first); });
    if (holdsCalledModules) return "a container: forward calls the modules in it, never its own forward";
    return "forward never calls it (it is unused, or only its parameters are read)";
  }
};

}  // namespace

std::vector<std::pair<std::string, Hookability>> surveyModules(const jit::Module& module) {
  CallGraph calls;
  auto graph = jit::toGraphFunction(module.get_method("forward").function()).graph();
  calls.walk(graph->block(), graph->inputs().at(0), "");
  std::vector<std::pair<std::string, Hookability>> out;
  for (const auto& child : module.named_modules()) {
    Hookability hookability;
    if (!child.name.empty()) {
      auto found = calls.forwardCalls.find(child.name);
      hookability.callSites = found == calls.forwardCalls.end() ? 0 : found->second;
    }
    if (hookability.callSites == 0) {
      hookability.reason = calls.whyNot(child.name);
    } else if (auto why = calls.whySomeCallsMissed(child.name)) {
      hookability.reason = *why;
    }
    out.emplace_back(child.name, std::move(hookability));
  }
  return out;
}

}  // namespace torchscope
