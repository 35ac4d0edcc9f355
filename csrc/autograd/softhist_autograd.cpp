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
// backward is itself recorded and gradients of gradients work. params (one
// axis: the range and kappa) gets its gradient from the edge sums, as in
// softhist_ext/_registrations.py (params_grad).
//
// torch::autograd::Function::apply gives a TensorList argument one gradient
// slot per tensor: backward returns D entries for coords, then weight's (or
// hist's), then one undefined entry per remaining argument. needs_input_grad
// counts only the tensors given: coords are 0..D-1, weight (when given) or
// hist is D.
#include <ATen/TensorOperators.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
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

// g_j - g_{j-1} along the last dimension, with g_{-1} = g_bins = 0.
Variable differences(const Variable& g) {
  return at::constant_pad_nd(g, {0, 1}) - at::constant_pad_nd(g, {1, 0});
}

Variable dot64(const Variable& a, const Variable& b) {
  return (a.to(at::kDouble) * b.to(at::kDouble)).sum();
}

void check_params_grad(const Variable& params, std::string_view kernel) {
  TORCH_CHECK(kernel != "hard",
              "softhist: the hard kernel (exact counts) has no gradient with respect to the "
              "range or kappa; use a smooth kernel, or detach them");
  TORCH_CHECK(params.size(0) == 1,
              "softhist: gradients with respect to params (the range and kappa) are "
              "implemented for one axis (histc, histogram); detach params for joint histograms");
}

// params' gradient for a value of order m that depends on x, the edges e_j
// and kappa only through kappa^m K^(m)(kappa (x - e_j)), from its gradients
// with respect to x and e (..., bins + 1); value_term is m <grad, value>. The
// edges are lo + j (hi - lo) / bins, or params' explicit edges (after its
// first kParamsSize values), which take grad_edges themselves. kappa's
// follows from homogeneity: kappa d/dkappa = m + sum (x - e_0) d/dx + sum (e - e_0) d/de.
Variable params_grad(const Variable& params, const Variable& x, const Variable& grad_x,
                     const Variable& grad_edges, const Variable& value_term,
                     Variable x_term = Variable()) {
  const Variable row = params.select(0, 0);
  const int64_t edges = grad_edges.size(-1);
  const bool explicit_edges = params.size(1) > 4;
  const Variable g_e = grad_edges.to(at::kDouble).reshape({-1, edges}).sum(0);
  // j / bins at edge j
  const Variable frac = at::arange(edges, params.options().requires_grad(false)) / double(edges - 1);
  const Variable e0 = explicit_edges ? row.select(0, 4) : row.select(0, 0);
  const Variable offsets =
      explicit_edges ? row.slice(0, 4) - e0 : frac * (row.select(0, 1) - row.select(0, 0));
  // NaN and inf samples (whose gradient is 0) add exactly 0.
  if (!x_term.defined())
    x_term = at::dot(at::nan_to_num((x.to(at::kDouble) - e0).reshape({-1}), 0.0, 0.0, 0.0),
                     grad_x.to(at::kDouble).reshape({-1}));
  const Variable g_kappa = (value_term + x_term + (offsets * g_e).sum()) / row.select(0, 2);
  const Variable zero = at::zeros_like(g_kappa);
  if (explicit_edges) return at::cat({at::stack({zero, zero, g_kappa, zero}), g_e}).unsqueeze(0);
  return at::stack({((1 - frac) * g_e).sum(), (frac * g_e).sum(), g_kappa, zero}).unsqueeze(0);
}

// Whether scatter's backward may take the gradients for x and params from
// edge_gather_scatter: on the CPU, and not when that backward is itself
// differentiated (edge_gather_scatter has no derivative; the separate ops do).
bool one_pass(const Variable& x) { return x.is_cpu() && !at::GradMode::is_enabled(); }

// m <grad, value> for the kappa^m factor; value is computed only for m > 0.
template <typename F>
Variable value_term(int64_t m, const Variable& grad, const F& value) {
  return m == 0 ? at::zeros({}, grad.options().dtype(at::kDouble))
                : dot64(grad, value()) * static_cast<double>(m);
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
    const bool params_needed = ctx->needs_input_grad(D + (weight.defined() ? 1 : 0));
    if (params_needed) check_params_grad(s.params, s.kernel);
    const bool single = params_needed && one_pass(s.coords[0]);
    variable_list out;  // coords..., weight, params, bins, orders, kernel
    for (size_t a = 0; a < D; ++a)  // (single: x's below)
      out.push_back((ctx->needs_input_grad(a) || (params_needed && a == 0)) && !(single && a == 0)
                        ? weighted(softhist::gather(s.coords, grad, s.params,
                                                    raised(s.orders, a), s.kernel),
                                   weight)
                        : Variable());
    out.push_back(weight.defined() && ctx->needs_input_grad(D)
                      ? softhist::gather(s.coords, grad, s.params, s.orders, s.kernel)
                      : Variable());
    if (params_needed) {
      const int64_t m = s.orders[0], bins = grad.size(-1);
      const std::optional<at::Tensor> w =
          weight.defined() ? std::optional<at::Tensor>(weight) : std::nullopt;
      const Variable coef = differences(grad);
      Variable edge_sums, x_term;
      if (single) {  // d/dx is the edge gather of the gradient's differences
        Variable gathered;
        std::tie(gathered, edge_sums, x_term) =
            softhist::edge_gather_scatter(s.coords[0], w, coef, s.params, m + 1, s.kernel);
        out[0] = weighted(gathered, weight);
      } else {
        edge_sums = softhist::edge_scatter(s.coords[0], w, s.params, bins, m + 1, s.kernel);
      }
      out.push_back(params_grad(s.params, s.coords[0], out[0], -coef * edge_sums,
                                value_term(m, grad, [&] {
                                  return softhist::scatter(s.coords, w, s.params, {bins},
                                                           s.orders, s.kernel);
                                }),
                                x_term));
      if (!ctx->needs_input_grad(0)) out[0] = Variable();
    }
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
    const bool params_needed = ctx->needs_input_grad(D + 1);
    if (params_needed) check_params_grad(s.params, s.kernel);
    variable_list out;  // coords..., hist, params, orders, kernel
    for (size_t a = 0; a < D; ++a)
      out.push_back(ctx->needs_input_grad(a) || (params_needed && a == 0)
                        ? grad.mul(softhist::gather(s.coords, hist, s.params,
                                                    raised(s.orders, a), s.kernel))
                        : Variable());
    // hist is (..., *bins): its last D sizes.
    out.push_back(ctx->needs_input_grad(D)
                      ? softhist::scatter(s.coords, grad, s.params,
                                          hist.sizes().slice(hist.dim() - D), s.orders,
                                          s.kernel)
                      : Variable());
    if (params_needed) {
      const int64_t m = s.orders[0], bins = hist.size(-1);
      const Variable grad_edges =
          -differences(hist) * softhist::edge_scatter(s.coords[0], grad, s.params, bins, m + 1, s.kernel);
      out.push_back(params_grad(s.params, s.coords[0], out[0], grad_edges, value_term(m, grad, [&] {
        return softhist::gather(s.coords, hist, s.params, s.orders, s.kernel);
      })));
      if (!ctx->needs_input_grad(0)) out[0] = Variable();
    }
    out.resize(D + 4);
    return out;
  }
};

