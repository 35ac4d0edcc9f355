// Autograd for the softhist ops in C++ programs, where the Python
// registrations (softhist_ext/_registrations.py) are absent. Built by CMake
// against the user's libtorch with the classic API: the stable ABI the kernels
// use has no autograd.
//
// Each op's derivative is another op one order up (csrc/kernels.h):
// d scatter_m = gather_{m+1} (input) and gather_m (weight);
// d gather_m = gather_{m+1} (input) and scatter_m (hist).
// Backward calls the ops through the dispatcher, so with create_graph the
// backward is itself recorded and gradients of gradients work.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <string_view>

#include "../softhist.h"

namespace softhist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class ScatterFunction : public torch::autograd::Function<ScatterFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& input,
                          const std::optional<Variable>& weight, const Variable& params,
                          int64_t bins, int64_t order, std::string_view kernel) {
    ctx->save_for_backward({input, weight.value_or(Variable()), params});
    ctx->saved_data["order"] = order;
    ctx->saved_data["kernel"] = std::string(kernel);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::scatter(input, weight, params, bins, order, kernel);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Variable &input = saved[0], &weight = saved[1], &params = saved[2];
    const int64_t order = ctx->saved_data["order"].toInt();
    const std::string kernel = ctx->saved_data["kernel"].toStringRef();
    const Variable& grad = grads[0];
    // Gradient edges exist only for tensor arguments: weight's is 1 when given.
    Variable grad_input, grad_weight;
    if (ctx->needs_input_grad(0)) {
      grad_input = softhist::gather(input, grad, params, order + 1, kernel);
      // A sample with no gradient keeps exactly 0 whatever its weight (no 0 * inf).
      if (weight.defined())
        grad_input = at::where(grad_input.eq(0), grad_input, grad_input.mul(weight));
    }
    if (weight.defined() && ctx->needs_input_grad(1))
      grad_weight = softhist::gather(input, grad, params, order, kernel);
    return {grad_input, grad_weight, Variable(), Variable(), Variable(), Variable()};
  }
};

class GatherFunction : public torch::autograd::Function<GatherFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& input, const Variable& hist,
                          const Variable& params, int64_t order, std::string_view kernel) {
    ctx->save_for_backward({input, hist, params});
    ctx->saved_data["order"] = order;
    ctx->saved_data["kernel"] = std::string(kernel);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::gather(input, hist, params, order, kernel);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Variable &input = saved[0], &hist = saved[1], &params = saved[2];
    const int64_t order = ctx->saved_data["order"].toInt();
    const std::string kernel = ctx->saved_data["kernel"].toStringRef();
    const Variable& grad = grads[0];
    Variable grad_input, grad_hist;
    if (ctx->needs_input_grad(0))
      grad_input = grad.mul(softhist::gather(input, hist, params, order + 1, kernel));
    if (ctx->needs_input_grad(1))
      grad_hist = softhist::scatter(input, grad, params, hist.size(-1), order, kernel);
    return {grad_input, grad_hist, Variable(), Variable(), Variable()};
  }
};

at::Tensor scatter_autograd(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                            const at::Tensor& params, int64_t bins, int64_t order,
                            std::string_view kernel) {
  return ScatterFunction::apply(input, weight, params, bins, order, kernel);
}

at::Tensor gather_autograd(const at::Tensor& input, const at::Tensor& hist,
                           const at::Tensor& params, int64_t order, std::string_view kernel) {
  return GatherFunction::apply(input, hist, params, order, kernel);
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
