// What every model file format shares in reading untrusted files (torchscript/model_file.h,
// export/pt2_archive.h): one descriptor opened once on a regular file, a zip directory checked
// for bombs before anything inflates, tensors checked against the storage behind them, and the
// operators a model may not call unless loaded with { trusted: true }. Failures are MODEL_LOAD.
#pragma once

#include <c10/util/ArrayRef.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstdint>
#include <optional>
#include <string>

namespace torchscope {

// Throws MODEL_LOAD: "'path': why".
[[noreturn]] void refuseModelFile(const std::string& path, const std::string& why);

// The file, read through one descriptor opened once: what was checked is what is loaded. A
// directory, FIFO, socket or device is refused (a FIFO would block the compute thread forever).
class ModelFileReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit ModelFileReader(const std::string& path);
  ~ModelFileReader() override;
  ModelFileReader(const ModelFileReader&) = delete;
  ModelFileReader& operator=(const ModelFileReader&) = delete;
  size_t size() const override { return size_; }
  // Fewer bytes than asked (a file shrunk under us) make libtorch's reader fail, not crash.
  size_t read(uint64_t pos, void* buf, size_t n, const char* what) const override;

 private:
  int fd_ = -1;
  size_t size_ = 0;
};

// Refuses an archive whose records would inflate to more than `maxInflatedBytes` (0: 4 x the
// file's size + 64 MiB, at most physical memory), read from the zip directory.
void checkInflation(const std::string& path, caffe2::serialize::PyTorchStreamReader& reader, uint64_t fileBytes, uint64_t maxInflatedBytes);

// Whether a strided tensor of these sizes, strides and offset lies inside `storageBytes`
// (overflow-checked); false for a negative stride or offset.
bool fitsStorage(c10::IntArrayRef sizes, c10::IntArrayRef strides, int64_t offset, size_t elementSize, uint64_t storageBytes);

// The effect that makes a model's call of operator `op` ("aten::save", "c10d::broadcast")
// refused unless the file is trusted: file, process or network I/O, process-wide state; nullopt
// for an operator that only computes on tensors.
std::optional<std::string> refusedOperatorEffect(const std::string& op);

}  // namespace torchscope
