#include "tensor.h"

#include <cstring>
#include <unordered_map>

#include "addon.h"
#include "async_work.h"
#include "device.h"
#include "errors.h"

namespace torchscope {

namespace {

const std::unordered_map<std::string, at::ScalarType>& dtypeTable() {
  static const std::unordered_map<std::string, at::ScalarType> table = {
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"float16", at::kHalf},
      {"bfloat16", at::kBFloat16}, {"int8", at::kChar}, {"uint8", at::kByte},
      {"int16", at::kShort}, {"int32", at::kInt}, {"int64", at::kLong}, {"bool", at::kBool}};
  return table;
}

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
    default:
      throwJs(env, code::kDtype, "tensors of dtype " + std::string(c10::toString(type)) +
                                     " cannot be viewed from JS");
  }
}

}  // namespace

std::string dtypeName(at::ScalarType type) {
  for (const auto& [name, candidate] : dtypeTable()) {
    if (candidate == type) return name;
  }
  return c10::toString(type);
}

at::ScalarType parseDtype(const std::string& name) {
  auto found = dtypeTable().find(name);
  if (found == dtypeTable().end()) throw Error(code::kDtype, "unknown dtype '" + name + "'");
  return found->second;
}

void TensorHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(
      env, "TensorHandle",
      {StaticMethod<&TensorHandle::fromData>("fromData"),
       InstanceMethod<&TensorHandle::shape>("shape"),
       InstanceMethod<&TensorHandle::dtype>("dtype"),
       InstanceMethod<&TensorHandle::device>("device"),
       InstanceMethod<&TensorHandle::data>("data"),
       InstanceMethod<&TensorHandle::to>("to"),
       InstanceMethod<&TensorHandle::dispose>("dispose"),
       InstanceMethod<&TensorHandle::isDisposed>("isDisposed")});
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

TensorHandle::~TensorHandle() { release(); }

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
  if (info.Length() != 3 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsString()) {
    throwJs(env, code::kInvalidArgument, "fromData(typedArray, shape, dtype)");
  }
  auto source = info[0].As<Napi::TypedArray>();
  auto shapeArray = info[1].As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < shapeArray.Length(); ++i) {
    shape.push_back(shapeArray.Get(i).As<Napi::Number>().Int64Value());
  }
  at::ScalarType type;
  try {
    type = parseDtype(info[2].As<Napi::String>().Utf8Value());
  } catch (const Error& e) {
    throwJs(env, e.code(), e.what());
  }
  // A copy, not a view: JS may reuse or free the source buffer at any time.
  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(type));
  if (tensor.nbytes() != source.ByteLength()) {
    throwJs(env, code::kShape, "data holds " + std::to_string(source.ByteLength()) + " bytes but shape " +
                                   c10::str(tensor.sizes()) + " of " + dtypeName(type) + " needs " +
                                   std::to_string(tensor.nbytes()));
  }
  if (tensor.nbytes() > 0) {
    auto* bytes = static_cast<uint8_t*>(source.ArrayBuffer().Data()) + source.ByteOffset();
    std::memcpy(tensor.data_ptr(), bytes, tensor.nbytes());
  }
  return wrap(env, std::move(tensor));
}

Napi::Value TensorHandle::shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& tensor = live(env);
  Napi::Array out = Napi::Array::New(env, tensor.dim());
  for (int64_t i = 0; i < tensor.dim(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, tensor.size(i)));
  return out;
}

Napi::Value TensorHandle::dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(live(info.Env()).scalar_type()));
}

Napi::Value TensorHandle::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), deviceName(live(info.Env()).device()));
}

Napi::Value TensorHandle::data(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& current = live(env);
  if (!current.device().is_cpu()) {
    throwJs(env, code::kDevice, "data() needs a CPU tensor; this one is on " + deviceName(current.device()) +
                                    ": call `await tensor.to('cpu')` first");
  }
  // Views need one flat block; a non-contiguous tensor is made contiguous once, in place of itself.
  if (!current.is_contiguous()) tensor_ = current.contiguous();
  const size_t length = static_cast<size_t>(tensor_.numel());
  Napi::ArrayBuffer buffer;
  if (tensor_.nbytes() == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    // The buffer holds its own reference to the tensor: the memory outlives dispose() and the
    // handle for as long as JS references the view.
    auto* keeper = new at::Tensor(tensor_);
    buffer = Napi::ArrayBuffer::New(
        env, keeper->data_ptr(), keeper->nbytes(),
        [](Napi::Env, void*, at::Tensor* kept) { delete kept; }, keeper);
  }
  return typedArrayFor(env, tensor_.scalar_type(), buffer, length);
}

Napi::Value TensorHandle::to(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor source = live(env);
  if (info.Length() < 1 || !info[0].IsString()) throwJs(env, code::kInvalidArgument, "to(device: string)");
  auto target = std::make_shared<c10::Device>(c10::kCPU);
  auto result = std::make_shared<at::Tensor>();
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  return queueWork(
      env, code::kDevice,
      [source, name, target, result] {
        *target = resolveDevice(name);
        *result = source.to(*target);
      },
      [result](Napi::Env env) -> Napi::Value { return wrap(env, *result); });
}

Napi::Value TensorHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::isDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_.defined());
}

}  // namespace torchscope
