#include "bindings/tensor_handle.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "bindings/js_errors.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/ivalues.h"
#include "core/resources.h"

namespace torchscope {

namespace {

// A typed array viewing `length` elements of `buffer`, of the JS kind matching `type`.
// float16/bfloat16 have no JS array type in Node 20: their raw bits come as Uint16Array.
Napi::Value typedArrayFor(Napi::Env env, at::ScalarType type, Napi::ArrayBuffer buffer, size_t length) {
  switch (type) {
    case at::kFloat: return Napi::Float32Array::New(env, length, buffer, 0);
    case at::kDouble: return Napi::Float64Array::New(env, length, buffer, 0);
    case at::kHalf:
    case at::kBFloat16: return Napi::Uint16Array::New(env, length, buffer, 0);
    case at::kChar: return Napi::Int8Array::New(env, length, buffer, 0);
    case at::kByte:
    case at::kBool: return Napi::Uint8Array::New(env, length, buffer, 0);
    case at::kShort: return Napi::Int16Array::New(env, length, buffer, 0);
    case at::kInt: return Napi::Int32Array::New(env, length, buffer, 0);
    case at::kLong: return Napi::BigInt64Array::New(env, length, buffer, 0);
    default: throwJs(env, code::kDtype, "tensors of dtype " + std::string(c10::toString(type)) + " cannot be viewed from JS");
  }
}

}  // namespace

void TensorHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls =
      DefineClass(env, "TensorHandle",
                  {StaticMethod<&TensorHandle::fromData>("fromData"), InstanceMethod<&TensorHandle::shape>("shape"),
                   InstanceMethod<&TensorHandle::dtype>("dtype"), InstanceMethod<&TensorHandle::device>("device"),
                   InstanceMethod<&TensorHandle::data>("data"), InstanceMethod<&TensorHandle::to>("to"),
                   InstanceMethod<&TensorHandle::dispose>("dispose"), InstanceMethod<&TensorHandle::isDisposed>("isDisposed")});
  addonData(env).tensorClass = Napi::Persistent(cls);
  exports.Set("TensorHandle", cls);
}

Napi::Object TensorHandle::wrap(Napi::Env env, at::Tensor tensor) {
  auto* owned = new at::Tensor(std::move(tensor));
  // The constructor takes ownership of `owned`.
  return addonData(env).tensorClass.New({Napi::External<at::Tensor>::New(env, owned)});
}

bool TensorHandle::isHandle(Napi::Env env, Napi::Value value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(addonData(env).tensorClass.Value());
}

const at::Tensor& TensorHandle::unwrap(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!isHandle(env, value)) throwJs(env, code::kInvalidArgument, "expected a Tensor");
  return Unwrap(value.As<Napi::Object>())->live(env);
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument, "TensorHandle is created by torchscope, not by `new`");
  }
  std::unique_ptr<at::Tensor> owned(info[0].As<Napi::External<at::Tensor>>().Data());
  adopt(info.Env(), std::move(*owned));
}

TensorHandle::~TensorHandle() {
  if (processExiting() && tensor_.defined()) keepUntilExit(std::make_shared<at::Tensor>(std::move(tensor_)));
  release();
}

void TensorHandle::adopt(Napi::Env env, at::Tensor tensor) {
  tensor_ = std::move(tensor);
  env_ = env;
  // Only CPU memory weighs on this process's heap; V8 schedules GC with it in mind.
  if (tensor_.defined() && tensor_.device().is_cpu()) {
    reportedBytes_ = static_cast<int64_t>(tensor_.nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, reportedBytes_);
  }
}

void TensorHandle::release() {
  if (reportedBytes_ != 0 && env_ != nullptr) {
    Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reportedBytes_);
  }
  reportedBytes_ = 0;
  tensor_ = at::Tensor();
}

const at::Tensor& TensorHandle::live(Napi::Env env) const {
  if (!tensor_.defined()) throwJs(env, code::kDisposed, "this Tensor has been disposed");
  return tensor_;
}

