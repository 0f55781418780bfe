#include "bindings/async_work.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>

#include "bindings/addon.h"
#include "bindings/js_errors.h"
#include "bindings/values.h"
#include "core/errors.h"

namespace torchscope {

// A call as the compute thread sees it: C++ only. Its JS side (the promise, the references
// keeping wrappers alive) stays in AddonData::pending on the JS thread, found again by id.
struct Job;
void settleCompletion(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job);
using CompletionChannel = Napi::TypedThreadSafeFunction<std::nullptr_t, Job, settleCompletion>;

// The compute thread's way back into one environment. Closed by the environment's cleanup
// hook, after which the compute thread never touches the environment again.
struct Channel {
  std::mutex mutex;
  bool open = true;
  CompletionChannel completions;
};

struct Job {
  std::shared_ptr<Channel> channel;
  uint64_t id;
  const char* fallbackCode;
  WorkFn work;
  ResolveFn resolve;
  CancelFlag cancel;
  bool failed = false;
  ErrorInfo error;
};

namespace {

// The process-wide compute thread. Never joined: it lives until the process exits (a static
// std::thread would terminate() at exit while joinable); at exit it is stopped, see stop().
class ComputeThread {
 public:
  static ComputeThread& instance() {
    static ComputeThread* thread = new ComputeThread();
    return *thread;
  }

  void post(std::unique_ptr<Job> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;  // the process is exiting: the call never settles
      jobs_.push_back(std::move(job));
    }
    changed_.notify_all();
  }

  // At process exit: drop the queue and wait for the call in flight, so that exit() never
  // runs libtorch's static destructors under it. False when it is still running after `wait`.
  bool stop(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
    return changed_.wait_for(lock, wait, [this] { return !busy_; });
  }

  // At an environment's cleanup (its channel closed): drop its queued calls and wait for its
  // call in flight, which stops early where it can (workCancelled()). The process may exit as
  // soon as the last environment is gone, and must not exit under a running call.
  void forget(const std::shared_ptr<Channel>& channel) {
    std::unique_lock<std::mutex> lock(mutex_);
    jobs_.erase(std::remove_if(jobs_.begin(), jobs_.end(), [&](const auto& job) { return job->channel == channel; }), jobs_.end());
    changed_.wait(lock, [&] { return !busy_ || busyChannel_ != channel; });
  }

  // The queued calls `flag` cancels, out of the queue: they never run.
  std::vector<std::unique_ptr<Job>> takeQueued(const CancelFlag& flag) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::unique_ptr<Job>> taken;
    for (auto job = jobs_.begin(); job != jobs_.end();) {
      if ((*job)->cancel == flag) {
        taken.push_back(std::move(*job));
        job = jobs_.erase(job);
      } else {
        ++job;
      }
    }
    return taken;
  }

  // The call running now (workCancelled() asks from inside it, on this thread).
  bool currentCancelled() {
    std::lock_guard<std::mutex> lock(mutex_);
    return busy_ && ((busyCancel_ && busyCancel_->load()) || !isOpen(*busyChannel_));
  }

 private:
  ComputeThread() : thread_([this] { loop(); }) { thread_.detach(); }

  void loop() {
    for (;;) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !jobs_.empty(); });
        job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
        busyChannel_ = job->channel;
        busyCancel_ = job->cancel;
      }
      run(*job);
      // Busy until the job is handed over or destroyed: its closures may own a model.
      deliver(std::move(job));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        busy_ = false;
        busyChannel_.reset();
        busyCancel_.reset();
      }
      changed_.notify_all();
    }
  }

  static bool isOpen(Channel& channel) {
    std::lock_guard<std::mutex> lock(channel.mutex);
    return channel.open;
  }

  static void run(Job& job) {
    if (!isOpen(*job.channel)) return;  // its environment is gone: nobody waits for it
    if (job.cancel && job.cancel->load()) {
      job.error = {code::kAborted, "the call was aborted before it started", ""};
      job.failed = true;
      return;
    }
    try {
      job.work();
    } catch (...) {
      job.error = describeException(std::current_exception(), job.fallbackCode);
      job.failed = true;
    }
  }

  void deliver(std::unique_ptr<Job> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    std::shared_ptr<Channel> channel = job->channel;
    std::lock_guard<std::mutex> lock(channel->mutex);
    if (!channel->open) return;
    // Owned by the channel's queue from here on: settle() (or its teardown call) frees it.
    if (channel->completions.NonBlockingCall(job.get()) == napi_ok) job.release();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Job>> jobs_;
  bool busy_ = false;  // a call runs (or is being delivered); its channel and cancel flag:
  std::shared_ptr<Channel> busyChannel_;
  CancelFlag busyCancel_;
  bool stopping_ = false;
  std::thread thread_;
};

// Nothing in here may throw: an exception escaping a thread-safe function's callback
// terminates the process.
void settleJob(Napi::Env env, Job* job) noexcept {
  std::unique_ptr<Job> owned(job);
  AddonData& data = addonData(env);
  auto found = data.pending.find(job->id);
  if (found == data.pending.end()) return;
  PendingCall call = std::move(found->second);
  data.pending.erase(found);
  if (data.pending.empty()) data.channel->completions.Unref(env);
  Napi::HandleScope scope(env);
  try {
    if (job->failed) {
      call.deferred.Reject(toJsError(env, job->error).Value());
      return;
    }
    try {
      call.deferred.Resolve(job->resolve(env));
    } catch (...) {
      call.deferred.Reject(toJsError(env, describeException(std::current_exception(), code::kInternal)).Value());
    }
  } catch (...) {
    // The environment is terminating (worker.terminate()): JS can run no more.
  }
}

}  // namespace

