// A row of a histogram as the gather kernels read it, in the compute type C:
// a copy in shared memory when it fits, else the tensor itself, converted as
// it is read.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace softhist::cuda {

template <typename T, typename C, bool Shared>
struct HistRow {
  const C* shared;
  const T* global;
  __device__ C operator[](int64_t b) const {
    if constexpr (Shared) return shared[b];
    else return static_cast<C>(global[b]);
  }
};

// Copies global[0, count) into shared as C, then waits for the whole block.
template <typename T, typename C>
__device__ void load_hist_row(const T* global, int64_t count, C* shared) {
  for (int64_t b = threadIdx.x; b < count; b += blockDim.x) shared[b] = static_cast<C>(global[b]);
  __syncthreads();
}

}  // namespace softhist::cuda
