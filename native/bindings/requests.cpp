#include "bindings/requests.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "bindings/model_handle.h"
#include "bindings/sae_handle.h"
#include "bindings/tensor_handle.h"
#include "core/errors.h"
#include "core/names.h"
#include "program/patch.h"

namespace torchscope {

namespace {

std::string describe(Napi::Value value) {
  if (value.IsUndefined()) return "nothing";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) return "the number " + value.ToString().Utf8Value();
  if (value.IsString()) return "a string";
  if (value.IsBoolean()) return "a boolean";
  if (value.IsArray()) return "an array";
  return "an object";
}

}  // namespace

RequestReader::RequestReader(Napi::Value value, std::string where) : where_(std::move(where)) {
  if (!value.IsObject() || value.IsArray()) TS_FAIL(code::kInvalidArgument, where_ + ": expected an object, got " + describe(value));
  object_ = value.As<Napi::Object>();
}

Napi::Value RequestReader::field(const char* key) const { return object_.Get(key); }

bool RequestReader::has(const char* key) const { return !field(key).IsUndefined(); }

void RequestReader::fail(const char* key, const std::string& expected, Napi::Value got) const {
  TS_FAIL(code::kInvalidArgument, where_ + "." + key + ": expected " + expected + ", got " + describe(got));
}

std::string RequestReader::string(const char* key) const {
  Napi::Value value = field(key);
  if (!value.IsString()) fail(key, "a string", value);
  return value.As<Napi::String>().Utf8Value();
}

int64_t RequestReader::integer(const char* key, int64_t min, int64_t max) const {
  Napi::Value value = field(key);
  const std::string range = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!value.IsNumber()) fail(key, range, value);
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::trunc(number) != number || number < static_cast<double>(min) || number > static_cast<double>(max)) {
    fail(key, range, value);
  }
  return static_cast<int64_t>(number);
}

double RequestReader::number(const char* key) const {
  Napi::Value value = field(key);
  if (!value.IsNumber() || !std::isfinite(value.As<Napi::Number>().DoubleValue())) fail(key, "a finite number", value);
  return value.As<Napi::Number>().DoubleValue();
}

bool RequestReader::boolean(const char* key) const {
  Napi::Value value = field(key);
  if (!value.IsBoolean()) fail(key, "a boolean", value);
  return value.As<Napi::Boolean>().Value();
}

at::Tensor RequestReader::tensor(const char* key) const {
  Napi::Value value = field(key);
  if (!TensorHandle::isHandle(value.Env(), value)) fail(key, "a Tensor", value);
  return TensorHandle::unwrap(value);
}

std::shared_ptr<const Sae> RequestReader::sae(const char* key) const { return SaeHandle::unwrap(field(key)); }

std::shared_ptr<ModelState> RequestReader::model(const char* key) const { return ModelHandle::unwrap(field(key)); }

RequestReader RequestReader::object(const char* key) const { return RequestReader(field(key), where_ + "." + key); }

std::vector<Napi::Value> RequestReader::array(const char* key) const {
  Napi::Value value = field(key);
  if (value.IsUndefined()) return {};
  if (!value.IsArray()) fail(key, "an array", value);
  auto array = value.As<Napi::Array>();
  std::vector<Napi::Value> items;
  items.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) items.push_back(array.Get(i));
  return items;
}

std::vector<std::string> RequestReader::strings(const char* key) const {
  std::vector<std::string> out;
  for (const Napi::Value& item : array(key)) {
    if (!item.IsString()) fail(key, "an array of strings", item);
    out.push_back(item.As<Napi::String>().Utf8Value());
  }
  return out;
}

std::vector<int64_t> RequestReader::integers(const char* key) const {
  std::vector<int64_t> out;
  for (const Napi::Value& item : array(key)) {
    const double number = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(number) || std::trunc(number) != number || std::fabs(number) > kMaxSafeInteger) {
      fail(key, "an array of integers", item);
    }
    out.push_back(static_cast<int64_t>(number));
  }
  return out;
}

std::vector<double> RequestReader::numbers(const char* key) const {
  std::vector<double> out;
  for (const Napi::Value& item : array(key)) {
    if (!item.IsNumber() || !std::isfinite(item.As<Napi::Number>().DoubleValue())) fail(key, "an array of finite numbers", item);
    out.push_back(item.As<Napi::Number>().DoubleValue());
  }
  return out;
}

std::vector<RequestReader> RequestReader::objects(const char* key) const {
  std::vector<RequestReader> out;
  size_t i = 0;
  for (const Napi::Value& item : array(key)) out.emplace_back(item, where_ + "." + key + "[" + std::to_string(i++) + "]");
  return out;
}

