// The op schemas (the one place they are written), and a fallback for every
// device the build has no kernel for. Part of the CPU library only, which is
// always loaded first; the CUDA library adds its kernels to these ops.
#include <torch/csrc/stable/library.h>

#include <string>

#include "ops.h"

namespace softhist {

namespace {

// Reached only for a device an op has no kernel for in this build.
[[noreturn]] void no_kernel(const char* op, const Tensor& input) {
  fail("softhist: ", op, " got a tensor on ",
       input.is_cuda() ? "a CUDA device, and this build has no CUDA kernel for it (CUDA "
                         "kernels are built where nvcc's CUDA version matches torch's)"
                       : "a device softhist_ext has no kernels for",
       "; move the input to the CPU with .cpu()");
}

Tensor params_no_kernel(const Tensor& input, int64_t, double, double, std::optional<double>,
                        std::string, bool) {
  no_kernel("params", input);
}
Tensor scatter_no_kernel(const Tensor& input, const std::optional<Tensor>&, const Tensor&,
                         int64_t, int64_t, std::string) {
  no_kernel("scatter", input);
}
Tensor gather_no_kernel(const Tensor& input, const Tensor&, const Tensor&, int64_t,
                        std::string) {
  no_kernel("gather", input);
}
Tensor scatter2d_no_kernel(const Tensor& x, const Tensor&, const std::optional<Tensor>&,
                           const Tensor&, const Tensor&, int64_t, int64_t, int64_t, int64_t,
                           std::string) {
  no_kernel("scatter2d", x);
}
Tensor gather2d_no_kernel(const Tensor& x, const Tensor&, const Tensor&, const Tensor&,
                          const Tensor&, int64_t, int64_t, std::string) {
  no_kernel("gather2d", x);
}

}  // namespace

STABLE_TORCH_LIBRARY(softhist, m) {
  // Range and kappa after defaults, and open ends (conserve_mass), as float64
  // [lo, hi, kappa, open] on the input's device, so that a range taken from
  // the data never leaves the device.
  m.def(
      "params(Tensor input, int bins, float min, float max, float? kappa, "
      "str kernel, bool conserve_mass=False) -> Tensor");
  // Along the last dimension, batched over the others (see kernels.h):
  // out[..., b] = sum_i weight[..., i] * D_order(input[..., i], b), shape (..., bins).
  m.def(
      "scatter(Tensor input, Tensor? weight, Tensor params, int bins, int order, "
      "str kernel) -> Tensor");
  // out[..., i] = sum_b hist[..., b] * D_order(input[..., i], b), input's shape.
  m.def(
      "gather(Tensor input, Tensor hist, Tensor params, int order, "
      "str kernel) -> Tensor");
  // Joint histograms: out[..., a, b] = sum_i w_i D_order_x(x_i, a) D_order_y(y_i, b),
  // shape (..., bins_x, bins_y); and its transpose, back to the samples.
  m.def(
      "scatter2d(Tensor x, Tensor y, Tensor? weight, Tensor params_x, Tensor params_y, "
      "int bins_x, int bins_y, int order_x, int order_y, str kernel) -> Tensor");
  m.def(
      "gather2d(Tensor x, Tensor y, Tensor hist, Tensor params_x, Tensor params_y, "
      "int order_x, int order_y, str kernel) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(softhist, CompositeExplicitAutograd, m) {
  m.impl("params", TORCH_BOX(&params_no_kernel));
  m.impl("scatter", TORCH_BOX(&scatter_no_kernel));
  m.impl("gather", TORCH_BOX(&gather_no_kernel));
  m.impl("scatter2d", TORCH_BOX(&scatter2d_no_kernel));
  m.impl("gather2d", TORCH_BOX(&gather2d_no_kernel));
}

}  // namespace softhist
