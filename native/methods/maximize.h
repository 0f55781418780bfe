// Activation maximization: find the input that makes a channel, neuron, direction or logit
// fire most, by gradient ascent through libtorch's autograd. A session is driven from JS a
// chunk of steps at a time (each chunk one job on the compute thread), which gives progress
// between chunks, lets other calls interleave, and lets abort() stop within one step.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <memory>

#include "program/program.h"
#include "methods/image_params.h"
#include "model/model.h"
#include "methods/objective.h"

namespace torchscope {

// Larger sides are refused before any work (a typo of 100000 would allocate until killed).
inline constexpr int64_t kMaxImageSide = 16384;

struct MaximizeSpec {
  std::string layer;                  // may be empty when every objective is a logit
  std::vector<Objective> objectives;  // one per batch element
  ImageParamSpec image;
  std::vector<Transform> transforms;
  Regularizers regularizers;
  bool normalize = true;              // ImageNet normalization inside the loop
  double lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  uint64_t seed = 0;
  NumericsOverride numerics;         // the call's precision / upcast over the model's
};

class MaximizeSession : public Napi::ObjectWrap<MaximizeSession> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  // [async] a new session for `model` (builds the program and the parameters).
  static Napi::Value start(Napi::Env env, std::shared_ptr<ModelState> model, MaximizeSpec spec, Napi::Object keepAlive);
  explicit MaximizeSession(const Napi::CallbackInfo& info);
  ~MaximizeSession() override;

  struct State;

 private:
  // [async] runs up to n steps (fewer after abort()) -> { objectives: number[], aborted }
  Napi::Value steps(const Napi::CallbackInfo& info);
  // [sync] stop before the next step
  Napi::Value abort(const Napi::CallbackInfo& info);
  // [async] result(best) -> { image, input, bestStep }: the current image, or with `best` the
  // one that scored highest so far
  Napi::Value result(const Napi::CallbackInfo& info);
  // [sync] frees the session (its image and optimiser state) once a chunk in flight finishes;
  // later calls reject DISPOSED. Idempotent.
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<State> live(Napi::Env env) const;
  void release();

  std::shared_ptr<State> state_;
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};


}  // namespace torchscope
