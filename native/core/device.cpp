#include "core/device.h"

#include <torch/cuda.h>
#include <torch/version.h>
#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include "core/cpu_features.h"
#include "core/errors.h"
#include "model/module_calls.h"
#include "program/patch.h"
#include "program/precision.h"

namespace torchscope {

c10::Device resolveDevice(const std::string& name) {
  const bool cudaAvailable = torch::cuda::is_available();
  if (name == "auto") return cudaAvailable ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (name != "cpu" && name.rfind("cuda", 0) != 0) {
    throw Error(code::kDevice, "unknown device '" + name + "': use 'cpu', 'cuda', 'cuda:N' or 'auto'");
  }
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    throw Error(code::kDevice, "malformed device '" + name + "': use 'cpu', 'cuda', 'cuda:N' or 'auto'");
  }
  if (device.is_cuda()) {
    if (!cudaAvailable) {
      // hasCUDA() means "a GPU is usable"; isBuilt() means "CUDA compiled in".
      const char* why = at::detail::getCUDAHooks().isBuilt() ? "no GPU is visible" : "this libtorch build has no CUDA support";
      throw Error(code::kDevice, "device '" + name + "' requested but CUDA is not available (" + why +
                                     "); use 'cpu' or 'auto'");
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t index = device.has_index() ? device.index() : 0;
    if (index >= count) {
      throw Error(code::kDevice, "device '" + name + "' does not exist: " + std::to_string(count) +
                                     " GPU(s) visible");
    }
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return device;
}

std::string deviceName(const c10::Device& device) { return device.str(); }

// The libtorch version this addon was compiled against, readable from the file without loading
// it: lib/libtorch.ts scans the binary for this line to refuse a different libtorch before the
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
  return entryPoint(info.Env(), code::kDevice, [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); });
}

Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kDevice, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
  });
}

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal, [&]() -> Napi::Value { return describeBuild(info.Env()); });
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
  out.Set("patchModes", modes);
  out.Set("napiVersion", NAPI_VERSION);
  out.Set("inputSuffix", kInputSuffix);
  Napi::Array precisions = Napi::Array::New(env);
  for (Precision p : {Precision::kFloat32, Precision::kBFloat16, Precision::kFloat16}) precisions.Set(precisions.Length(), precisionName(p));
  out.Set("precisions", precisions);
  return out;
}

Napi::Value constants(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal, [&]() -> Napi::Value { return constantsObject(info.Env()); });
}

}  // namespace

Napi::Object deviceExports(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaIsAvailable", Napi::Function::New(env, cudaIsAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, cudaDeviceCount));
  exports.Set("buildInfo", Napi::Function::New(env, buildInfo));
  exports.Set("constants", Napi::Function::New(env, constants));
  return exports;
}

}  // namespace torchscope
