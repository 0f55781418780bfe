#include "torchscript/model_file.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <sys/mman.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/import_source.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/errors.h"
#include "core/untrusted_file.h"

namespace torchscope {

namespace jit = torch::jit;
using caffe2::serialize::PyTorchStreamReader;

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) { refuseModelFile(path, why); }

// What a storage of the inspection stands for: the size of its archive record. Its memory is
// zero pages mapped on demand, never the file's bytes: inspection reads no tensor data.
struct RecordView {
  void* data;
  size_t bytes;
};

void releaseRecordView(void* context) {
  auto* view = static_cast<RecordView*>(context);
  if (view->data != nullptr) ::munmap(view->data, view->bytes);
  delete view;
}

class Inspector {
 public:
  Inspector(const std::string& path, PyTorchStreamReader& reader)
      : path_(path),
        reader_(reader),
        cu_(std::make_shared<jit::CompilationUnit>()),
        importer_(
            cu_, &constants_, [this](const std::string& qualifier) { return source(qualifier); }, reader.version()) {}

  void inspect() {
    const c10::IValue constants = unpickle("constants");
    if (!constants.isTuple()) refuse(path_, "its constants.pkl holds no tuple of constants");
    for (const auto& constant : constants.toTupleRef().elements()) {
      checkValue(constant, "a constant", 0);
      constants_.push_back(constant);
    }
    const c10::IValue data = unpickle("data");
    if (!data.isObject()) refuse(path_, "its data.pkl holds no module");
    checkValue(data, "the module", 0);
  }

  // Every function the file's code defines, compiled (not run) while unpickling resolved its
  // classes: the operators it calls.
  void audit() {
    for (jit::Function* function : cu_->get_functions()) {
      if (!function->isGraphFunction()) continue;
      auto graph = jit::toGraphFunction(*function).graph();
      auditBlock(graph->block(), function->qualname().qualifiedName());
    }
  }

 private:
  std::shared_ptr<jit::Source> source(const std::string& qualifier) {
    std::string file = "code/" + qualifier;
    std::replace(file.begin(), file.end(), '.', '/');
    file += ".py";
    if (!reader_.hasRecord(file)) return nullptr;
    auto [data, size] = reader_.getRecord(file);
    return std::make_shared<jit::Source>(std::string_view(static_cast<const char*>(data.get()), size), file, 1);
  }

  c10::IValue unpickle(const std::string& archive) {
    const std::string pickle = archive + ".pkl";
    if (!reader_.hasRecord(pickle)) refuse(path_, "no " + pickle + " in the archive: not a TorchScript file");
    auto [data, size] = reader_.getRecord(pickle);
    size_t position = 0;
    auto read = [&, bytes = static_cast<const char*>(data.get())](char* buffer, size_t length) -> size_t {
      length = std::min(length, size - position);
      std::memcpy(buffer, bytes + position, length);
      position += length;
      return length;
    };
    auto resolveType = [this](const c10::QualifiedName& name) { return c10::StrongTypePtr(cu_, importer_.loadType(name)); };
    // Objects are built without running __setstate__: their state is checked instead.
    auto loadObject = [this](const at::StrongTypePtr& type, c10::IValue state) {
      auto cls = type.type_->expect<c10::ClassType>();
      checkValue(state, "the state of a " + cls->name()->qualifiedName(), 0);
      auto object = c10::ivalue::Object::create(type, cls->numAttributes());
      if (cls->findMethod("__setstate__") == nullptr && state.isGenericDict()) {
        const auto dict = state.toGenericDict();
        for (size_t i = 0; i < cls->numAttributes(); ++i) {
          auto found = dict.find(cls->getAttributeName(i));
          if (found != dict.end()) object->setSlot(i, found->value());
        }
      }
      return object;
    };
    auto readRecord = [this, archive](const std::string& key) { return recordView(archive + "/" + key); };
    jit::Unpickler unpickler(read, resolveType, loadObject, readRecord, c10::Device(c10::kCPU));
    unpickler.set_version(reader_.version());
    return unpickler.parse_ivalue();
  }

