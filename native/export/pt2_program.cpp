#include "export/pt2_program.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <optional>

#include "core/errors.h"
#include "core/ivalues.h"
#include "export/pt2_run.h"
#include "export/pt2_schedule.h"
#include "program/patch.h"
#include "program/precision.h"
#include "sae/sae.h"

namespace torchscope {

namespace {

using pt2::Env;

size_t depthOf(const std::string& path) { return path.empty() ? 0 : 1 + static_cast<size_t>(std::count(path.begin(), path.end(), '.')); }

// Node hooks run before the hooks of the modules whose calls end at the same node.
constexpr size_t kNodeDepth = std::numeric_limits<size_t>::max();

at::Tensor firstTensor(const std::string& layer, const c10::IValue& value) {
  auto found = findFirstTensor(value);
  TS_CHECK(found.has_value(), code::kInvalidArgument, "layer '", layer, "' gives ", value.tagKind(),
           ": only a tensor, or a tuple holding one, can be hooked");
  return *found;
}

// `value` with its first tensor replaced by `tensor`.
c10::IValue withFirst(const c10::IValue& value, const at::Tensor& tensor) {
  bool done = false;
  std::function<c10::IValue(const c10::IValue&)> replace = [&](const c10::IValue& v) -> c10::IValue {
    if (done) return v;
    if (v.isTensor()) {
      done = true;
      return tensor;
    }
    if (v.isTuple()) {
      std::vector<c10::IValue> elements;
      for (const c10::IValue& element : v.toTupleRef().elements()) elements.push_back(replace(element));
      return c10::ivalue::Tuple::create(std::move(elements));
    }
    if (v.isGenericDict()) {
      c10::impl::GenericDict dict(v.toGenericDict().keyType(), v.toGenericDict().valueType());
      for (const auto& entry : v.toGenericDict()) dict.insert(entry.key(), replace(entry.value()));
      return dict;
    }
    return v;
  };
  return replace(value);
}

const c10::OperatorHandle& patchOperator() {
  static const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow(kPatchOperator, "");
  return op;
}

}  // namespace

// One run's hooks: what they were given (patches, replacements, SAEs) and what they record.
class ExportProgram::Run {
 public:
  Run(const ExportProgram& program, const std::vector<PatchArgs>& patches, const std::vector<at::Tensor>& replacements,
      const std::vector<std::shared_ptr<const Sae>>& saes)
      : spec_(program.spec), patches_(patches), replacements_(replacements), saes_(saes), splices_(saes.size()) {
    for (const std::string& layer : spec_.targets()) result.calls[layer] = 0;
  }

  void hook(const Hook& hook, Env& env, bool input) {
    std::vector<c10::IValue> leaves;
    for (int slot : hook.slots) leaves.push_back(env[slot]);
    // A replaced value's producers may have been skipped (pt2_schedule.h): its place is empty.
    if (spec_.replaces(hook.name) && leaves[0].isNone()) leaves[0] = replacement(hook.name);
    // One output is the value itself; several are nested as the module returned them (its
    // exported signature), else a tuple.
    const c10::IValue value = hook.spec            ? pt2::nestLeaves(*hook.spec, leaves)
                              : leaves.size() == 1 ? leaves[0]
                                                   : c10::ivalue::Tuple::create(leaves);
    const c10::IValue given = runHooks(hook.name, value);
    if (input) {
      env[hook.given] = given;
      return;
    }
    leaves.clear();
    pt2::flattenLeaves(given, leaves);
    TS_CHECK(leaves.size() == hook.slots.size(), code::kInternal, "layer '", hook.name, "': hooks gave ", leaves.size(), " values for ",
             hook.slots.size());
    for (size_t i = 0; i < hook.slots.size(); ++i) env[hook.slots[i]] = leaves[i];
  }

  RunResult result;

 private:
  struct Splice {
    at::Tensor x;
    at::Tensor features;
  };

  bool isTarget(const std::string& name) const { return result.calls.count(name) > 0; }
  const at::Tensor& replacement(const std::string& name) const {
    return replacements_.at(std::lower_bound(spec_.replace.begin(), spec_.replace.end(), name) - spec_.replace.begin());
  }
  bool edits(const std::string& name) const {
    return spec_.replaces(name) || std::binary_search(spec_.patch.begin(), spec_.patch.end(), name);
  }

