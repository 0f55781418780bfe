#include "methods/feature_stats.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/errors.h"
#include "core/ivalues.h"
#include "methods/feature_stats_math.h"

namespace torchscope {

namespace {

constexpr int64_t kEmptyKey = std::numeric_limits<int64_t>::max();

c10::IValue shapeOf(const at::Tensor& tensor) {
  std::vector<double> sizes;
  if (tensor.defined())
    for (int64_t size : tensor.sizes()) sizes.push_back(static_cast<double>(size));
  return numberList(sizes);
}

int64_t bytesOf(const at::Tensor& tensor) { return tensor.defined() ? static_cast<int64_t>(tensor.nbytes()) : 0; }

}  // namespace

FeatureStats::FeatureStats(FeatureStatsSpec spec) : spec_(std::move(spec)) {
  TS_CHECK(!spec_.features.empty(), code::kInvalidArgument, "name at least one feature");
  TS_CHECK(spec_.contextSize > 0, code::kInvalidArgument, "contextSize must be positive");
  TS_CHECK(spec_.k > 0 && spec_.intervals > 0 && spec_.intervalSize > 0 && spec_.bins > 0, code::kInvalidArgument,
           "k, intervals, intervalSize and bins must be positive");
  TS_CHECK(!spec_.buffered || (spec_.before >= 0 && spec_.after >= 0 && spec_.before + spec_.after < spec_.contextSize),
           code::kInvalidArgument, "a buffer of [", spec_.before, ", ", spec_.after, "] leaves no position of a ", spec_.contextSize,
           "-token row");
  if (spec_.sae) {
    width_ = spec_.sae->dSae();
    device_ = spec_.sae->spec().W_enc.device();
  }
  for (int64_t f : spec_.features) {
    TS_CHECK(f >= 0 && (!spec_.sae || f < width_), code::kInvalidArgument, "feature ", f, " is out of range: the SAE has ", width_,
             " features");
  }
}

at::Tensor FeatureStats::checkedTokens(const at::Tensor& tokens, int64_t rows) {
  const bool given = tokens.defined();
  if (!started_) withTokens_ = given;
  TS_CHECK(given == withTokens_, code::kInvalidArgument, "every batch gives tokens, or none does: this one ", given ? "does" : "does not");
  if (!given) return tokens;
  TS_CHECK(tokens.scalar_type() == at::kLong || tokens.scalar_type() == at::kInt, code::kDtype, "tokens must be int32 or int64, got ",
           tokens.scalar_type());
  TS_CHECK(tokens.dim() == 2 && tokens.size(0) == rows && tokens.size(1) == spec_.contextSize, code::kShape, "tokens must be [", rows, ", ",
           spec_.contextSize, "] as the activations' rows, got ", tokens.sizes());
  return tokens.to(device_, at::kLong);
}

at::Tensor FeatureStats::featureValues(const at::Tensor& activations) {
  TS_CHECK(activations.is_floating_point(), code::kDtype, "activations must be floating point, got ", activations.scalar_type());
  TS_CHECK(activations.dim() >= 3 && activations.size(1) == spec_.contextSize, code::kShape, "activations must be [rows, ",
           spec_.contextSize, ", ...], got ", activations.sizes());
  at::Tensor features;
  if (spec_.sae) {
    const at::Tensor x = activations.to(device_);
    features = spec_.sae->features(spec_.sae->featuresPre(x), x);
    TS_CHECK(features.dim() == 3, code::kShape, "the SAE encodes activations ", activations.sizes(), " to ", features.sizes(),
             ": give [rows, ctx, d_in]");
  } else {
    TS_CHECK(activations.dim() == 3, code::kShape, "activations must be [rows, ", spec_.contextSize, ", channels], got ",
             activations.sizes());
    if (!started_) {
      device_ = activations.device();
      width_ = activations.size(2);
      for (int64_t f : spec_.features) {
        TS_CHECK(f < width_, code::kInvalidArgument, "neuron ", f, " is out of range: the activations have ", width_, " channels");
      }
    }
    TS_CHECK(activations.size(2) == width_, code::kShape, "every batch has ", width_, " channels; this one ", activations.size(2));
    features = activations.to(device_);
  }
  if (!index_.defined()) index_ = at::tensor(spec_.features, at::kLong).to(device_);
  // Every channel in order (neurons by default): no copy to select them.
  bool all = count() == features.size(2);
  for (int64_t i = 0; all && i < count(); i++) all = spec_.features[static_cast<size_t>(i)] == i;
  return (all ? features : features.index_select(2, index_)).to(at::kFloat).contiguous();
}

void FeatureStats::add(int pass, const at::Tensor& activations, const at::Tensor& tokens) {
  TS_CHECK(pass == 1 || pass == 2, code::kInvalidArgument, "pass must be 1 or 2");
  TS_CHECK(pass >= pass_, code::kInvalidArgument, "pass 1 is over: its batches come before pass 2's");
  at::NoGradGuard noGrad;
  if (pass == 2 && pass_ == 1) startSecondPass();
  const at::Tensor values = featureValues(activations);
  const at::Tensor ids = checkedTokens(tokens, activations.size(0));
  started_ = true;
  const int64_t rows = values.size(0);
  if (pass == 2) {
    TS_CHECK(rows_[1] + rows <= rows_[0], code::kInvalidArgument, "pass 2 read more rows than pass 1's ", rows_[0],
             ": the source must give the same batches each time it is read");
  }
  if (fused()) {
    if (pass == 1) firstPassFused(values);
    else secondPassFused(values, ids.defined() ? ids.contiguous() : ids);
  } else {
    // [F, rows, ctx], and -0 as 0: the keys order bits.
    at::Tensor byFeature = values.permute({2, 0, 1}).contiguous();
    byFeature.masked_fill_(byFeature.eq(0), 0.0);
    if (pass == 1) firstPass(byFeature);
    else secondPass(byFeature, ids);
  }
  rows_[pass - 1] += rows;
}

void FeatureStats::firstPass(const at::Tensor& values) {
  const int64_t count = this->count(), rows = values.size(1), ctx = spec_.contextSize;
  const at::Tensor positive = values.gt(0);
  const at::Tensor batchMax = values.amax({1, 2});
  const at::Tensor batchPositive = positive.sum({1, 2});
  const at::Tensor batchMin = values.masked_fill(positive.logical_not(), std::numeric_limits<float>::infinity()).amin({1, 2});
  if (!max_.defined()) {
    max_ = batchMax;
    positive_ = batchPositive;
    minPositive_ = batchMin;
  } else {
    max_ = at::maximum(max_, batchMax);
    positive_.add_(batchPositive);
    minPositive_ = at::minimum(minPositive_, batchMin);
  }
  // This batch's top k over its qualifying positions, merged with the running top k: both in
  // (value desc, flat index asc) order, the running ones all earlier in the dataset, so the
  // merged list's own position breaks ties as the flat index does.
  const int64_t start = spec_.buffered ? spec_.before : 0;
  const int64_t span = spec_.buffered ? ctx - spec_.before - spec_.after : ctx;
  const at::Tensor region = values.narrow(2, start, span).reshape({count, rows * span});
  const at::Tensor columns = topColumns(region, spec_.k);
  const at::Tensor flat = columns.div(span, "trunc").add_(rows_[0]).mul_(ctx).add_(columns.remainder(span).add_(start));
  const at::Tensor batchValues = region.gather(1, columns);
  if (!topValue_.defined()) {
    topValue_ = batchValues;
    topIndex_ = flat;
  } else {
    const at::Tensor values2 = at::cat({topValue_, batchValues}, 1), index2 = at::cat({topIndex_, flat}, 1);
    const at::Tensor kept = topColumns(values2, spec_.k);
    topValue_ = values2.gather(1, kept);
    topIndex_ = index2.gather(1, kept);
  }
  kept_ = topValue_.size(1);
}

void FeatureStats::startSecondPass() {
  TS_CHECK(rows_[0] > 0, code::kInvalidArgument, "pass 1 saw no rows");
  pass_ = 2;
  const int64_t count = this->count(), intervals = spec_.intervals, groups = count * intervals;
  const at::Tensor maxCpu = max_.cpu(), minCpu = minPositive_.cpu(), positiveCpu = positive_.cpu();
  const float* max = maxCpu.data_ptr<float>();
  for (int64_t f = 0; f < count; f++) {
    TS_CHECK(!std::isnan(max[f]), code::kInvalidArgument, "the activations of feature ", spec_.features[static_cast<size_t>(f)],
             " hold NaN");
  }
  // The histogram of activations > 0 spans their [min, max] (histc's edges); a feature without
  // any gets edges no value lies within.
  const at::Tensor dead = positiveCpu.eq(0);
  auto [low, high] = histcEdges(minCpu.masked_fill(dead, 1), maxCpu.masked_fill(dead, 0));
  histLow_ = low.to(device_);
  histHigh_ = high.to(device_);
  histCount_ = at::zeros({count, spec_.bins}, at::TensorOptions().dtype(at::kLong).device(device_));
  // Intervals for features whose max is above 0: torch.linspace(0, max, I + 1) each, as
  // SAEDashboard computes them (the same kernel, so the same floats).
  at::Tensor bounds = at::zeros({count, intervals + 1}, at::kFloat);
  at::Tensor has = maxCpu.gt(0);
  for (int64_t f = 0; f < count; f++) {
    if (max[f] > 0) bounds[f].copy_(at::linspace(0, static_cast<double>(max[f]), intervals + 1, at::kFloat));
  }
  bounds_ = bounds.to(device_);
  hasIntervals_ = has.to(device_);
  const auto longs = at::TensorOptions().dtype(at::kLong).device(device_);
  intervalCount_ = at::zeros({groups}, longs);
  sampleKey_ = at::full({groups, spec_.intervalSize}, kEmptyKey, longs);
  sampleIndex_ = at::full({groups, spec_.intervalSize}, -1, longs);
  sampleValue_ = at::zeros({groups, spec_.intervalSize}, longs.dtype(at::kFloat));
  sampleFill_ = at::zeros({groups}, longs);
  sampleWindow_ = at::zeros({groups, spec_.intervalSize, window()}, longs.dtype(at::kFloat));
  topWindow_ = at::zeros({count, kept_, window()}, longs.dtype(at::kFloat));
  if (withTokens_) {
    sampleTokens_ = at::zeros({groups, spec_.intervalSize, window()}, longs);
    topTokens_ = at::zeros({count, kept_, window()}, longs);
  }
}

void FeatureStats::secondPass(const at::Tensor& values, const at::Tensor& tokens) {
  const int64_t count = this->count(), n = values.size(1) * values.size(2);
  const at::Tensor flat = values.view({count, n});
  histCount_.add_(histcCounts(flat, flat.gt(0), histLow_, histHigh_, spec_.bins));
  gatherTopWindows(values, tokens);
  mergeSamples(values, tokens);
}

void FeatureStats::gatherTopWindows(const at::Tensor& values, const at::Tensor& tokens) {
  const int64_t ctx = spec_.contextSize, rows = values.size(1);
  const at::Tensor row = topIndex_.div(ctx, "trunc");
  const at::Tensor here = row.ge(rows_[1]).logical_and_(row.lt(rows_[1] + rows)).nonzero();
  if (here.size(0) == 0) return;
  const at::Tensor f = here.select(1, 0), e = here.select(1, 1);
  const at::Tensor flat = topIndex_.index({f, e});
  const at::Tensor local = flat.div(ctx, "trunc").sub_(rows_[1]), position = flat.remainder(ctx);
  const at::Tensor start = spec_.buffered ? position.sub(spec_.before) : at::zeros_like(position);
  const at::Tensor span = start.unsqueeze(1).add(at::arange(window(), start.options()));
  topWindow_.index_put_({f, e}, values.index({f.unsqueeze(1), local.unsqueeze(1), span}));
  if (withTokens_) topTokens_.index_put_({f, e}, tokens.index({local.unsqueeze(1), span}));
}

void FeatureStats::mergeSamples(const at::Tensor& values, const at::Tensor& tokens) {
  const int64_t count = this->count(), intervals = spec_.intervals, size = spec_.intervalSize, ctx = spec_.contextSize;
  const int64_t rows = values.size(1), n = rows * ctx, groups = count * intervals;
  const at::Tensor v = values.view({count, n});
  const auto longs = v.options().dtype(at::kLong);
  // Each value's interval j: bounds[j] <= v < bounds[j + 1] (the top one closed); a value on an
  // inner bound is also in the interval below, whose upper bound it is.
  const at::Tensor j = at::searchsorted(bounds_, v, false, true).sub_(1).clamp_(0, intervals - 1);
  const at::Tensor member = v.ge(0).logical_and_(v.le(bounds_.narrow(1, intervals, 1))).logical_and_(hasIntervals_.unsqueeze(1));
  const at::Tensor onLower = member.logical_and(j.ge(1)).logical_and_(v.eq(bounds_.gather(1, j)));
  const at::Tensor base = at::arange(count, longs).mul_(intervals).unsqueeze(1);
  const at::Tensor group = j.add(base), below = group.sub(1);
  intervalCount_.add_(at::bincount(group.masked_select(member), {}, groups)).add_(at::bincount(below.masked_select(onLower), {}, groups));

  // Sample candidates: qualifying positions whose key beats their group's current s-th key (or
  // whose group is not full yet).
  at::Tensor qualifies = at::ones({n}, v.options().dtype(at::kBool));
  if (spec_.buffered) {
    const at::Tensor position = at::arange(n, longs).remainder_(ctx);
    qualifies = position.ge(spec_.before).logical_and_(position.lt(ctx - spec_.after));
  }
  const at::Tensor keys = sampleKeys(spec_.seed, rows_[1] * ctx, n).to(v.device());
  const at::Tensor threshold = sampleKey_.select(1, size - 1), open = sampleFill_.lt(size);
  auto candidates = [&](const at::Tensor& in, const at::Tensor& g) {
    const at::Tensor beats = keys.unsqueeze(0).lt(threshold.index({g})).logical_or_(open.index({g}));
    return in.logical_and(qualifies.unsqueeze(0)).logical_and_(beats).nonzero();
  };
  const at::Tensor first = candidates(member, group), second = candidates(onLower, below.clamp_min(0));
  const at::Tensor fresh = at::cat({first, second});  // (feature, token) pairs
  if (fresh.size(0) == 0) return;
  const at::Tensor freshFeature = fresh.select(1, 0), freshToken = fresh.select(1, 1);
  const at::Tensor freshGroup =
      at::cat({group.index({first.select(1, 0), first.select(1, 1)}), below.index({second.select(1, 0), second.select(1, 1)})});
  // Every candidate, the state's first: sorted by key, then (stably) by group, the first s of
  // each group are kept. Keys are distinct (a bijection of the token index).
  const at::Tensor held = sampleIndex_.ge(0).nonzero();
  const at::Tensor heldGroup = held.select(1, 0), heldSlot = held.select(1, 1);
  const int64_t heldCount = held.size(0);
  const at::Tensor allGroup = at::cat({heldGroup, freshGroup});
  const at::Tensor allKey = at::cat({sampleKey_.index({heldGroup, heldSlot}), keys.index({freshToken})});
  at::Tensor order = std::get<1>(allKey.sort(true, 0, false));
  order = order.index({std::get<1>(allGroup.index({order}).sort(true, 0, false))});
  const at::Tensor sortedGroup = allGroup.index({order});
  const at::Tensor position = at::arange(order.size(0), longs);
  const at::Tensor isFirst = at::cat(
      {at::ones({1}, longs.dtype(at::kBool)), sortedGroup.narrow(0, 1, order.size(0) - 1).ne(sortedGroup.narrow(0, 0, order.size(0) - 1))});
  const at::Tensor rank = position.sub(std::get<0>(at::cummax(position.masked_fill(isFirst.logical_not(), 0), 0)));
  const at::Tensor keep = rank.lt(size);
  const at::Tensor chosen = order.masked_select(keep), slot = rank.masked_select(keep), chosenGroup = sortedGroup.masked_select(keep);

  const at::Tensor key = at::full_like(sampleKey_, kEmptyKey), index = at::full_like(sampleIndex_, -1),
                   value = at::zeros_like(sampleValue_);
  const at::Tensor window = at::zeros_like(sampleWindow_);
  const at::Tensor windowTokens = withTokens_ ? at::zeros_like(sampleTokens_) : at::Tensor();
  // Kept from the state: moved with their windows.
  const at::Tensor fromHeld = chosen.lt(heldCount);
  const at::Tensor oldAt = chosen.masked_select(fromHeld);
  const at::Tensor g0 = chosenGroup.masked_select(fromHeld), s0 = slot.masked_select(fromHeld);
  const at::Tensor og = heldGroup.index({oldAt}), os = heldSlot.index({oldAt});
  key.index_put_({g0, s0}, sampleKey_.index({og, os}));
  index.index_put_({g0, s0}, sampleIndex_.index({og, os}));
  value.index_put_({g0, s0}, sampleValue_.index({og, os}));
  window.index_put_({g0, s0}, sampleWindow_.index({og, os}));
  if (withTokens_) windowTokens.index_put_({g0, s0}, sampleTokens_.index({og, os}));
  // New ones: their windows gathered from this batch.
  const at::Tensor fromFresh = fromHeld.logical_not();
  const at::Tensor newAt = chosen.masked_select(fromFresh).sub(heldCount);
  const at::Tensor g1 = chosenGroup.masked_select(fromFresh), s1 = slot.masked_select(fromFresh);
  const at::Tensor feature = freshFeature.index({newAt}), token = freshToken.index({newAt});
  key.index_put_({g1, s1}, keys.index({token}));
  index.index_put_({g1, s1}, token.add(rows_[1] * ctx));
  value.index_put_({g1, s1}, v.index({feature, token}));
  const at::Tensor local = token.div(ctx, "trunc"), column = token.remainder(ctx);
  const at::Tensor start = spec_.buffered ? column.sub(spec_.before) : at::zeros_like(column);
  const at::Tensor span = start.unsqueeze(1).add(at::arange(this->window(), longs));
  window.index_put_({g1, s1}, values.index({feature.unsqueeze(1), local.unsqueeze(1), span}));
  if (withTokens_) windowTokens.index_put_({g1, s1}, tokens.index({local.unsqueeze(1), span}));

  sampleKey_ = key;
  sampleIndex_ = index;
  sampleValue_ = value;
  sampleWindow_ = window;
  if (withTokens_) sampleTokens_ = windowTokens;
  sampleFill_ = index.ge(0).sum(1);
}

c10::IValue FeatureStats::result() const {
  TS_CHECK(pass_ == 2 && rows_[1] == rows_[0], code::kInvalidArgument, "pass 2 read ", rows_[1], " rows, pass 1 ", rows_[0],
           ": the source must give the same batches each time it is read");
  const int64_t count = this->count(), intervals = spec_.intervals, size = spec_.intervalSize;
  const int64_t w = window();
  Record record;
  record.set("rows", rows_[0])
      .set("window", w)
      .set("max", max_.cpu())
      .set("positive", positive_.cpu())
      .set("topValue", topValue_.narrow(1, 0, kept_).cpu())
      .set("topIndex", topIndex_.narrow(1, 0, kept_).cpu())
      .set("topWindow", topWindow_.cpu())
      .set("histLow", histLow_.cpu())
      .set("histHigh", histHigh_.cpu())
      .set("histCount", histCount_.cpu())
      .set("bounds", bounds_.cpu())
      .set("intervalCount", intervalCount_.view({count, intervals}).cpu())
      .set("sampleValue", sampleValue_.view({count, intervals, size}).cpu())
      .set("sampleIndex", sampleIndex_.view({count, intervals, size}).cpu())
      .set("sampleWindow", sampleWindow_.view({count, intervals, size, w}).cpu());
  if (withTokens_) {
    record.set("topTokens", topTokens_.cpu()).set("sampleTokens", sampleTokens_.view({count, intervals, size, w}).cpu());
  }
  return record;
}

c10::IValue FeatureStats::stateSizes() const {
  int64_t bytes = 0;
  for (const at::Tensor* t : {&max_, &positive_, &minPositive_, &topValue_, &topIndex_, &histLow_, &histHigh_, &histCount_, &bounds_,
                              &hasIntervals_, &intervalCount_, &sampleKey_, &sampleIndex_, &sampleValue_, &sampleFill_, &sampleWindow_,
                              &sampleTokens_, &topWindow_, &topTokens_}) {
    bytes += bytesOf(*t);
  }
  return Record()
      .set("topValue", shapeOf(topValue_))
      .set("topIndex", shapeOf(topIndex_))
      .set("topWindow", shapeOf(topWindow_))
      .set("sampleIndex", shapeOf(sampleIndex_))
      .set("sampleWindow", shapeOf(sampleWindow_))
      .set("bytes", bytes);
}

c10::IValue logitEffects(const at::Tensor& logits, int64_t k, int64_t bins) {
  TS_CHECK(logits.dim() == 2 && logits.size(1) > 0 && logits.is_floating_point(), code::kShape,
           "logits must be float [features, vocab], got ", logits.scalar_type(), " ", logits.sizes());
  at::NoGradGuard noGrad;
  at::Tensor l = logits.to(at::kFloat).contiguous();
  l = l.masked_fill(l.eq(0), 0.0);
  TS_CHECK(!l.isnan().any().item<bool>(), code::kInvalidArgument, "the logits hold NaN");
  const at::Tensor top = topColumns(l, k);
  at::Tensor negated = l.neg();
  const at::Tensor bottom = topColumns(negated.masked_fill_(negated.eq(0), 0.0), k);
  auto [low, high] = histcEdges(l.amin(1).cpu(), l.amax(1).cpu());
  const at::Tensor counts = histcCounts(l, at::ones_like(l, at::kBool), low.to(l.device()), high.to(l.device()), bins);
  return Record()
      .set("topIds", top.cpu())
      .set("topValues", l.gather(1, top).cpu())
      .set("bottomIds", bottom.cpu())
      .set("bottomValues", l.gather(1, bottom).cpu())
      .set("histLow", low)
      .set("histHigh", high)
      .set("histCount", counts.cpu());
}

at::Tensor decoderRows(const Sae& sae, const std::vector<int64_t>& features) {
  for (int64_t f : features) {
    TS_CHECK(f >= 0 && f < sae.dSae(), code::kInvalidArgument, "feature ", f, " is out of range: the SAE has ", sae.dSae(), " features");
  }
  at::NoGradGuard noGrad;
  const at::Tensor decoder = sae.spec().W_dec;
  return decoder.index_select(0, at::tensor(features, at::kLong).to(decoder.device())).to(at::kFloat);
}

at::Tensor decoderLogits(const Sae& sae, const std::vector<int64_t>& features, const at::Tensor& unembed) {
  TS_CHECK(unembed.dim() == 2 && unembed.size(0) == sae.dOut(), code::kShape, "the unembedding must be [", sae.dOut(),
           ", vocab] (W_U, d_model first), got ", unembed.sizes());
  TS_CHECK(unembed.is_floating_point(), code::kDtype, "the unembedding must be floating point, got ", unembed.scalar_type());
  const at::Tensor rows = decoderRows(sae, features);
  at::NoGradGuard noGrad;
  return rows.matmul(unembed.to(rows.device(), at::kFloat));
}

}  // namespace torchscope
