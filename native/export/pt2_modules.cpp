#include "export/pt2_modules.h"

#include <algorithm>

namespace torchscope::pt2 {

namespace {

// The class name of a qualified type ("torch.nn.modules.conv.Conv2d" -> "Conv2d").
std::string className(const std::string& type) {
  const size_t dot = type.rfind('.', type.find('[') == std::string::npos ? std::string::npos : type.find('['));
  return dot == std::string::npos ? type : type.substr(dot + 1);
}

// The call number of a key: "L__self__layer1.0@2" -> 2.
size_t callNumber(const std::string& key) {
  const size_t at = key.rfind('@');
  if (at == std::string::npos) return 0;
  try {
    return std::stoul(key.substr(at + 1));
  } catch (...) {
    return 0;
  }
}

void readsOf(const ArgSource& source, std::vector<int>& slots) {
  if (source.slot >= 0) slots.push_back(source.slot);
  for (int slot : source.slots) {
    if (slot >= 0) slots.push_back(slot);
  }
}

std::vector<int> stepReads(const Step& step) {
  std::vector<int> slots;
  for (const ArgSource& arg : step.args) readsOf(arg, slots);
  return slots;
}

// Module paths named in subgraphs (and their callers' paths), at any depth.
void subgraphModules(const Graph& graph, std::map<std::string, std::string>& types) {
  for (const Node& node : graph.nodes) {
    for (const ModuleFrame& frame : node.modules) types.emplace(frame.path, frame.type);
    for (const NamedValue& input : node.inputs) {
      if (input.value.graph) subgraphModules(*input.value.graph, types);
    }
  }
}

class Mapper {
 public:
  Mapper(const ExportedProgram& program, const Plan& plan, const std::set<int>& weights)
      : program_(program), plan_(plan), weights_(weights) {}

  ModuleMap map() {
    collectPaths();
    collectCalls();
    for (const auto& [path, type] : map_.submodules) {
      if (path.empty()) continue;
      Hookability& hookability = map_.survey[path];
      auto found = calls_.find(path);
      if (found == calls_.end()) {
        hookability.reason = inSubgraphs_.count(path) ? "it runs only inside a torch.cond, while_loop, no_grad or autocast subgraph of the "
                                                        "exported program, where torchscope cannot place hooks"
                             : readInSubgraphs(path)
                                 ? "it runs only inside a torch.cond or while_loop branch (torch.export keeps no module metadata there)"
                                 : "no operation of the exported program belongs to it (a container, or a module the export never "
                                   "called or inlined away)";
        continue;
      }
      hookability.callSites = static_cast<int>(found->second.size());
      if (inSubgraphs_.count(path)) {
        hookability.reason =
            "it also runs inside a torch.cond, while_loop, no_grad or autocast subgraph, where torchscope cannot place hooks";
      }
      for (ModuleCall& call : found->second) {
        if (!hookability.reason.empty()) break;
        hookability.reason = boundary(path, call);
      }
      if (hookability.reason.empty()) map_.calls[path] = std::move(found->second);
    }
    map_.survey[""] = Hookability{1, "the model itself: its output is forward's output"};
    return std::move(map_);
  }

 private:
  void addPath(const std::string& path, const std::string& type) {
    auto [it, added] = types_.emplace(path, type);
    if (added) {
      map_.submodules.emplace_back(path, className(type));
    } else if (it->second.empty() && !type.empty()) {
      it->second = type;
      for (auto& entry : map_.submodules) {
        if (entry.first == path) entry.second = className(type);
      }
    }
  }

  void collectPaths() {
    std::string rootType;
    for (const Node& node : program_.graph.nodes) {
      if (!node.modules.empty() && node.modules[0].path.empty()) rootType = node.modules[0].type;
    }
    addPath("", rootType);
    // Definition order first: the parameters' and buffers' owners (and theirs).
    for (const InputSpec& input : program_.inputs) {
      if (input.kind != InputSpec::kParameter && input.kind != InputSpec::kBuffer) continue;
      for (size_t dot = input.target.find('.'); dot != std::string::npos; dot = input.target.find('.', dot + 1)) {
        addPath(input.target.substr(0, dot), "");
      }
    }
    for (const Node& node : program_.graph.nodes) {
      for (const ModuleFrame& frame : node.modules) addPath(frame.path, frame.type);
    }
    std::map<std::string, std::string> nested;
    for (const Node& node : program_.graph.nodes) {
      for (const NamedValue& input : node.inputs) {
        if (input.value.graph) subgraphModules(*input.value.graph, nested);
      }
    }
    for (const auto& [path, type] : nested) {
      if (path.empty()) continue;
      addPath(path, type);
      inSubgraphs_.insert(path);
    }
    for (const ModuleCallEntry& entry : program_.calls) {
      const std::string path = entry.fqn.substr(0, entry.fqn.find('@'));
      if (!path.empty()) addPath(path, "");
    }
  }

