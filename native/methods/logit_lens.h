// The logit lens: each layer's value read through the model's own head (e.g. the final
// LayerNorm and the unembedding), as if the model stopped there: what it would predict from the
// residual stream at that layer. One forward for every layer's value, then the head modules'
// compiled forwards on each, natively.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <memory>
#include <string>
#include <vector>

#include "model/model_state.h"
#include "sae/sae.h"

namespace torchscope {

struct LensSpec {
  std::vector<SaeSplice> saeSplices;  // SAEs spliced into the run read, sorted by the point read
  std::vector<std::shared_ptr<const Sae>> saes;
  std::vector<std::string> layers;  // hook points (outputs or ':input's), each read at its last call
  std::vector<std::string> head;    // module paths applied in order to each layer's value
  int64_t topK = 0;                 // > 0: only the k largest logits per position
  NumericsOverride numerics;        // the call's precision / upcast over the model's
};

// `inputs` are forward's arguments as JS gave them -> { logits } ([layers, ...head output]) or,
// with topK, { logits (the k largest), indices }, on the CPU.
c10::IValue logitLens(ModelState& model, std::vector<c10::IValue> inputs, const LensSpec& spec);

}  // namespace torchscope
