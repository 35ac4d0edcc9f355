// softhist_ext for C++ programs (LibTorch, no Python): typed calls into the
// `softhist::` ops through the dispatcher, so autograd (first and second
// order) applies as in Python.
//
// Installed as <softhist_ext/softhist.h>. Link the CMake target
// SofthistExt::SofthistExt (find_package(SofthistExt)); linking alone loads
// and registers the ops, so a TorchScript model that calls them also runs
// without including this header.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/stack.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <tuple>

namespace softhist {

namespace detail {

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  const auto handle = c10::Dispatcher::singleton().findSchema({name, ""});
  TORCH_CHECK(handle.has_value(), "softhist: the op ", name,
              " is not registered; link the library (CMake: find_package(SofthistExt) "
              "and target_link_libraries(your_target SofthistExt::SofthistExt))");
  return handle->typed<Signature>();
}

// weight as an optional: an undefined tensor (LibTorch's "none") is none.
inline std::optional<at::Tensor> defined_or_none(const std::optional<at::Tensor>& weight) {
  return weight.has_value() && weight->defined() ? weight : std::nullopt;
}

}  // namespace detail

// Range and kappa after defaults, and open ends, as a float64 tensor
// [lo, hi, kappa, open] on input's device (min == max takes the range of the
// finite samples; conserve_mass opens the ends: in-range samples keep their
// whole mass, the others add nothing). Not differentiable.
inline at::Tensor params(const at::Tensor& input, int64_t bins, double min, double max,
                         std::optional<double> kappa, std::string_view kernel,
                         bool conserve_mass = false) {
  static const auto op =
      detail::find_op<at::Tensor(const at::Tensor&, int64_t, double, double,
                                 std::optional<double>, std::string_view, bool)>(
          "softhist::params");
  return op.call(input, bins, min, max, kappa, kernel, conserve_mass);
}

// The engine over D = 1 to 3 axes. coords are the samples' D coordinates, each
// (..., N), batched over the leading dimensions; params is (D, 4), one
// `params` row per axis (torch::stack them), or with explicit edges (a smooth
// kernel) each row followed by its axis's bins + 1 increasing edges, rows
// padded to the longest; bins and orders have one entry
// per axis (order 0: the histogram; k: the kernel's k-th derivative along
// that axis). Along the last dimension:
//   out[..., b_1..b_D] = sum_i weight[..., i] * prod_a D_orders[a](coords[a][..., i], b_a),
// shape (..., *bins). An axis in edge_axes (order >= 1) has bins + 1 slots,
// the values kappa^order K^(order)(kappa (x - e_j)) at its edges e_j instead
// of its bins' masses: the gradients with respect to edges, range and kappa.
inline at::Tensor scatter(at::TensorList coords, const std::optional<at::Tensor>& weight,
                          const at::Tensor& params, at::IntArrayRef bins,
                          at::IntArrayRef orders, std::string_view kernel,
                          at::IntArrayRef edge_axes = {}) {
  static const auto op = detail::find_op<at::Tensor(
      at::TensorList, const std::optional<at::Tensor>&, const at::Tensor&, at::IntArrayRef,
      at::IntArrayRef, std::string_view, at::IntArrayRef)>("softhist::scatter");
  return op.call(coords, weight, params, bins, orders, kernel, edge_axes);
}

// The adjoint of scatter: hist is (..., *slots);
//   out[..., i] = sum_b hist[..., b_1..b_D] * prod_a D_orders[a](coords[a][..., i], b_a),
// coords[0]'s shape.
inline at::Tensor gather(at::TensorList coords, const at::Tensor& hist, const at::Tensor& params,
                         at::IntArrayRef orders, std::string_view kernel,
                         at::IntArrayRef edge_axes = {}) {
  static const auto op = detail::find_op<at::Tensor(at::TensorList, const at::Tensor&,
                                                    const at::Tensor&, at::IntArrayRef,
                                                    std::string_view, at::IntArrayRef)>(
      "softhist::gather");
  return op.call(coords, hist, params, orders, kernel, edge_axes);
}

// One axis at its edges: gather(coef) and scatter(weight) with edge_axes {0}
// in one pass over the samples (CPU), and sum_i weight[..., i] * (x[..., i] - e_0) *
// gathered[..., i] over all rows, a float64 scalar: the first-order
// gradients with respect to x, the edges and kappa. Given scatter_edge_sums's
// sums and taken, where it took them: the gather alone. gather = false: x's
// gradient is not wanted (gathered is empty; given sums, x is not read). It
// has no derivative.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> edge_gather_scatter(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const at::Tensor& coef,
    const at::Tensor& params, int64_t order, std::string_view kernel,
    const std::optional<at::Tensor>& sums = std::nullopt,
    const std::optional<at::Tensor>& taken = std::nullopt, bool gather = true) {
  static const auto op = detail::find_op<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
      const at::Tensor&, const std::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&,
      int64_t, std::string_view, const std::optional<at::Tensor>&,
      const std::optional<at::Tensor>&, bool)>("softhist::edge_gather_scatter");
  return op.call(x, weight, coef, params, order, kernel, sums, taken, gather);
}

