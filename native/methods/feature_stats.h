// Feature dashboards over a dataset (SAEDashboard's definitions, sae_dashboard/
// sequence_data_generator.py and sae_vis_runner.py), streamed in two passes over batches of
// activations [rows, ctx, ...] so that nothing grows with the dataset:
//   pass 1: per feature the max, the count of activations > 0, the smallest of those, and the
//           top k over the flattened (row, position) grid (positions within the buffer), merged
//           batch by batch with the running top k: k candidates per feature, never more;
//   pass 2: the histogram of the activations > 0 (torch.histc's bins over [min, max] of them),
//           the equal-width intervals linspace(0, max, intervals + 1) (the lowest takes zeros;
//           a value on a bound is in both intervals, as lower <= act <= upper says) with their
//           counts over every token, and per interval a sample of intervalSize tokens within the
//           buffer: those with the smallest hash(seed, token) (below), merged batch by batch;
//           the context windows of the top examples and of the samples are gathered here.
// Orders: the top k by value descending, then by flat index (row * ctx + position) ascending.
// The sample's hash is the (t + 1)-th output of SplitMix64 seeded with `seed`, t the token's flat
// index in the dataset: z = seed + (t + 1) * 0x9E3779B97F4A7C15, then SplitMix64's mix; the
// tokens with the smallest z (unsigned) are taken. z is a bijection of t, so there are no ties:
// a uniform sample without replacement, reproducible anywhere from (seed, t).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "sae/sae.h"

namespace torchscope {

struct FeatureStatsSpec {
  std::shared_ptr<const Sae> sae;  // null: the activations' own channels
  std::vector<int64_t> features;   // the SAE's features, or the channels
  int64_t contextSize = 0;
  int64_t k = 20;
  // Without a buffer every position qualifies and the window is the whole row; with one, a
  // position p qualifies when before <= p < ctx - after and its window is [p - before, p + after].
  bool buffered = false;
  int64_t before = 0;
  int64_t after = 0;
  int64_t intervals = 10;
  int64_t intervalSize = 5;
  int64_t bins = 50;
  uint64_t seed = 0;
  // The same statistics as libtorch ops over [F, rows * ctx] (any device: what runs off the CPU),
  // or in one fused pass over the batch, threads taking slices of the features
  // (feature_stats_cpu.cpp: one read of the batch instead of a dozen, 7-14x faster measured).
  // Default: the ops off the CPU, the fused pass on it; test/dashboard.test.ts checks they agree.
  bool tensorOps = false;
};

class FeatureStats {
 public:
  explicit FeatureStats(FeatureStatsSpec spec);

  // One batch of pass 1 or 2: activations [rows, ctx, ...] (what the SAE encodes, or [rows, ctx,
  // channels]), tokens [rows, ctx] int32/int64 or undefined (every batch alike).
  void add(int pass, const at::Tensor& activations, const at::Tensor& tokens);
  // Everything, on the CPU, once pass 2 has seen every row pass 1 saw.
  c10::IValue result() const;
  // The shapes of what the state holds (the top k stays [features, k]) and its bytes.
  c10::IValue stateSizes() const;

 private:
  int64_t count() const { return static_cast<int64_t>(spec_.features.size()); }
  bool fused() const { return device_.is_cpu() && !spec_.tensorOps; }
  int64_t window() const { return spec_.buffered ? spec_.before + spec_.after + 1 : spec_.contextSize; }
  // The features' activations [rows, ctx, F], float32, contiguous, on the device.
  at::Tensor featureValues(const at::Tensor& activations);
  at::Tensor checkedTokens(const at::Tensor& tokens, int64_t rows);
  void startSecondPass();
  // libtorch ops: values [F, rows, ctx], -0 as 0.
  void firstPass(const at::Tensor& values);
  void secondPass(const at::Tensor& values, const at::Tensor& tokens);
  void gatherTopWindows(const at::Tensor& values, const at::Tensor& tokens);
  void mergeSamples(const at::Tensor& values, const at::Tensor& tokens);
  // The fused CPU passes (feature_stats_cpu.cpp): values [rows, ctx, F].
  void firstPassFused(const at::Tensor& values);
  void secondPassFused(const at::Tensor& values, const at::Tensor& tokens);

  FeatureStatsSpec spec_;
  c10::Device device_ = c10::Device(c10::kCPU);
  bool started_ = false;  // the first batch fixed the device, the width and whether tokens come
  bool withTokens_ = false;
  int64_t width_ = 0;  // the activations' channels (neurons) or the SAE's d_sae
  int pass_ = 1;
  int64_t rows_[2] = {0, 0};
  at::Tensor index_;  // the features, int64 on the device

  // Pass 1.
  at::Tensor max_, positive_, minPositive_;  // [F]
  at::Tensor topValue_, topIndex_;           // [F, k or fewer], the flat index row * ctx + position
  int64_t kept_ = 0;                         // the top k's filled columns (all features alike)
  // Pass 2.
  at::Tensor histLow_, histHigh_, histCount_;         // [F], [F], [F * bins]
  at::Tensor bounds_, hasIntervals_, intervalCount_;  // [F, I + 1], [F], [F * I]
  at::Tensor sampleKey_, sampleIndex_, sampleValue_;  // [F * I, s]; index -1: empty
  at::Tensor sampleFill_;                             // [F * I]
  at::Tensor sampleWindow_, sampleTokens_;            // [F * I, s, window]
  at::Tensor topWindow_, topTokens_;                  // [F, <= k, window]
};

// Top and bottom k of each row of logits [F, vocab] (ties to the lower id) and each row's
// torch.histc(row, bins): { topIds, topValues, bottomIds, bottomValues, histLow, histHigh,
// histCount } on the CPU.
c10::IValue logitEffects(const at::Tensor& logits, int64_t k, int64_t bins);
// The SAE's decoder rows of `features`, float32 [F, d_out] on its device.
at::Tensor decoderRows(const Sae& sae, const std::vector<int64_t>& features);
// Those rows times the unembedding [d_out, vocab]: their direct logit effects without the final
// norm, as SAEDashboard's feature_resid_dir @ W_U.
at::Tensor decoderLogits(const Sae& sae, const std::vector<int64_t>& features, const at::Tensor& unembed);

}  // namespace torchscope