// The edge sums' autograd: d/dweight (d/dcoef) is the other edge op of the
// same order, d/dx the edge gather one order up, params as above.
class EdgeScatterFunction : public torch::autograd::Function<EdgeScatterFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& x,
                          const std::optional<Variable>& weight, const Variable& params,
                          int64_t bins, int64_t order, std::string_view kernel) {
    ctx->save_for_backward({x, weight.value_or(Variable()), params});
    ctx->saved_data["order"] = order;
    ctx->saved_data["kernel"] = std::string(kernel);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::edge_scatter(x, weight, params, bins, order, kernel);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Variable &x = saved[0], &weight = saved[1], &params = saved[2], &grad = grads[0];
    const int64_t m = ctx->saved_data["order"].toInt(), bins = grad.size(-1) - 1;
    const std::string kernel = ctx->saved_data["kernel"].toStringRef();
    const std::optional<at::Tensor> w =
        weight.defined() ? std::optional<at::Tensor>(weight) : std::nullopt;
    const bool params_needed = ctx->needs_input_grad(weight.defined() ? 2 : 1);
    variable_list out(6);  // x, weight, params, bins, order, kernel
    if (ctx->needs_input_grad(0) || params_needed)
      out[0] = weighted(softhist::edge_gather(x, grad, params, m + 1, kernel), weight);
    if (weight.defined() && ctx->needs_input_grad(1))
      out[1] = softhist::edge_gather(x, grad, params, m, kernel);
    if (params_needed) {
      const Variable grad_edges = -grad * softhist::edge_scatter(x, w, params, bins, m + 1, kernel);
      out[2] = params_grad(params, x, out[0], grad_edges, value_term(m, grad, [&] {
        return softhist::edge_scatter(x, w, params, bins, m, kernel);
      }));
      if (!ctx->needs_input_grad(0)) out[0] = Variable();
    }
    return out;
  }
};

class EdgeGatherFunction : public torch::autograd::Function<EdgeGatherFunction> {
 public:
  static Variable forward(AutogradContext* ctx, const Variable& x, const Variable& coef,
                          const Variable& params, int64_t order, std::string_view kernel) {
    ctx->save_for_backward({x, coef, params});
    ctx->saved_data["order"] = order;
    ctx->saved_data["kernel"] = std::string(kernel);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::edge_gather(x, coef, params, order, kernel);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Variable &x = saved[0], &coef = saved[1], &params = saved[2], &grad = grads[0];
    const int64_t m = ctx->saved_data["order"].toInt(), bins = coef.size(-1) - 1;
    const std::string kernel = ctx->saved_data["kernel"].toStringRef();
    variable_list out(5);  // x, coef, params, order, kernel
    if (ctx->needs_input_grad(0) || ctx->needs_input_grad(2))
      out[0] = grad * softhist::edge_gather(x, coef, params, m + 1, kernel);
    if (ctx->needs_input_grad(1)) out[1] = softhist::edge_scatter(x, grad, params, bins, m, kernel);
    if (ctx->needs_input_grad(2)) {
      const Variable grad_edges = -coef * softhist::edge_scatter(x, grad, params, bins, m + 1, kernel);
      out[2] = params_grad(params, x, out[0], grad_edges, value_term(m, grad, [&] {
        return softhist::edge_gather(x, coef, params, m, kernel);
      }));
      if (!ctx->needs_input_grad(0)) out[0] = Variable();
    }
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

at::Tensor edge_scatter_autograd(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                                 const at::Tensor& params, int64_t bins, int64_t order,
                                 std::string_view kernel) {
  return EdgeScatterFunction::apply(x, weight, params, bins, order, kernel);
}

at::Tensor edge_gather_autograd(const at::Tensor& x, const at::Tensor& coef,
                                const at::Tensor& params, int64_t order,
                                std::string_view kernel) {
  return EdgeGatherFunction::apply(x, coef, params, order, kernel);
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
  m.impl("edge_scatter", TORCH_FN(edge_scatter_autograd));
  m.impl("edge_gather", TORCH_FN(edge_gather_autograd));
}

}  // namespace softhist
