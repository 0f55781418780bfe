// What the addon and its libtorch are and can do, and the constants lib/ is checked against:
// torch.info(), torch.cuda.*, test/constants.test.ts (all synchronous: no tensor work).
#include "bindings/info.h"

#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "bindings/js_errors.h"
#include "core/cpu_features.h"
#include "core/device.h"
#include "core/names.h"
#include "program/patch.h"
#include "program/precision.h"
#include "torchscript/module_calls.h"

namespace torchscope {

// The libtorch version this addon was compiled against, readable from the file without loading
// it: lib/native/libtorch.ts scans the binary for this line to refuse a different libtorch before the
// dynamic loader binds symbols (a mismatched addon may load and then fail on its first op).
// `used` keeps it through --gc-sections and strip.
extern "C" __attribute__((used)) const char torchscope_build_stamp[] = "TORCHSCOPE_BUILD libtorch=" TORCH_VERSION ";";

namespace {

Napi::Value describeBuild(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("libtorchVersion", TORCH_VERSION);
  out.Set("cudaBuild", Napi::Boolean::New(env, at::detail::getCUDAHooks().isBuilt()));
  out.Set("cudaAvailable", Napi::Boolean::New(env, torch::cuda::is_available()));
  out.Set("gpuCount", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  out.Set("threads", Napi::Number::New(env, at::get_num_threads()));
  out.Set("parallelInfo", at::get_parallel_info());
  const CpuFeatures& cpu = cpuFeatures();
  out.Set("cpuCapability", cpu.aten);
  out.Set("cpuOnednn", cpu.onednn);
  out.Set("cpuBf16", Napi::Boolean::New(env, cpu.bf16));
  out.Set("cpuFp16", Napi::Boolean::New(env, cpu.fp16));
  return out;
}

Napi::Value cudaIsAvailable(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kDevice,
                    [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); });
}

Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kDevice,
                    [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count())); });
}

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal, [&]() -> Napi::Value { return describeBuild(info.Env()); });
}

template <typename T, size_t N>
Napi::Array names(Napi::Env env, const std::array<Named<T>, N>& table) {
  Napi::Array out = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; ++i) out.Set(static_cast<uint32_t>(i), table[i].name);
  return out;
}

// The addon's shared constants, for lib/ to be checked against (test/constants.test.ts).
Napi::Object constantsObject(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Array codes = Napi::Array::New(env);
  for (const char* code : kAllCodes) codes.Set(codes.Length(), code);
  out.Set("errorCodes", codes);
  Napi::Object modes = Napi::Object::New(env);
  modes.Set("set", static_cast<double>(kPatchSet));
  modes.Set("zero", static_cast<double>(kPatchZero));
  modes.Set("add", static_cast<double>(kPatchAdd));
  modes.Set("scale", static_cast<double>(kPatchScale));
  modes.Set("project", static_cast<double>(kPatchProject));
  out.Set("patchModes", modes);
  out.Set("napiVersion", NAPI_VERSION);
  out.Set("inputSuffix", kInputSuffix);
  out.Set("patternSuffix", kPatternSuffix);
  out.Set("nodeSeparator", std::string(1, kNodeSeparator));
  Napi::Array stages = Napi::Array::New(env);
  for (const char* stage : {kSaeFeaturesPreSuffix, kSaeFeaturesSuffix, kSaeReconstructionSuffix, kSaeErrorSuffix})
    stages.Set(stages.Length(), stage);
  out.Set("saeStages", stages);
  // Every enumeration whose names cross the boundary (core/names.h), by name.
  out.Set("precisions", names(env, kPrecisions));
  out.Set("dtypes", names(env, kDtypes));
  out.Set("attributionMethods", names(env, kAttributionMethods));
  out.Set("integrations", names(env, kIntegrations));
  out.Set("noiseTypes", names(env, kNoiseTypes));
  out.Set("upsampleModes", names(env, kUpsampleModes));
  out.Set("parameterizations", names(env, kParameterizations));
  out.Set("imageRanges", names(env, kImageRanges));
  out.Set("transformKinds", names(env, kTransformKinds));
  out.Set("sweepMethods", names(env, kSweepMethods));
  out.Set("objectiveKinds", names(env, kObjectiveKinds));
  out.Set("saeArchitectures", names(env, kSaeArchitectures));
  out.Set("saeNormalizations", names(env, kSaeNormalizations));
  out.Set("saeTrainArchitectures", names(env, kSaeTrainArchitectures));
  out.Set("lrSchedulers", names(env, kLrSchedulers));
  out.Set("jumpReluSparsityLosses", names(env, kJumpReluSparsityLosses));
  out.Set("probeKinds", names(env, kProbeKinds));
  out.Set("probeMulticlass", names(env, kProbeMulticlass));
  return out;
}

Napi::Value constants(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal, [&]() -> Napi::Value { return constantsObject(info.Env()); });
}

}  // namespace

Napi::Object infoExports(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaIsAvailable", Napi::Function::New(env, cudaIsAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, cudaDeviceCount));
  exports.Set("buildInfo", Napi::Function::New(env, buildInfo));
  exports.Set("constants", Napi::Function::New(env, constants));
  return exports;
}

}  // namespace torchscope
