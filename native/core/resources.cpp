#include "core/resources.h"

#include <c10/core/Allocator.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>

#include "core/errors.h"

namespace torchscope {

uint64_t physicalMemoryBytes() {
  static const uint64_t bytes = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  return bytes;
}

namespace {

// The first number of a one-line file (cgroup's "max" and a missing file give nullopt).
std::optional<uint64_t> readNumber(const char* path) {
  std::ifstream file(path);
  uint64_t value = 0;
  if (file >> value) return value;
  return std::nullopt;
}

// What this process's cgroup still allows it, under cgroup v2 or v1; nullopt when unlimited.
std::optional<uint64_t> cgroupRoomBytes() {
  const std::pair<const char*, const char*> files[] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"}};
  for (const auto& [limitFile, usageFile] : files) {
    const auto limit = readNumber(limitFile);
    if (!limit || *limit >= physicalMemoryBytes()) continue;  // v1 writes "unlimited" as a huge number
    return *limit - std::min(*limit, readNumber(usageFile).value_or(0));
  }
  return std::nullopt;
}

}  // namespace

uint64_t availableMemoryBytes() {
  uint64_t available = physicalMemoryBytes();
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") {
      available = std::min(available, kib * 1024);
      break;
    }
  }
  if (const auto room = cgroupRoomBytes()) available = std::min(available, *room);
  return available;
}

void checkFits(uint64_t bytes, const std::string& what) {
  const uint64_t available = availableMemoryBytes();
  if (bytes <= available) return;
  char text[160];
  std::snprintf(text, sizeof text, " needs %.1f GiB; %.1f GiB of memory is available", static_cast<double>(bytes) / (1 << 30),
                static_cast<double>(available) / (1 << 30));
  TS_FAIL(code::kOutOfMemory, what + text);
}

struct AllocationPeakMeter::Reporter : c10::MemoryReportingInfoBase {
  std::atomic<int64_t> held{0}, peak{0};
  void reportMemoryUsage(void*, int64_t bytes, size_t, size_t, c10::Device device) override {
    if (!device.is_cpu()) return;
    const int64_t now = held.fetch_add(bytes) + bytes;
    int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
};

AllocationPeakMeter::AllocationPeakMeter()
    : reporter_(std::make_shared<Reporter>()), guard_(c10::DebugInfoKind::PROFILER_STATE, reporter_) {}

uint64_t AllocationPeakMeter::peakBytes() const { return static_cast<uint64_t>(std::max<int64_t>(0, reporter_->peak.load())); }

int64_t moduleBytes(const torch::jit::Module& module, const std::map<std::string, at::Tensor>& owned) {
  // Another model's storages are counted there.
  std::set<const void*> seen;
  for (const auto& entry : owned) {
    if (entry.second.defined() && entry.second.has_storage()) seen.insert(entry.second.storage().data());
  }
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