  // The hooks of one hook point, in the TorchScript backend's order; returns what the rest of
  // the program is given.
  c10::IValue runHooks(const std::string& name, const c10::IValue& value) {
    c10::IValue seen = value;
    if (spec_.replaces(name)) {
      firstTensor(name, seen);
      seen = withFirst(seen, replacement(name));
    }
    if (auto found = std::lower_bound(spec_.patch.begin(), spec_.patch.end(), name); found != spec_.patch.end() && *found == name) {
      seen = withFirst(seen, patched(name, firstTensor(name, seen), patches_.at(found - spec_.patch.begin())));
    }
    c10::IValue given = seen;
    if (spec_.taps(name)) {
      const at::Tensor x = firstTensor(name, seen);
      const at::Tensor tapped = x.requires_grad() ? x : x.detach().requires_grad_(true);
      result.taps[name].push_back(tapped);
      // The rest of forward takes a copy, so an in-place op there cannot rewrite the tapped value.
      given = withFirst(seen, tapped.clone());
      seen = withFirst(seen, tapped);
    }
    result.calls[name] += 1;
    if (spec_.captures(name)) result.captures[name].push_back(mapTensors(seen, [](const at::Tensor& t) { return t.clone(); }));
    for (size_t i = 0; i < spec_.saes.size(); ++i) {
      if (spec_.saes[i].read == name) encode(i, given);
    }
    for (size_t i = 0; i < spec_.saes.size(); ++i) {
      if (spec_.saes[i].write == name) given = spliced(i, given);
    }
    return given;
  }

  at::Tensor patched(const std::string& layer, const at::Tensor& x, const PatchArgs& args) {
    torch::jit::Stack stack{x,    args.mode, args.value, args.scale, c10::List<int64_t>(args.channels), c10::List<int64_t>(args.positions),
                            layer};
    patchOperator().callBoxed(stack);
    return stack.back().toTensor();
  }

  at::Tensor stage(const std::string& name, const at::Tensor& value) { return isTarget(name) ? runHooks(name, value).toTensor() : value; }

  void encode(size_t index, const c10::IValue& value) {
    const std::string& read = spec_.saes[index].read;
    const Sae& sae = *saes_.at(index);
    Splice& splice = splices_[index];
    splice.x = firstTensor(read, value);
    const at::Tensor pre = stage(read + kSaeFeaturesPreSuffix, sae.featuresPre(splice.x));
    splice.features = stage(read + kSaeFeaturesSuffix, sae.features(pre, splice.x));
  }

  c10::IValue spliced(size_t index, const c10::IValue& value) {
    const SaeSplice& splice = spec_.saes[index];
    const Sae& sae = *saes_.at(index);
    const Splice& state = splices_[index];
    TS_CHECK(state.features.defined(), code::kInvalidArgument, "the transcoder writing at '", splice.write, "' must read '", splice.read,
             "' before it");
    const at::Tensor target = firstTensor(splice.write, value);
    const at::Tensor clean = sae.decode(state.features, state.x);
    const at::Tensor decoded = stage(splice.read + kSaeReconstructionSuffix, clean);
    std::optional<at::Tensor> error;
    if (splice.errorTerm) {
      // The error term is of the clean input: while nothing edits the features, the output just
      // decoded is that input's, and is not computed again.
      const bool edited = edits(splice.read + kSaeFeaturesPreSuffix) || edits(splice.read + kSaeFeaturesSuffix);
      error = stage(splice.read + kSaeErrorSuffix, edited ? sae.errorTerm(state.x, target) : target - clean.detach());
    }
    return withFirst(value, (error ? decoded + *error : decoded).to(target.scalar_type()));
  }

