// Device names as users write them ('cpu', 'cuda', 'cuda:1', 'auto').
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace torchscope {

// Resolves a device name; 'auto' is the first GPU when one is usable, else the CPU.
// Throws torchscope::Error(DEVICE) for a malformed name or a GPU that is not there.
c10::Device resolveDevice(const std::string& name);

std::string deviceName(const c10::Device& device);

}  // namespace torchscope
