// A sparse autoencoder inside a TorchScript program: the SAE object is a custom class value the
// program takes as an input (one per splice, ProgramNeeds::saes), and each step of its math
// (sae/sae.h) an operator, so the hooks between steps (:featuresPre, :features,
// :reconstruction, :error) are ordinary hook points and autograd flows through them.
#pragma once

#include <torch/custom_class.h>

#include <memory>

#include "sae/sae.h"

namespace torchscope {

struct SaeObject : torch::CustomClassHolder {
  explicit SaeObject(std::shared_ptr<const Sae> sae) : sae(std::move(sae)) {}
  std::shared_ptr<const Sae> sae;
};

// The type of a program input holding one.
c10::TypePtr saeObjectType();

// The operators, by qualified name:
//   sae_pre(sae, x) -> pre                      Sae::featuresPre
//   sae_features(sae, pre, x) -> features       Sae::features
//   sae_decode(sae, features, x) -> output      Sae::decode
//   sae_error(sae, x, target) -> error          Sae::errorTerm (no gradient)
//   sae_error_of(output, target) -> error       target - output, output without gradient: the
//                                               error when `output` is already the clean input's
//   sae_output(output, error?, target) -> value the spliced value: output (+ error), in target's dtype
inline constexpr const char* kSaePreOperator = "torchscope::sae_pre";
inline constexpr const char* kSaeFeaturesOperator = "torchscope::sae_features";
inline constexpr const char* kSaeDecodeOperator = "torchscope::sae_decode";
inline constexpr const char* kSaeErrorOperator = "torchscope::sae_error";
inline constexpr const char* kSaeErrorOfOperator = "torchscope::sae_error_of";
inline constexpr const char* kSaeOutputOperator = "torchscope::sae_output";

}  // namespace torchscope
