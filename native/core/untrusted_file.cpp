#include "core/untrusted_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "core/errors.h"
#include "core/resources.h"

namespace torchscope {

void refuseModelFile(const std::string& path, const std::string& why) { TS_FAIL(code::kModelLoad, "'" + path + "': " + why); }

ModelFileReader::ModelFileReader(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer before the check refuses it.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) refuseModelFile(path, std::string("cannot open it: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd_);
    refuseModelFile(path, "not a regular file (a directory, FIFO, socket or device): only model files are read");
  }
  size_ = static_cast<size_t>(info.st_size);
}

ModelFileReader::~ModelFileReader() { ::close(fd_); }

size_t ModelFileReader::read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

// Inflated sizes come from the zip directory, so a bomb is refused before anything inflates.
void checkInflation(const std::string& path, caffe2::serialize::PyTorchStreamReader& reader, uint64_t fileBytes,
                    uint64_t maxInflatedBytes) {
  const uint64_t limit = maxInflatedBytes > 0 ? maxInflatedBytes : std::min<uint64_t>(4 * fileBytes + (64ull << 20), physicalMemoryBytes());
  uint64_t total = 0;
  for (const std::string& record : reader.getAllRecords()) {
    total += reader.getRecordSize(record);
    if (total > limit) {
      refuseModelFile(path, "its records inflate to more than " + std::to_string(limit) + " bytes (the file has " +
                                std::to_string(fileBytes) +
                                "): refused as a possible zip bomb. If the file is genuine, raise "
                                "the bound: load(path, { maxInflatedBytes })");
    }
  }
}

bool fitsStorage(c10::IntArrayRef sizes, c10::IntArrayRef strides, int64_t offset, size_t elementSize, uint64_t storageBytes) {
  if (sizes.size() != strides.size() || offset < 0) return false;
  for (int64_t size : sizes) {
    if (size < 0) return false;
    if (size == 0) return true;
  }
  // The last element's byte offset, in overflow-checked arithmetic.
  uint64_t last = 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (strides[d] < 0) return false;
    uint64_t step = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(sizes[d] - 1), static_cast<uint64_t>(strides[d]), &step) ||
        __builtin_add_overflow(last, step, &last)) {
      return false;
    }
  }
  uint64_t end = 0;
  if (__builtin_add_overflow(last, static_cast<uint64_t>(offset) + 1, &end) || __builtin_mul_overflow(end, elementSize, &end)) return false;
  return end <= storageBytes;
}

std::optional<std::string> refusedOperatorEffect(const std::string& op) {
  // Namespaces first (every operator in them), then single operators.
  static const std::map<std::string, std::string> namespaces = {
      {"c10d", "distributed communication (network I/O)"},
      {"_c10d_functional", "distributed communication (network I/O)"},
      {"_c10d_functional_autograd", "distributed communication (network I/O)"},
      {"_dtensor", "distributed communication (network I/O)"},
      {"symm_mem", "distributed communication (network I/O)"},
      {"inductor", "compiler internals that reinterpret memory unchecked"},
      {"inductor_prims", "compiler internals"},
      {"debugprims", "reads tensors from files"},
  };
  static const std::map<std::string, std::string> operators = {
      {"aten::save", "writes files"},
      {"aten::from_file", "reads and maps files (shared=True writes them)"},
      {"aten::manual_seed", "reseeds the process-wide random generator"},
      {"aten::seed", "reseeds the process-wide random generator"},
      {"aten::_cufft_set_plan_cache_max_size", "changes process-wide CUDA settings"},
      {"aten::_cufft_clear_plan_cache", "changes process-wide CUDA settings"},
  };
  if (auto found = operators.find(op); found != operators.end()) return found->second;
  if (auto found = namespaces.find(op.substr(0, op.find("::"))); found != namespaces.end()) return found->second;
  return std::nullopt;
}

}  // namespace torchscope