// One axis: scatter at order 0 (the histogram), and, where it took them
// (taken, a 0-d bool), the edge sums its first-order backward needs (float64
// (..., 2, bins + 1)), for edge_gather_scatter. It has no derivative.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> scatter_edge_sums(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const at::Tensor& params,
    int64_t bins, std::string_view kernel) {
  static const auto op = detail::find_op<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
      const at::Tensor&, const std::optional<at::Tensor>&, const at::Tensor&, int64_t,
      std::string_view)>("softhist::scatter_edge_sums");
  return op.call(x, weight, params, bins, kernel);
}

// One axis: scatter at order 0 (the histogram) and, where it kept them
// (taken, a 0-d bool: over uneven Chebyshev pieces), each sample's piece
// (int32, -1 where it reaches no bin) and place in it (float64 for float64
// x, else float32; unspecified where not taken), for gather_at_places. It
// has no derivative.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> scatter_places(
    const at::Tensor& x, const std::optional<at::Tensor>& weight, const at::Tensor& params,
    int64_t bins, std::string_view kernel) {
  static const auto op = detail::find_op<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
      const at::Tensor&, const std::optional<at::Tensor>&, const at::Tensor&, int64_t,
      std::string_view)>("softhist::scatter_places");
  return op.call(x, weight, params, bins, kernel);
}

// One axis: gather at order 0 or 1, at scatter_places's places where it kept
// them (taken), else from x. It has no derivative.
inline at::Tensor gather_at_places(const at::Tensor& x, const at::Tensor& hist,
                                   const at::Tensor& params, int64_t order,
                                   std::string_view kernel, const at::Tensor& pieces,
                                   const at::Tensor& deltas, const at::Tensor& taken) {
  static const auto op = detail::find_op<at::Tensor(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, std::string_view,
      const at::Tensor&, const at::Tensor&, const at::Tensor&)>("softhist::gather_at_places");
  return op.call(x, hist, params, order, kernel, pieces, deltas, taken);
}

// Differentiable torch.histc of all of input's samples (flattened), as
// softhist_ext.histc in Python: shape (bins,), input's dtype and device.
inline at::Tensor histc(const at::Tensor& input, int64_t bins = 100, double min = 0.0,
                        double max = 0.0, std::optional<double> kappa = std::nullopt,
                        std::string_view kernel = "logistic",
                        const std::optional<at::Tensor>& given_weight = std::nullopt,
                        bool conserve_mass = false) {
  const std::optional<at::Tensor> weight = detail::defined_or_none(given_weight);
  TORCH_CHECK(!weight.has_value() || weight->sizes() == input.sizes(),
              "softhist: weight must have the input's shape ", input.sizes(), ", got ",
              weight->sizes());
  const at::Tensor x = input.reshape({-1});
  const std::optional<at::Tensor> w =
      weight.has_value() ? std::optional<at::Tensor>(weight->reshape({-1})) : std::nullopt;
  const at::Tensor p = params(x, bins, min, max, kappa, kernel, conserve_mass).unsqueeze(0);
  return scatter({x}, w, p, {bins}, {0}, kernel);
}

// Differentiable joint histogram of the pairs (x_i, y_i) of all samples
// (flattened), as softhist_ext.histc2d in Python with one range and kappa
// for both axes: shape (bins[0], bins[1]), x's dtype and device.
inline at::Tensor histc2d(const at::Tensor& x, const at::Tensor& y, std::array<int64_t, 2> bins,
                          double min = 0.0, double max = 0.0,
                          std::optional<double> kappa = std::nullopt,
                          std::string_view kernel = "logistic",
                          const std::optional<at::Tensor>& given_weight = std::nullopt,
                          bool conserve_mass = false) {
  const std::optional<at::Tensor> weight = detail::defined_or_none(given_weight);
  TORCH_CHECK(y.sizes() == x.sizes() && y.scalar_type() == x.scalar_type() &&
                  y.device() == x.device(),
              "softhist: x and y must have the same shape, dtype and device, got ", x.sizes(),
              " ", x.scalar_type(), " ", x.device(), " and ", y.sizes(), " ", y.scalar_type(), " ",
              y.device());
  TORCH_CHECK(!weight.has_value() || weight->sizes() == x.sizes(),
              "softhist: weight must have x's shape ", x.sizes(), ", got ", weight->sizes());
  const at::Tensor xs = x.reshape({-1}), ys = y.reshape({-1});
  const std::optional<at::Tensor> w =
      weight.has_value() ? std::optional<at::Tensor>(weight->reshape({-1})) : std::nullopt;
  const at::Tensor p = at::stack({params(xs, bins[0], min, max, kappa, kernel, conserve_mass),
                                  params(ys, bins[1], min, max, kappa, kernel, conserve_mass)});
  return scatter({xs, ys}, w, p, {bins[0], bins[1]}, {0, 0}, kernel);
}

// The same with `bins` bins on both axes (Python's histc2d(x, y, bins, ...)):
// (bins, bins).
inline at::Tensor histc2d(const at::Tensor& x, const at::Tensor& y, int64_t bins = 32,
                          double min = 0.0, double max = 0.0,
                          std::optional<double> kappa = std::nullopt,
                          std::string_view kernel = "logistic",
                          const std::optional<at::Tensor>& weight = std::nullopt,
                          bool conserve_mass = false) {
  return histc2d(x, y, std::array<int64_t, 2>{bins, bins}, min, max, kappa, kernel, weight,
                 conserve_mass);
}

}  // namespace softhist
