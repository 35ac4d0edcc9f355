// CUDA `params`: [lo, hi, kappa] written by kernels, never copied from the
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

// What resolve() needs besides the data range, for a range taken from the data.
struct DataRangeArgs {
  double point;       // min == max
  int64_t bins;
  bool has_kappa;
  double unit_kappa;  // kappa if given, else the default kappa * bin width
};

__global__ void write_params(double lo, double hi, double kappa, double* out) {
  out[0] = lo;
  out[1] = hi;
  out[2] = kappa;
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

// resolve() of ../ops.cpp for min == max, from the data's finite range.
// Where resolve() raises, for a range it can't split into `bins` bins (its
// span overflows float64, or its bins are too narrow to represent), the CPU op
// fails; here that would need a host sync, so the range is widened instead:
// clipped to +-2^1022 when its span overflows, and widened about its midpoint
// to bins of 2^-50 of its magnitude when they are too narrow (torch.histc
// counts such data without complaint).
__device__ void resolve_data_range(double data_lo, double data_hi, const DataRangeArgs& a,
                                   double* out) {
  double lo = a.point, hi = a.point;
  if (data_lo <= data_hi) {
    lo = data_lo;
    hi = data_hi;
  }
  if (lo == hi) {
    lo -= 1;
    hi += 1;
  }
  const double bins = static_cast<double>(a.bins);
  if (!isfinite((hi - lo) / bins)) {
    lo = fmax(lo, -0x1p1022);
    hi = fmin(hi, 0x1p1022);
  }
  double width = (hi - lo) / bins;
  if (!(width > 0 && lo + width > lo && hi - width < hi)) {
    const double mid = 0.5 * lo + 0.5 * hi;
    const double magnitude = fmax(fabs(lo), fabs(hi));
    const double half_span = 0.5 * bins * fmax(magnitude * 0x1p-50, 0x1p-1022);
    lo = mid - half_span;
    hi = mid + half_span;
    width = (hi - lo) / bins;
  }
  out[0] = lo;
  out[1] = hi;
  out[2] = a.has_kappa ? a.unit_kappa : a.unit_kappa / width;
}

__global__ void __launch_bounds__(kThreads)
    resolve_from_ranges(const double* ranges, int64_t blocks, DataRangeArgs a, double* out) {
  __shared__ double scratch[kThreads / 32];
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) {
    lo = fmin(lo, ranges[2 * b]);
    hi = fmax(hi, ranges[2 * b + 1]);
  }
  lo = block_reduce(lo, Min{}, scratch);
  hi = block_reduce(hi, Max{}, scratch);
  if (threadIdx.x == 0) resolve_data_range(lo, hi, a, out);
}

}  // namespace

Tensor params_cuda(const Tensor& input, int64_t bins, double min, double max,
                   std::optional<double> kappa, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_input(input);
  check_histc_args(bins, min, max, kappa);
  const torch::stable::accelerator::DeviceGuard guard(input.get_device_index());
  const cudaStream_t stream = current_stream(input.get_device_index());
  Tensor out = torch::stable::empty({3}, ScalarType::Double, std::nullopt, input.device());
  double* o = out.mutable_data_ptr<double>();
  if (min != max || input.numel() == 0) {
    const double none = std::numeric_limits<double>::infinity();
    const Resolved r = resolve(kernel, bins, min, max, kappa, none, -none);
    launch(write_params, 1, 1, 0, stream, r.lo, r.hi, r.kappa, o);
    return out;
  }
  // resolve() over one bin of width 1 gives kappa when given, else the
  // default kappa * bin width.
  const DataRangeArgs args{min, bins, kappa.has_value(),
                           resolve(kernel, 1, 0.0, 1.0, kappa, 0.0, 0.0).kappa};
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
