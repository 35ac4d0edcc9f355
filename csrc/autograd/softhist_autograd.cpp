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
// backward is itself recorded and gradients of gradients work. params (the
// range or edges, and kappa) gets its gradient axis by axis from the op with
// that axis one order up and at its edges (edge_axes), as in
// softhist_ext/_registrations.py (_params_grad).
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

bool contains(at::IntArrayRef axes, int64_t a) {
  for (int64_t e : axes)
    if (e == a) return true;
  return false;
}

// edge_axes with axis a too.
std::vector<int64_t> with_axis(at::IntArrayRef axes, int64_t a) {
  std::vector<int64_t> out = axes.vec();
  if (!contains(axes, a)) out.push_back(a);
  return out;
}

// grad * weight, where a sample with no gradient (NaN/inf, or reaching no bin)
// keeps exactly 0 whatever its weight (no 0 * inf, in the derivative of this
// product either).
Variable weighted(const Variable& grad, const Variable& weight) {
  return weight.defined() ? grad.mul(at::where(grad.eq(0), at::Scalar(1.0), weight)) : grad;
}

// A 16-bit tensor as float32, for params' gradient: its edge sums reach
// bins / width samples (past float16's 65504), and kappa's cancels large
// terms that 16-bit rounding would spoil; and for the samples' gradients
// where a per-sample factor (the weights, or gather's upstream gradient)
// multiplies a gather, which alone may pass 65504 where the product does not.
// The inputs' gradients come back in their dtypes (autograd casts them).
// As _registrations.py's _upcast16.
Variable upcast16(const Variable& t) {
  const bool half = t.defined() && (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16);
  return half ? t.to(at::kFloat) : t;
}

// What both ops' backward needs: the coordinates, the other tensor (weight or
// hist; undefined for an absent weight), params, orders, kernel and edge axes,
// and scatter_edge_sums's sums and taken, or scatter_places's pieces,
// deltas and kept, where scatter's forward was one of them.
struct Kept {
  Variable sums, taken;  // scatter_edge_sums's
  Variable pieces, deltas, kept;  // scatter_places's
};

void save(AutogradContext* ctx, at::TensorList coords, const Variable& other,
          const Variable& params, at::IntArrayRef orders, std::string_view kernel,
          at::IntArrayRef edge_axes, const Kept& k = Kept()) {
  variable_list saved{other, params, k.sums, k.taken, k.pieces, k.deltas, k.kept};
  saved.insert(saved.end(), coords.begin(), coords.end());
  ctx->save_for_backward(saved);
  ctx->saved_data["orders"] = orders.vec();
  ctx->saved_data["kernel"] = std::string(kernel);
  ctx->saved_data["edge_axes"] = edge_axes.vec();
}

struct Saved {
  Variable other, params;
  Kept k;
  variable_list coords;
  std::vector<int64_t> orders, edge_axes;
  std::string kernel;
};

Saved load(AutogradContext* ctx) {
  variable_list saved = ctx->get_saved_variables();
  Saved s;
  s.other = saved[0];
  s.params = saved[1];
  s.k = {saved[2], saved[3], saved[4], saved[5], saved[6]};
  s.coords.assign(saved.begin() + 7, saved.end());
  s.orders = ctx->saved_data["orders"].toIntVector();
  s.kernel = ctx->saved_data["kernel"].toStringRef();
  s.edge_axes = ctx->saved_data["edge_axes"].toIntVector();
  return s;
}

// Whether the backward gives any coordinate its gradient.
bool any_coord_needed(AutogradContext* ctx, size_t D) {
  for (size_t a = 0; a < D; ++a)
    if (ctx->needs_input_grad(a)) return true;
  return false;
}

Saved upcast16(Saved s) {
  s.other = upcast16(s.other);
  for (Variable& c : s.coords) c = upcast16(c);
  return s;
}

