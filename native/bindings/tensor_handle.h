// The JS-visible tensor handle: owns one at::Tensor, reports its memory to V8, hands out
// zero-copy views of CPU memory. lib/model/tensor.ts wraps it in the public Tensor class.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

namespace torchscope {

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  // A new JS handle that owns `tensor`.
  static Napi::Object wrap(Napi::Env env, at::Tensor tensor);
  static bool isHandle(Napi::Env env, Napi::Value value);
  // The tensor behind a JS handle; throws a JS error (DISPOSED / INVALID_ARGUMENT) otherwise.
  static const at::Tensor& unwrap(Napi::Value value);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

 private:
  static Napi::Value fromData(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value data(const Napi::CallbackInfo& info);
  Napi::Value to(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value isDisposed(const Napi::CallbackInfo& info);

  void adopt(Napi::Env env, at::Tensor tensor);
  void release();
  const at::Tensor& live(Napi::Env env) const;

  at::Tensor tensor_;
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace torchscope