std::vector<std::string> sortedUnique(std::vector<std::string> layers) {
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

void parsePatches(const RequestReader& request, std::vector<std::string>& layers, std::vector<PatchArgs>& patches) {
  std::map<std::string, PatchArgs> byLayer;
  for (const RequestReader& patch : request.objects("patch")) {
    PatchArgs args;
    args.mode = patch.integer("mode", kPatchSet, kPatchProject);
    if (patch.has("value")) args.value = patch.tensor("value");
    if (patch.has("scale")) args.scale = patch.number("scale");
    args.channels = patch.integers("channels");
    args.positions = patch.integers("positions");
    byLayer[patch.string("layer")] = std::move(args);
  }
  for (auto& [layer, args] : byLayer) {
    layers.push_back(layer);
    patches.push_back(std::move(args));
  }
}

void parseSaes(const RequestReader& request, std::vector<SaeSplice>& splices, std::vector<std::shared_ptr<const Sae>>& saes) {
  std::map<std::string, std::pair<SaeSplice, std::shared_ptr<const Sae>>> byRead;
  for (const RequestReader& entry : request.objects("saes")) {
    SaeSplice splice{entry.string("read"), entry.string("write"), entry.boolean("errorTerm")};
    const std::string read = splice.read;
    TS_CHECK(byRead.emplace(read, std::pair{std::move(splice), entry.sae("sae")}).second, code::kInvalidArgument, "two SAEs read '", read,
             "': splice one per hook point");
  }
  for (auto& [read, entry] : byRead) {
    splices.push_back(std::move(entry.first));
    saes.push_back(std::move(entry.second));
  }
}

NumericsOverride parseNumerics(const RequestReader& request) {
  NumericsOverride numerics;
  if (request.has("precision")) numerics.precision = parseName(kPrecisions, request.string("precision"), "precision");
  if (request.has("upcast")) numerics.upcast = request.boolean("upcast");
  return numerics;
}

namespace {

Objective parseObjective(const RequestReader& o) {
  Objective objective;
  if (o.has("sum")) {
    objective.kind = ObjectiveKind::kSum;
    for (const RequestReader& term : o.objects("sum")) {
      objective.terms.emplace_back(term.number("weight"), parseObjective(term.object("objective")));
    }
    TS_CHECK(!objective.terms.empty(), code::kInvalidArgument, "a sum objective needs at least one term");
  } else if (o.has("neuron")) {
    objective.kind = ObjectiveKind::kNeuron;
    const RequestReader neuron = o.object("neuron");
    objective.index = neuron.integer("channel", 0, kMaxIndex);
    if (neuron.has("y")) objective.y = neuron.integer("y", 0, kMaxIndex);
    if (neuron.has("x")) objective.x = neuron.integer("x", 0, kMaxIndex);
  } else if (o.has("direction")) {
    objective.kind = ObjectiveKind::kDirection;
    objective.direction = o.tensor("direction");
  } else if (o.has("logit")) {
    objective.kind = ObjectiveKind::kLogit;
    objective.index = o.integer("logit", 0, kMaxIndex);
  } else if (o.has("logitDiff")) {
    objective.kind = ObjectiveKind::kLogitDiff;
    const std::vector<int64_t> pair = o.integers("logitDiff");
    TS_CHECK(pair.size() == 2 && pair[0] >= 0 && pair[1] >= 0, code::kInvalidArgument, "logitDiff is [a, b]: two classes");
    objective.index = pair[0];
    objective.other = pair[1];
  } else if (o.has("logProb")) {
    objective.kind = ObjectiveKind::kLogProb;
    objective.index = o.integer("logProb", 0, kMaxIndex);
  } else if (o.has("target")) {
    objective.kind = ObjectiveKind::kTarget;
    objective.index = o.integer("target", 0, kMaxIndex);
  } else {
    objective.kind = ObjectiveKind::kChannel;
    objective.index = o.integer("channel", 0, kMaxIndex);
  }
  if (o.has("position")) objective.position = o.integer("position", -kMaxIndex, kMaxIndex);
  return objective;
}

}  // namespace

ObjectiveSpec parseObjectiveSpec(const RequestReader& request) {
  ObjectiveSpec spec;
  spec.layer = request.string("layer");
  for (const RequestReader& objective : request.objects("objectives")) spec.objectives.push_back(parseObjective(objective));
  TS_CHECK(!spec.objectives.empty(), code::kInvalidArgument, "objective: expected at least one");
  TS_CHECK(!spec.needsLayer() || !spec.layer.empty(), code::kInvalidArgument, "this objective reads a layer: give its layer");
  return spec;
}

}  // namespace torchscope