  at::DataPtr recordView(const std::string& record) {
    auto* view = new RecordView{nullptr, reader_.getRecordSize(record)};
    if (view->bytes > 0) {
      void* pages = ::mmap(nullptr, view->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (pages == MAP_FAILED) {
        delete view;
        refuse(path_, "record " + record + " is too large to map");
      }
      view->data = pages;
    }
    return at::DataPtr(view->data, view, &releaseRecordView, c10::Device(c10::kCPU));
  }

  void checkValue(const c10::IValue& value, const std::string& what, int depth) {
    if (depth > 256) refuse(path_, what + " is nested deeper than 256 levels");
    if (value.isTensor()) {
      checkTensor(value.toTensor(), what);
    } else if (value.isTuple()) {
      for (const auto& item : value.toTupleRef().elements()) checkValue(item, what, depth + 1);
    } else if (value.isList()) {
      for (const auto& item : value.toListRef()) checkValue(item, what, depth + 1);
    } else if (value.isGenericDict()) {
      for (const auto& entry : value.toGenericDict()) {
        checkValue(entry.key(), what, depth + 1);
        checkValue(entry.value(), what, depth + 1);
      }
    } else if (value.isObject()) {
      const auto object = value.toObject();
      for (size_t i = 0; i < object->slots().size(); ++i) checkValue(object->getSlot(i), what, depth + 1);
    }
  }

  // The tensor's elements lie in its storage, and its storage in the record behind it.
  void checkTensor(const at::Tensor& tensor, const std::string& what) {
    if (!tensor.defined()) return;
    if (tensor.layout() != c10::kStrided) {
      refuse(path_, what + " holds a " + c10::str(tensor.layout()) +
                        " tensor: libtorch rebuilds those unchecked, so torchscope does not load them");
    }
    const at::Storage& storage = tensor.storage();
    const at::DataPtr& data = storage.data_ptr();
    const size_t recordBytes = data.get_deleter() == &releaseRecordView ? static_cast<RecordView*>(data.get_context())->bytes : 0;
    if (storage.nbytes() > recordBytes) {
      refuse(path_, what + " has a storage of " + std::to_string(storage.nbytes()) + " bytes backed by a record of " +
                        std::to_string(recordBytes) + ": the file is truncated or forged");
    }
    if (!fitsStorage(tensor.sizes(), tensor.strides(), tensor.storage_offset(), tensor.element_size(), storage.nbytes())) {
      refuse(path_, what + " has a tensor of shape " + c10::str(tensor.sizes()) + ", strides " + c10::str(tensor.strides()) +
                        " and offset " + std::to_string(tensor.storage_offset()) + " that reaches past its storage of " +
                        std::to_string(storage.nbytes()) + " bytes");
    }
  }

  void auditBlock(jit::Block* block, const std::string& function) {
    for (jit::Node* node : block->nodes()) {
      const std::string op = node->kind().toQualString();
      if (auto effect = refusedOperatorEffect(op)) refuseCode(function, op, *effect);
      if (node->kind() == c10::prim::CallMethod) {
        // Methods of C++ classes (torch.classes.<namespace>.<Class>) fall under their namespace.
        if (auto cls = node->input(0)->type()->cast<c10::ClassType>(); cls && cls->name()) {
          const std::string name = cls->name()->qualifiedName();
          static const std::string prefix = "__torch__.torch.classes.";
          if (name.rfind(prefix, 0) == 0) {
            const std::string classNamespace = name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size());
            if (auto effect = refusedOperatorEffect(classNamespace + "::"))
              refuseCode(function, name + "." + node->s(c10::attr::name), *effect);
          }
        }
      }
      for (jit::Block* nested : node->blocks()) auditBlock(nested, function);
      // torch.jit.fork and closures carry their code as a subgraph attribute.
      if (node->hasAttribute(c10::attr::Subgraph)) auditBlock(node->g(c10::attr::Subgraph)->block(), function);
    }
  }

