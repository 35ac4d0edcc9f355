// The argument checks every backend runs before touching data (compiled into
// the CPU and the CUDA library alike).
#include "ops.h"

#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <cmath>

#include "dispatch.h"
#include "kernels.h"

namespace softhist {

using torch::headeronly::ScalarType;

namespace {

bool is_supported_float(ScalarType t) {
  return t == ScalarType::Float || t == ScalarType::Double || t == ScalarType::Half ||
         t == ScalarType::BFloat16;
}

bool is_complex(ScalarType t) {
  return t == ScalarType::ComplexFloat || t == ScalarType::ComplexDouble ||
         t == ScalarType::ComplexHalf;
}

void check_order(int64_t order, Kernel kernel) {
  SOFTHIST_CHECK(order >= 0 && order <= kMaxOrder, "softhist: derivative order ", order,
                 " is not implemented (orders 0 to ", kMaxOrder,
                 " are: forward, backward, double and triple backward)");
  SOFTHIST_CHECK(kernel != Kernel::Hard || order == 0,
                 "softhist: the hard kernel (exact counts) has no derivative with respect "
                 "to the samples; use a smooth kernel, or histc's straight_through=True with a "
                 "smooth kernel (kernel=\"logistic\", say) for exact counts with its gradient");
}

// kappa * bin width when kappa is not given (the kernel traits in kernels.h).
double default_kappa_width(Kernel kernel) {
  switch (kernel) {
#define SOFTHIST_CASE(K) \
  case Kernel::K: return K::kDefaultKappaWidth;
    SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_CASE)
#undef SOFTHIST_CASE
    case Kernel::Hard: break;  // no width: the value is unused
  }
  return 1.0;
}

void check_bins(int64_t bins) {
  SOFTHIST_CHECK(bins >= 1 && bins < (int64_t(1) << 31),
                  "softhist: bins must be between 1 and 2^31 - 1, got ", bins);
}

}  // namespace

std::vector<std::string> kernel_names() {
  return {
#define SOFTHIST_NAME(K) K::kName,
      SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_NAME)
#undef SOFTHIST_NAME
  };
}

Kernel parse_kernel(const std::string& name) {
#define SOFTHIST_PARSE(K) \
  if (name == K::kName) return Kernel::K;
  SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_PARSE)
#undef SOFTHIST_PARSE
  if (name == kHardName) return Kernel::Hard;
  std::string names;
  for (const std::string& known : kernel_names()) names += "\"" + known + "\", ";
  fail("softhist: kernel must be one of ", names, "or \"", kHardName,
       "\" for exact counts; got \"", name, "\"");
}

int64_t row_length(const Tensor& input) {
  return input.dim() == 0 ? 1 : input.size(input.dim() - 1);
}

int64_t row_count(const Tensor& input) {
  const int64_t n = row_length(input);
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < input.dim(); ++d) rows *= input.size(d);
  return n == 0 ? rows : input.numel() / n;
}

void check_input(const Tensor& input) {
  const ScalarType t = input.scalar_type();
  SOFTHIST_CHECK(!is_complex(t),
                  "softhist: input is complex; a histogram needs real values: pass "
                  "input.real, input.imag or input.abs()");
  SOFTHIST_CHECK(t != ScalarType::Bool,
                  "softhist: input is a bool tensor; convert it with input.float() (or "
                  "count it with torch.bincount(input.long()))");
  SOFTHIST_CHECK(is_supported_float(t), "softhist: input has dtype ", t,
                  ", but a soft histogram needs floating-point samples (float16, "
                  "bfloat16, float32 or float64); convert it with input.float()");
}

void check_sharpness(double kappa, double width) {
  SOFTHIST_CHECK(kappa * width <= kMaxSharpness, "softhist: kappa * bin width = ", kappa * width,
                 " is past ", kMaxSharpness, ", where the kernel is the hard one to within "
                 "rounding; use kernel='hard' (histc's straight_through=True for a gradient) "
                 "or a smaller kappa");
}

// (max - min) / bins finite: a range within a double's but wider than one.
void check_width(double min, double max, double width) {
  SOFTHIST_CHECK(std::isfinite(width), "softhist: the range [", min, ", ", max,
                 "] is wider than a double can hold (max - min overflows); narrow it, or "
                 "rescale the input");
}

// The hard kernel bins in the samples' type, as torch.histc does (which
// raises here too): a range beyond that type's finite values would make
// every sample "inside" it.
void check_hard_range(double lo, double hi, ScalarType dtype) {
  dispatch_float(dtype, [&](auto tag, auto) {
    using T = decltype(tag);
    SOFTHIST_CHECK(std::isfinite(rounded_to<T>(lo)) && std::isfinite(rounded_to<T>(hi)),
                   "softhist: the range [", lo, ", ", hi, "] is beyond ", dtype,
                   "'s finite values, and the hard kernel bins in the samples' type, as "
                   "torch.histc does; convert the input with input.float() (or .double())");
  });
}

