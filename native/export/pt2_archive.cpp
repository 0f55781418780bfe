#include "export/pt2_archive.h"

#include <caffe2/serialize/inline_container.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "core/errors.h"
#include "core/untrusted_file.h"

namespace torchscope {

namespace {

using caffe2::serialize::PyTorchStreamReader;
using Json = nlohmann::json;

constexpr const char* kProgramRecord = "models/model.json";
constexpr const char* kWeightsConfig = "data/weights/model_weights_config.json";
constexpr const char* kConstantsConfig = "data/constants/model_constants_config.json";

std::string recordText(PyTorchStreamReader& reader, const std::string& record) {
  auto [data, size] = reader.getRecord(record);
  return std::string(static_cast<const char*>(data.get()), size);
}

// One tensor of a weights or constants config, on a storage of the archive's.
class TensorBuilder {
 public:
  TensorBuilder(const std::string& path, PyTorchStreamReader& reader, const c10::Device& device)
      : path_(path), reader_(reader), device_(device) {}

  at::Tensor build(const std::string& folder, const std::string& name, const Json& entry) {
    const std::string what = "tensor '" + name + "' of " + folder;
    auto fail = [&](const std::string& why) -> at::Tensor { refuseModelFile(path_, what + ": " + why); };
    if (!entry.is_object()) return fail("expected an object");
    const Json& pickled = entry.value("use_pickle", Json(false));
    if (!pickled.is_boolean() || pickled.get<bool>()) {
      return fail("it is stored pickled (a tensor subclass); torchscope never unpickles a file");
    }
    const Json& file = entry.value("path_name", Json());
    static const std::regex plain("^[A-Za-z0-9_.-]{1,200}$");
    if (!file.is_string() || !std::regex_match(file.get<std::string>(), plain) || file.get<std::string>().find("..") != std::string::npos) {
      return fail("its path_name is not a plain file name");
    }
    const std::string record = folder + "/" + file.get<std::string>();
    if (!reader_.hasRecord(record)) return fail("its storage " + record + " is not in the archive");
    const Json& meta = entry.value("tensor_meta", Json());
    if (!meta.is_object()) return fail("no tensor_meta");
    const Json& dtype = meta.value("dtype", Json());
    if (!dtype.is_number_integer()) return fail("no dtype");
    const auto type = static_cast<c10::ScalarType>(pt2::scalarTypeOf(dtype.get<int64_t>(), path_, what));
    const Json& layout = meta.value("layout", Json(7));
    if (!layout.is_number_integer() || layout.get<int64_t>() != 7) return fail("it is not a strided tensor (sparse layouts are refused)");
    const std::vector<int64_t> sizes = ints(meta.value("sizes", Json()), what + ": sizes");
    const std::vector<int64_t> strides = ints(meta.value("strides", Json()), what + ": strides");
    const std::vector<int64_t> offset = ints(Json::array({meta.value("storage_offset", Json())}), what + ": storage_offset");
    const at::Storage& storage = storageOf(record);
    if (!fitsStorage(sizes, strides, offset[0], c10::elementSize(type), storage.nbytes())) {
      return fail("its shape " + c10::str(c10::IntArrayRef(sizes)) + ", strides " + c10::str(c10::IntArrayRef(strides)) + " and offset " +
                  std::to_string(offset[0]) + " reach past its storage of " + std::to_string(storage.nbytes()) +
                  " bytes: the file is truncated or forged");
    }
    return at::empty({0}, at::TensorOptions().dtype(type).device(storage.device())).set_(storage, offset[0], sizes, strides);
  }

  int64_t bytes() const { return bytes_; }

 private:
  // [{"as_int": n}, ...] (a saved tensor has concrete sizes).
  std::vector<int64_t> ints(const Json& list, const std::string& what) {
    if (!list.is_array()) refuseModelFile(path_, what + " is not a list");
    std::vector<int64_t> values;
    for (const Json& item : list) {
      const Json* value = item.is_object() && item.contains("as_int") ? &item["as_int"] : nullptr;
      if (value == nullptr || !value->is_number_integer()) refuseModelFile(path_, what + " holds something other than an integer");
      values.push_back(value->get<int64_t>());
    }
    return values;
  }