// g_j - g_{j-1} along dimension dim, with g_{-1} = g_bins = 0.
Variable differences(const Variable& g, int64_t dim = -1) {
  const Variable last = g.movedim(dim, -1);
  return (at::constant_pad_nd(last, {0, 1}) - at::constant_pad_nd(last, {1, 0})).movedim(-1, dim);
}

// The float64 inner product of a and b, the same bits for any thread count:
// torch sums more than 32768 terms into one number in per-thread parts, so
// such a sum is taken in blocks of 4096 first, each block one output (as
// softhist_ext/_sums.py's dot).
Variable dot64(const Variable& a, const Variable& b) {
  Variable terms = (a.to(at::kDouble) * b.to(at::kDouble)).reshape({-1});
  while (terms.numel() > 32768) {
    const int64_t pad = (4096 - terms.numel() % 4096) % 4096;
    terms = at::constant_pad_nd(terms, {0, pad}).reshape({-1, 4096}).sum(1);
  }
  return terms.sum();
}

void check_params_grad(std::string_view kernel) {
  TORCH_CHECK(kernel != "hard",
              "softhist: the hard kernel (exact counts) has no gradient with respect to the "
              "range, edges or kappa; use a smooth kernel, or detach them");
}

// Row a of params' gradient, for a value of order m along axis a that depends
// on x, the axis's edges e_j and kappa only through kappa^m K^(m)(kappa (x - e_j)):
// from its gradients with respect to x and the edges (grad_edges: float64, one
// per edge); value_term is m <grad, value>. The edges are lo + j (hi - lo) / bins,
// or the row's explicit edges (after its first kParamsSize values, then zeros
// to the row's width), which take grad_edges themselves. kappa's follows from
// homogeneity: kappa d/dkappa = m + sum (x - e_0) d/dx + sum (e - e_0) d/de.
Variable params_row_grad(const Variable& params, int64_t a, const Variable& x,
                         const Variable& grad_x, const Variable& grad_edges,
                         const Variable& value_term, Variable x_term = Variable()) {
  const Variable row = params.select(0, a);
  const int64_t edges = grad_edges.size(0), width = params.size(1);
  const bool explicit_edges = width > 4;
  // j / bins at edge j
  const Variable frac = at::arange(edges, params.options().requires_grad(false)) / double(edges - 1);
  const Variable e0 = explicit_edges ? row.select(0, 4) : row.select(0, 0);
  const Variable offsets = explicit_edges ? row.slice(0, 4, 4 + edges) - e0
                                          : frac * (row.select(0, 1) - row.select(0, 0));
  // NaN and inf samples (whose gradient is 0) add exactly 0.
  if (!x_term.defined())
    x_term = dot64(at::nan_to_num(x.to(at::kDouble) - e0, 0.0, 0.0, 0.0), grad_x);
  const Variable g_kappa = (value_term + x_term + dot64(offsets, grad_edges)) / row.select(0, 2);
  const Variable zero = at::zeros_like(g_kappa);
  if (explicit_edges)
    return at::constant_pad_nd(at::cat({at::stack({zero, zero, g_kappa, zero}), grad_edges}),
                               {0, width - 4 - edges});
  return at::stack({dot64(1 - frac, grad_edges), dot64(frac, grad_edges), g_kappa, zero});
}

// Per edge of axis a (float64, bins + 1): sum over all but that axis's
// dimension of -coef * sums, where sums are the op's value with axis a one
// order up and at its edges, and coef the upstream values there: themselves
// if a is at its edges already (a value per edge), else their differences.
Variable edge_grad(const Variable& upstream, const Variable& sums, int64_t a, size_t D,
                   at::IntArrayRef edge_axes) {
  const int64_t dim = upstream.dim() - static_cast<int64_t>(D) + a;
  const Variable coef = contains(edge_axes, a) ? upstream : differences(upstream, dim);
  const Variable g = (-coef * sums).to(at::kDouble).movedim(dim, -1);
  return g.reshape({-1, g.size(-1)}).sum(0);
}