RangeArgs range_args(const Tensor& input, int64_t bins, double min, double max,
                     std::optional<double> kappa, Kernel kernel, bool open_ends) {
  check_input(input);
  check_bins(bins);
  SOFTHIST_CHECK(std::isfinite(min) && std::isfinite(max),
                  "softhist: min and max must be finite, got min=", min, " and max=", max);
  SOFTHIST_CHECK(min <= max, "softhist: min must not exceed max, got min=", min,
                  " > max=", max, "; swap them");
  SOFTHIST_CHECK(!kappa.has_value() || kernel != Kernel::Hard,
                 "softhist: the hard kernel takes no kappa (it counts exactly), got kappa=",
                 *kappa, "; pass kappa=None, or a smooth kernel");
  if (kappa.has_value()) {
    SOFTHIST_CHECK(std::isfinite(*kappa) && *kappa > 0,
                    "softhist: kappa must be a positive finite number (the sigmoid "
                    "slope, in 1/units of the input), got ",
                    *kappa, "; pass kappa=None for the default");
  }
  if (min != max) {
    if (kernel == Kernel::Hard) check_hard_range(min, max, input.scalar_type());
    const double width = (max - min) / static_cast<double>(bins);
    check_width(min, max, width);
    SOFTHIST_CHECK(splittable(min, max, width),
                    "softhist: the range [", min, ", ", max, "] split into ", bins,
                    " bins gives bins too narrow to represent; widen min/max or use fewer "
                    "bins");
    if (kappa.has_value()) check_sharpness(*kappa, width);
  }
  return {min, max, bins, kappa.has_value(),
          kappa.has_value() ? *kappa : default_kappa_width(kernel), open_ends};
}

namespace {

// coords: 1 to kMaxAxes tensors of one shape, dtype and device; params one
// row per axis; returns D.
int64_t check_coords(const std::vector<Tensor>& coords, const Tensor& params,
                     const std::vector<int64_t>& orders, Kernel kernel) {
  const int64_t axes = static_cast<int64_t>(coords.size());
  SOFTHIST_CHECK(axes >= 1 && axes <= kMaxAxes, "softhist: coords must hold 1 to ", kMaxAxes,
                 " tensors (one per axis), got ", axes);
  check_input(coords[0]);
  for (const Tensor& c : coords)
    SOFTHIST_CHECK(c.sizes().equals(coords[0].sizes()) && c.scalar_type() == coords[0].scalar_type() &&
                       c.device() == coords[0].device(),
                   "softhist: the coordinates of every axis must have the same shape, dtype and "
                   "device (they pair up sample by sample)");
  SOFTHIST_CHECK(static_cast<int64_t>(orders.size()) == axes,
                 "softhist: orders must have one entry per axis (", axes, "), got ", orders.size());
  for (int64_t order : orders) check_order(order, kernel);
  SOFTHIST_CHECK(params.scalar_type() == ScalarType::Double && params.dim() == 2 &&
                     params.size(0) == axes && params.size(1) != kParamsSize + 1 &&
                     params.size(1) >= kParamsSize && params.is_contiguous(),
                 "softhist: params must be the float64 (axes, ", kParamsSize,
                 ") tensor of torch.ops.softhist.params rows, one per axis (or, with explicit "
                 "edges, each row followed by its axis's bins + 1 edges)");
  SOFTHIST_CHECK(params.device() == coords[0].device(),
                 "softhist: params must be on the input's device");
  SOFTHIST_CHECK(!has_explicit_edges(params) || kernel != Kernel::Hard,
                 "softhist: explicit edges need a smooth kernel; softhist_ext.histogram bins "
                 "the hard kernel by its edges itself");
  return axes;
}

// Each row (checked on the CPU; on a GPU, params and softhist_ext.histogram
// check): even bins over a finite range, or explicit edges, each row as
// long as the most bins need and its own bins + 1 edges finite and
// increasing; then, for a smooth kernel, kappa positive and finite. (params
// checks the rows it makes, but rows made from tensors under torch.compile
// meet no other check.)
void check_rows(const Tensor& params, const std::vector<int64_t>& bins, Kernel kernel) {
  const bool explicit_edges = has_explicit_edges(params);
  const int64_t width = params.size(1);
  const int64_t most = *std::max_element(bins.begin(), bins.end());
  SOFTHIST_CHECK(!explicit_edges || width == kParamsSize + most + 1,
                 "softhist: params with explicit edges must hold the most bins + 1 = ", most + 1,
                 " edges per row, got ", width - kParamsSize);
  if (!params.is_cpu()) return;
  for (size_t a = 0; a < bins.size(); ++a) {
    const double* row = params.const_data_ptr<double>() + static_cast<int64_t>(a) * width;
    const double* e = explicit_edges ? row + kParamsSize : row;
    const int64_t last = explicit_edges ? bins[a] : 1;
    for (int64_t j = 0; j <= last; ++j)
      SOFTHIST_CHECK(std::isfinite(e[j]) && (j == 0 || e[j] > e[j - 1]),
                     explicit_edges ? "softhist: explicit edges must be finite and strictly "
                                      "increasing; sort them (torch.sort) or, if they were "
                                      "learned, keep them apart"
                                    : "softhist: the range must be finite with min < max; if "
                                      "it was learned, keep min below max");
    const double width = (e[last] - e[0]) / static_cast<double>(bins[a]);
    check_width(e[0], e[last], width);
    if (kernel == Kernel::Hard) continue;
    SOFTHIST_CHECK(std::isfinite(row[2]) && row[2] > 0,
                   "softhist: kappa must be a positive finite number (in 1/units of the input), "
                   "got ", row[2]);
    check_sharpness(row[2], width);
  }
}

void check_joint_bins(const std::vector<int64_t>& bins) {
  int64_t total = 1;
  for (int64_t b : bins) {
    check_bins(b);
    total *= b;
    SOFTHIST_CHECK(total < (int64_t(1) << 31),
                   "softhist: the product of the bins of all axes must be below 2^31");
  }
}

}  // namespace

