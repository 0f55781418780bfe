// The JS face of a fitted linear probe (methods/probe.h): fitted off the JS thread from a
// request lib/probe/ checked, it predicts, gives probabilities and scores off the JS thread.
// Its parameters' memory is reported to V8.
#pragma once

#include <napi.h>

#include <memory>

#include "methods/probe.h"

namespace torchscope {

class ProbeHandle : public Napi::ObjectWrap<ProbeHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);

  explicit ProbeHandle(const Napi::CallbackInfo& info);
  ~ProbeHandle() override;

 private:
  // [async] fit({ kind, multiclass, l2, fitIntercept, maxIterations, tolerance, iid, classes, x,
  //   labels, rows? }, cancelToken?) -> { probe: ProbeHandle, weight, bias, direction (null for a
  //   row per class), iterations, converged }, the tensors float64 on the CPU. `rows` picks the
  //   rows of x and labels fitted on.
  static Napi::Value fit(const Napi::CallbackInfo& info);
  // [async] predict(x) -> class ids (int64) or values (float64), on the CPU
  Napi::Value predict(const Napi::CallbackInfo& info);
  // [async] probabilities(x) -> [n, classes] float64, on the CPU
  Napi::Value probabilities(const Napi::CallbackInfo& info);
  // [async] score(x, labels, rows?, cancelToken?) -> accuracy (R^2 for linear) on those rows
  Napi::Value score(const Napi::CallbackInfo& info);
  // [sync] frees the parameters once calls in flight finish; later calls reject DISPOSED. Idempotent.
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const LinearProbe> live(Napi::Env env) const;
  Napi::Value onRows(const Napi::CallbackInfo& info, at::Tensor (LinearProbe::*method)(const at::Tensor&) const);
  void release();

  std::shared_ptr<const LinearProbe> probe_;
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace torchscope