  [[noreturn]] void refuseCode(const std::string& function, const std::string& op, const std::string& effect) {
    refuse(path_, "its code calls " + op + " (" + effect + ") in " + function +
                      ". A TorchScript file is a program; torchscope does not run one whose code has effects outside "
                      "tensor computation. If you trust this file: load(path, { trusted: true })");
  }

  std::string path_;
  PyTorchStreamReader& reader_;
  std::shared_ptr<jit::CompilationUnit> cu_;
  std::vector<c10::IValue> constants_;
  jit::SourceImporter importer_;
};

// Compiling the file's code while inspecting it (before any of it runs) met an operator no
// library in this process registered: refuse, naming it and the method that calls it (the
// compiler's message points at a line of the file's code; its `def` is read from there).
// Other compile errors go on as they are.
void refuseUnknownOperator(const std::string& path, PyTorchStreamReader& reader, const std::string& message) {
  static const std::regex unknown("Unknown builtin op: ([A-Za-z0-9_]+::[A-Za-z0-9_]+)");
  static const std::regex location("File \"(code/[^\"]+)\", line ([0-9]+)");
  std::smatch op, where;
  if (!std::regex_search(message, op, unknown)) return;
  std::string method = "a method of its code";
  if (std::regex_search(message, where, location) && reader.hasRecord(where[1].str())) {
    const auto [data, size] = reader.getRecord(where[1].str());
    std::istringstream code(std::string(static_cast<const char*>(data.get()), size));
    static const std::regex definition("^\\s*(def|class) ([A-Za-z0-9_]+)");
    const long lineOfCall = std::stol(where[2].str());
    std::string cls, def, line;
    std::smatch found;
    for (long n = 1; n <= lineOfCall && std::getline(code, line); ++n) {
      if (!std::regex_search(line, found, definition)) continue;
      if (found[1] == "class") cls = found[2].str();
      else def = found[2].str();
    }
    if (!def.empty()) method = "the method " + (cls.empty() ? def : cls + "." + def) + " (" + where[1].str() + ")";
  }
  refuse(path, "its code calls " + op[1].str() + " in " + method +
                   ", an operator of a namespace this process has not registered (its library is not loaded), so none "
                   "of the file was run; { trusted: true } would not load it either. " +
                   message);
}

jit::Module load(const std::string& path, const c10::Device& device, const LoadPolicy& policy) {
  auto file = std::make_shared<ModelFileReader>(path);
  // torch.save() pickles start with the pickle protocol 2 marker; zip archives with a file entry.
  uint8_t start[2] = {0, 0};
  if (file->read(0, start, 2, "checking the archive") == 2 && start[0] == 0x80 && start[1] == 0x02) {
    refuse(path,
           "a torch.save() pickle, not a TorchScript file: export with torch.jit.trace or torch.jit.script, then "
           "torch.jit.save");
  }
  {
    PyTorchStreamReader reader(file);
    if (reader.hasRecord("model.json")) {
      refuse(path,
             "the pre-1.4 TorchScript format (model.json), which torchscope does not inspect: re-save it with a "
             "current PyTorch");
    }
    checkInflation(path, reader, file->size(), policy.maxInflatedBytes);
    Inspector inspector(path, reader);
    try {
      inspector.inspect();
    } catch (const std::exception&) {
      refuseUnknownOperator(path, reader, describeException(std::current_exception(), code::kModelLoad).message);
      throw;
    }
    if (!policy.trusted) inspector.audit();
  }
  // Debug pickles (source ranges of the original Python) are not read: less untrusted input.
  jit::ExtraFilesMap extraFiles;
  return jit::load(file, device, extraFiles, /*load_debug_files=*/false);
}

}  // namespace

jit::Module loadModelFile(const std::string& path, const c10::Device& device, const LoadPolicy& policy) {
  try {
    return load(path, device, policy);
  } catch (const Error& e) {
    if (std::string(e.code()) == code::kModelLoad) throw;
    TS_FAIL(code::kModelLoad, "'" + path + "': " + e.what());
  } catch (...) {
    ErrorInfo info = describeException(std::current_exception(), code::kModelLoad);
    TS_FAIL(code::kModelLoad, "could not load '" + path + "': " + info.message);
  }
}

}  // namespace torchscope
