#include "methods/probe.h"

#include <cmath>

#include "core/errors.h"
#include "methods/probe_lbfgs.h"

namespace torchscope {

namespace {

// probes.py's MMProbe: pinv(covariance, hermitian=True, atol=1e-3).
constexpr double kMassMeanPinvAtol = 1e-3;

struct FittedRows {
  at::Tensor weight, bias;  // [rows, d], [rows]
  int64_t iterations = 0;
  bool converged = true;
};

void checkX(const at::Tensor& x, const char* what) {
  TS_CHECK(x.dim() == 2, code::kShape, what, " must be [n, d], got shape ", x.sizes());
  TS_CHECK(at::isFloatingType(x.scalar_type()), code::kDtype, what, " must be float32 or float64, got ", x.scalar_type());
  TS_CHECK(x.size(0) > 0 && x.size(1) > 0, code::kShape, what, " has no ", x.size(0) == 0 ? "rows" : "columns", " (shape ", x.sizes(), ")");
}

void checkFinite(const at::Tensor& values, const char* what) {
  TS_CHECK(at::isfinite(values).all().item<bool>(), code::kInvalidArgument, what, " holds non-finite values (NaN or infinity)");
}

// The logistic objective in the coordinates L-BFGS works in: features centered (with an
// intercept) and scaled, x' = (x - m) / s, so that the Hessian's diagonal is about even (a
// diagonal preconditioner). The optimum is the same (w = w' / s, b = b' - w . m), but L-BFGS
// reaches it in far fewer iterations on activations, whose features have large and uneven
// means and spreads. Parameters: [W' (rows x d), b' (rows)?].
struct LogisticProblem {
  at::Tensor x, mean, scale;  // x' [n, d]; m, s [d] (m zero without an intercept)
  at::Tensor y;               // binomial: float64 [n, 1] in {0, 1}; softmax: class ids int64 [n, 1]
  int64_t rows = 1;           // 1 (binomial), or the classes (softmax)
  bool softmax = false;
  double l2 = 0;
  bool intercept = false;

  int64_t dim() const { return x.size(1); }
  at::Tensor weights(const at::Tensor& theta) const { return theta.narrow(0, 0, rows * dim()).view({rows, dim()}); }
  at::Tensor intercepts(const at::Tensor& theta) const {
    return intercept ? theta.narrow(0, rows * dim(), rows) : at::zeros({rows}, theta.options());
  }

  // sum_i loss_i + (l2 / 2) ||W||^2 and its gradient in these coordinates: binomial
  // log(1 + e^z) - y z, z = x w + b; softmax logsumexp(z) - z[y], z = x W^T + b.
  std::pair<double, at::Tensor> operator()(const at::Tensor& theta) const {
    const at::Tensor w = weights(theta);
    const at::Tensor z = at::addmm(intercepts(theta), x, w.t());
    at::Tensor loss, residual;
    if (softmax) {
      const at::Tensor normalizer = at::logsumexp(z, 1, true);
      loss = (normalizer - z.gather(1, y)).sum();
      residual = at::exp(z - normalizer);
      residual.scatter_add_(1, y, at::full_like(y, -1, residual.options()));
    } else {
      // log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|).
      loss = (z.clamp_min(0) + at::log1p(at::exp(-z.abs())) - y * z).sum();
      residual = at::sigmoid(z) - y;
    }
    const at::Tensor original = w / scale;  // the penalty is on the weights of x itself
    loss = loss + 0.5 * l2 * (original * original).sum();
    at::Tensor gradient = (residual.t().mm(x) + l2 * original / scale).reshape({-1});
    if (intercept) gradient = at::cat({gradient, residual.sum(0)});
    return {loss.item<double>(), gradient};
  }

  // The largest |entry| of the gradient with respect to x's own weights and intercepts:
  // dw = s dw' + m db', db = db'.
  double gradientSize(const at::Tensor& gradient) const {
    at::Tensor w = weights(gradient) * scale;
    if (intercept) w = w + intercepts(gradient).view({rows, 1}) * mean;
    const double size = w.abs().max().item<double>();
    return intercept ? std::max(size, intercepts(gradient).abs().max().item<double>()) : size;
  }

