// The JS face of a sparse autoencoder (sae/sae.h): created from a spec whose tensors lib/sae/
// read and checked, it encodes, decodes and reconstructs off the JS thread, and is handed to run
// requests to be spliced into a model's program. Its weights' memory is reported to V8.
#pragma once

#include <napi.h>

#include <memory>

#include "sae/sae.h"

namespace torchscope {

class SaeHandle : public Napi::ObjectWrap<SaeHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  // The SAE behind a JS handle; throws a JS error (DISPOSED / INVALID_ARGUMENT) otherwise.
  static std::shared_ptr<const Sae> unwrap(Napi::Value value);

  explicit SaeHandle(const Napi::CallbackInfo& info);
  ~SaeHandle() override;

 private:
  // [async] create({ architecture, normalization, applyBDecToInput, reshapeHeads, k,
  //   rescaleByDecoderNorm, tensors: { W_enc, b_enc?, W_dec, b_dec, threshold?, b_gate?, b_mag?,
  //   r_mag?, W_skip? } }) -> SaeHandle
  static Napi::Value create(const Napi::CallbackInfo& info);
  // [async] encode(x) -> { featuresPre, features }
  Napi::Value encode(const Napi::CallbackInfo& info);
  // [async] decode(features, x?) -> Tensor
  Napi::Value decode(const Napi::CallbackInfo& info);
  // [async] forward(x) -> Tensor, the reconstruction
  Napi::Value forward(const Napi::CallbackInfo& info);
  // [async] errorTerm(x) -> x - forward(x)
  Napi::Value errorTerm(const Napi::CallbackInfo& info);
  // [async] weight(name) -> the SAE's tensor `name` ('W_dec', ...), on the CPU; null when it has none
  Napi::Value weight(const Napi::CallbackInfo& info);
  // [sync] frees the weights once calls in flight finish; later calls reject DISPOSED. Idempotent.
  Napi::Value dispose(const Napi::CallbackInfo& info);

  // Queues `compute` on the compute thread with info[0] (and info[1], when given) on the SAE's
  // device, under no_grad: the one shape of encode, decode, forward and errorTerm.
  using Computation = c10::IValue (*)(const Sae&, const at::Tensor&, const at::Tensor&);
  Napi::Value queueOnInputs(const Napi::CallbackInfo& info, Computation compute);
  std::shared_ptr<const Sae> live(Napi::Env env) const;
  void release();

  std::shared_ptr<const Sae> sae_;
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace torchscope
