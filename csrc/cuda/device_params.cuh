// The float64 params [lo, hi, kappa, open] (a row per axis) as kernels read them: on the device, so a
// range taken from the data never comes back to the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "../kernels.h"
#include "../ops.h"

namespace softhist::cuda {

// The type torch.histc on CUDA computes a sample's bin in (its accumulation
// type): the hard kernel does the same, so that it counts as torch.histc does.
template <typename T>
using HistcMath = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <Kernel K, typename C, typename T>
__device__ Window window_of(const double* params, int64_t bins) {
  return Window::make<C, T>(K, params[0], params[1], params[2], bins, params[3] != 0);
}

// One axis's window over explicit edges (params: a row, then the bins + 1
// edges), as the CPU's explicit_window makes it but without its index:
// samples find their first edge by binary search. The window's length, the
// most edges any [e_j, e_j + 2 reach] holds plus two, is found by the whole
// block together: every thread of the block must call this (once per axis).
template <Kernel K, typename C, typename T>
__device__ Window explicit_window_of(const double* params, int64_t bins) {
  __shared__ int most;
  Window w = Window::make_explicit<C, T>(K, params, bins);
  if (threadIdx.x == 0) most = 1;
  __syncthreads();
  int local = 1;
  for (int64_t j = threadIdx.x; j <= bins; j += blockDim.x) {
    int64_t lo = j, hi = bins + 1;  // the first edge past at[j] + 2 reach
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (w.at[mid] <= w.at[j] + 2 * w.reach) lo = mid + 1; else hi = mid;
    }
    local = max(local, static_cast<int>(lo - j));
  }
  atomicMax(&most, local);
  __syncthreads();
  w.edges = min(static_cast<int64_t>(most) + 2, bins + 1);
  __syncthreads();  // before another axis's call resets most
  return w;
}

// The window of a one-axis op: even bins, or explicit edges (every thread of
// the block must call this then).
template <Kernel K, typename C, typename T>
__device__ Window window_1d(const double* params, int64_t bins, bool explicit_edges) {
  return explicit_edges ? explicit_window_of<K, C, T>(params, bins) : window_of<K, C, T>(params, bins);
}

// kappa^order, the chain-rule factor of D_order: std::pow's value on the CPU
// for order <= 1, within an ulp of it above.
__device__ __forceinline__ double kappa_power(const double* params, int order) {
  double factor = 1;
  for (int i = 0; i < order; ++i) factor *= params[2];
  return factor;
}

// The chain-rule factor of a result built from D_orders[a] on each axis a:
// the product of kappa_a^orders[a], in axis order, for params of a row of
// `row` values per axis. (1 * f_x for one axis and (1 * f_x) * f_y for two:
// the bits of kappa_power(x) and kappa_power(x) * kappa_power(y).)
struct OrderFactor {
  const double* params;
  int64_t row;
  int axes;
  int orders[kMaxAxes];

  static OrderFactor of(const double* params, int64_t row, const std::vector<int64_t>& orders) {
    OrderFactor f{params, row, static_cast<int>(orders.size()), {}};
    for (int a = 0; a < f.axes; ++a) f.orders[a] = static_cast<int>(orders[a]);
    return f;
  }
  __device__ double value() const {
    double factor = 1;
    for (int a = 0; a < axes; ++a) factor *= kappa_power(params + a * row, orders[a]);
    return factor;
  }
};

}  // namespace softhist::cuda
