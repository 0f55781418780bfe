// The fused CPU passes of FeatureStats: each thread takes a slice of the features and reads its
// columns of the batch [rows * ctx, F] once, token by token, updating every statistic of its
// features as it goes (the libtorch ops of feature_stats.cpp read it a dozen times, with int64
// temporaries). The same definitions, value for value: the top k kept sorted by (value desc, flat index asc) (a later equal value
// never displaces an earlier one), histc's float bin expression, the intervals' bounds compared
// as in searchsorted, and the samples kept sorted by key.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "methods/feature_stats.h"
#include "methods/feature_stats_math.h"

namespace torchscope {

namespace {

// Features a thread takes at least: a row's slice of them fills cache lines.
constexpr int64_t kFeatureGrain = 16;

}  // namespace

void FeatureStats::firstPassFused(const at::Tensor& values) {
  const int64_t count = this->count(), rows = values.size(0), ctx = spec_.contextSize, k = spec_.k;
  if (!max_.defined()) {
    max_ = at::full({count}, -std::numeric_limits<float>::infinity(), at::kFloat);
    positive_ = at::zeros({count}, at::kLong);
    minPositive_ = at::full({count}, std::numeric_limits<float>::infinity(), at::kFloat);
    topValue_ = at::zeros({count, k}, at::kFloat);
    topIndex_ = at::zeros({count, k}, at::kLong);
  }
  const float* data = values.const_data_ptr<float>();
  float* max = max_.data_ptr<float>();
  int64_t* positive = positive_.data_ptr<int64_t>();
  float* minPositive = minPositive_.data_ptr<float>();
  float* topValue = topValue_.data_ptr<float>();
  int64_t* topIndex = topIndex_.data_ptr<int64_t>();
  const int64_t first = spec_.buffered ? spec_.before : 0, last = spec_.buffered ? ctx - spec_.after : ctx;
  const int64_t base = rows_[0] * ctx;
  at::parallel_for(0, count, kFeatureGrain, [&](int64_t begin, int64_t end) {
    int64_t filled = kept_;  // the same for every feature: they see the same positions
    for (int64_t n = 0; n < rows * ctx; n++) {
      const float* row = data + n * count;
      const int64_t p = n % ctx;
      const bool qualifies = p >= first && p < last;
      for (int64_t f = begin; f < end; f++) {
        const float v = row[f] + 0.0f;         // -0 as 0
        if (v > max[f] || v != v) max[f] = v;  // a NaN sticks
        if (v > 0) {
          positive[f]++;
          if (v < minPositive[f]) minPositive[f] = v;
        }
        float* tv = topValue + f * k;
        if (!qualifies || (filled == k && !(v > tv[k - 1]))) continue;
        // Before the first smaller value: after equal ones, which came earlier.
        int64_t* ti = topIndex + f * k;
        int64_t at = std::min(filled, k - 1);
        while (at > 0 && tv[at - 1] < v) at--;
        const int64_t moved = std::min(filled, k - 1) - at;
        std::memmove(tv + at + 1, tv + at, moved * sizeof(float));
        std::memmove(ti + at + 1, ti + at, moved * sizeof(int64_t));
        tv[at] = v;
        ti[at] = base + n;
      }
      if (qualifies && filled < k) filled++;
    }
  });
  kept_ = std::min(k, kept_ + rows * (last - first));
}

void FeatureStats::secondPassFused(const at::Tensor& values, const at::Tensor& tokens) {
  const int64_t count = this->count(), rows = values.size(0), ctx = spec_.contextSize, w = window();
  const int64_t intervals = spec_.intervals, size = spec_.intervalSize, bins = spec_.bins, kept = kept_;
  const int64_t first = spec_.buffered ? spec_.before : 0, last = spec_.buffered ? ctx - spec_.after : ctx;
  const int64_t base = rows_[1] * ctx, offset = spec_.buffered ? spec_.before : 0;
  const at::Tensor keyTensor = sampleKeys(spec_.seed, base, rows * ctx);
  const int64_t* keys = keyTensor.const_data_ptr<int64_t>();
  const float* data = values.const_data_ptr<float>();
  const int64_t* ids = withTokens_ ? tokens.const_data_ptr<int64_t>() : nullptr;
  const float *histLow = histLow_.const_data_ptr<float>(), *histHigh = histHigh_.const_data_ptr<float>();
  const float* bounds = bounds_.const_data_ptr<float>();
  const bool* has = hasIntervals_.const_data_ptr<bool>();
  int64_t* histCount = histCount_.data_ptr<int64_t>();
  int64_t* intervalCount = intervalCount_.data_ptr<int64_t>();
  int64_t *sampleKey = sampleKey_.data_ptr<int64_t>(), *sampleIndex = sampleIndex_.data_ptr<int64_t>(),
          *fill = sampleFill_.data_ptr<int64_t>();
  float *sampleValue = sampleValue_.data_ptr<float>(), *sampleWindow = sampleWindow_.data_ptr<float>();
  int64_t* sampleTokens = withTokens_ ? sampleTokens_.data_ptr<int64_t>() : nullptr;
  const int64_t* topIndex = topIndex_.const_data_ptr<int64_t>();
  const int64_t topStride = topIndex_.size(1);
  float* topWindow = topWindow_.data_ptr<float>();
  int64_t* topTokens = withTokens_ ? topTokens_.data_ptr<int64_t>() : nullptr;
  const float binCount = static_cast<float>(bins);

  at::parallel_for(0, count, kFeatureGrain, [&](int64_t begin, int64_t end) {
    // Feature f's window around token n of this batch: its values (and the tokens) into `out`.
    auto copyWindow = [&](int64_t f, int64_t n, float* out, int64_t* outTokens) {
      const int64_t start = n - (n % ctx) + (spec_.buffered ? n % ctx - offset : 0);
      for (int64_t i = 0; i < w; i++) out[i] = data[(start + i) * count + f] + 0.0f;
      if (outTokens) std::memcpy(outTokens, ids + start, w * sizeof(int64_t));
    };
    // Token n into group g's sample when its key beats the group's s-th (its window comes later).
    auto consider = [&](int64_t g, int64_t n, float v) {
      int64_t* key = sampleKey + g * size;
      const int64_t held = fill[g];
      if (held == size && !(keys[n] < key[size - 1])) return;
      int64_t at = std::min(held, size - 1);
      while (at > 0 && key[at - 1] > keys[n]) at--;
      const int64_t moved = std::min(held, size - 1) - at, slot = g * size + at;
      std::memmove(key + at + 1, key + at, moved * sizeof(int64_t));
      std::memmove(sampleIndex + slot + 1, sampleIndex + slot, moved * sizeof(int64_t));
      std::memmove(sampleValue + slot + 1, sampleValue + slot, moved * sizeof(float));
      std::memmove(sampleWindow + (slot + 1) * w, sampleWindow + slot * w, moved * w * sizeof(float));
      if (sampleTokens) std::memmove(sampleTokens + (slot + 1) * w, sampleTokens + slot * w, moved * w * sizeof(int64_t));
      key[at] = keys[n];
      sampleIndex[slot] = base + n;
      sampleValue[slot] = v;
      if (held < size) fill[g]++;
    };
    for (int64_t n = 0; n < rows * ctx; n++) {
      const float* row = data + n * count;
      const int64_t p = n % ctx;
      const bool qualifies = p >= first && p < last;
      for (int64_t f = begin; f < end; f++) {
        const float v = row[f] + 0.0f;
        if (v > 0 && v >= histLow[f] && v <= histHigh[f]) {
          // ATen's histc kernel, step by step in float.
          const float shifted = v - histLow[f];
          const float scaled = shifted * binCount;
          const int64_t bin = static_cast<int64_t>(scaled / (histHigh[f] - histLow[f]));
          histCount[f * bins + std::min(bin, bins - 1)]++;
        }
        const float* b = bounds + f * (intervals + 1);
        if (!has[f] || !(v >= 0 && v <= b[intervals])) continue;
        // Most activations of an SAE are 0: the lowest interval, without a search.
        const int64_t j = v < b[1] ? 0 : std::min<int64_t>(std::upper_bound(b, b + intervals + 1, v) - b - 1, intervals - 1);
        const bool onLower = j >= 1 && v == b[j];
        intervalCount[f * intervals + j]++;
        if (onLower) intervalCount[f * intervals + j - 1]++;
        if (!qualifies) continue;
        consider(f * intervals + j, n, v);
        if (onLower) consider(f * intervals + j - 1, n, v);
      }
    }
    // The windows of this batch's tokens, once the batch has settled which stay (most that
    // enter a sample early are pushed out by later ones).
    for (int64_t slot = begin * intervals * size; slot < end * intervals * size; slot++) {
      if (sampleIndex[slot] < base) continue;
      copyWindow(slot / (intervals * size), sampleIndex[slot] - base, sampleWindow + slot * w,
                 sampleTokens ? sampleTokens + slot * w : nullptr);
    }
    for (int64_t f = begin; f < end; f++) {
      for (int64_t e = 0; e < kept; e++) {
        const int64_t n = topIndex[f * topStride + e] - base;
        if (n < 0 || n >= rows * ctx) continue;
        copyWindow(f, n, topWindow + (f * kept + e) * w, topTokens ? topTokens + (f * kept + e) * w : nullptr);
      }
    }
  });
}

}  // namespace torchscope