  const ProgramSpec& spec_;
  const std::vector<PatchArgs>& patches_;
  const std::vector<at::Tensor>& replacements_;
  const std::vector<std::shared_ptr<const Sae>>& saes_;
  std::vector<Splice> splices_;
};

ExportProgram::ExportProgram(const ProgramSpec& spec, std::shared_ptr<const pt2::LoadedProgram> loaded)
    : Program(spec), loaded_(std::move(loaded)) {
  const auto start = std::chrono::steady_clock::now();
  steps_ = loaded_->plan->steps;
  slots_ = loaded_->plan->slots;
  before_.resize(steps_.size() + 1);
  after_.resize(steps_.size());
  checkSaeSplices(spec);
  std::vector<std::string> targets = spec.targets();
  // Inputs first, outer modules before inner ones: an inner call's ':input' reads what the
  // outer one's hooks gave.
  std::stable_sort(targets.begin(), targets.end(), [](const std::string& a, const std::string& b) {
    const HookPoint pa = parseHookPoint(a), pb = parseHookPoint(b);
    const bool ia = pa.input && pa.stage.empty(), ib = pb.input && pb.stage.empty();
    if (ia != ib) return ia;
    return ia && depthOf(pa.module) < depthOf(pb.module);
  });
  for (const std::string& target : targets) place(target);
  for (const std::string& target : spec.targets()) {
    const HookPoint point = parseHookPoint(target);
    if (!point.stage.empty()) callSites[target] = callSites[point.base];
  }
  for (auto& hooks : after_) {
    std::stable_sort(hooks.begin(), hooks.end(), [](const Hook& a, const Hook& b) { return a.depth > b.depth; });
  }
  // Without the output, the run ends with its last hook.
  end_ = steps_.size();
  if (!spec.returnOutput) {
    end_ = 0;
    for (size_t i = 0; i < steps_.size(); ++i) {
      if (!after_[i].empty()) end_ = std::max(end_, i + 1);
      if (!before_[i].empty()) end_ = std::max(end_, i);
    }
  }
  // What runs and when values are dropped (pt2_schedule.h). A replaced value is written, not read,
  // by its hooks (a tuple's other tensors are read), so what computed it may be skipped.
  auto slotsOf = [&](const Hook& hook, bool input) {
    pt2::HookSlots slots;
    const bool replaced = spec.replaces(hook.name);
    if (input) {
      if (!replaced) slots.read = hook.slots;
      slots.written = {hook.given};
    } else {
      slots.read.assign(hook.slots.begin() + (replaced ? 1 : 0), hook.slots.end());
      slots.written = hook.slots;
    }
    return slots;
  };
  std::vector<std::vector<pt2::HookSlots>> before(before_.size()), after(after_.size());
  for (size_t i = 0; i < before_.size(); ++i) {
    for (const Hook& hook : before_[i]) before[i].push_back(slotsOf(hook, true));
  }
  for (size_t i = 0; i < after_.size(); ++i) {
    for (const Hook& hook : after_[i]) after[i].push_back(slotsOf(hook, false));
  }
  std::vector<bool> kept(static_cast<size_t>(slots_), false);
  for (int slot : loaded_->weightSlots) kept[slot] = true;
  std::vector<int> returned;
  if (spec.returnOutput) {
    for (const auto& output : loaded_->plan->outputs) {
      if (output.slot >= 0) returned.push_back(output.slot);
    }
  }
  for (int slot : returned) kept[slot] = true;
  pt2::Schedule schedule = pt2::schedule(steps_, end_, before, after, kept, returned);
  runs_ = std::move(schedule.runs);
  release_ = std::move(schedule.release);
  buildMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  buildMs = buildMs_;
}

void ExportProgram::place(const std::string& target) {
  const HookPoint point = parseHookPoint(target);
  if (!point.stage.empty()) return;  // an SAE's value: run where the SAE runs
  const auto& survey = loaded_->modules.survey;
  TS_CHECK(!point.module.empty() && survey.count(point.module), code::kUnknownLayer, "no layer '", point.module, "' in this model");
  callSites[target] = 0;
  if (point.inside()) {
    placeNode(target, point);
  } else {
    placeModule(target, point);
  }
}

void ExportProgram::placeModule(const std::string& target, const HookPoint& point) {
  const auto& reason = loaded_->modules.survey.at(point.module).reason;
  TS_CHECK(reason.empty(), code::kUnhookableLayer, "layer '", target, "' cannot be hooked: ", reason);
  for (const pt2::ModuleCall& call : loaded_->modules.calls.at(point.module)) {
    callSites[target] += 1;
    if (!point.input) {
      after_[call.steps.back()].push_back(Hook{target, call.outputs, -1, depthOf(point.module), call.outSpec ? &*call.outSpec : nullptr});
      continue;
    }
    TS_CHECK(!call.inputs.empty(), code::kInvalidArgument, "layer '", target, "': the module's call reads no tensor");
    // What its nodes read now in place of its first input: an outer call's ':input' hooks
    // (placed first) may have given them another slot.
    const int original = call.inputs[0];
    int read = original;
    for (size_t s : call.steps) {
      for (const pt2::ArgSource& arg : steps_[s].args) {
        std::vector<int> reads(arg.slots);
        reads.push_back(arg.slot);
        for (int slot : reads) {
          int root = slot;
          while (origin_.count(root)) root = origin_.at(root);
          if (slot >= 0 && root == original && slot > read) read = slot;
        }
      }
    }
    const int given = slots_++;
    origin_[given] = read;
    for (size_t s : call.steps) {
      for (pt2::ArgSource& arg : steps_[s].args) {
        if (arg.slot == read) arg.slot = given;
        std::replace(arg.slots.begin(), arg.slots.end(), read, given);
      }
    }
    before_[call.steps[0]].push_back(Hook{target, {read}, given, depthOf(point.module)});
  }
}

void ExportProgram::placeNode(const std::string& target, const HookPoint& point) {
  const auto& own = loaded_->modules.ownSteps;
  auto found = own.find(point.module);
  const std::vector<size_t> none;
  const std::vector<size_t>& steps = found == own.end() ? none : found->second;
  const auto& nodes = loaded_->program.graph.nodes;
  std::vector<size_t> matches;
  for (size_t s : steps) {
    const bool match = nodes[s].synthetic == pt2::Synthetic::kNone &&
                       (point.node == kPatternSuffix ? pt2::isSoftmax(pt2::operatorName(nodes[s].target)) : nodes[s].name == point.node);
    if (match) matches.push_back(s);
  }
  if (point.node == kPatternSuffix) {
    TS_CHECK(matches.size() == 1, code::kUnknownLayer, "no layer '", target, "': module '", point.module, "' computes ", matches.size(),
             " softmaxes in this exported program (its attention pattern is the one softmax of its own nodes; "
             "model.nodes(path) lists them)");
  } else {
    std::string names;
    for (size_t i = 0; i < steps.size() && i < 12; ++i) names += (i ? ", " : "") + nodes[steps[i]].name;
    TS_CHECK(!matches.empty(), code::kUnknownLayer, "no layer '", target, "': module '", point.module, "' has no node '", point.node,
             "' of its own",
             steps.empty() ? std::string(" (it has none)") : " (it has " + names + (steps.size() > 12 ? ", ..." : "") + ")");
  }
  const size_t step = matches[0];
  TS_CHECK(!steps_[step].outputs.empty() && steps_[step].outputs[0].size() == 1 && steps_[step].outputs[0][0] >= 0, code::kInvalidArgument,
           "layer '", target, "': node '", nodes[step].name, "' gives no value that can be hooked");
  callSites[target] = 1;
  after_[step].push_back(Hook{target, {steps_[step].outputs[0][0]}, -1, kNodeDepth});
}

RunResult ExportProgram::run(std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches,
                             const std::vector<at::Tensor>& replacements, const std::vector<std::shared_ptr<const Sae>>& saes) const {
  TS_CHECK(replacements.size() == spec.replace.size(), code::kInternal, replacements.size(), " replacement(s) for a program that replaces ",
           spec.replace.size());
  TS_CHECK(saes.size() == spec.saes.size(), code::kInternal, saes.size(), " SAE(s) for a program that splices ", spec.saes.size());
  Env env = loaded_->bind(std::move(inputs));
  env.resize(static_cast<size_t>(slots_));
  Run run(*this, patches, replacements, saes);
  {
    PrecisionScope precision(spec.precision, spec.device);
    pt2::ModeGuard modes;
    for (size_t i = 0; i < end_; ++i) {
      for (const Hook& hook : before_[i]) run.hook(hook, env, true);
      if (runs_[i]) pt2::runStep(*loaded_->plan, steps_[i], env);
      for (const Hook& hook : after_[i]) run.hook(hook, env, false);
      for (int slot : release_[i]) env[slot] = c10::IValue();
    }
    for (const Hook& hook : before_[end_]) run.hook(hook, env, true);
  }
  if (spec.returnOutput) run.result.output = loaded_->output(env);
  return std::move(run.result);
}

ProgramSummary ExportProgram::summary() const {
  ProgramSummary summary;
  const auto& nodes = loaded_->program.graph.nodes;
  std::set<std::string> called;
  for (const auto& [path, calls] : loaded_->modules.calls) {
    for (const auto& call : calls) {
      if (std::any_of(call.steps.begin(), call.steps.end(), [&](size_t s) { return s < end_ && runs_[s]; })) called.insert(path);
    }
  }
  summary.calledModules.assign(called.begin(), called.end());
  for (size_t i = 0; i < end_; ++i) {
    if (!runs_[i]) continue;
    const std::string op = pt2::operatorName(nodes[i].target);
    summary.opCounts[op] += 1;
    summary.graph += nodes[i].name + " = " + op + "\n";
  }
  summary.numerics = "exact";
  summary.precision = nameOf(kPrecisions, spec.precision);
  summary.memoryFormat = "contiguous";
  summary.buildMs = buildMs_;
  return summary;
}

}  // namespace torchscope
