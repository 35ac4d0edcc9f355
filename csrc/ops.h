// Argument policy shared by every backend: one definition of what each op
// accepts and what it says when it doesn't.
#pragma once

#include <torch/csrc/stable/tensor.h>

#include "kernels.h"
#include "range.h"

#include <optional>
#include <string>
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

Kernel parse_kernel(const std::string& name);
void check_input(const Tensor& input);
// Checks the arguments of `params` and what resolve_range (range.h) needs
// besides the data's range; an explicit range must split into representable bins.
RangeArgs range_args(const Tensor& input, int64_t bins, double min, double max,
                     std::optional<double> kappa, Kernel kernel, bool open_ends);
// The ops work along the last dimension of input, batched over the others.
void check_scatter_args(const Tensor& input, const std::optional<Tensor>& weight,
                        const Tensor& params, int64_t bins, int64_t order, Kernel kernel);
void check_gather_args(const Tensor& input, const Tensor& hist, const Tensor& params,
                       int64_t order, Kernel kernel);
// The joint ops: x and y pair up sample by sample (same shape, dtype, device).
void check_scatter2d_args(const Tensor& x, const Tensor& y, const std::optional<Tensor>& weight,
                          const Tensor& params_x, const Tensor& params_y, int64_t bins_x,
                          int64_t bins_y, int64_t order_x, int64_t order_y, Kernel kernel);
void check_gather2d_args(const Tensor& x, const Tensor& y, const Tensor& hist,
                         const Tensor& params_x, const Tensor& params_y, int64_t order_x,
                         int64_t order_y, Kernel kernel);
// Samples per row (the last dimension) and number of rows.
int64_t row_length(const Tensor& input);
int64_t row_count(const Tensor& input);

}  // namespace softhist