  // Each record once, so tied weights share their storage.
  const at::Storage& storageOf(const std::string& record) {
    auto found = storages_.find(record);
    if (found != storages_.end()) return found->second;
    auto [data, size] = reader_.getRecord(record);
    at::Storage storage(at::Storage::use_byte_size_t(), size, std::move(data), nullptr, /*resizable=*/false);
    if (device_.type() != c10::kCPU) {
      storage = at::empty({0}, at::kByte).set_(storage, 0, {static_cast<int64_t>(size)}, {1}).to(device_).storage();
    }
    bytes_ += static_cast<int64_t>(size);
    return storages_.emplace(record, std::move(storage)).first->second;
  }

  std::string path_;
  PyTorchStreamReader& reader_;
  c10::Device device_;
  std::map<std::string, at::Storage> storages_;
  int64_t bytes_ = 0;
};

// {"config": {name: entry}}; absent when the program has no such tensors.
std::map<std::string, Json> configOf(const std::string& path, PyTorchStreamReader& reader, const std::string& record) {
  std::map<std::string, Json> entries;
  if (!reader.hasRecord(record)) return entries;
  Json json = Json::parse(recordText(reader, record), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("config") || !json["config"].is_object()) {
    refuseModelFile(path, record + " is not a tensor config ({\"config\": {...}})");
  }
  for (auto& [name, entry] : json["config"].items()) entries[name] = entry;
  return entries;
}

}  // namespace

bool isPt2Archive(const std::string& path) {
  try {
    PyTorchStreamReader reader(std::make_shared<ModelFileReader>(path));
    return reader.hasRecord(kProgramRecord) || reader.hasRecord("archive_format");
  } catch (...) {
    return false;
  }
}

Pt2Archive readPt2Archive(const std::string& path, const c10::Device& device, const LoadPolicy& policy) {
  try {
    auto file = std::make_shared<ModelFileReader>(path);
    PyTorchStreamReader reader(file);
    checkInflation(path, reader, file->size(), policy.maxInflatedBytes);
    if (reader.hasRecord("archive_format")) {
      const std::string format = recordText(reader, "archive_format");
      if (format != "pt2") refuseModelFile(path, "its archive_format is '" + format.substr(0, 40) + "', not 'pt2'");
    }
    if (!reader.hasRecord(kProgramRecord)) {
      refuseModelFile(path,
                      "no models/model.json in the archive: a torch.export package holding one program (torch.export.save) "
                      "is read; AOTInductor packages and several programs in one package are not");
    }
    Pt2Archive archive;
    archive.program = pt2::parseExportedProgram(recordText(reader, kProgramRecord), path);
    const auto weights = configOf(path, reader, kWeightsConfig);
    const auto constants = configOf(path, reader, kConstantsConfig);
    TensorBuilder builder(path, reader, device);
    for (const pt2::InputSpec& input : archive.program.inputs) {
      const bool weight = input.kind == pt2::InputSpec::kParameter || (input.kind == pt2::InputSpec::kBuffer && input.persistent);
      const bool constant = input.kind == pt2::InputSpec::kTensorConstant || (input.kind == pt2::InputSpec::kBuffer && !input.persistent);
      if (!weight && !constant) continue;
      const auto& config = weight ? weights : constants;
      auto found = config.find(input.target);
      if (found == config.end()) {
        refuseModelFile(path, std::string(weight ? "the weights" : "the constants") + " of the archive hold no '" + input.target + "'");
      }
      archive.tensors[input.name] = builder.build(weight ? "data/weights" : "data/constants", input.target, found->second);
    }
    archive.bytes = builder.bytes();
    return archive;
  } catch (const Error& e) {
    if (std::string(e.code()) == code::kModelLoad) throw;
    TS_FAIL(code::kModelLoad, "'" + path + "': " + e.what());
  } catch (...) {
    ErrorInfo info = describeException(std::current_exception(), code::kModelLoad);
    TS_FAIL(code::kModelLoad, "could not load '" + path + "': " + info.message);
  }
}

}  // namespace torchscope
