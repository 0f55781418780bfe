#include "program/program.h"

#include <algorithm>
#include <set>

#include "core/errors.h"

namespace torchscope {

std::string ProgramSpec::key() const {
  std::string key;
  for (const auto& layer : capture) key += layer + ",";
  key += "|";
  for (const auto& layer : patch) key += layer + ",";
  key += "|";
  for (const auto& layer : gradient) key += layer + ",";
  key += "|";
  for (const auto& layer : replace) key += layer + ",";
  key += "|";
  for (const auto& splice : saes) key += splice.read + ">" + splice.write + (splice.errorTerm ? "+error," : ",");
  // An optimized program that takes gradients is built without the rewrites that have no backward.
  key += optimize && differentiable ? "|differentiable" : "";
  return key + (returnOutput ? "|output" : "|cut") + (optimize ? "|optimized" : "|exact") + "|" + nameOf(kPrecisions, precision);
}

std::vector<std::string> ProgramSpec::targets() const {
  std::set<std::string> all(capture.begin(), capture.end());
  all.insert(patch.begin(), patch.end());
  all.insert(gradient.begin(), gradient.end());
  all.insert(replace.begin(), replace.end());
  for (const auto& splice : saes) all.insert({splice.read, splice.write});
  return {all.begin(), all.end()};
}

bool ProgramSpec::captures(const std::string& layer) const { return std::binary_search(capture.begin(), capture.end(), layer); }

bool ProgramSpec::taps(const std::string& layer) const { return std::binary_search(gradient.begin(), gradient.end(), layer); }

bool ProgramSpec::replaces(const std::string& layer) const { return std::binary_search(replace.begin(), replace.end(), layer); }

void requireAllRan(const Program& program, const RunResult& result) {
  std::string missing;
  for (const auto& [layer, calls] : result.calls) {
    if (calls == 0) missing += (missing.empty() ? "'" : ", '") + layer + "'";
  }
  TS_CHECK(
      missing.empty(), code::kLayerNotRun, "layer(s) ", missing,
      " did not run in this forward: their call sites were not reached with this input (a branch not taken, or a loop that ran zero times)");
}

std::shared_ptr<const Program> ProgramCache::get(const ModelFormat& format, ProgramSpec spec) {
  if (!spec.gradient.empty()) spec.differentiable = true;  // a tapped program is one gradients are taken through (inspect's too)
  spec = format.canonical(std::move(spec));
  const std::string key = spec.key();
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = programs_.find(key);
  if (found != programs_.end()) return found->second;
  auto program = format.build(spec);
  programs_[key] = program;
  return program;
}

size_t ProgramCache::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return programs_.size();
}

void checkSaeSplices(const ProgramSpec& spec) {
  std::set<std::string> reads;
  for (const SaeSplice& splice : spec.saes) {
    for (const std::string* point : {&splice.read, &splice.write}) {
      TS_CHECK(parseHookPoint(*point).stage.empty(), code::kInvalidArgument, "an SAE is spliced at a layer, not at another SAE's '", *point,
               "'");
    }
    TS_CHECK(reads.insert(splice.read).second, code::kInvalidArgument, "two SAEs read '", splice.read, "': splice one per hook point");
  }
  for (const std::string& layer : spec.targets()) {
    const HookPoint point = parseHookPoint(layer);
    TS_CHECK(point.stage.empty() || reads.count(point.base), code::kUnknownLayer, "no layer '", layer, "': no SAE reads '", point.base,
             "' in this run (pass it in `saes`)");
  }
}

std::map<std::string, at::Tensor> ModelFormat::namedTensors() const {
  TS_FAIL(code::kInvalidArgument, "this model's format cannot share its tensors with another model");
}

}  // namespace torchscope
