// torch.sae.train's native entry: trainSae(spec) starts SAE training (sae/trainer.h) as a
// SessionHandle that lib/sae/train.ts drives, one chunk of batches at a time.
#pragma once

#include <napi.h>

namespace torchscope {

void saeTrainExports(Napi::Env env, Napi::Object exports);

}  // namespace torchscope
