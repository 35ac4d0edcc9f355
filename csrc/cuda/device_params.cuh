// The float64 params [lo, hi, kappa, open] as kernels read them: on the device, so a
// range taken from the data never comes back to the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "../kernels.h"

namespace softhist::cuda {

// The type torch.histc on CUDA computes a sample's bin in (its accumulation
// type): the hard kernel does the same, so that it counts as torch.histc does.
template <typename T>
using HistcMath = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <Kernel K, typename C, typename T>
__device__ Window window_of(const double* params, int64_t bins) {
  return Window::make<C, T>(K, params[0], params[1], params[2], bins, params[3] != 0);
}

// kappa^order, the chain-rule factor of D_order: std::pow's value on the CPU
// for order <= 1, within an ulp of it above.
__device__ __forceinline__ double kappa_power(const double* params, int order) {
  double factor = 1;
  for (int i = 0; i < order; ++i) factor *= params[2];
  return factor;
}

// The chain-rule factor of a result built from D_order_x in x and D_order_y in
// y: kappa_x^order_x * kappa_y^order_y, or kappa_x^order_x alone for the 1-d
// ops (params_y null).
struct OrderFactor {
  const double* params_x;
  int order_x;
  const double* params_y;
  int order_y;

  __device__ double value() const {
    const double fx = kappa_power(params_x, order_x);
    return params_y ? fx * kappa_power(params_y, order_y) : fx;
  }
};

}  // namespace softhist::cuda
