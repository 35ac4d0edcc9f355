// CUDA gather (bins -> samples): one thread per sample, each reading the bins
// of its window from the row's histogram, held in shared memory when it fits.
// No atomics, so results are reproducible; the arithmetic is the CPU's.
#include <torch/csrc/stable/ops.h>

#include "device_params.cuh"
#include "hist_row.cuh"
#include "launch.cuh"
#include "ops_cuda.h"

namespace softhist::cuda {
namespace {

constexpr int kThreads = 256;

// out_i = factor * sum_b h_b * D_Order(x_i, b), as the CPU computes it; a
// sample that reaches no bin gets exactly 0 (even where h holds NaN or inf).
template <Kernel K, int Order, typename T, typename C, typename Hist>
__device__ T gather_one(const Window& win, double x, const Hist& h, double factor) {
  if constexpr (K == Kernel::Hard) {
    int64_t b = 0;
    return static_cast<T>(win.bin_of<HistcMath<T>>(x, b) ? h[b] : C(0));
  } else {
    int64_t first = 0;
    double t = 0;
    if (!win.locate(x, first, t)) return T(0);
    const C t_first = static_cast<C>(t), c = static_cast<C>(win.c);
    C prev = win.at_edge(first, Order, cdf<K, Order>(t_first)), acc = 0;
    for (int64_t k = 1; k < win.edges; ++k) {
      const C cur = win.at_edge(first + k, Order, cdf<K, Order>(t_first - c * static_cast<C>(k)));
      acc += h[first + k - 1] * (prev - cur);
      prev = cur;
    }
    return static_cast<T>(static_cast<double>(acc) * factor);
  }
}

template <typename T>
struct GatherArgs {
  const T* x;
  const T* hist;
  const double* params;
  int64_t n, bins, chunks, items;
  T* out;
};

// Work item: chunk (item % chunks) of row (item / chunks).
template <Kernel K, int Order, typename T, typename C, bool SharedHist>
__global__ void __launch_bounds__(kThreads) gather_samples(GatherArgs<T> a) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  C* shared_hist = reinterpret_cast<C*>(shared_bytes);
  const Window win = window_of<K, C, T>(a.params, a.bins);
  const double factor = kappa_power(a.params, Order);
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t row = item / a.chunks, chunk = item % a.chunks;
    const T* hist_row = a.hist + row * a.bins;
    if constexpr (SharedHist) load_hist_row(hist_row, a.bins, shared_hist);
    const HistRow<T, C, SharedHist> h{shared_hist, hist_row};
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    for (int64_t i = row * a.n + a.n * chunk / a.chunks + threadIdx.x; i < end; i += blockDim.x)
      a.out[i] = gather_one<K, Order, T, C>(win, static_cast<double>(a.x[i]), h, factor);
    if constexpr (SharedHist) __syncthreads();  // the next item overwrites shared_hist
  }
}

}  // namespace

void gather_1d(const GatherJob& job) {
  const Tensor& x = job.coords[0];
  const int64_t n = job.pb.n, rows = job.pb.rows, bins = job.pb.bins[0];
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const GatherSplit split = GatherSplit::of<C>(n, bins);
    const GatherArgs<T> args{x.const_data_ptr<T>(), job.hist.const_data_ptr<T>(),
                             job.params_of(0), n, bins, split.chunks, rows * split.chunks,
                             job.out.mutable_data_ptr<T>()};
    dispatch_kernel(job.kernel, job.pb.orders[0], [&](auto k, auto ord) {
      const auto kernel_of = [](auto shared) {
        return gather_samples<decltype(k)::value, decltype(ord)::value, T, C,
                              decltype(shared)::value>;
      };
      launch_gather(split, kernel_of, args.items, kThreads, job.stream, args);
    });
  });
}

}  // namespace softhist::cuda
