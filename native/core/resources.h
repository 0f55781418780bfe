// What the machine can hold, and the native memory torchscope reports to V8 (so that the
// garbage collector weighs dropped models and tensors by what they really hold).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <map>
#include <string>

namespace torchscope {

uint64_t physicalMemoryBytes();

// Bytes a new allocation can take now: the kernel's MemAvailable, and no more than what this
// process's cgroup limit leaves (the total of a container's host is not what it may use).
uint64_t availableMemoryBytes();

// Throws OUT_OF_MEMORY before an allocation of `bytes` that does not fit in the memory
// available now (it would fail, or the kernel would kill the process part way):
// "`what` needs N GiB; M GiB of memory is available".
void checkFits(uint64_t bytes, const std::string& what);

// The most bytes libtorch's CPU allocator held at once for allocations made on this thread
// (and the autograd work it runs) while the meter lives, above what it held when the meter was
// made. Frees on other threads (the JS thread collecting tensors) do not disturb it, as they
// would a process-wide heap figure.
class AllocationPeakMeter {
 public:
  AllocationPeakMeter();
  uint64_t peakBytes() const;

 private:
  struct Reporter;
  std::shared_ptr<Reporter> reporter_;
  c10::DebugInfoGuard guard_;
};

// Bytes of the distinct CPU storages behind a module's parameters, buffers and tensor attributes,
// less those of `owned` (another model's tensors it shares).
int64_t moduleBytes(const torch::jit::Module& module, const std::map<std::string, at::Tensor>& owned = {});

}  // namespace torchscope
