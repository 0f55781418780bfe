// What the machine can hold, and the native memory torchscope reports to V8 (so that the
// garbage collector weighs dropped models and tensors by what they really hold).
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <string>

namespace torchscope {

uint64_t physicalMemoryBytes();

// Throws OUT_OF_MEMORY before an allocation of `bytes` that this machine cannot hold at all
// (it would fail, or be killed by the kernel part way): "`what` needs N GiB; this machine has M".
void checkFits(uint64_t bytes, const std::string& what);

// Bytes of the process heap in use (malloc's arenas and its mapped blocks).
uint64_t heapInUseBytes();

// Bytes of the distinct CPU storages behind a module's parameters, buffers and tensor attributes.
int64_t moduleBytes(const torch::jit::Module& module);

}  // namespace torchscope
