// Warp and block reductions that are reproducible run to run: integer sums,
// min and max don't depend on the order of the operations, and the float sum
// adds in a fixed order. Blocks are whole warps.
#pragma once

#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

namespace softhist::cuda {

constexpr unsigned kFullWarp = 0xffffffffu;

struct Min {
  __device__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct Max {
  __device__ double operator()(double a, double b) const { return fmax(a, b); }
};

__device__ __forceinline__ long long warp_sum(long long v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

// The sum over the warp by a fixed butterfly: each step adds the same two
// values in both lanes of a pair, so every lane ends with the same bits.
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

// op over the whole block, in every thread; scratch holds a double per warp.
template <typename Op>
__device__ double block_reduce(double v, Op op, double* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(kFullWarp, v, offset));
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) v = op(v, scratch[w]);
  __syncthreads();  // scratch may be reused
  return v;
}

// The largest finite |v[i]| over [begin, end), 0 when there is none.
template <typename T>
__device__ double block_max_abs_finite(const T* v, int64_t begin, int64_t end,
                                       double* scratch) {
  double m = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double a = fabs(static_cast<double>(v[i]));
    if (a <= DBL_MAX) m = fmax(m, a);  // false for inf and NaN
  }
  return block_reduce(m, Max{}, scratch);
}

}  // namespace softhist::cuda
