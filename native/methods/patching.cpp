#include "methods/patching.h"

#include <ATen/core/grad_mode.h>

#include "core/errors.h"
#include "core/ivalues.h"
#include "core/resources.h"
#include "methods/batching.h"
#include "methods/gradients.h"
#include "methods/objective_run.h"

namespace torchscope {

namespace {

// A run's value at every sweep layer and its metric (the batch mean).
struct Run {
  std::map<std::string, at::Tensor> values;
  double metric = 0;
  at::Tensor perRow;  // the metric per batch element
};

Run captureRun(ModelState& model, std::vector<c10::IValue> args, const SweepSpec& spec) {
  at::NoGradGuard noGrad;
  ProgramNeeds needs;
  needs.capture = spec.layers;
  std::sort(needs.capture.begin(), needs.capture.end());
  needs.saes = spec.saeSplices;
  const ObjectiveRun forward = runForObjective(model, std::move(args), spec.metric, needs, Optimize::kNever, spec.numerics, {}, spec.saes);
  Run run;
  for (const std::string& layer : spec.layers) {
    const auto& calls = forward.run.captures.at(layer);
    TS_CHECK(calls.size() == 1, code::kInvalidArgument, "layer '", layer, "' ran ", calls.size(),
             " times in one forward: a sweep patches a layer called once");
    run.values[layer] = firstTensor(calls.front(), "layer '" + layer + "'");
  }
  run.perRow = forward.values(spec.metric);
  run.metric = run.perRow.mean().item<double>();
  return run;
}

struct Sweep {
  std::shared_ptr<ModelState> model;
  SweepSpec spec;
  std::vector<c10::IValue> corruptedArgs;
  int64_t rows = 0;
  Run clean, corrupted;
  std::vector<int64_t> cells;  // positions or heads, the same for every layer
  at::Tensor results;          // [layers, cells]

  // The layer's corrupted value for `count` copies of the batch, the clean value put in at
  // cell first + j in copy j.
  at::Tensor patchedValues(const std::string& layer, int64_t first, int64_t count) const {
    const at::Tensor& clean = this->clean.values.at(layer);
    at::Tensor values = repeatRows(corrupted.values.at(layer), count, false).clone();
    for (int64_t j = 0; j < count; ++j) {
      at::Tensor copy = values.narrow(0, j * rows, rows);
      const int64_t cell = cells[static_cast<size_t>(first + j)];
      if (spec.heads > 0) {
        const int64_t width = clean.size(-1) / spec.heads;
        copy.narrow(-1, cell * width, width).copy_(clean.narrow(-1, cell * width, width));
      } else {
        copy.select(1, cell).copy_(clean.select(1, cell));
      }
    }
    return values;
  }

  // Patched runs of cells [first, first + count) of `layer`: one forward, copy-major.
  void patchRuns(size_t layerIndex, int64_t first, int64_t count) {
    at::NoGradGuard noGrad;
    const std::string& layer = spec.layers[layerIndex];
    ProgramNeeds needs;
    needs.replace = {layer};
    needs.saes = spec.saeSplices;
    const auto program = model->program(needs, spec.numerics, Optimize::kNever);
    RunResult result = program->run(repeatArgs(corruptedArgs, rows, count, false), {}, {patchedValues(layer, first, count)}, spec.saes);
    requireAllRan(*program, result);
    const at::Tensor output = firstTensor(result.output, "the model's output");
    const at::Tensor metric = objectiveValues(repeatObjectives(spec.metric, count, false), count * rows, at::Tensor(), output);
    results[static_cast<int64_t>(layerIndex)].narrow(0, first, count).copy_(metric.view({count, rows}).mean(1));
  }

