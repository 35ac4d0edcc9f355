// Argument policy shared by every backend: one definition of what each op
// accepts and what it says when it doesn't.
#pragma once

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include "kernels.h"
#include "range.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <sstream>
#include <stdexcept>

namespace softhist {

using torch::stable::Tensor;

// Throws with just the message (STD_TORCH_CHECK prefixes file and function):
// every message names the argument and says how to fix it.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream message;
  (message << ... << args);
  throw std::runtime_error(message.str());
}
#define SOFTHIST_CHECK(cond, ...) \
  if (!(cond)) ::softhist::fail(__VA_ARGS__)

// The op `params` stores the range and kappa after defaults, and whether the
// ends are open (conserve_mass): float64 [lo, hi, kappa, open].
constexpr int64_t kParamsSize = 4;
// Explicit edges (a smooth kernel): params has a row per axis of kParamsSize
// + bins + 1 values, [lo, hi, kappa, open, e_0, ..., e_bins], the edges
// increasing (lo and hi are then unused); rows of axes with fewer bins are
// padded to the longest.
inline bool has_explicit_edges(const Tensor& params) {
  return params.dim() == 2 && params.size(1) > kParamsSize;
}

// The smoothing kernels' names, in the order of SOFTHIST_FORALL_SMOOTH_KERNELS.
std::vector<std::string> kernel_names();
Kernel parse_kernel(const std::string& name);
void check_input(const Tensor& input);
// kappa * width at most kMaxSharpness (range.h), else an error naming kernel='hard'.
void check_sharpness(double kappa, double width);
// Checks the arguments of `params` and what resolve_range (range.h) needs
// besides the data's range; an explicit range must split into representable bins.
RangeArgs range_args(const Tensor& input, int64_t bins, double min, double max,
                     std::optional<double> kappa, Kernel kernel, bool open_ends);
// The engine's ops (scatter, gather) histogram D = 1 to kMaxAxes coordinates
// of each sample: coords holds D tensors of one shape (..., N), the samples
// along the last dimension, batched over the others; params is (D, kParamsSize)
// float64, one row per axis; bins and orders have one entry per axis.
constexpr int64_t kMaxAxes = 3;

// What the checks establish, for the backends. An axis `at_edges` (listed in
// the ops' edge_axes) takes its values at its bins + 1 edges, the edge sums
// K^(order)(kappa (x - e_j)), instead of its bins' masses: its dimension of
// the histogram has bins + 1 slots. The gradients with respect to the edges,
// the range and kappa are sums over those slots (a smooth kernel, order >= 1).
struct Problem {
  int64_t axes, n, rows;  // D, samples per row, rows
  std::vector<int64_t> bins, orders;  // bins: the histogram's, whatever the slots
  std::vector<bool> at_edges;
  int64_t slots(int64_t a) const { return bins[a] + (at_edges[a] ? 1 : 0); }
  // The histogram's last dimensions: each axis's slots.
  std::vector<int64_t> all_slots() const {
    std::vector<int64_t> out;
    for (int64_t a = 0; a < axes; ++a) out.push_back(slots(a));
    return out;
  }
  bool any_at_edges() const {
    for (bool e : at_edges)
      if (e) return true;
    return false;
  }
};

// bins are the histogram's (without the edge axes' extra slot).
Problem check_scatter_args(const std::vector<Tensor>& coords, const std::optional<Tensor>& weight,
                           const Tensor& params, const std::vector<int64_t>& bins,
                           const std::vector<int64_t>& orders,
                           const std::vector<int64_t>& edge_axes, Kernel kernel);
// hist is (..., *slots): coords' leading shape, then one dimension per axis.
Problem check_gather_args(const std::vector<Tensor>& coords, const Tensor& hist,
                          const Tensor& params, const std::vector<int64_t>& orders,
                          const std::vector<int64_t>& edge_axes, Kernel kernel);
// scatter_edge_sums (one axis, CPU): the histogram's problem (order 0) and
// its edge sums' (order 1, at the edges).
std::pair<Problem, Problem> check_scatter_edge_sums_args(const Tensor& x,
                                                         const std::optional<Tensor>& weight,
                                                         const Tensor& params, int64_t bins,
                                                         Kernel kernel);
// edge_gather_scatter (one axis at its edges, CPU): both checks.
// With sums and taken, scatter_edge_sums's (order 1).
Problem check_edge_gather_scatter_args(const Tensor& x, const std::optional<Tensor>& weight,
                                       const Tensor& coef, const Tensor& params, int64_t order,
                                       Kernel kernel, const std::optional<Tensor>& sums,
                                       const std::optional<Tensor>& taken);
// scatter_places's deltas' dtype for samples of dtype x: the compute type's
// (float64 for float64 samples, else float32).
inline torch::headeronly::ScalarType delta_type(torch::headeronly::ScalarType x) {
  using torch::headeronly::ScalarType;
  return x == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
}
// gather_at_places (one axis, CPU): gather's check, and pieces and deltas
// as scatter_places makes them (int32, and delta_type; x's shape), taken a
// 0-d bool, at an order of 0 or 1.
Problem check_gather_at_places_args(const Tensor& x, const Tensor& hist, const Tensor& params,
                                    int64_t order, Kernel kernel, const Tensor& pieces,
                                    const Tensor& deltas, const Tensor& taken);
// Samples per row (the last dimension) and number of rows.
int64_t row_length(const Tensor& input);
int64_t row_count(const Tensor& input);

}  // namespace softhist
