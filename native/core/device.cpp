#include "core/device.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>

#include "core/errors.h"

namespace torchscope {

c10::Device resolveDevice(const std::string& name) {
  const bool cudaAvailable = torch::cuda::is_available();
  if (name == "auto") return cudaAvailable ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (name != "cpu" && name.rfind("cuda", 0) != 0) {
    TS_FAIL(code::kDevice, "unknown device '" + name + "': use 'cpu', 'cuda', 'cuda:N' or 'auto'");
  }
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    TS_FAIL(code::kDevice, "malformed device '" + name + "': use 'cpu', 'cuda', 'cuda:N' or 'auto'");
  }
  if (device.is_cuda()) {
    if (!cudaAvailable) {
      // hasCUDA() means "a GPU is usable"; isBuilt() means "CUDA compiled in".
      const char* why = at::detail::getCUDAHooks().isBuilt() ? "no GPU is visible" : "this libtorch build has no CUDA support";
      TS_FAIL(code::kDevice, "device '" + name + "' requested but CUDA is not available (" + why + "); use 'cpu' or 'auto'");
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t index = device.has_index() ? device.index() : 0;
    if (index >= count) {
      TS_FAIL(code::kDevice, "device '" + name + "' does not exist: " + std::to_string(count) + " GPU(s) visible");
    }
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return device;
}

std::string deviceName(const c10::Device& device) { return device.str(); }

}  // namespace torchscope
