#include "torchscript/torchscript_program.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>
#include <torch/csrc/jit/passes/graph_rewrite_helper.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "core/cpu_features.h"
#include "core/errors.h"
#include "torchscript/attention_fusion.h"
#include "torchscript/conv_prepack.h"
#include "torchscript/hooks.h"
#include "torchscript/linear_prepack.h"
#include "torchscript/max_pool.h"
#include "torchscript/module_calls.h"
#include "torchscript/sae_ops.h"
#include "torchscript/weight_layout.h"
#include "torchscript/written_out_ops.h"

namespace torchscope {

namespace jit = torch::jit;
namespace prim = c10::prim;
namespace attr = c10::attr;

namespace {

// Programs run on the simple executor: the profiling one specializes on input shapes and
// re-optimizes when they change, which random-transform inputs do every step (maximize spent
// seconds per step re-profiling); on the CPU it brings nothing else.
std::shared_ptr<jit::GraphFunction> simpleFunction(std::shared_ptr<jit::Graph> graph) {
  return std::make_shared<jit::GraphFunction>(c10::QualifiedName("torchscope.instrumented_forward"), std::move(graph), nullptr,
                                              jit::ExecutorExecutionMode::SIMPLE);
}

void instrumentInto(const std::shared_ptr<jit::Graph>& graph, const ModuleSurvey& survey, TorchScriptProgram& program) {
  program.callSites = instrumentGraph(graph, program.spec);
  for (const auto& [layer, sites] : program.callSites) {
    auto found = survey.find(parseHookPoint(layer).module);
    const bool surveyed = found != survey.end() && !found->second.reason.empty();
    if (sites > 0 && !surveyed) continue;
    const std::string why = surveyed ? found->second.reason : "forward never calls it in a way torchscope can follow";
    TS_FAIL(code::kUnhookableLayer, "layer '" + layer + "' cannot be hooked: " + why);
  }
}

// bfloat16/float16 weights: conv-BN folding, linear -> matmul + add and oneDNN kernels
// round differently at that precision (up to 7e-3 relative), so those models are frozen only.
bool hasReducedPrecisionWeights(const jit::Module& module) {
  auto reduced = [](const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf; };
  for (const auto& parameter : module.parameters()) {
    if (reduced(parameter)) return true;
  }
  for (const auto& buffer : module.buffers()) {
    if (reduced(buffer)) return true;
  }
  return false;
}

// An optimized program gets libtorch's inference rewrites (else it is frozen only).
}  // namespace

bool rewritesForInference(const jit::Module& module, const ProgramSpec& spec) {
  return spec.precision == Precision::kFloat32 && !hasReducedPrecisionWeights(module);
}

namespace {

void countOps(jit::Block* block, std::map<std::string, int>& counts) {
  for (jit::Node* node : block->nodes()) {
    counts[node->kind().toQualString()] += 1;
    for (jit::Block* nested : node->blocks()) countOps(nested, counts);
  }
}

// A layout changes no value, but aten::view refuses most channels-last strides, so a program
// that views stays contiguous; channels-last only helps a program that convolves.
bool convolvesWithoutView(const std::shared_ptr<jit::Graph>& graph) {
  auto inlined = graph->copy();
  jit::Inline(*inlined);
  std::map<std::string, int> counts;
  countOps(inlined->block(), counts);
  const bool convolves = counts.count("aten::conv2d") || counts.count("aten::_convolution") || counts.count("aten::convolution");
  return convolves && !counts.count("aten::view");
}

// Reduced precision on a CPU that computes it natively: oneDNN's bfloat16/float16 convolutions
// (AVX-512 BF16, AMX) work on channels-last data and reorder NCHW tensors at every call, so
// channels-last inputs (which convolutions keep channels-last) are what PyTorch's CPU tuning guide
// pairs with autocast; measured ~1.8x on ResNet-18 at batch 8. Where the type is emulated the
// layout buys nothing, and the emulated kernels round differently channels-last (AVX2: gradients
// 7e-4 off PyTorch's contiguous autocast), so the program runs as PyTorch's would. Exact float32
// is left alone: its oneDNN kernels round differently channels-last (optimized float32 goes
// channels-last with prepacked convolutions).
bool runsChannelsLast(const ProgramSpec& spec, const std::shared_ptr<jit::Graph>& graph) {
  if (spec.precision == Precision::kFloat32 || spec.device != c10::kCPU) return false;
  const CpuFeatures& cpu = cpuFeatures();
  if (!(spec.precision == Precision::kBFloat16 ? cpu.bf16 : cpu.fp16)) return false;
  return convolvesWithoutView(graph);
}

// Reduced precision, frozen: the float32 weights autocast would cast at every call (ResNet-18:
// ~10 ms, a fifth of a batch-1 forward) are cast once, here. Same values: autocast passes a
// tensor already of its type through. Only ops on autocast's lower-precision list for both CPU
// and CUDA take them; traced convolutions (aten::_convolution, not on it) are first rewritten to
// aten::conv2d and kin, as the graph executor itself does before running them. In a
// channels-last program a 2-D convolution's weight is also kept channels-last, picked per call
// by the weight layout operator (weight_layout.h): oneDNN would otherwise reorder it at every
// call and again in the backward (~20 of 84 ms of a bf16 ResNet-18 maximize step in PyTorch's profile).
void castWeightsOnce(std::shared_ptr<jit::Graph>& graph, at::ScalarType type, bool channelsLast) {
  namespace aten = c10::aten;
  static const std::set<c10::Symbol> autocastOps = {aten::conv1d,
                                                    aten::conv2d,
                                                    aten::conv3d,
                                                    aten::conv_transpose1d,
                                                    aten::conv_transpose2d,
                                                    aten::conv_transpose3d,
                                                    aten::linear,
                                                    aten::matmul,
                                                    aten::mm,
                                                    aten::addmm,
                                                    aten::bmm,
                                                    aten::baddbmm,
                                                    aten::addbmm};
  static const c10::Symbol weightForLayout = c10::Symbol::fromQualString(kWeightLayoutOperator);
  jit::graph_rewrite_helper::replaceConvolutionWithAtenConv(graph);
  // By the float32 constant: its cast, and (2-D convolution weights) its channels-last cast.
  std::map<jit::Value*, std::pair<jit::Value*, jit::Value*>> castOnce;
  std::function<void(jit::Block*)> visit = [&](jit::Block* block) {
    for (jit::Node* node : block->nodes()) {
      for (jit::Block* nested : node->blocks()) visit(nested);
      if (!autocastOps.count(node->kind())) continue;
      for (size_t i = 0; i < node->inputs().size(); ++i) {
        jit::Value* input = node->input(i);
        if (input->node()->kind() != prim::Constant) continue;
        const auto constant = jit::toIValue(input);
        if (!constant || !constant->isTensor() || constant->toTensor().scalar_type() != at::kFloat) continue;
        const bool layoutMatters = channelsLast && node->kind() == aten::conv2d && i == 1 && constant->toTensor().dim() == 4;
        auto& [cast, castChannelsLast] = castOnce[input];
        if (!cast) {
          jit::WithInsertPoint here(input->node());
          cast = graph->insertConstant(constant->toTensor().to(type));
        }
        if (!layoutMatters) {
          node->replaceInput(i, cast);
          continue;
        }
        if (!castChannelsLast) {
          jit::WithInsertPoint here(input->node());
          castChannelsLast = graph->insertConstant(jit::toIValue(cast)->toTensor().contiguous(at::MemoryFormat::ChannelsLast));
        }
        jit::WithInsertPoint here(node);
        jit::Node* pick = graph->insertNode(graph->create(weightForLayout, {node->input(0), cast, castChannelsLast}));
        pick->output()->setType(c10::TensorType::get());
        node->replaceInput(i, pick->output());
      }
    }
  };
  visit(graph->block());
  jit::EliminateDeadCode(graph);
}

// A transformer's inference rewrites, in the order they enable each other; whether a linear was
// prepacked (optimize_for_inference would then move these ops' values to oneDNN's layout and back).
bool rewriteTransformer(std::shared_ptr<jit::Graph>& graph) {
  recognizeTanhGelu(graph);
  recognizeRmsNorm(graph);
  fuseAttention(graph);
  return prepackLinears(graph) > 0;
}

// The program as a method of a frozen copy of the module, optimized for inference. The copy
// shares the module's tensors (clone in place gives new types, same data); folding makes new
// ones only for the weights it rewrites.
void buildOptimized(const jit::Module& module, const ModuleSurvey& survey, TorchScriptProgram& program) {
  static const std::string name = "torchscope_program";
  jit::Module base = module.clone(/*inplace=*/true);
  auto graph = jit::toGraphFunction(base.get_method("forward").function()).graph()->copy();
  instrumentInto(graph, survey, program);
  auto* function = base._ivalue()->compilation_unit()->create_function(c10::QualifiedName(*base.type()->name(), name), graph);
  base.type()->addMethod(function);
  jit::Module frozen = jit::freeze_module(base, {name});
  // Under autocast too: the rewrites' fused oneDNN ops are not autocast ops, so they would run in
  // float32 and a bf16 request would silently not be one.
  if (program.spec.precision != Precision::kFloat32) {
    auto frozenGraph = jit::toGraphFunction(frozen.get_method(name).function()).graph();
    program.channelsLast = runsChannelsLast(program.spec, frozenGraph);
    // Inference at a natively computed bfloat16: convolutions prepacked at it (conv_prepack.h);
    // the prepacked op has no backward.
    const at::ScalarType type = reducedType(program.spec.precision);
    if (program.channelsLast && !program.spec.differentiable && type == at::kBFloat16) prepackConvolutions(frozenGraph, type);
    castWeightsOnce(frozenGraph, type, program.channelsLast);
    program.numerics = "frozen";
  } else if (!rewritesForInference(module, program.spec)) {
    program.numerics = "frozen";
  } else {
    // torch::jit::freeze would optimize forward only; the program is another method.
    auto frozenGraph = jit::toGraphFunction(frozen.get_method(name).function()).graph();
    jit::OptimizeFrozenGraph(frozenGraph, /*optimize_numerics=*/true);
    // On the CPU a program that convolves and never views gets prepacked channels-last
    // convolutions (conv_prepack.h); one with linear layers (a transformer) gets them prepacked
    // (linear_prepack.h), its written-out GELU and RMSNorm and its attention fused first
    // (written_out_ops.h, attention_fusion.h); any other, libtorch's rewrite to oneDNN's blocked layout.
    const bool cpu = program.spec.device == c10::kCPU;
    if (cpu && convolvesWithoutView(frozenGraph) && prepackConvolutions(frozenGraph, at::kFloat) > 0) {
      program.channelsLast = true;
    } else if (!cpu || !rewriteTransformer(frozenGraph)) {
      frozen = jit::optimize_for_inference(frozen, {name});
    }
    program.numerics = "optimized";
  }
  program.function = simpleFunction(jit::toGraphFunction(frozen.get_method(name).function()).graph());
  program.forwardSchema = frozen.get_method("forward").function().getSchema();  // self is the frozen type
  program.self = frozen._ivalue();
}

void buildExact(const jit::Module& module, const ModuleSurvey& survey, TorchScriptProgram& program) {
  auto graph = jit::toGraphFunction(module.get_method("forward").function()).graph()->copy();
  instrumentInto(graph, survey, program);
  poolChannelsLast(graph);
  program.channelsLast = runsChannelsLast(program.spec, graph);
  program.function = simpleFunction(graph);
  program.forwardSchema = module.get_method("forward").function().getSchema();
  program.self = module._ivalue();
  program.numerics = "exact";
}

void collectCalls(jit::Block* block, const jit::Value* self, std::set<std::string>& calls) {
  for (jit::Node* node : block->nodes()) {
    if (node->kind() == prim::CallMethod) {
      auto path = modulePath(node->input(0), self);
      const std::string method = node->s(attr::name);
      if (path) calls.insert(*path + (isForwardMethod(method) ? "" : ":" + method));
    }
    for (jit::Block* nested : node->blocks()) collectCalls(nested, self, calls);
  }
}

}  // namespace

std::shared_ptr<const Program> buildTorchScriptProgram(const jit::Module& module, const ModuleSurvey& survey, const ProgramSpec& spec) {
  for (const auto* layers : {&spec.capture, &spec.patch, &spec.gradient, &spec.replace}) {
    for (const std::string& layer : *layers) {
      const std::string module = parseHookPoint(layer).module;
      TS_CHECK(!module.empty() && survey.count(module), code::kUnknownLayer, "no layer '", module, "' in this model");
    }
  }
  checkSaeSplices(spec);
  const auto start = std::chrono::steady_clock::now();
  auto program = std::make_shared<TorchScriptProgram>(spec);
  if (spec.optimize) {
    buildOptimized(module, survey, *program);
  } else {
    buildExact(module, survey, *program);
  }
  program->buildMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return program;
}

RunResult TorchScriptProgram::run(std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches,
                                  const std::vector<at::Tensor>& replacements, const std::vector<std::shared_ptr<const Sae>>& saes) const {
  const TorchScriptProgram& program = *this;
  TS_CHECK(replacements.size() == spec.replace.size(), code::kInternal, replacements.size(), " replacement(s) for a program that replaces ",
           spec.replace.size());
  jit::Stack stack;
  stack.reserve(inputs.size() + 1 + patches.size() * 5 + replacements.size() + saes.size());
  stack.push_back(program.self);
  for (auto& input : inputs) stack.push_back(std::move(input));
  try {
    program.forwardSchema->checkAndNormalizeInputs(stack);
  } catch (const c10::Error& e) {
    TS_FAIL(code::kInvalidArgument, e.what_without_backtrace());
  }
  if (program.channelsLast) {
    for (auto argument = stack.begin() + 1; argument != stack.end(); ++argument) {
      if (!argument->isTensor()) continue;
      const at::Tensor input = argument->toTensor();
      if (input.dim() == 4 && input.is_floating_point()) *argument = input.contiguous(at::MemoryFormat::ChannelsLast);
    }
  }
  for (const PatchArgs& patch : patches) {
    stack.emplace_back(patch.mode);
    stack.emplace_back(patch.value);
    stack.emplace_back(patch.scale);
    stack.emplace_back(c10::List<int64_t>(patch.channels));
    stack.emplace_back(c10::List<int64_t>(patch.positions));
  }
  for (const at::Tensor& replacement : replacements) stack.emplace_back(replacement);
  TS_CHECK(saes.size() == spec.saes.size(), code::kInternal, saes.size(), " SAE(s) for a program that splices ", spec.saes.size());
  for (const auto& sae : saes) stack.emplace_back(c10::make_intrusive<SaeObject>(sae));
  {
    PrecisionScope precision(program.spec.precision, program.spec.device);
    program.function->run(stack);
  }
  auto results = stack.back().toTuple()->elements().vec();
  RunResult result;
  size_t next = 0;
  if (program.spec.returnOutput) result.output = results.at(next++);
  for (const std::string& layer : program.spec.targets()) {
    auto records = results.at(next++).toList();
    result.calls[layer] = static_cast<int64_t>(records.size());
    if (program.spec.captures(layer)) result.captures[layer] = records.vec();
  }
  for (const std::string& layer : program.spec.gradient) {
    auto& values = result.taps[layer];
    for (const c10::IValue& value : results.at(next++).toList().vec()) values.push_back(value.toTensor());
  }
  return result;
}

ProgramSummary TorchScriptProgram::summary() const {
  const TorchScriptProgram& program = *this;
  ProgramSummary summary;
  auto graph = program.function->graph();
  summary.graph = graph->toString();
  std::set<std::string> calls;
  collectCalls(graph->block(), graph->inputs().at(0), calls);
  summary.calledModules.assign(calls.begin(), calls.end());
  auto inlined = graph->copy();
  jit::Inline(*inlined);
  countOps(inlined->block(), summary.opCounts);
  summary.numerics = program.numerics;
  summary.precision = nameOf(kPrecisions, program.spec.precision);
  summary.memoryFormat = program.channelsLast ? "channels_last" : "contiguous";
  summary.buildMs = program.buildMs;
  return summary;
}

}  // namespace torchscope
