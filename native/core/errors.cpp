#include "core/errors.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace torchscope {
namespace {

// The TorchScript interpreter prefixes the real message with a traceback of the scripted
// code, then "<Kind>Error: <message>"; users want the message, the trace goes apart. Returns
// the error's kind ("IndexError"), which the interpreter keeps only in the text.
std::string splitInterpreterTrace(ErrorInfo& info) {
  static const std::string marker = "The following operation failed in the TorchScript interpreter.";
  if (info.message.find(marker) == std::string::npos) return "";
  // "RuntimeError: ", "builtins.ValueError: ", "builtins.Exception: ", "torchscope::Error: "...
  static const std::regex errorLine(R"(\n(?:[\w]+[.:]+)*(\w*(?:Error|Exception|Interrupt)): )");
  std::smatch match;
  if (!std::regex_search(info.message, match, errorLine)) return "";
  const std::string kind = match[1].str();
  const auto start = static_cast<std::string::size_type>(match.position(0));
  info.torchscriptTrace = info.message.substr(0, start);
  info.message = info.message.substr(start + match.length(0));
  return kind;
}

// c10's typed errors (TORCH_CHECK_INDEX, _TYPE, _VALUE...), by the Python kind they raise as,
// say what went wrong without reading the message; nullptr for the kinds that do not.
const char* codeOfKind(const std::string& kind) {
  if (kind == "IndexError") return code::kShape;  // an index out of a size's range
  if (kind == "TypeError") return code::kDtype;   // a tensor of the wrong type
  if (kind == "ValueError") return code::kInvalidArgument;
  if (kind == "OutOfMemoryError") return code::kOutOfMemory;
  return nullptr;
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

// The Python kind a c10 error raises as (TORCH_CHECK_INDEX, _TYPE, _VALUE...); "" for a plain one.
std::string kindOf(const c10::Error& error) {
  if (dynamic_cast<const c10::IndexError*>(&error) != nullptr) return "IndexError";
  if (dynamic_cast<const c10::TypeError*>(&error) != nullptr) return "TypeError";
  if (dynamic_cast<const c10::ValueError*>(&error) != nullptr) return "ValueError";
  return "";
}

// A libtorch error (a c10::Error of `kind`, or an interpreter-wrapped one): its tagged code
// (torchscope's own ops), else its kind's, else what its message says, else `fallbackCode`.
void classify(ErrorInfo& info, const std::string& kind, const char* fallbackCode) {
  const std::string wrapped = splitInterpreterTrace(info);
  if (takeTaggedCode(info)) return;
  const char* typed = codeOfKind(wrapped.empty() ? kind : wrapped);
  info.code = typed != nullptr ? typed : classifyLibtorchMessage(info.message, fallbackCode);
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
    classify(info, kindOf(e), fallbackCode);
  } catch (const std::bad_alloc&) {
    info = {code::kOutOfMemory, "out of memory", ""};
  } catch (const std::exception& e) {
    // The JIT wraps kernel errors in std::runtime_error subclasses too.
    info.message = e.what();
    classify(info, "", fallbackCode);
  } catch (...) {
    info = {code::kInternal, "unknown native exception", ""};
  }
  info.message = trim(info.message);
  info.torchscriptTrace = trim(info.torchscriptTrace);
  return info;
}

}  // namespace torchscope
