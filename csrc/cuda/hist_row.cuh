// A row of a histogram as the gather kernels read it, in the compute type C:
// a copy in shared memory when it fits, else the tensor itself, converted as
// it is read.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "launch.cuh"

namespace softhist::cuda {

// How a gather splits each row's samples: the row's histogram in shared
// memory when it fits, and blocks of enough samples to amortise loading it.
// The one definition for every number of axes.
constexpr size_t kHistSharedBytes = 64 * 1024;
constexpr int64_t kMinSamplesPerBlock = 4096;

struct GatherSplit {
  bool shared;        // the histogram row fits in shared memory
  size_t hist_bytes;  // its size there
  int64_t chunks;     // blocks per row

  template <typename C>
  static GatherSplit of(int64_t n, int64_t bins) {
    GatherSplit s;
    s.hist_bytes = sizeof(C) * bins;
    s.shared = s.hist_bytes <= kHistSharedBytes;
    const int64_t per_block =
        s.shared ? std::max(kMinSamplesPerBlock, 2 * bins) : kMinSamplesPerBlock;
    s.chunks = (n + per_block - 1) / per_block;
    return s;
  }
};

// Launches kernel_of(std::bool_constant<split.shared>{}), a gather kernel
// instantiated with or without its histogram row in shared memory.
template <typename KernelOf, typename Args>
void launch_gather(const GatherSplit& split, const KernelOf& kernel_of, int64_t items,
                   int threads, cudaStream_t stream, const Args& args) {
  if (split.shared)
    launch(kernel_of(std::true_type{}), items, threads, split.hist_bytes, stream, args);
  else
    launch(kernel_of(std::false_type{}), items, threads, 0, stream, args);
}

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
