// A `.pt2` archive (torch.export.save) read as untrusted input, without unpickling anything:
// models/model.json parsed (pt2_schema.h), and the parameters, buffers and constants it names
// built from the raw storages under data/: every storage read from its own record, every
// tensor checked against it, tied weights sharing one storage as they did when saved.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "export/pt2_schema.h"
#include "program/program.h"

namespace torchscope {

struct Pt2Archive {
  pt2::ExportedProgram program;
  // The program's tensor inputs that the archive holds, by graph input name ("p_fc_weight").
  std::map<std::string, at::Tensor> tensors;
  int64_t bytes = 0;
};

// Whether `path` is a torch.export archive (false for anything else, a TorchScript file
// included; nothing is refused here).
bool isPt2Archive(const std::string& path);

// Reads it onto `device`. Throws MODEL_LOAD with the cause.
Pt2Archive readPt2Archive(const std::string& path, const c10::Device& device, const LoadPolicy& policy);

}  // namespace torchscope
