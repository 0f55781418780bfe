// Errors at the Node-API edge: a caught exception (core/errors.h reduces it to a code and a
// message) becomes a JS Error carrying that code, and every entry point is one boundary.
#pragma once

#include <napi.h>

#include <string>

#include "core/errors.h"

namespace torchscope {

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

}  // namespace torchscope
