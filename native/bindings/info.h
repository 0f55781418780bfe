// torch.info(), torch.cuda.isAvailable() / deviceCount(), and the addon's shared constants.
#pragma once

#include <napi.h>

namespace torchscope {

Napi::Object infoExports(Napi::Env env, Napi::Object exports);

}  // namespace torchscope
