#include "torchscript/sae_ops.h"

#include <torch/library.h>

#include "core/errors.h"

namespace torchscope {

namespace {

using Object = c10::intrusive_ptr<SaeObject>;

// torchscope's errors cross the TorchScript interpreter, which rewraps every exception: the
// "torchscope:CODE: " prefix carries the code through (core/errors.cpp takes it off), as the patch
// operator's do.
template <typename Fn>
at::Tensor tagged(Fn fn) {
  try {
    return fn();
  } catch (const Error& e) {
    TORCH_CHECK(false, "torchscope:", e.code(), ": ", e.what());
  }
}

at::Tensor pre(const Object& sae, const at::Tensor& x) {
  return tagged([&] { return sae->sae->featuresPre(x); });
}
at::Tensor features(const Object& sae, const at::Tensor& pre, const at::Tensor& x) {
  return tagged([&] { return sae->sae->features(pre, x); });
}
at::Tensor decode(const Object& sae, const at::Tensor& features, const at::Tensor& x) {
  return tagged([&] { return sae->sae->decode(features, x); });
}
at::Tensor error(const Object& sae, const at::Tensor& x, const at::Tensor& target) {
  return tagged([&] { return sae->sae->errorTerm(x, target); });
}
at::Tensor errorOf(const at::Tensor& clean, const at::Tensor& target) { return target - clean.detach(); }
at::Tensor output(const at::Tensor& decoded, const std::optional<at::Tensor>& error, const at::Tensor& target) {
  return (error ? decoded + *error : decoded).to(target.scalar_type());
}

}  // namespace

c10::TypePtr saeObjectType() { return c10::getCustomClassType<Object>(); }

// A fragment: torchscope's library itself is defined with the patch operator (program/patch.cpp).
TORCH_LIBRARY_FRAGMENT(torchscope, m) {
  m.class_<SaeObject>("SparseAutoencoder");
  m.def("sae_pre(__torch__.torch.classes.torchscope.SparseAutoencoder sae, Tensor x) -> Tensor", &pre);
  m.def("sae_features(__torch__.torch.classes.torchscope.SparseAutoencoder sae, Tensor pre, Tensor x) -> Tensor", &features);
  m.def("sae_decode(__torch__.torch.classes.torchscope.SparseAutoencoder sae, Tensor features, Tensor x) -> Tensor", &decode);
  m.def("sae_error(__torch__.torch.classes.torchscope.SparseAutoencoder sae, Tensor x, Tensor target) -> Tensor", &error);
  m.def("sae_error_of(Tensor output, Tensor target) -> Tensor", &errorOf);
  m.def("sae_output(Tensor decoded, Tensor? error, Tensor target) -> Tensor", &output);
}

}  // namespace torchscope
