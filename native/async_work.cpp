#include "async_work.h"

#include "errors.h"

namespace torchscope {
namespace {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve,
                const std::vector<Napi::Object>& keepAlive)
      : Napi::AsyncWorker(env, "torchscope"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fallbackCode_(fallbackCode),
        work_(std::move(work)),
        resolve_(std::move(resolve)) {
    for (const auto& object : keepAlive) keepAlive_.push_back(Napi::Persistent(object));
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (...) {
      error_ = describeException(std::current_exception(), fallbackCode_);
      failed_ = true;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(toJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(resolve_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(toJsError(env, describeException(std::current_exception(), code::kInternal)).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const char* fallbackCode_;
  WorkFn work_;
  ResolveFn resolve_;
  std::vector<Napi::ObjectReference> keepAlive_;
  bool failed_ = false;
  ErrorInfo error_;
};

}  // namespace

Napi::Promise queueWork(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve,
                        const std::vector<Napi::Object>& keepAlive) {
  auto* worker = new PromiseWorker(env, fallbackCode, std::move(work), std::move(resolve), keepAlive);
  Napi::Promise promise = worker->promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

}  // namespace torchscope
