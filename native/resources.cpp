#include "resources.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "errors.h"

namespace torchscope {

uint64_t physicalMemoryBytes() {
  static const uint64_t bytes = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  return bytes;
}

void checkFits(uint64_t bytes, const std::string& what) {
  if (bytes <= physicalMemoryBytes()) return;
  char text[160];
  std::snprintf(text, sizeof text, " needs %.1f GiB; this machine has %.1f GiB of memory", static_cast<double>(bytes) / (1 << 30),
                static_cast<double>(physicalMemoryBytes()) / (1 << 30));
  throw Error(code::kOutOfMemory, what + text);
}

uint64_t heapInUseBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

int64_t moduleBytes(const torch::jit::Module& module) {
  std::set<const void*> seen;
  int64_t total = 0;
  auto count = [&](const at::Tensor& tensor) {
    if (!tensor.defined() || !tensor.device().is_cpu() || !tensor.has_storage()) return;
    if (seen.insert(tensor.storage().data()).second) total += static_cast<int64_t>(tensor.storage().nbytes());
  };
  for (const auto& attribute : module.named_attributes(/*recurse=*/true)) {
    if (attribute.value.isTensor()) count(attribute.value.toTensor());
  }
  return total;
}

}  // namespace torchscope