// Whether scatter's backward may take the gradients for x and params from
// edge_gather_scatter: one axis, on the CPU, and not when that backward is
// itself differentiated (edge_gather_scatter has no derivative; the others do).
bool one_pass(const Saved& s) {
  return s.coords.size() == 1 && s.edge_axes.empty() && s.coords[0].is_cpu() &&
         !at::GradMode::is_enabled();
}

// Whether scatter's forward is scatter_edge_sums, which takes the edge sums
// its first-order backward needs for params where that costs less than the
// backward's pass: one axis at order 0, on the CPU, when params needs a
// gradient (the hard kernel has none: its backward says so).
bool saves_edge_sums(bool params_needed, at::TensorList coords, at::IntArrayRef orders,
                     std::string_view kernel, at::IntArrayRef edge_axes) {
  return params_needed && coords.size() == 1 && orders.size() == 1 && orders[0] == 0 &&
         edge_axes.empty() && coords[0].is_cpu() && kernel != "hard";
}

// Whether scatter's forward is scatter_places, which keeps the places of the
// samples for its backward's gathers where locating them costs about as much
// as the rest of a pass (it says where: uneven pieces): one axis at order 0
// over explicit edges, on the CPU, a compact kernel (the others' pieces are
// even: nothing to keep), when x or the weights need a gradient.
bool keeps_places(bool coords_needed, const Variable& params, at::TensorList coords,
                  at::IntArrayRef orders, std::string_view kernel, at::IntArrayRef edge_axes) {
  return coords_needed && coords.size() == 1 && orders.size() == 1 && orders[0] == 0 &&
         edge_axes.empty() && params.dim() == 2 && params.size(1) > 4 && coords[0].is_cpu() &&
         kernel != "hard" && kernel != "logistic" && kernel != "gaussian";
}

// Scatter's backward's gather (x's and the weights'): at the forward's places
// where it kept them, unless this backward is itself differentiated
// (gather_at_places has no derivative).
Variable scatter_gather(const Saved& s, const Variable& grad, const std::vector<int64_t>& orders) {
  if (s.k.pieces.defined() && !at::GradMode::is_enabled())
    return softhist::gather_at_places(s.coords[0], grad, s.params, orders[0], s.kernel,
                                      s.k.pieces, s.k.deltas, s.k.kept);
  return softhist::gather(s.coords, grad, s.params, orders, s.kernel, s.edge_axes);
}

// m <grad, value> for the kappa^m factor; value is computed only for m > 0.
template <typename F>
Variable value_term(int64_t m, const Variable& grad, const F& value) {
  return m == 0 ? at::zeros({}, grad.options().dtype(at::kDouble))
                : dot64(grad, value()) * static_cast<double>(m);
}