namespace {
std::atomic<bool> exiting{false};

#if defined(__GLIBC__)
// Registered once the process is ending, before the exit handlers registered earlier run (they
// run last-in first-out): libtorch's static destructors, which deregister every operator one by
// one (~75 ms of a process's exit here), and OpenSSL's. No call is in flight then; C and C++
// streams are flushed, as exit() would.
void endWithoutStaticDestructors(int status, void*) {
  std::cout.flush();
  std::cerr.flush();
  std::clog.flush();
  std::fflush(nullptr);
  _exit(status);
}
#endif

// The process is ending: from now on native objects are left to the OS, and exit skips
// libtorch's static destructors.
void endQuickly() {
  if (exiting.exchange(true)) return;  // once (std::call_once would link the addon to ld.so's TLS)
#if defined(__GLIBC__)
  on_exit(endWithoutStaticDestructors, nullptr);
#endif
}

// Whether this is the process's main thread, whose environment goes only when the process
// ends (a worker thread's goes at worker.terminate()). Under jest the addon never sees the
// process's 'exit' event (tests get a sandboxed `process`), only this environment's cleanup.
bool onMainThread() {
#if defined(__linux__)
  return static_cast<pid_t>(syscall(SYS_gettid)) == getpid();
#else
  return false;
#endif
}
}  // namespace

// env is null when the channel is torn down with calls still queued: free them.
void settleCompletion(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job) {
  if (env == nullptr) {
    delete job;
    return;
  }
  settleJob(env, job);
}

void initAsyncWork(Napi::Env env) {
  AddonData& data = addonData(env);
  data.channel = std::make_shared<Channel>();
  data.channel->completions = CompletionChannel::New(env, "torchscope-completions", 0, 1);
  // Referenced only while work is pending, so an idle addon never keeps the process alive.
  data.channel->completions.Unref(env);
  // Registered after the channel's thread-safe function: cleanup hooks run last-in first-out,
  // so the channel is closed before Node tears the thread-safe function down.
  env.AddCleanupHook([env, channel = data.channel] {
    {
      std::lock_guard<std::mutex> lock(channel->mutex);
      channel->open = false;
    }
    ComputeThread::instance().forget(channel);
    if (onMainThread()) endQuickly();
    addonData(env).releaseReferences();
  });
}

bool workCancelled() { return ComputeThread::instance().currentCancelled(); }

void stopComputeThread(int exitCode) {
  // A call that never finishes (a model's endless loop) must not hold the exit forever: after
  // the wait, leave without static destructors, which would run under it.
  if (!ComputeThread::instance().stop(std::chrono::seconds(10))) std::_Exit(exitCode);
  endQuickly();
}

bool processExiting() { return exiting.load(); }

void keepUntilExit(std::shared_ptr<void> object) {
  static std::mutex mutex;
  // Never destroyed: what it holds is the OS's to reclaim.
  static auto* kept = new std::vector<std::shared_ptr<void>>();
  std::lock_guard<std::mutex> lock(mutex);
  kept->push_back(std::move(object));
}

Napi::Promise queueWork(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve, const std::vector<Napi::Object>& keepAlive,
                        CancelFlag cancel) {
  AddonData& data = addonData(env);
  const uint64_t id = ++data.nextCall;
  PendingCall call{Napi::Promise::Deferred::New(env), {}};
  for (const auto& object : keepAlive) call.keepAlive.push_back(Napi::Persistent(object));
  Napi::Promise promise = call.deferred.Promise();
  if (data.pending.empty()) data.channel->completions.Ref(env);
  data.pending.emplace(id, std::move(call));
  ComputeThread::instance().post(
      std::unique_ptr<Job>(new Job{data.channel, id, fallbackCode, std::move(work), std::move(resolve), std::move(cancel)}));
  return promise;
}

Napi::Promise queueValue(Napi::Env env, const char* fallbackCode, std::function<c10::IValue()> work,
                         const std::vector<Napi::Object>& keepAlive, CancelFlag cancel) {
  auto result = std::make_shared<c10::IValue>();
  return queueWork(
      env, fallbackCode, [result, work = std::move(work)] { *result = work(); },
      [result](Napi::Env env) -> Napi::Value { return toJs(env, *result); }, keepAlive, std::move(cancel));
}

void CancelToken::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "CancelToken", {InstanceMethod<&CancelToken::cancel>("cancel")});
  addonData(env).cancelTokenClass = Napi::Persistent(cls);
  exports.Set("CancelToken", cls);
}

CancelToken::CancelToken(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelToken>(info) {}

CancelFlag CancelToken::flagOf(Napi::Value value) {
  Napi::Env env = value.Env();
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addonData(env).cancelTokenClass.Value())) {
    throwJs(env, code::kInvalidArgument, "expected a CancelToken");
  }
  return Unwrap(value.As<Napi::Object>())->flag_;
}

Napi::Value CancelToken::cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  // Queued calls reject now, not when the compute thread reaches them: that may be never,
  // behind a forward that does not end.
  for (auto& job : ComputeThread::instance().takeQueued(flag_)) {
    job->failed = true;
    job->error = {code::kAborted, "the call was aborted before it started", ""};
    settleJob(info.Env(), job.release());
  }
  return info.Env().Undefined();
}

}  // namespace torchscope
