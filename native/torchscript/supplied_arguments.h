// Arguments a module's traced forward takes from its caller although they are not the caller's
// inputs: a weight tied to another module's (a Hugging Face head tied to the embedding: the
// trace gives lm_head forward(self, weight, input)), a table computed once from constants. A
// module called alone (model.call, a logit lens head) gets those from its caller's graph, found
// at the first call of it there; arguments that the caller computes from forward's inputs
// (rotary tables, masks) are the caller's to give, and said so.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "program/program.h"

namespace torchscope {

class SuppliedArguments {
 public:
  // `module` is the whole model; `path` a submodule with a forward.
  SuppliedArguments(const torch::jit::Module& module, const std::string& path);

  // forward's arguments after self, each with where its value comes from.
  const std::vector<SubmoduleArgument>& arguments() const { return arguments_; }
  // forward's stack (self first) from the caller's `inputs`, which fill the arguments not
  // supplied, in order; trailing ones may be left to their defaults. INVALID_ARGUMENT naming
  // what is missing or too much.
  torch::jit::Stack stack(const std::string& path, std::vector<c10::IValue> inputs);

 private:
  torch::jit::Module self_;
  std::vector<SubmoduleArgument> arguments_;
  std::vector<std::optional<c10::IValue>> defaults_;
  // Computes the supplied arguments from the calling module (its only input), once.
  std::shared_ptr<torch::jit::Graph> supplier_;
  torch::jit::Module caller_;
  std::mutex mutex_;
  bool computed_ = false;
  std::vector<c10::IValue> supplied_;
};

}  // namespace torchscope
