#include "bindings/js_errors.h"

namespace torchscope {

Napi::Error toJsError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  if (!info.torchscriptTrace.empty()) {
    error.Set("torchscriptTrace", Napi::String::New(env, info.torchscriptTrace));
  }
  return error;
}

void throwJs(Napi::Env env, const char* code, const std::string& message) { throw toJsError(env, {code, message, ""}); }

}  // namespace torchscope
