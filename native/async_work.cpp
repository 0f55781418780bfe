#include "async_work.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "addon.h"
#include "errors.h"

namespace torchscope {
namespace {

// The process-wide compute thread. Never joined: it lives until the process exits, and a
// static std::thread would terminate() at exit while joinable.
class ComputeThread {
 public:
  static ComputeThread& instance() {
    static ComputeThread* thread = new ComputeThread();
    return *thread;
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  ComputeThread() : thread_([this] { loop(); }) { thread_.detach(); }

  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !jobs_.empty(); });
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::thread thread_;
};

struct Job {
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> keepAlive;
  const char* fallbackCode;
  WorkFn work;
  ResolveFn resolve;
  bool failed = false;
  ErrorInfo error;
};

void runJob(Job& job) {
  try {
    job.work();
  } catch (...) {
    job.error = describeException(std::current_exception(), job.fallbackCode);
    job.failed = true;
  }
}

// JS thread: settle the promise and let the process exit once nothing is pending.
void settle(Napi::Env env, Napi::Function, Job* job) {
  if (env == nullptr) return;  // environment shutting down: nothing left to settle
  std::unique_ptr<Job> owned(job);
  AddonData& data = addonData(env);
  if (--data.pendingJobs == 0) data.completions.Unref(env);
  Napi::HandleScope scope(env);
  if (job->failed) {
    job->deferred.Reject(toJsError(env, job->error).Value());
    return;
  }
  try {
    job->deferred.Resolve(job->resolve(env));
  } catch (const Napi::Error& e) {
    job->deferred.Reject(e.Value());
  } catch (...) {
    job->deferred.Reject(toJsError(env, describeException(std::current_exception(), code::kInternal)).Value());
  }
}

}  // namespace

void initAsyncWork(Napi::Env env) {
  AddonData& data = addonData(env);
  data.completions = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                                   "torchscope-completions", 0, 1);
  // Referenced only while work is pending, so an idle addon never keeps the process alive.
  data.completions.Unref(env);
}

Napi::Promise queueWork(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve,
                        const std::vector<Napi::Object>& keepAlive) {
  auto* job = new Job{Napi::Promise::Deferred::New(env), {}, fallbackCode, std::move(work), std::move(resolve)};
  for (const auto& object : keepAlive) job->keepAlive.push_back(Napi::Persistent(object));
  Napi::Promise promise = job->deferred.Promise();
  AddonData& data = addonData(env);
  if (data.pendingJobs++ == 0) data.completions.Ref(env);
  Napi::ThreadSafeFunction completions = data.completions;
  ComputeThread::instance().post([job, completions]() mutable {
    runJob(*job);
    completions.NonBlockingCall(job, settle);
  });
  return promise;
}

}  // namespace torchscope
