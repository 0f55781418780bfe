// Model files are untrusted input, and a TorchScript file is a program: torch::jit::load runs
// its __setstate__ methods while loading and its tensors are views the file describes. Before
// libtorch loads a file, torchscope reads it without running any of it:
//   - it must be a regular file (a FIFO would block the compute thread forever), read through
//     one open descriptor (no swap between the check and the load);
//   - the archive's records may inflate to at most `maxInflatedBytes` in all, read from the zip
//     directory before anything is inflated;
//   - every tensor of the data and constants archives must lie inside its storage, and every
//     storage inside its archive record (a short record would otherwise be read past its end);
//     sparse layouts, which libtorch rebuilds unchecked, are refused;
//   - unless `trusted`, no function of its code (forward, every method, __setstate__) may call
//     an operator with effects outside tensor computation: file, process or network I/O,
//     process-wide state (see kRefusedOperators in model_file.cpp).
// Every failure is MODEL_LOAD with the cause in the message.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <string>

#include "program/program.h"

namespace torchscope {

torch::jit::Module loadModelFile(const std::string& path, const c10::Device& device, const LoadPolicy& policy);

}  // namespace torchscope
