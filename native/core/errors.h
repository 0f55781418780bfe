// Error codes shared by C++ and TypeScript, torchscope's own error, the check that raises it, and
// the reduction of any C++ exception (c10::Error included) to a code and a message.
#pragma once

#include <c10/util/StringUtil.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace torchscope {

// Stable codes; lib/core/errors.ts lists the same strings.
namespace code {
inline constexpr const char* kModelLoad = "MODEL_LOAD";
inline constexpr const char* kUnknownLayer = "UNKNOWN_LAYER";
inline constexpr const char* kUnhookableLayer = "UNHOOKABLE_LAYER";  // a submodule no hook point reaches
inline constexpr const char* kLayerNotRun = "LAYER_NOT_RUN";         // hook points not reached this time
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

// An error torchscope raises itself, already carrying its code. Raised through TS_CHECK /
// TS_FAIL, in the spirit of c10's TORCH_CHECK: the message is the arguments, streamed.
class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

// Throws Error(code, message) unless `condition` holds; the message parts are c10::str's.
#define TS_CHECK(condition, code, ...)                                            \
  do {                                                                            \
    if (!(condition)) throw ::torchscope::Error((code), ::c10::str(__VA_ARGS__)); \
  } while (false)

// Throws Error(code, message) with the message parts c10::str'd.
#define TS_FAIL(code, ...) throw ::torchscope::Error((code), ::c10::str(__VA_ARGS__))

// A caught exception reduced to what JS needs: a code and a message a user can read.
struct ErrorInfo {
  std::string code;
  std::string message;
  std::string torchscriptTrace;  // the TorchScript traceback, kept apart from the message
};

// Translates the exception in flight. `fallbackCode` is used for libtorch errors whose
// message does not point at a more specific code (MODEL_LOAD while loading, RUNTIME while running).
ErrorInfo describeException(std::exception_ptr error, const char* fallbackCode);

// Every code native code raises, for lib/core/errors.ts's list to be checked against.
inline constexpr const char* kAllCodes[] = {
    code::kModelLoad, code::kUnknownLayer,    code::kUnhookableLayer, code::kLayerNotRun, code::kShape,   code::kDtype,   code::kDevice,
    code::kDisposed,  code::kInvalidArgument, code::kOutOfMemory,     code::kAborted,     code::kRuntime, code::kInternal};

}  // namespace torchscope
