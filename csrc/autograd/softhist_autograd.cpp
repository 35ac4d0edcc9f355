// Autograd for the softhist ops in C++ programs, where the Python
// registrations (softhist_ext/_registrations.py) are absent. Built by CMake
// against the user's libtorch with the classic API: the stable ABI the kernels
// use has no autograd.
//
// Each op's derivative is another op one order up along the differentiated
// axis (csrc/kernels.h), for any number D of axes:
//   d scatter / d coords[a] = gather with orders[a] + 1 (times weight),
//   d scatter / d weight    = gather with the same orders;
//   d gather / d coords[a]  = grad * gather with orders[a] + 1,
//   d gather / d hist       = scatter with the same orders.
// Backward calls the ops through the dispatcher, so with create_graph the
// backward is itself recorded and gradients of gradients work.
//
// torch::autograd::Function::apply gives a TensorList argument one gradient
// slot per tensor: backward returns D entries for coords, then weight's (or
// hist's), then one undefined entry per remaining argument. needs_input_grad
// counts only the tensors given: coords are 0..D-1, weight (when given) or
// hist is D.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../softhist.h"

namespace softhist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

// orders with axis's one higher: the derivative along that axis.
std::vector<int64_t> raised(std::vector<int64_t> orders, size_t axis) {
  ++orders[axis];
  return orders;
}

// grad * weight, where a sample with no gradient (NaN/inf, or reaching no bin)
// keeps exactly 0 whatever its weight (no 0 * inf).
Variable weighted(const Variable& grad, const Variable& weight) {
  return weight.defined() ? at::where(grad.eq(0), grad, grad.mul(weight)) : grad;
}

// What both ops' backward needs: the coordinates, the other tensor (weight or
// hist; undefined for an absent weight), params, orders and kernel.
void save(AutogradContext* ctx, at::TensorList coords, const Variable& other,
          const Variable& params, at::IntArrayRef orders, std::string_view kernel) {
  variable_list saved{other, params};
  saved.insert(saved.end(), coords.begin(), coords.end());
  ctx->save_for_backward(saved);
  ctx->saved_data["orders"] = orders.vec();
  ctx->saved_data["kernel"] = std::string(kernel);
}

struct Saved {
  Variable other, params;
  variable_list coords;
  std::vector<int64_t> orders;
  std::string kernel;
};

Saved load(AutogradContext* ctx) {
  variable_list saved = ctx->get_saved_variables();
  Saved s;
  s.other = saved[0];
  s.params = saved[1];
  s.coords.assign(saved.begin() + 2, saved.end());
  s.orders = ctx->saved_data["orders"].toIntVector();
  s.kernel = ctx->saved_data["kernel"].toStringRef();
  return s;
}

class ScatterFunction : public torch::autograd::Function<ScatterFunction> {
 public:
  static Variable forward(AutogradContext* ctx, at::TensorList coords,
                          const std::optional<Variable>& weight, const Variable& params,
                          at::IntArrayRef bins, at::IntArrayRef orders,
                          std::string_view kernel) {
    save(ctx, coords, weight.value_or(Variable()), params, orders, kernel);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::scatter(coords, weight, params, bins, orders, kernel);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Saved s = load(ctx);
    const Variable& weight = s.other;
    const Variable& grad = grads[0];
    const size_t D = s.coords.size();
    variable_list out;  // coords..., weight, params, bins, orders, kernel
    for (size_t a = 0; a < D; ++a)
      out.push_back(ctx->needs_input_grad(a)
                        ? weighted(softhist::gather(s.coords, grad, s.params,
                                                    raised(s.orders, a), s.kernel),
                                   weight)
                        : Variable());
    out.push_back(weight.defined() && ctx->needs_input_grad(D)
                      ? softhist::gather(s.coords, grad, s.params, s.orders, s.kernel)
                      : Variable());
    out.resize(D + 5);
    return out;
  }
};

class GatherFunction : public torch::autograd::Function<GatherFunction> {
 public:
  static Variable forward(AutogradContext* ctx, at::TensorList coords, const Variable& hist,
                          const Variable& params, at::IntArrayRef orders,
                          std::string_view kernel) {
    save(ctx, coords, hist, params, orders, kernel);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::gather(coords, hist, params, orders, kernel);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Saved s = load(ctx);
    const Variable& hist = s.other;
    const Variable& grad = grads[0];
    const size_t D = s.coords.size();
    variable_list out;  // coords..., hist, params, orders, kernel
    for (size_t a = 0; a < D; ++a)
      out.push_back(ctx->needs_input_grad(a)
                        ? grad.mul(softhist::gather(s.coords, hist, s.params,
                                                    raised(s.orders, a), s.kernel))
                        : Variable());
    // hist is (..., *bins): its last D sizes.
    out.push_back(ctx->needs_input_grad(D)
                      ? softhist::scatter(s.coords, grad, s.params,
                                          hist.sizes().slice(hist.dim() - D), s.orders,
                                          s.kernel)
                      : Variable());
    out.resize(D + 4);
    return out;
  }
};

at::Tensor scatter_autograd(at::TensorList coords, const std::optional<at::Tensor>& weight,
                            const at::Tensor& params, at::IntArrayRef bins,
                            at::IntArrayRef orders, std::string_view kernel) {
  return ScatterFunction::apply(coords, weight, params, bins, orders, kernel);
}

at::Tensor gather_autograd(at::TensorList coords, const at::Tensor& hist,
                           const at::Tensor& params, at::IntArrayRef orders,
                           std::string_view kernel) {
  return GatherFunction::apply(coords, hist, params, orders, kernel);
}

// params depends on the data only through its range, which is a constant for
// autograd: run it below autograd so its result never joins the graph.
at::Tensor params_autograd(const at::Tensor& input, int64_t bins, double min, double max,
                           std::optional<double> kappa, std::string_view kernel,
                           bool conserve_mass) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return softhist::params(input, bins, min, max, kappa, kernel, conserve_mass);
}

}  // namespace

TORCH_LIBRARY_IMPL(softhist, Autograd, m) {
  m.impl("params", TORCH_FN(params_autograd));
  m.impl("scatter", TORCH_FN(scatter_autograd));
  m.impl("gather", TORCH_FN(gather_autograd));
}

}  // namespace softhist
