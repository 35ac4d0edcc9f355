// CUDA `params`: [lo, hi, kappa, open] written by kernels, never copied from the
// host, so the op neither synchronises nor breaks CUDA-graph capture.
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/ops.h>

#include <limits>

#include "device_params.cuh"
#include "launch.cuh"
#include "ops_cuda.h"
#include "reduce.cuh"

namespace softhist::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxRangeBlocks = 1024;

__global__ void write_params(RangeArgs a, double* out) {
  resolve_range(a, 1.0, 0.0, out);
}

// Each block's finite min and max of x, as ranges[2 * block + {0, 1}].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    finite_range_per_block(const T* x, int64_t n, double* ranges) {
  __shared__ double scratch[kThreads / 32];
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double v = static_cast<double>(x[i]);
    if (isfinite(v)) {
      lo = fmin(lo, v);
      hi = fmax(hi, v);
    }
  }
  lo = block_reduce(lo, Min{}, scratch);
  hi = block_reduce(hi, Max{}, scratch);
  if (threadIdx.x == 0) {
    ranges[2 * blockIdx.x] = lo;
    ranges[2 * blockIdx.x + 1] = hi;
  }
}

__global__ void __launch_bounds__(kThreads)
    resolve_from_ranges(const double* ranges, int64_t blocks, RangeArgs a, double* out) {
  __shared__ double scratch[kThreads / 32];
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) {
    lo = fmin(lo, ranges[2 * b]);
    hi = fmax(hi, ranges[2 * b + 1]);
  }
  lo = block_reduce(lo, Min{}, scratch);
  hi = block_reduce(hi, Max{}, scratch);
  if (threadIdx.x == 0) resolve_range(a, lo, hi, out);
}

}  // namespace

Tensor params_cuda(const Tensor& input, int64_t bins, double min, double max,
                   std::optional<double> kappa, std::string kernel_name, bool conserve_mass) {
  const RangeArgs args =
      range_args(input, bins, min, max, kappa, parse_kernel(kernel_name), conserve_mass);
  const torch::stable::accelerator::DeviceGuard guard(input.get_device_index());
  const cudaStream_t stream = current_stream(input.get_device_index());
  Tensor out = torch::stable::empty({kParamsSize}, ScalarType::Double, std::nullopt,
                                    input.device());
  double* o = out.mutable_data_ptr<double>();
  if (min != max || input.numel() == 0) {
    launch(write_params, 1, 1, 0, stream, args, o);
    return out;
  }
  const Tensor x = torch::stable::contiguous(input);
  const int64_t n = x.numel();
  const int64_t blocks = std::min(ceil_div(n, 8 * kThreads), kMaxRangeBlocks);
  Tensor ranges = torch::stable::empty({2 * blocks}, ScalarType::Double, std::nullopt, x.device());
  double* r = ranges.mutable_data_ptr<double>();
  dispatch_float(x.scalar_type(), [&](auto tag, auto) {
    using T = decltype(tag);
    launch(finite_range_per_block<T>, blocks, kThreads, 0, stream, x.const_data_ptr<T>(), n, r);
  });
  launch(resolve_from_ranges, 1, kThreads, 0, stream, static_cast<const double*>(r), blocks,
         args, o);
  return out;
}

}  // namespace softhist::cuda