  // Attribution patching: metric(corrupted) + Σ d metric / d value x (clean - corrupted) over
  // each cell (the batch mean's gradient: the sum's over the batch size).
  void estimate() {
    GradientSpec gradients;
    gradients.objective = spec.metric;
    gradients.numerics = spec.numerics;
    gradients.layers = spec.layers;
    std::sort(gradients.layers.begin(), gradients.layers.end());
    gradients.saeSplices = spec.saeSplices;
    gradients.saes = spec.saes;
    const GradientResult result = computeGradients(*model, corruptedArgs, gradients);
    for (size_t l = 0; l < spec.layers.size(); ++l) {
      const std::string& layer = spec.layers[l];
      const at::Tensor contribution =
          result.layers.at(layer).back() * (clean.values.at(layer) - corrupted.values.at(layer)) / static_cast<double>(rows);
      for (size_t c = 0; c < cells.size(); ++c) {
        const int64_t cell = cells[c];
        const at::Tensor region =
            spec.heads > 0 ? contribution.narrow(-1, cell * (contribution.size(-1) / spec.heads), contribution.size(-1) / spec.heads)
                           : contribution.select(1, cell);
        results[static_cast<int64_t>(l)][static_cast<int64_t>(c)] = corrupted.metric + region.sum().item<double>();
      }
    }
  }
};

// Every layer's clean and corrupted values agree in shape; the cells exist in all of them.
void checkCells(Sweep& sweep) {
  const SweepSpec& spec = sweep.spec;
  std::optional<int64_t> length;
  for (const std::string& layer : spec.layers) {
    const at::Tensor& clean = sweep.clean.values.at(layer);
    const at::Tensor& corrupted = sweep.corrupted.values.at(layer);
    if (clean.sizes() != corrupted.sizes()) {
      TS_FAIL(code::kInvalidArgument, "layer '" + layer + "' is " + c10::str(clean.sizes()) + " in the clean run but " +
                                          c10::str(corrupted.sizes()) +
                                          " in the corrupted one: clean and corrupted inputs must have the same shapes");
    }
    if (spec.heads > 0) {
      if (clean.size(-1) % spec.heads != 0)
        TS_FAIL(code::kInvalidArgument, "layer '" + layer + "' has " + std::to_string(clean.size(-1)) + " units, not divisible into " +
                                            std::to_string(spec.heads) + " heads");
      continue;
    }
    if (clean.dim() < 2)
      TS_FAIL(code::kInvalidArgument,
              "layer '" + layer + "' gives " + c10::str(clean.sizes()) + ": positions index dim 1 of [batch, positions, ...]");
    if (length && *length != clean.size(1))
      TS_FAIL(code::kInvalidArgument, "the layers' values have different lengths along dim 1 (" + std::to_string(*length) + " and " +
                                          std::to_string(clean.size(1)) + "): sweep them apart");
    length = clean.size(1);
  }
  if (spec.heads > 0) {
    for (int64_t h = 0; h < spec.heads; ++h) sweep.cells.push_back(h);
    return;
  }
  if (spec.positions.empty()) {
    for (int64_t p = 0; p < *length; ++p) sweep.cells.push_back(p);
    return;
  }
  for (const int64_t position : spec.positions) {
    const int64_t p = position < 0 ? position + *length : position;
    if (p < 0 || p >= *length)
      TS_FAIL(code::kInvalidArgument,
              "position " + std::to_string(position) + " is out of range for " + std::to_string(*length) + " positions");
    sweep.cells.push_back(p);
  }
}

}  // namespace

RunPlan planSweep(const std::shared_ptr<ModelState>& model, std::vector<c10::IValue> clean, std::vector<c10::IValue> corrupted,
                  SweepSpec spec) {
  if (spec.layers.empty()) TS_FAIL(code::kInvalidArgument, "a sweep needs at least one layer");
  if (spec.metric.needsLayer())
    TS_FAIL(code::kInvalidArgument, "a sweep's metric reads the model's output (logitDiff, logit, logProb, target)");
  auto sweep = std::make_shared<Sweep>();
  sweep->model = model;
  sweep->spec = std::move(spec);
  for (auto& arg : clean) arg = toDevice(arg, model->device);
  for (auto& arg : corrupted) arg = toDevice(arg, model->device);
  sweep->corruptedArgs = corrupted;
  // The corrupted run, metered: what one forward costs per row sizes the batches of cells.
  AllocationPeakMeter meter;
  sweep->corrupted = captureRun(*model, std::move(corrupted), sweep->spec);
  const uint64_t peak = meter.peakBytes();
  sweep->clean = captureRun(*model, std::move(clean), sweep->spec);
  sweep->rows = sweep->corrupted.perRow.size(0);
  if (sweep->clean.perRow.size(0) != sweep->rows)
    TS_FAIL(code::kInvalidArgument, "clean and corrupted inputs must have the same batch size");
  checkCells(*sweep);
  const auto layers = static_cast<int64_t>(sweep->spec.layers.size());
  const auto cells = static_cast<int64_t>(sweep->cells.size());
  sweep->results = at::zeros({layers, cells}, at::kDouble);
  int64_t perForward = sweep->spec.batchSize;
  if (perForward == 0) {
    perForward = std::max<int64_t>(1, static_cast<int64_t>(availableMemoryBytes() / 2 / std::max<uint64_t>(peak, 1)));
  }
  perForward = std::min(perForward, cells);

  RunPlan plan;
  if (sweep->spec.method == SweepMethod::kAttribution) {
    plan.steps.push_back([sweep] { sweep->estimate(); });
  } else {
    for (size_t l = 0; l < sweep->spec.layers.size(); ++l) {
      for (int64_t first = 0; first < cells; first += perForward) {
        const int64_t count = std::min(perForward, cells - first);
        plan.steps.push_back([sweep, l, first, count] { sweep->patchRuns(l, first, count); });
      }
    }
  }
  plan.finish = [sweep, perForward]() -> c10::IValue {
    at::Tensor results = sweep->results;
    const double clean = sweep->clean.metric, corrupted = sweep->corrupted.metric;
    if (sweep->spec.normalize) results = (results - corrupted) / (clean - corrupted);
    const int64_t batchSize = sweep->spec.method == SweepMethod::kAttribution ? 0 : perForward;
    return Record().set("results", results.to(at::kFloat)).set("clean", clean).set("corrupted", corrupted).set("batchSize", batchSize);
  };
  return plan;
}

}  // namespace torchscope
