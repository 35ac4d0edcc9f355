// The chunk partials of the scatter kernels and their merge. Each row is split
// into a number of chunks that depends only on the sizes; a block sums a chunk
// (into one tile of bins at a time) and writes it as float64 partials; the
// merge adds each bin's partials in a fixed order, so the result never depends
// on scheduling.
#pragma once

#include <cuda_runtime.h>

#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "device_params.cuh"
#include "fixed_point.cuh"
#include "launch.cuh"
#include "ops_cuda.h"

namespace softhist::cuda {

constexpr int64_t kMinChunk = 16384;                  // samples per block, at least
constexpr int64_t kMaxChunks = 4096;                  // over all rows, unless rows > this
constexpr int64_t kPartialBudget = int64_t(1) << 23;  // float64 partials (64 MB)

// out[row, bin] = factor * sum over chunks of partial[row, chunk, bin], added in
// a fixed order: lane = bin, warp = slice of chunks (chunk % warps), then the
// slices in order.
template <typename T>
__global__ void __launch_bounds__(1024)
    sum_partials(const double* partial, const unsigned* nonfinite, OrderFactor order_factor,
                 int64_t rows, int64_t chunks, int64_t bins, T* out) {
  __shared__ double slice_sums[32][33];
  const int lane = threadIdx.x % 32, slice = threadIdx.x / 32, slices = blockDim.x / 32;
  const double factor = order_factor.value();
  const int64_t groups = ceil_div(bins, 32);
  for (int64_t item = blockIdx.x; item < rows * groups; item += gridDim.x) {
    const int64_t row = item / groups, bin = item % groups * 32 + lane;
    double sum = 0;
    if (bin < bins)
      for (int64_t chunk = slice; chunk < chunks; chunk += slices)
        sum += partial[(row * chunks + chunk) * bins + bin];
    slice_sums[slice][lane] = sum;
    __syncthreads();
    if (slice == 0 && bin < bins) {
      double total = slice_sums[0][lane];
      for (int j = 1; j < slices; ++j) total += slice_sums[j][lane];
      total = with_nonfinite(total, nonfinite[row * bins + bin]);
      out[row * bins + bin] = static_cast<T>(total * factor);
    }
    __syncthreads();
  }
}

// The float64 partials [rows, chunks, bins] of a scatter, and the non-finite
// flags [rows, bins] its blocks raise (zeroed on the stream).
class ChunkPartials {
 public:
  ChunkPartials(const Tensor& like, int64_t n, int64_t rows, int64_t bins, cudaStream_t stream)
      : rows_(rows), bins_(bins), chunks_(chunks_per_row(n, rows, bins)),
        partial_(torch::stable::empty({rows * chunks_ * bins}, ScalarType::Double, std::nullopt,
                                      like.device())),
        flags_(torch::stable::empty({rows * bins}, ScalarType::Int, std::nullopt, like.device())) {
    STD_CUDA_CHECK(cudaMemsetAsync(flags_.mutable_data_ptr(), 0,
                                   sizeof(unsigned) * rows * bins, stream));
  }

  int64_t chunks() const { return chunks_; }
  double* partial() const { return partial_.mutable_data_ptr<double>(); }
  unsigned* flags() const { return static_cast<unsigned*>(flags_.mutable_data_ptr()); }

  // The job's output: the merged partials times prod kappa_a^order_a.
  template <typename T>
  void merge_into(const ScatterJob& job) const {
    const int64_t slices = std::min<int64_t>(chunks_, 32);
    launch(sum_partials<T>, rows_ * ceil_div(bins_, 32), static_cast<int>(32 * slices), 0,
           job.stream, static_cast<const double*>(partial()),
           static_cast<const unsigned*>(flags()),
           OrderFactor::of(job.params_of(0), job.params_row(), job.pb.orders), rows_, chunks_, bins_,
           job.out.mutable_data_ptr<T>());
  }

 private:
  // Chunks per row, from the sizes alone so the sums' grouping never changes.
  static int64_t chunks_per_row(int64_t n, int64_t rows, int64_t bins) {
    const int64_t by_length = ceil_div(n, kMinChunk);
    const int64_t by_blocks = std::max<int64_t>(1, kMaxChunks / rows);
    const int64_t by_memory = std::max<int64_t>(1, kPartialBudget / (rows * bins));
    return std::max<int64_t>(1, std::min({by_length, by_blocks, by_memory}));
  }

  int64_t rows_, bins_, chunks_;
  Tensor partial_, flags_;
};

}  // namespace softhist::cuda
