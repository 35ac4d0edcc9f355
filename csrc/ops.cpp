// The argument checks every backend runs before touching data (compiled into
// the CPU and the CUDA library alike).
#include "ops.h"

#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cmath>

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
                 "to the samples; use a smooth kernel, or straight_through=True for exact "
                 "counts with a smooth gradient");
}

// kappa * bin width when kappa is not given: each kernel's spread is about
// half a bin (standard deviation 0.45, 0.5, 0.41 and 0.58 bin widths). See the
// README, "Choosing kappa".
double default_kappa_width(Kernel kernel) {
  switch (kernel) {
    case Kernel::Logistic: return 4.0;
    case Kernel::Gaussian: return 2.0;
    case Kernel::Triangular: return 1.0;
    case Kernel::BSpline: return 1.0;
    case Kernel::Hard: return 1.0;  // unused: the hard kernel has no width
  }
  return 1.0;
}

void check_bins(int64_t bins) {
  SOFTHIST_CHECK(bins >= 1 && bins < (int64_t(1) << 31),
                  "softhist: bins must be between 1 and 2^31 - 1, got ", bins);
}

void check_params(const Tensor& params, const Tensor& input) {
  SOFTHIST_CHECK(params.scalar_type() == ScalarType::Double && params.dim() == 1 &&
                     params.numel() == kParamsSize && params.is_contiguous(),
                  "softhist: params must be the float64 tensor of ", kParamsSize,
                  " values returned by torch.ops.softhist.params");
  SOFTHIST_CHECK(params.device() == input.device(),
                  "softhist: params must be on the input's device");
}

}  // namespace

Kernel parse_kernel(const std::string& name) {
  if (name == "logistic") return Kernel::Logistic;
  if (name == "gaussian") return Kernel::Gaussian;
  if (name == "triangular") return Kernel::Triangular;
  if (name == "bspline") return Kernel::BSpline;
  if (name == "hard") return Kernel::Hard;
  fail("softhist: kernel must be one of \"logistic\", \"gaussian\", \"triangular\", "
       "\"bspline\" (or \"hard\" for exact counts), got \"", name, "\"");
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

RangeArgs range_args(const Tensor& input, int64_t bins, double min, double max,
                     std::optional<double> kappa, Kernel kernel, bool open_ends) {
  check_input(input);
  check_bins(bins);
  SOFTHIST_CHECK(std::isfinite(min) && std::isfinite(max),
                  "softhist: min and max must be finite, got min=", min, " and max=", max);
  SOFTHIST_CHECK(min <= max, "softhist: min must not exceed max, got min=", min,
                  " > max=", max, "; swap them");
  if (kappa.has_value()) {
    SOFTHIST_CHECK(std::isfinite(*kappa) && *kappa > 0,
                    "softhist: kappa must be a positive finite number (the sigmoid "
                    "slope, in 1/units of the input), got ",
                    *kappa, "; pass kappa=None for the default");
  }
  if (min != max) {
    const double width = (max - min) / static_cast<double>(bins);
    SOFTHIST_CHECK(std::isfinite(width) && width > 0 && min + width > min && max - width < max,
                    "softhist: the range [", min, ", ", max, "] split into ", bins,
                    " bins gives bins too narrow to represent; widen min/max or use fewer "
                    "bins");
  }
  return {min, max, bins, kappa.has_value(),
          kappa.has_value() ? *kappa : default_kappa_width(kernel), open_ends};
}

void check_scatter_args(const Tensor& input, const std::optional<Tensor>& weight,
                        const Tensor& params, int64_t bins, int64_t order, Kernel kernel) {
  check_input(input);
  check_bins(bins);
  check_order(order, kernel);
  check_params(params, input);
  if (weight.has_value()) {
    SOFTHIST_CHECK(weight->sizes().equals(input.sizes()),
                   "softhist: weight must have the input's shape");
    SOFTHIST_CHECK(weight->scalar_type() == input.scalar_type(),
                   "softhist: weight must have the input's dtype, got ",
                   weight->scalar_type(), " and ", input.scalar_type(),
                   "; convert it with weight.to(input.dtype)");
    SOFTHIST_CHECK(weight->device() == input.device(),
                   "softhist: weight must be on the input's device");
  }
}

void check_gather_args(const Tensor& input, const Tensor& hist, const Tensor& params,
                       int64_t order, Kernel kernel) {
  check_input(input);
  check_order(order, kernel);
  check_params(params, input);
  SOFTHIST_CHECK(hist.dim() == (input.dim() == 0 ? 1 : input.dim()) &&
                     hist.scalar_type() == input.scalar_type() &&
                     hist.device() == input.device(),
                 "softhist: hist must have the input's dtype, device and shape, with bins "
                 "in the last dimension");
  check_bins(row_length(hist));
  for (int64_t d = 0; d + 1 < input.dim(); ++d)
    SOFTHIST_CHECK(hist.size(d) == input.size(d),
                   "softhist: hist must have the input's shape, with bins in the last "
                   "dimension");
}

void check_scatter2d_args(const Tensor& x, const Tensor& y, const std::optional<Tensor>& weight,
                          const Tensor& params_x, const Tensor& params_y, int64_t bins_x,
                          int64_t bins_y, int64_t order_x, int64_t order_y, Kernel kernel) {
  check_scatter_args(x, weight, params_x, bins_x, order_x, kernel);
  check_scatter_args(y, std::nullopt, params_y, bins_y, order_y, kernel);
  SOFTHIST_CHECK(x.sizes().equals(y.sizes()) && x.scalar_type() == y.scalar_type() &&
                     x.device() == y.device(),
                 "softhist: x and y must have the same shape, dtype and device (they pair "
                 "up sample by sample)");
  SOFTHIST_CHECK(int64_t(1) * bins_x * bins_y < (int64_t(1) << 31),
                 "softhist: bins_x * bins_y must be below 2^31");
}

void check_gather2d_args(const Tensor& x, const Tensor& y, const Tensor& hist,
                         const Tensor& params_x, const Tensor& params_y, int64_t order_x,
                         int64_t order_y, Kernel kernel) {
  check_input(x);
  check_order(order_x, kernel);
  check_order(order_y, kernel);
  check_params(params_x, x);
  check_params(params_y, x);
  SOFTHIST_CHECK(x.sizes().equals(y.sizes()) && x.scalar_type() == y.scalar_type() &&
                     x.device() == y.device(),
                 "softhist: x and y must have the same shape, dtype and device");
  const int64_t lead = x.dim() == 0 ? 0 : x.dim() - 1;
  bool ok = hist.dim() == lead + 2 && hist.scalar_type() == x.scalar_type() &&
            hist.device() == x.device();
  for (int64_t d = 0; ok && d < lead; ++d) ok = hist.size(d) == x.size(d);
  SOFTHIST_CHECK(ok, "softhist: hist must have x's dtype and device and shape "
                     "x.shape[:-1] + (bins_x, bins_y)");
  check_bins(hist.size(lead));
  check_bins(hist.size(lead + 1));
}

}  // namespace softhist
