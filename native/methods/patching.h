// Activation patching sweeps, TransformerLens's get_act_patch_* done natively: for every
// (layer, position), or (layer, head), the corrupted run with that layer's value there replaced
// by the clean run's, and a metric of the output (averaged over the batch). Many cells run in
// one forward (each copy of the batch its own cell), from the patched layer on: the program
// replaces the layer's value whole (the corrupted run's, with the clean cell in it), so the
// layers before it, already computed in the corrupted run, are not run again. Attribution
// patching estimates the same sweep from one backward pass (the metric's gradient on the
// corrupted run times clean - corrupted).
#pragma once

#include <ATen/core/ivalue.h>

#include <memory>
#include <string>
#include <vector>

#include "core/names.h"
#include "methods/objective.h"
#include "methods/stepped_job.h"
#include "model/model_state.h"
#include "sae/sae.h"

namespace torchscope {

struct SweepSpec {
  std::vector<std::string> layers;                // hook points: module outputs or ':input's, each called once
  std::vector<int64_t> positions;                 // along dim 1 of every layer's value; empty: all of them
  int64_t heads = 0;                              // > 0: cells are heads, the value's last dim split in `heads`, all positions
  ObjectiveSpec metric;                           // on the model's output, one per batch element or one for all
  bool normalize = false;                         // (patched - corrupted) / (clean - corrupted)
  int64_t batchSize = 0;                          // cells per forward; 0: as many as half the available memory holds
  SweepMethod method = SweepMethod::kActivation;  // or the gradient estimate instead of patched runs
  NumericsOverride numerics;                      // the call's precision / upcast over the model's
  std::vector<SaeSplice> saeSplices;              // SAEs spliced into every run, sorted by the point read
  std::vector<std::shared_ptr<const Sae>> saes;   // in saeSplices' order
};

// The plan of a sweep (stepped_job.h): its clean and corrupted runs happen while planning;
// then one step per forward of cells -> { results: Tensor [layers, positions or heads],
// clean: number, corrupted: number, batchSize: cells per forward }.
RunPlan planSweep(const std::shared_ptr<ModelState>& model, std::vector<c10::IValue> clean, std::vector<c10::IValue> corrupted,
                  SweepSpec spec);

}  // namespace torchscope
