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
#include <c10/util/Exception.h>

#include <cstdint>
#include <optional>
#include <string_view>

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

// Along the last dimension, batched over the others:
// out[..., b] = sum_i weight[..., i] * D_order(input[..., i], b), shape (..., bins).
inline at::Tensor scatter(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                          const at::Tensor& params, int64_t bins, int64_t order,
                          std::string_view kernel) {
  static const auto op = detail::find_op<at::Tensor(const at::Tensor&,
                                                    const std::optional<at::Tensor>&,
                                                    const at::Tensor&, int64_t, int64_t,
                                                    std::string_view)>("softhist::scatter");
  return op.call(input, weight, params, bins, order, kernel);
}

// out[..., i] = sum_b hist[..., b] * D_order(input[..., i], b), input's shape.
inline at::Tensor gather(const at::Tensor& input, const at::Tensor& hist,
                         const at::Tensor& params, int64_t order, std::string_view kernel) {
  static const auto op = detail::find_op<at::Tensor(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, std::string_view)>(
      "softhist::gather");
  return op.call(input, hist, params, order, kernel);
}

// Differentiable torch.histc of all of input's samples (flattened), as
// softhist_ext.histc in Python: shape (bins,), input's dtype and device.
inline at::Tensor histc(const at::Tensor& input, int64_t bins = 100, double min = 0.0,
                        double max = 0.0, std::optional<double> kappa = std::nullopt,
                        std::string_view kernel = "logistic",
                        const std::optional<at::Tensor>& weight = std::nullopt,
                        bool conserve_mass = false) {
  TORCH_CHECK(!weight.has_value() || weight->sizes() == input.sizes(),
              "softhist: weight must have the input's shape ", input.sizes(), ", got ",
              weight->sizes());
  const at::Tensor x = input.reshape({-1});
  const std::optional<at::Tensor> w =
      weight.has_value() ? std::optional<at::Tensor>(weight->reshape({-1})) : std::nullopt;
  return scatter(x, w, params(x, bins, min, max, kappa, kernel, conserve_mass), bins, 0, kernel);
}

}  // namespace softhist