  void collectCalls() {
    std::map<std::string, std::pair<std::string, ModuleCall>> byKey;
    for (size_t i = 0; i < program_.graph.nodes.size(); ++i) {
      const auto& frames = program_.graph.nodes[i].modules;
      std::string innermost;
      for (const ModuleFrame& frame : frames) {
        if (frame.path.empty()) continue;
        innermost = frame.path;
        auto& [path, call] = byKey[frame.key];
        path = frame.path;
        call.key = frame.key;
        call.steps.push_back(i);
      }
      map_.ownSteps[innermost].push_back(i);
    }
    for (auto& [key, entry] : byKey) calls_[entry.first].push_back(std::move(entry.second));
    for (auto& [path, calls] : calls_) {
      std::sort(calls.begin(), calls.end(), [](const ModuleCall& a, const ModuleCall& b) { return a.steps[0] < b.steps[0]; });
    }
    // Who reads each slot, and which slots the program returns.
    readers_.assign(static_cast<size_t>(plan_.slots), {});
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
      for (int slot : stepReads(plan_.steps[i])) readers_[slot].push_back(i);
    }
    for (const ArgSource& output : plan_.outputs) {
      std::vector<int> slots;
      readsOf(output, slots);
      returned_.insert(slots.begin(), slots.end());
    }
  }

  // Whether a module's parameters are read inside subgraphs (operands of a cond or loop).
  bool readInSubgraphs(const std::string& path) const {
    for (const InputSpec& input : program_.inputs) {
      if (input.kind != InputSpec::kParameter || input.target.rfind(path + ".", 0) != 0) continue;
      auto slot = plan_.slotOf.find(input.name);
      if (slot == plan_.slotOf.end()) continue;
      for (size_t reader : readers_[slot->second]) {
        if (!plan_.steps[reader].subplans.empty()) return true;
      }
    }
    return false;
  }

  const CallSignature* signatureOf(const std::string& path, const ModuleCall& call) const {
    const size_t number = callNumber(call.key);
    const std::string fqn = number == 0 ? path : path + "@" + std::to_string(number);
    for (const ModuleCallEntry& entry : program_.calls) {
      if (entry.fqn == fqn && entry.signature) return &*entry.signature;
    }
    return nullptr;
  }

  // Fills the call's outputs and inputs; returns why it cannot be hooked, or "".
  std::string boundary(const std::string& path, ModuleCall& call) {
    const std::set<size_t> region(call.steps.begin(), call.steps.end());
    const size_t last = call.steps.back();
    std::set<int> defined;
    for (size_t i : call.steps) {
      for (const auto& slots : plan_.steps[i].outputs) {
        for (int slot : slots) {
          if (slot >= 0) defined.insert(slot);
        }
      }
    }
    auto slotOf = [&](const std::string& name) {
      auto found = plan_.slotOf.find(name);
      return found == plan_.slotOf.end() ? -1 : found->second;
    };
    if (const CallSignature* signature = signatureOf(path, call)) {
      call.exact = true;
      bool tensors = true;
      for (const Value& output : signature->outputs) {
        tensors &= output.kind == Value::kTensor && slotOf(output.names[0]) >= 0;
        if (output.kind == Value::kTensor && slotOf(output.names[0]) >= 0) call.outputs.push_back(slotOf(output.names[0]));
      }
      try {
        TreeSpec spec = parseTreeSpec(signature->outSpec, "");
        if (tensors && spec.leaves() == call.outputs.size()) call.outSpec = std::move(spec);
      } catch (const std::exception&) {
        // A spec that does not parse: the outputs come flat.
      }
      for (const Value& input : signature->inputs) {
        const int slot = input.kind == Value::kTensor ? slotOf(input.names[0]) : -1;
        if (slot >= 0 && !weights_.count(slot)) call.inputs.push_back(slot);
      }
    } else {
      for (int slot : defined) {
        // A module returns tensors; a size it computed and others read (core ATen hoists them) is not part of it.
        if (!plan_.tensors[slot]) continue;
        const bool usedOutside =
            returned_.count(slot) || std::any_of(readers_[slot].begin(), readers_[slot].end(), [&](size_t r) { return !region.count(r); });
        if (usedOutside) call.outputs.push_back(slot);
      }
      std::set<int> seen;
      for (size_t i : call.steps) {
        for (int slot : stepReads(plan_.steps[i])) {
          if (defined.count(slot) || weights_.count(slot) || !plan_.tensors[slot] || !seen.insert(slot).second) continue;
          call.inputs.push_back(slot);
        }
      }
    }
    if (call.outputs.empty()) return "what it computes is never used by the rest of the exported program";
    for (int slot : call.outputs) {
      for (size_t reader : readers_[slot]) {
        if (!region.count(reader) && reader < last) {
          return "the exported program uses its output (node '" + program_.graph.nodes[reader].name + "') before the call ends";
        }
      }
    }
    return "";
  }

  const ExportedProgram& program_;
  const Plan& plan_;
  const std::set<int>& weights_;
  ModuleMap map_;
  std::map<std::string, std::string> types_;
  std::set<std::string> inSubgraphs_;
  std::map<std::string, std::vector<ModuleCall>> calls_;
  std::vector<std::vector<size_t>> readers_;
  std::set<int> returned_;
};

}  // namespace

ModuleMap mapModules(const ExportedProgram& program, const Plan& plan, const std::set<int>& weights) {
  return Mapper(program, plan, weights).map();
}

}  // namespace torchscope::pt2
