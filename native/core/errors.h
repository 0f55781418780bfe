// Error codes shared by C++ and TypeScript, and the translation of C++ exceptions
// (c10::Error included) into them at the Node-API boundary.
#pragma once

#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace torchscope {

// Stable codes; lib/errors.ts lists the same strings.
namespace code {
inline constexpr const char* kModelLoad = "MODEL_LOAD";
inline constexpr const char* kUnknownLayer = "UNKNOWN_LAYER";
inline constexpr const char* kUnhookableLayer = "UNHOOKABLE_LAYER";  // a submodule no hook point reaches
inline constexpr const char* kLayerNotRun = "LAYER_NOT_RUN";          // hook points not reached this time
inline constexpr const char* kShape = "SHAPE";
inline constexpr const char* kDtype = "DTYPE";
inline constexpr const char* kDevice = "DEVICE";
inline constexpr const char* kDisposed = "DISPOSED";
inline constexpr const char* kInvalidArgument = "INVALID_ARGUMENT";
inline constexpr const char* kOutOfMemory = "OUT_OF_MEMORY";
inline constexpr const char* kAborted = "ABORTED";
inline constexpr const char* kRuntime = "RUNTIME";
inline constexpr const char* kInternal = "INTERNAL";
}  // namespace code

// An error torchscope raises itself, already carrying its code.
class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

// A caught exception reduced to what JS needs: a code and a message a user can read.
struct ErrorInfo {
  std::string code;
  std::string message;
  std::string torchscriptTrace;  // the TorchScript traceback, kept apart from the message
};

// Translates the exception in flight. `fallbackCode` is used for libtorch errors whose
// message does not point at a more specific code (MODEL_LOAD while loading, RUNTIME while running).
ErrorInfo describeException(std::exception_ptr error, const char* fallbackCode);

// A JS Error with `code` (and `torchscriptTrace` when present) set.
Napi::Error toJsError(Napi::Env env, const ErrorInfo& info);

// Throws a torchscope::Error as a JS exception from a synchronous method.
[[noreturn]] void throwJs(Napi::Env env, const char* code, const std::string& message);

// The boundary of every native entry point: runs its body and turns any exception it throws
// (libtorch's c10::Error, std::bad_alloc, torchscope::Error, ...) into a JS error with a code,
// so that nothing but a JS exception ever leaves the addon. `fallbackCode` classifies libtorch
// errors whose message names no more specific code.
template <typename Body>
Napi::Value entryPoint(Napi::Env env, const char* fallbackCode, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw toJsError(env, describeException(std::current_exception(), fallbackCode));
  }
}

// Every code native code raises, for lib/errors.ts's list to be checked against.
inline constexpr const char* kAllCodes[] = {
    code::kModelLoad, code::kUnknownLayer, code::kUnhookableLayer, code::kLayerNotRun, code::kShape,
    code::kDtype,     code::kDevice,       code::kDisposed,        code::kInvalidArgument, code::kOutOfMemory,
    code::kAborted,   code::kRuntime,      code::kInternal};

}  // namespace torchscope