namespace {

// edge_axes as a flag per axis: each axis at most once, on a smooth kernel,
// at an order >= 1 (the edge sums are gradients).
std::vector<bool> check_edge_axes(const std::vector<int64_t>& edge_axes,
                                  const std::vector<int64_t>& orders, Kernel kernel) {
  const int64_t axes = static_cast<int64_t>(orders.size());
  std::vector<bool> at_edges(static_cast<size_t>(axes), false);
  for (int64_t a : edge_axes) {
    SOFTHIST_CHECK(a >= 0 && a < axes && !at_edges[a], "softhist: edge_axes must list distinct "
                   "axes in [0, ", axes, "), got ", a);
    SOFTHIST_CHECK(kernel != Kernel::Hard && orders[a] >= 1,
                   "softhist: an axis at its edges (the gradients with respect to the edges, "
                   "range and kappa) needs a smooth kernel and a derivative order of at least 1, "
                   "got order ", orders[a], " on axis ", a);
    at_edges[a] = true;
  }
  return at_edges;
}

}  // namespace

Problem check_scatter_args(const std::vector<Tensor>& coords, const std::optional<Tensor>& weight,
                           const Tensor& params, const std::vector<int64_t>& bins,
                           const std::vector<int64_t>& orders,
                           const std::vector<int64_t>& edge_axes, Kernel kernel) {
  const int64_t axes = check_coords(coords, params, orders, kernel);
  std::vector<bool> at_edges = check_edge_axes(edge_axes, orders, kernel);
  SOFTHIST_CHECK(static_cast<int64_t>(bins.size()) == axes,
                 "softhist: bins must have one entry per axis (", axes, "), got ", bins.size());
  check_joint_bins(bins);
  check_rows(params, bins, kernel);
  const Tensor& input = coords[0];
  if (kernel == Kernel::Hard && params.is_cpu() && !has_explicit_edges(params))
    for (int64_t a = 0; a < axes; ++a)  // (rows made with a smooth kernel: straight_through)
      check_hard_range(params.const_data_ptr<double>()[a * params.size(1)],
                       params.const_data_ptr<double>()[a * params.size(1) + 1],
                       input.scalar_type());
  if (weight.has_value()) {
    SOFTHIST_CHECK(weight->sizes().equals(input.sizes()),
                   "softhist: weight must have the input's shape");
    SOFTHIST_CHECK(weight->scalar_type() == input.scalar_type(),
                   "softhist: weight must have the input's dtype, got weight ",
                   weight->scalar_type(), " and input ", input.scalar_type(),
                   "; convert it with weight.to(input.dtype)");
    SOFTHIST_CHECK(weight->device() == input.device(),
                   "softhist: weight must be on the input's device");
  }
  return {axes, row_length(input), row_count(input), bins, orders, std::move(at_edges)};
}