  FittedRows fit(const ProbeSpec& spec, const std::function<bool()>& cancelled) const {
    LbfgsOptions options;
    options.maxIterations = spec.maxIterations;
    // The tolerance is on the mean objective's gradient; the objective minimized is the sum.
    options.gradientTolerance = spec.tolerance * static_cast<double>(x.size(0));
    options.gradientSize = [this](const at::Tensor& gradient) { return gradientSize(gradient); };
    const at::Tensor start = at::zeros({rows * (dim() + (intercept ? 1 : 0))}, x.options());
    const LbfgsResult result = minimizeLbfgs([this](const at::Tensor& theta) { return (*this)(theta); }, start, options, cancelled);
    FittedRows fitted;
    fitted.weight = weights(result.x) / scale;
    fitted.bias = intercepts(result.x) - fitted.weight.mv(mean);
    fitted.iterations = result.iterations;
    fitted.converged = result.converged;
    return fitted;
  }
};

// x as LogisticProblem takes it. The Hessian's diagonal in w_j is about c n var_j + l2 (c, the
// loss's curvature, at most 1/4): s_j^2 = var_j + l2 / (c n) evens it, with c = 1/4.
LogisticProblem standardized(const at::Tensor& x, bool intercept, double l2) {
  LogisticProblem problem;
  problem.intercept = intercept;
  problem.l2 = l2;
  problem.mean = intercept ? x.mean(0) : at::zeros({x.size(1)}, x.options());
  const at::Tensor scale = ((x - problem.mean).pow(2).mean(0) + 4 * l2 / static_cast<double>(x.size(0))).sqrt();
  problem.scale = at::where(scale > 0, scale, at::ones_like(scale));  // l2 0 and a constant feature: left as it is
  problem.x = (x - problem.mean) / problem.scale;
  return problem;
}

FittedRows logisticRows(const ProbeSpec& spec, const at::Tensor& x, const at::Tensor& labels, int64_t classes,
                        const std::function<bool()>& cancelled) {
  LogisticProblem problem = standardized(x, spec.fitIntercept, spec.l2);
  // Two classes: one row and the binomial loss, whatever the multiclass scheme (as scikit-learn).
  if (classes == 2 || spec.multiclass == ProbeMulticlass::kOvr) {
    std::vector<at::Tensor> weights, biases;
    FittedRows all;
    for (int64_t c = classes == 2 ? 1 : 0; c < classes; ++c) {
      problem.y = labels.eq(c).to(at::kDouble).view({-1, 1});
      const FittedRows one = problem.fit(spec, cancelled);
      weights.push_back(one.weight);
      biases.push_back(one.bias);
      all.iterations = std::max(all.iterations, one.iterations);
      all.converged = all.converged && one.converged;
    }
    all.weight = at::cat(weights);
    all.bias = at::cat(biases);
    return all;
  }
  problem.softmax = true;
  problem.rows = classes;
  problem.y = labels.view({-1, 1});
  FittedRows fitted = problem.fit(spec, cancelled);
  // At the optimum the rows sum to zero (the gradient's class sum is l2 times theirs) and the
  // intercepts are free up to a constant: both are centered, which L-BFGS from zero keeps up to
  // rounding, so that the rows' span is exactly (classes - 1)-dimensional.
  fitted.weight = fitted.weight - fitted.weight.mean(0, true);
  fitted.bias = fitted.bias - fitted.bias.mean();
  return fitted;
}

FittedRows ridgeRows(const ProbeSpec& spec, const at::Tensor& x, const at::Tensor& y) {
  at::Tensor xc = x, yc = y, xMean, yMean;
  if (spec.fitIntercept) {
    xMean = x.mean(0);
    yMean = y.mean();
    xc = x - xMean;
    yc = y - yMean;
  }
  at::Tensor w;
  if (spec.l2 > 0) {
    const at::Tensor gram = xc.t().mm(xc) + spec.l2 * at::eye(x.size(1), x.options());
    w = at::cholesky_solve(xc.t().mv(yc).view({-1, 1}), at::linalg_cholesky(gram)).view({-1});
  } else {
    w = at::linalg_pinv(xc).mv(yc);  // least squares, the least-norm solution
  }
  FittedRows rows;
  rows.weight = w.view({1, -1});
  rows.bias = spec.fitIntercept ? (yMean - xMean.dot(w)).view({1}) : at::zeros({1}, x.options());
  return rows;
}

}  // namespace

at::Tensor probeRows(const at::Tensor& values, const at::Tensor& rows) {
  if (!rows.defined()) return values;
  TS_CHECK(rows.dim() == 1 && !at::isFloatingType(rows.scalar_type()) && rows.scalar_type() != at::kBool, code::kInvalidArgument,
           "rows must be a 1-D integer tensor, got ", rows.scalar_type(), " of shape ", rows.sizes());
  const at::Tensor index = rows.to(values.device(), at::kLong);
  const int64_t n = values.size(0);
  TS_CHECK(index.numel() == 0 || (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < n), code::kInvalidArgument,
           "rows must be in [0, ", n, ")");
  return values.index_select(0, index);
}

LinearProbe LinearProbe::fit(const ProbeSpec& spec, const at::Tensor& xIn, const at::Tensor& labelsIn, int64_t classes,
                             const std::function<bool()>& cancelled) {
  checkX(xIn, "x");
  TS_CHECK(labelsIn.dim() == 1 && labelsIn.size(0) == xIn.size(0), code::kInvalidArgument, "x has ", xIn.size(0),
           " rows but the labels have shape ", labelsIn.sizes());
  TS_CHECK(std::isfinite(spec.l2) && spec.l2 >= 0, code::kInvalidArgument, "l2 must be a finite number >= 0, got ", spec.l2);
  const at::Tensor x = xIn.to(at::kDouble);
  checkFinite(x, "x");
  LinearProbe probe;
  probe.spec_ = spec;
  probe.classes_ = spec.kind == ProbeKind::kLinear ? 0 : classes;
  FittedRows rows;
  if (spec.kind == ProbeKind::kLinear) {
    TS_CHECK(at::isFloatingType(labelsIn.scalar_type()), code::kDtype, "a linear probe's targets must be floating, got ",
             labelsIn.scalar_type());
    const at::Tensor y = labelsIn.to(x.device(), at::kDouble);
    checkFinite(y, "the targets");
    rows = ridgeRows(spec, x, y);
  } else {
    TS_CHECK(classes >= 2, code::kInvalidArgument, "a probe needs at least two classes, got ", classes);
    TS_CHECK(spec.kind != ProbeKind::kMassMean || classes == 2, code::kInvalidArgument, "a mass-mean probe is binary: labels 0 and 1, got ",
             classes, " classes");
    TS_CHECK(!at::isFloatingType(labelsIn.scalar_type()) && labelsIn.scalar_type() != at::kBool, code::kDtype,
             "class labels must be integers, got ", labelsIn.scalar_type());
    const at::Tensor y = labelsIn.to(x.device(), at::kLong);
    TS_CHECK(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < classes, code::kInvalidArgument, "class labels must be in [0, ",
             classes, "), got [", y.min().item<int64_t>(), ", ", y.max().item<int64_t>(), "]");
    const at::Tensor counts = at::bincount(y, {}, classes);
    TS_CHECK(counts.min().item<int64_t>() > 0, code::kInvalidArgument, "class ", counts.argmin().item<int64_t>(),
             " has no example: every class in [0, ", classes, ") needs one");
    if (spec.kind == ProbeKind::kLogistic) {
      rows = logisticRows(spec, x, y, classes, cancelled);
    } else {
      const at::Tensor positive = y.eq(1), negative = y.eq(0);
      const at::Tensor pos = x.index({positive}), neg = x.index({negative});
      const at::Tensor posMean = pos.mean(0), negMean = neg.mean(0);
      probe.direction_ = posMean - negMean;
      at::Tensor weight = probe.direction_;
      if (spec.iid) {
        const at::Tensor centered = at::cat({pos - posMean, neg - negMean});
        const at::Tensor covariance = centered.t().mm(centered) / static_cast<double>(x.size(0));
        weight = at::linalg_pinv(covariance, kMassMeanPinvAtol, std::nullopt, /*hermitian=*/true).mv(probe.direction_);
      }
      rows.weight = weight.view({1, -1});
      rows.bias = at::zeros({1}, x.options());
    }
  }
  probe.weight_ = rows.weight.contiguous();
  probe.bias_ = rows.bias.contiguous();
  if (!probe.direction_.defined() && probe.weight_.size(0) == 1) probe.direction_ = probe.weight_[0];
  probe.iterations_ = rows.iterations;
  probe.converged_ = rows.converged;
  return probe;
}

int64_t LinearProbe::bytes() const {
  int64_t total = weight_.nbytes() + bias_.nbytes();
  if (direction_.defined() && spec_.kind == ProbeKind::kMassMean) total += direction_.nbytes();
  return total;
}

at::Tensor LinearProbe::decision(const at::Tensor& xIn) const {
  checkX(xIn, "x");
  TS_CHECK(xIn.size(1) == dim(), code::kShape, "x has ", xIn.size(1), " features but the probe was fitted on ", dim());
  const at::Tensor x = xIn.to(weight_.device(), at::kDouble);
  return at::addmm(bias_, x, weight_.t());
}

at::Tensor LinearProbe::predict(const at::Tensor& x) const {
  const at::Tensor z = decision(x);
  switch (spec_.kind) {
    case ProbeKind::kLinear: return z.select(1, 0);
    // probes.py's pred: round(sigmoid(x . weight)) (round half to even: 0.5 is class 0).
    case ProbeKind::kMassMean: return at::round(at::sigmoid(z.select(1, 0))).to(at::kLong);
    case ProbeKind::kLogistic: return classes_ == 2 ? z.select(1, 0).gt(0).to(at::kLong) : z.argmax(1);
  }
  TS_FAIL(code::kInternal, "unknown probe kind");
}

at::Tensor LinearProbe::probabilities(const at::Tensor& x) const {
  TS_CHECK(spec_.kind != ProbeKind::kLinear, code::kInvalidArgument, "a linear (ridge) probe predicts values, not probabilities");
  const at::Tensor z = decision(x);
  if (classes_ == 2) {
    const at::Tensor p = at::sigmoid(z.select(1, 0));
    return at::stack({1 - p, p}, 1);
  }
  if (spec_.multiclass == ProbeMulticlass::kOvr) {
    // One-vs-rest: each class's sigmoid, normalized over the classes (scikit-learn's OvR).
    const at::Tensor p = at::sigmoid(z);
    return p / p.sum(1, true);
  }
  return at::softmax(z, 1);
}

double LinearProbe::score(const at::Tensor& x, const at::Tensor& labelsIn) const {
  const at::Tensor predicted = predict(x);
  TS_CHECK(labelsIn.dim() == 1 && labelsIn.size(0) == x.size(0), code::kInvalidArgument, "x has ", x.size(0),
           " rows but the labels have shape ", labelsIn.sizes());
  if (spec_.kind != ProbeKind::kLinear) {
    TS_CHECK(!at::isFloatingType(labelsIn.scalar_type()), code::kDtype, "class labels must be integers, got ", labelsIn.scalar_type());
    return predicted.eq(labelsIn.to(predicted.device(), at::kLong)).to(at::kDouble).mean().item<double>();
  }
  const at::Tensor y = labelsIn.to(predicted.device(), at::kDouble);
  checkFinite(y, "the targets");
  const double residual = (y - predicted).pow(2).sum().item<double>();
  const double total = (y - y.mean()).pow(2).sum().item<double>();
  // r2_score's force_finite: constant targets score 1 when predicted exactly, else 0.
  if (total == 0) return residual == 0 ? 1.0 : 0.0;
  return 1.0 - residual / total;
}

}  // namespace torchscope