Napi::Value TensorHandle::fromData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&]() -> Napi::Value {
    if (info.Length() != 3 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsString()) {
      TS_FAIL(code::kInvalidArgument, "fromData(typedArray, shape, dtype)");
    }
    auto source = info[0].As<Napi::TypedArray>();
    auto shapeArray = info[1].As<Napi::Array>();
    const at::ScalarType type = parseDtype(info[2].As<Napi::String>().Utf8Value());
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    bool overflow = false;
    for (uint32_t i = 0; i < shapeArray.Length(); ++i) {
      Napi::Value size = shapeArray.Get(i);
      const double value = size.IsNumber() ? size.As<Napi::Number>().DoubleValue() : -1;
      if (!(value >= 0 && value <= 9007199254740991.0 && std::trunc(value) == value)) {
        TS_FAIL(code::kInvalidArgument,
                "shape sizes are non-negative safe integers; size " + std::to_string(i) + " is " + size.ToString().Utf8Value());
      }
      shape.push_back(static_cast<int64_t>(value));
      overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(value), &numel);
    }
    uint64_t bytes = 0;
    if (overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(c10::elementSize(type)), &bytes) ||
        bytes > static_cast<uint64_t>(INT64_MAX)) {
      TS_FAIL(code::kShape, "shape " + c10::str(at::IntArrayRef(shape)) + " has more elements than a tensor can hold");
    }
    if (bytes != source.ByteLength()) {
      TS_FAIL(code::kShape, "data holds " + std::to_string(source.ByteLength()) + " bytes but shape " + c10::str(at::IntArrayRef(shape)) +
                                " of " + dtypeName(type) + " needs " + std::to_string(bytes));
    }
    // A copy, not a view: JS may reuse or free the source buffer at any time. The typed array's
    // own data pointer works for ArrayBuffers and SharedArrayBuffers alike.
    void* data = nullptr;
    size_t length = 0;
    napi_typedarray_type arrayType;
    napi_value arrayBuffer;
    size_t byteOffset = 0;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, source, &arrayType, &length, &data, &arrayBuffer, &byteOffset), Napi::Value());
    at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(type));
    if (bytes > 0) std::memcpy(tensor.data_ptr(), data, bytes);
    return wrap(env, std::move(tensor));
  });
}

Napi::Value TensorHandle::shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInternal, [&]() -> Napi::Value {
    const at::Tensor& tensor = live(env);
    Napi::Array out = Napi::Array::New(env, tensor.dim());
    for (int64_t i = 0; i < tensor.dim(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, tensor.size(i)));
    return out;
  });
}

Napi::Value TensorHandle::dtype(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal,
                    [&]() -> Napi::Value { return Napi::String::New(info.Env(), dtypeName(live(info.Env()).scalar_type())); });
}

Napi::Value TensorHandle::device(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal,
                    [&]() -> Napi::Value { return Napi::String::New(info.Env(), deviceName(live(info.Env()).device())); });
}

Napi::Value TensorHandle::data(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&]() -> Napi::Value {
    const at::Tensor& current = live(env);
    if (!current.device().is_cpu()) {
      TS_FAIL(code::kDevice,
              "data() needs a CPU tensor; this one is on " + deviceName(current.device()) + ": call `await tensor.to('cpu')` first");
    }
    // Views need one flat block; a non-contiguous tensor (a broadcast view holds far fewer bytes
    // than its elements) is made contiguous once, in place of itself, if the machine can hold it.
    if (!current.is_contiguous()) {
      checkFits(static_cast<uint64_t>(current.numel()) * current.element_size(),
                "data() of a non-contiguous tensor of shape " + c10::str(current.sizes()));
      tensor_ = current.contiguous();
    }
    const size_t length = static_cast<size_t>(tensor_.numel());
    Napi::ArrayBuffer buffer;
    if (tensor_.nbytes() == 0) {
      buffer = Napi::ArrayBuffer::New(env, 0);
    } else {
      // The buffer holds its own reference to the tensor: the memory outlives dispose() and the
      // handle for as long as JS references the view.
      auto* keeper = new at::Tensor(tensor_);
      buffer = Napi::ArrayBuffer::New(
          env, keeper->data_ptr(), keeper->nbytes(), [](Napi::Env, void*, at::Tensor* kept) { delete kept; }, keeper);
    }
    return typedArrayFor(env, tensor_.scalar_type(), buffer, length);
  });
}

Napi::Value TensorHandle::to(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kDevice, [&] {
    const at::Tensor source = live(env);
    if (info.Length() < 1 || !info[0].IsString()) TS_FAIL(code::kInvalidArgument, "to(device: string)");
    auto result = std::make_shared<at::Tensor>();
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    return queueWork(
        env, code::kDevice, [source, name, result] { *result = source.to(resolveDevice(name)); },
        [result](Napi::Env env) -> Napi::Value { return wrap(env, *result); });
  });
}

Napi::Value TensorHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::isDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_.defined()); }

}  // namespace torchscope