Problem check_gather_args(const std::vector<Tensor>& coords, const Tensor& hist,
                          const Tensor& params, const std::vector<int64_t>& orders,
                          const std::vector<int64_t>& edge_axes, Kernel kernel) {
  const int64_t axes = check_coords(coords, params, orders, kernel);
  std::vector<bool> at_edges = check_edge_axes(edge_axes, orders, kernel);
  const Tensor& input = coords[0];
  const int64_t lead = input.dim() == 0 ? 0 : input.dim() - 1;
  bool ok = hist.dim() == lead + axes && hist.scalar_type() == input.scalar_type() &&
            hist.device() == input.device();
  for (int64_t d = 0; ok && d < lead; ++d) ok = hist.size(d) == input.size(d);
  SOFTHIST_CHECK(ok, "softhist: hist must have the input's dtype and device and shape "
                     "input.shape[:-1] + bins (one dimension per axis; bins + 1 on edge_axes)");
  std::vector<int64_t> bins;
  for (int64_t a = 0; a < axes; ++a) {
    bins.push_back(hist.size(lead + a) - (at_edges[a] ? 1 : 0));
    SOFTHIST_CHECK(!at_edges[a] || bins.back() >= 1,
                   "softhist: hist must have bins + 1 >= 2 slots on an axis at its edges");
  }
  check_joint_bins(bins);
  check_rows(params, bins, kernel);
  return {axes, row_length(input), row_count(input), bins, orders, std::move(at_edges)};
}

Problem check_edge_gather_scatter_args(const Tensor& x, const std::optional<Tensor>& weight,
                                       const Tensor& coef, const Tensor& params, int64_t order,
                                       Kernel kernel, const std::optional<Tensor>& sums,
                                       const std::optional<Tensor>& taken) {
  const Problem pb = check_gather_args({x}, coef, params, {order}, {0}, kernel);
  check_scatter_args({x}, weight, params, pb.bins, {order}, {0}, kernel);
  SOFTHIST_CHECK(sums.has_value() == taken.has_value(),
                 "softhist: edge_gather_scatter takes sums and taken together (both of "
                 "scatter_edge_sums's), or neither");
  if (sums.has_value()) {
    SOFTHIST_CHECK(order == 1, "softhist: edge_gather_scatter's sums (scatter_edge_sums's) are "
                   "of order 1, got order ", order);
    SOFTHIST_CHECK(sums->scalar_type() == ScalarType::Double &&
                       sums->sizes().equals(with_last(x, {2, pb.bins[0] + 1})),
                   "softhist: edge_gather_scatter's sums must be scatter_edge_sums's: float64, "
                   "x's shape with its last dimension replaced by (2, bins + 1)");
    SOFTHIST_CHECK(taken->scalar_type() == ScalarType::Bool && taken->dim() == 0,
                   "softhist: edge_gather_scatter's taken must be scatter_edge_sums's 0-d bool");
    SOFTHIST_CHECK(sums->device() == x.device() && taken->device() == x.device(),
                   "softhist: edge_gather_scatter's sums and taken must be on x's device");
  }
  return pb;
}

Problem check_gather_at_places_args(const Tensor& x, const Tensor& hist, const Tensor& params,
                                    int64_t order, Kernel kernel, const Tensor& pieces,
                                    const Tensor& deltas, const Tensor& taken) {
  const Problem pb = check_gather_args({x}, hist, params, {order}, {}, kernel);
  SOFTHIST_CHECK(order <= 1, "softhist: gather_at_places takes orders 0 and 1 (scatter_places's "
                 "pieces serve the histogram and its first derivative), got ", order);
  SOFTHIST_CHECK(pieces.scalar_type() == ScalarType::Int &&
                     deltas.scalar_type() == delta_type(x.scalar_type()) &&
                     pieces.sizes().equals(x.sizes()) && deltas.sizes().equals(x.sizes()),
                 "softhist: gather_at_places's pieces and deltas must be scatter_places's: x's "
                 "shape, int32 and (float64 for float64 x, else float32)");
  SOFTHIST_CHECK(taken.scalar_type() == ScalarType::Bool && taken.dim() == 0,
                 "softhist: gather_at_places's taken must be scatter_places's 0-d bool");
  SOFTHIST_CHECK(pieces.device() == x.device() && deltas.device() == x.device() &&
                     taken.device() == x.device(),
                 "softhist: gather_at_places's pieces, deltas and taken must be on x's device");
  return pb;
}

std::pair<Problem, Problem> check_scatter_edge_sums_args(const Tensor& x,
                                                         const std::optional<Tensor>& weight,
                                                         const Tensor& params, int64_t bins,
                                                         Kernel kernel) {
  return {check_scatter_args({x}, weight, params, {bins}, {0}, {}, kernel),
          check_scatter_args({x}, weight, params, {bins}, {1}, {0}, kernel)};
}

}  // namespace softhist
