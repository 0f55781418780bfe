// Linear probes on activations, fitted in float64 on the data's device:
//   logistic: minimizes sum_i loss_i + (l2 / 2) ||W||^2, the intercept unpenalized
//             (scikit-learn's LogisticRegression with C = 1 / l2). Two classes: one weight row,
//             the binomial loss; more: the softmax (multinomial) loss over [classes, d] weights,
//             or one binomial problem per class (one-vs-rest). L-BFGS (probe_lbfgs.h) from zero.
//   linear:   ridge regression, ||y - X w - b||^2 + l2 ||w||^2 (scikit-learn's Ridge(alpha=l2)),
//             solved in closed form; the intercept is left unpenalized by centering X and y.
//   massMean: geometry-of-truth's MMProbe (Marks & Tegmark 2023, probes.py): the direction
//             theta = mean(x | y = 1) - mean(x | y = 0); with iid, the weight is pinv(Sigma) theta,
//             Sigma the pooled within-class covariance (divided by n), pinv cutting eigenvalues
//             below 1e-3 as probes.py's atol does. It predicts round(sigmoid(x . weight)): no bias.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

#include "core/names.h"

namespace torchscope {

// Every field comes from the request (lib/probe/fit.ts holds the defaults).
struct ProbeSpec {
  ProbeKind kind = ProbeKind::kLogistic;
  ProbeMulticlass multiclass = ProbeMulticlass::kMultinomial;
  double l2 = 0;
  bool fitIntercept = false;
  int64_t maxIterations = 0;
  // Converged when every |entry| of the mean objective's gradient (the objective over n) is at
  // most this: scikit-learn's gtol for lbfgs.
  double tolerance = 0;
  bool iid = false;
};

// The rows of `values` [n, ...] at `rows` (integer [m]); all of them when `rows` is undefined.
// INVALID_ARGUMENT for a row out of range.
at::Tensor probeRows(const at::Tensor& values, const at::Tensor& rows);

class LinearProbe {
 public:
  // Fits on x [n, d] (floating; used in float64) and labels [n]: class ids in [0, classes) for
  // logistic and massMean (massMean: classes == 2), real targets for linear (classes 0). Every
  // class must have an example. `cancelled` is asked between L-BFGS iterations (ABORTED).
  static LinearProbe fit(const ProbeSpec& spec, const at::Tensor& x, const at::Tensor& labels, int64_t classes,
                         const std::function<bool()>& cancelled);

  ProbeKind kind() const { return spec_.kind; }
  int64_t classes() const { return classes_; }
  int64_t dim() const { return weight_.size(1); }
  const at::Tensor& weight() const { return weight_; }  // [rows, d] float64: one row, or one per class
  const at::Tensor& bias() const { return bias_; }      // [rows]
  // [d]: the one row's direction (massMean: theta, also with iid); undefined for a row per class.
  const at::Tensor& direction() const { return direction_; }
  int64_t iterations() const { return iterations_; }
  bool converged() const { return converged_; }
  int64_t bytes() const;

  // [n, rows] x W^T + b in float64, x [n, d] on any device.
  at::Tensor decision(const at::Tensor& x) const;
  // Class ids (int64, ties to the lower class) or, for linear, the predicted values (float64).
  at::Tensor predict(const at::Tensor& x) const;
  // [n, classes] float64 (two columns for a binary probe); INVALID_ARGUMENT for linear.
  at::Tensor probabilities(const at::Tensor& x) const;
  // The accuracy of predict(x) against labels, or for linear R^2 (scikit-learn's r2_score).
  double score(const at::Tensor& x, const at::Tensor& labels) const;

 private:
  ProbeSpec spec_;
  int64_t classes_ = 0;
  at::Tensor weight_, bias_, direction_;
  int64_t iterations_ = 0;
  bool converged_ = true;
};

}  // namespace torchscope