std::optional<at::Tensor> optional_of(const Variable& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

// The histogram's bins from its slots (one more on the axes at their edges).
std::vector<int64_t> bins_of(const Variable& hist, size_t D, at::IntArrayRef edge_axes) {
  std::vector<int64_t> bins = hist.sizes().slice(hist.dim() - D).vec();
  for (int64_t a : edge_axes) --bins[a];
  return bins;
}

// params' gradient (D rows) for either op: per axis a, the edge sums of the
// samples weighted by `weight` (scatter's weights, gather's upstream gradient)
// against `upstream` (scatter's upstream gradient, gather's hist; see
// edge_grad), grad_x[a] the op's gradient for coords[a], and value() the op's
// value for the kappa^m term.
template <typename F>
Variable params_grad(const Saved& s, const std::optional<at::Tensor>& weight,
                     const Variable& upstream, const std::vector<int64_t>& bins,
                     const variable_list& grad_x, const Variable& grad, const F& value) {
  variable_list rows;
  const size_t D = s.coords.size();
  for (size_t a = 0; a < D; ++a) {
    const Variable sums = softhist::scatter(s.coords, weight, s.params, bins, raised(s.orders, a),
                                            s.kernel, with_axis(s.edge_axes, a));
    rows.push_back(params_row_grad(s.params, a, s.coords[a], grad_x[a],
                                   edge_grad(upstream, sums, a, D, s.edge_axes),
                                   value_term(s.orders[a], grad, value)));
  }
  return at::stack(rows);
}

class ScatterFunction : public torch::autograd::Function<ScatterFunction> {
 public:
  static Variable forward(AutogradContext* ctx, at::TensorList coords,
                          const std::optional<Variable>& weight, const Variable& params,
                          at::IntArrayRef bins, at::IntArrayRef orders, std::string_view kernel,
                          at::IntArrayRef edge_axes, bool params_needed, bool coords_needed) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    if (saves_edge_sums(params_needed, coords, orders, kernel, edge_axes)) {
      auto [hist, sums, taken] =
          softhist::scatter_edge_sums(coords[0], weight, params, bins[0], kernel);
      save(ctx, coords, weight.value_or(Variable()), params, orders, kernel, edge_axes,
           {sums, taken});
      return hist;
    }
    if (keeps_places(coords_needed, params, coords, orders, kernel, edge_axes)) {
      auto [hist, pieces, deltas, kept] =
          softhist::scatter_places(coords[0], weight, params, bins[0], kernel);
      save(ctx, coords, weight.value_or(Variable()), params, orders, kernel, edge_axes,
           {Variable(), Variable(), pieces, deltas, kept});
      return hist;
    }
    save(ctx, coords, weight.value_or(Variable()), params, orders, kernel, edge_axes);
    return softhist::scatter(coords, weight, params, bins, orders, kernel, edge_axes);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Saved s = load(ctx);
    const size_t D = s.coords.size();
    const bool params_needed = ctx->needs_input_grad(D + (s.other.defined() ? 1 : 0));
    if (params_needed) check_params_grad(s.kernel);
    const bool wide = params_needed || (s.other.defined() && any_coord_needed(ctx, D));  // (upcast16)
    if (wide) s = upcast16(std::move(s));
    const Variable& weight = s.other;
    const Variable grad = wide ? upcast16(grads[0]) : grads[0];
    const bool single = params_needed && one_pass(s);
    const std::optional<at::Tensor> w = optional_of(weight);
    const std::vector<int64_t> bins = bins_of(grad, D, s.edge_axes);
    // coords..., weight, params, bins, orders, kernel, edge_axes, params_needed, coords_needed
    variable_list out;
    for (size_t a = 0; a < D; ++a)  // (single: x's below)
      out.push_back((ctx->needs_input_grad(a) || params_needed) && !single
                        ? weighted(scatter_gather(s, grad, raised(s.orders, a)), weight)
                        : Variable());
    out.push_back(weight.defined() && ctx->needs_input_grad(D) ? scatter_gather(s, grad, s.orders)
                                                                : Variable());
    const auto value = [&] {
      return softhist::scatter(s.coords, w, s.params, bins, s.orders, s.kernel, s.edge_axes);
    };
    if (single) {  // d/dx is the edge gather of the gradient's differences
      Variable edge_sums, x_term;
      const bool x_needed = ctx->needs_input_grad(0);
      std::tie(out[0], edge_sums, x_term) = softhist::edge_gather_scatter(
          s.coords[0], w, differences(grad), s.params, s.orders[0] + 1, s.kernel,
          optional_of(s.k.sums), optional_of(s.k.taken), x_needed);
      out[0] = x_needed ? weighted(out[0], weight) : Variable();
      out.push_back(params_row_grad(s.params, 0, s.coords[0], out[0],
                                    edge_grad(grad, edge_sums, 0, D, s.edge_axes),
                                    value_term(s.orders[0], grad, value),
                                    x_term)
                        .unsqueeze(0));
    } else if (params_needed) {
      out.push_back(params_grad(s, w, grad, bins, out, grad, value));
    }
    for (size_t a = 0; a < D; ++a)
      if (!ctx->needs_input_grad(a)) out[a] = Variable();
    out.resize(D + 8);
    return out;
  }
};

