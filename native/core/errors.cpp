#include "core/errors.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace torchscope {
namespace {

// The TorchScript interpreter prefixes the real message with a traceback of the scripted
// code, then "<Kind>Error: <message>"; users want the message, the trace goes apart.
void splitInterpreterTrace(ErrorInfo& info) {
  static const std::string marker = "The following operation failed in the TorchScript interpreter.";
  if (info.message.find(marker) == std::string::npos) return;
  // "RuntimeError: ", "builtins.ValueError: ", "builtins.Exception: ", "torchscope::Error: "...
  static const std::regex errorLine(R"(\n[\w.:]*(Error|Exception|Interrupt): )");
  std::smatch match;
  if (!std::regex_search(info.message, match, errorLine)) return;
  const auto start = static_cast<std::string::size_type>(match.position(0));
  info.torchscriptTrace = info.message.substr(0, start);
  info.message = info.message.substr(start + match.length(0));
}

// Errors raised inside a model run cross the TorchScript interpreter, which rewraps every
// exception as a string; torchscope's own ops carry their code as a "torchscope:CODE: " prefix.
bool takeTaggedCode(ErrorInfo& info) {
  static const std::regex tag(R"(torchscope:([A-Z_]+): )");
  std::smatch match;
  if (!std::regex_search(info.message, match, tag)) return false;
  info.code = match[1].str();
  info.message = info.message.substr(static_cast<std::string::size_type>(match.position(0) + match.length(0)));
  return true;
}

std::string trim(std::string text) {
  auto notSpace = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), notSpace));
  text.erase(std::find_if(text.rbegin(), text.rend(), notSpace).base(), text.end());
  return text;
}

// libtorch reports shape, dtype and device problems as plain c10::Error; the message is the
// only signal, so match the phrases its kernels use.
const char* classifyLibtorchMessage(const std::string& message, const char* fallbackCode) {
  // CPU allocation failures are plain c10::Errors ("DefaultCPUAllocator: can't allocate memory"),
  // and the interpreter rewraps even OutOfMemoryError as a string.
  static const std::regex memory(R"(not enough memory|out of memory|can't allocate memory|cannot allocate memory|bad_alloc)",
                                 std::regex::icase);
  if (std::regex_search(message, memory)) return code::kOutOfMemory;
  static const std::regex device(R"(device|CUDA|cuda|Expected all tensors to be on the same)");
  static const std::regex dtype(
      R"(scalar type|dtype|Input type \(|should be the same|expected .*Float|expected .*Long|Expected tensor for argument .* to have .* scalar type|type mismatch)",
      std::regex::icase);
  static const std::regex shape(
      R"(size|shape|dimension|channels|must match|out of range|should contain|Expected .*D|mat1 and mat2|expected input)",
      std::regex::icase);
  if (std::regex_search(message, device)) return code::kDevice;
  if (std::regex_search(message, dtype)) return code::kDtype;
  if (std::regex_search(message, shape)) return code::kShape;
  return fallbackCode;
}

}  // namespace

ErrorInfo describeException(std::exception_ptr error, const char* fallbackCode) {
  ErrorInfo info;
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    info = {e.code(), e.what(), ""};
  } catch (const c10::OutOfMemoryError& e) {
    info = {code::kOutOfMemory, e.what_without_backtrace(), ""};
  } catch (const c10::Error& e) {
    info.message = e.what_without_backtrace();
    splitInterpreterTrace(info);
    if (!takeTaggedCode(info)) info.code = classifyLibtorchMessage(info.message, fallbackCode);
  } catch (const std::bad_alloc&) {
    info = {code::kOutOfMemory, "out of memory", ""};
  } catch (const std::exception& e) {
    // The JIT wraps kernel errors in std::runtime_error subclasses too.
    info.message = e.what();
    splitInterpreterTrace(info);
    if (!takeTaggedCode(info)) info.code = classifyLibtorchMessage(info.message, fallbackCode);
  } catch (...) {
    info = {code::kInternal, "unknown native exception", ""};
  }
  info.message = trim(info.message);
  return info;
}

Napi::Error toJsError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  if (!info.torchscriptTrace.empty()) {
    error.Set("torchscriptTrace", Napi::String::New(env, trim(info.torchscriptTrace)));
  }
  return error;
}

void throwJs(Napi::Env env, const char* code, const std::string& message) {
  throw toJsError(env, {code, message, ""});
}

}  // namespace torchscope