class GatherFunction : public torch::autograd::Function<GatherFunction> {
 public:
  static Variable forward(AutogradContext* ctx, at::TensorList coords, const Variable& hist,
                          const Variable& params, at::IntArrayRef orders,
                          std::string_view kernel, at::IntArrayRef edge_axes) {
    save(ctx, coords, hist, params, orders, kernel, edge_axes);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return softhist::gather(coords, hist, params, orders, kernel, edge_axes);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Saved s = load(ctx);
    const size_t D = s.coords.size();
    const bool params_needed = ctx->needs_input_grad(D + 1);
    if (params_needed) check_params_grad(s.kernel);
    const bool wide = params_needed || any_coord_needed(ctx, D);  // (upcast16)
    if (wide) s = upcast16(std::move(s));
    const Variable& hist = s.other;
    const Variable grad = wide ? upcast16(grads[0]) : grads[0];
    const std::vector<int64_t> bins = bins_of(hist, D, s.edge_axes);
    variable_list out;  // coords..., hist, params, orders, kernel, edge_axes
    for (size_t a = 0; a < D; ++a)
      out.push_back(ctx->needs_input_grad(a) || params_needed
                        ? grad.mul(softhist::gather(s.coords, hist, s.params,
                                                    raised(s.orders, a), s.kernel, s.edge_axes))
                        : Variable());
    out.push_back(ctx->needs_input_grad(D)
                      ? softhist::scatter(s.coords, grad, s.params, bins, s.orders, s.kernel,
                                          s.edge_axes)
                      : Variable());
    if (params_needed) {
      out.push_back(params_grad(s, grad, hist, bins, out, grad, [&] {
        return softhist::gather(s.coords, hist, s.params, s.orders, s.kernel, s.edge_axes);
      }));
    }
    for (size_t a = 0; a < D; ++a)
      if (!ctx->needs_input_grad(a)) out[a] = Variable();
    out.resize(D + 5);
    return out;
  }
};

at::Tensor scatter_autograd(at::TensorList coords, const std::optional<at::Tensor>& weight,
                            const at::Tensor& params, at::IntArrayRef bins,
                            at::IntArrayRef orders, std::string_view kernel,
                            at::IntArrayRef edge_axes) {
  // (whether params will take a gradient: known here, where grad mode is the caller's; forward
  // runs without it, and its ctx has no edges to ask when nothing records one)
  const bool grad_mode = at::GradMode::is_enabled();
  const bool params_needed = grad_mode && params.requires_grad();
  bool coords_needed = grad_mode && weight.has_value() && weight->requires_grad();
  for (const at::Tensor& c : coords) coords_needed = coords_needed || (grad_mode && c.requires_grad());
  return ScatterFunction::apply(coords, weight, params, bins, orders, kernel, edge_axes,
                                params_needed, coords_needed);
}

at::Tensor gather_autograd(at::TensorList coords, const at::Tensor& hist,
                           const at::Tensor& params, at::IntArrayRef orders,
                           std::string_view kernel, at::IntArrayRef edge_axes) {
  return GatherFunction::apply(coords, hist, params, orders, kernel, edge_axes);
}

}  // namespace

TORCH_LIBRARY_IMPL(softhist, Autograd, m) {
  // params depends on the data only through its range, a constant for
  // autograd: no autograd kernel, so its result never joins the graph.
  m.impl("params", torch::CppFunction::makeFallthrough());
  m.impl("scatter", TORCH_FN(scatter_autograd));
  m.impl("gather", TORCH_FN(gather_autograd));
}

}  // namespace softhist
