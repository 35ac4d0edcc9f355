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
// Edges: the adjoint of the edge sums, factor * sum_j h_j * K^(Order)(x_i - e_j).
template <Kernel K, int Order, bool Edges, typename T, typename C, typename Hist>
__device__ T gather_one(const Window& win, double x, const Hist& h, double factor) {
  if constexpr (K == Kernel::Hard) {
    int64_t b = 0;
    return static_cast<T>(win.bin_of<HistcMath<T>>(x, b) ? h[b] : C(0));
  } else {
    int64_t first = 0;
    double t = 0;
    if (!win.locate_any(x, first, t)) return T(0);
    const C t_first = static_cast<C>(t);
    const auto value = [&](int64_t k) {  // K^(Order) at the window's edge k
      return win.at_edge(first + k, Order, cdf<K, Order>(win.t_at(first, k, t_first, x)));
    };
    C acc = 0;
    if constexpr (Edges) {
      for (int64_t k = 0; k < win.edges; ++k) acc += h[first + k] * value(k);
    } else {
      C prev = value(0);
      for (int64_t k = 1; k < win.edges; ++k) {
        const C cur = value(k);
        acc += h[first + k - 1] * (prev - cur);
        prev = cur;
      }
    }
    return static_cast<T>(static_cast<double>(acc) * factor);
  }
}

// slots: hist's values per row, bins (or bins + 1 for the edge sums).
template <typename T>
struct GatherArgs {
  const T* x;
  const T* hist;
  const double* params;
  int64_t n, bins, slots, chunks, items;
  bool explicit_edges;  // params holds the edges (one axis)
  T* out;
};

// Work item: chunk (item % chunks) of row (item / chunks).
template <Kernel K, int Order, bool Edges, typename T, typename C, bool SharedHist>
__global__ void __launch_bounds__(kThreads) gather_samples(GatherArgs<T> a) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  C* shared_hist = reinterpret_cast<C*>(shared_bytes);
  const Window win = window_1d<K, C, T>(a.params, a.bins, a.explicit_edges);
  const double factor = kappa_power(a.params, Order);
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t row = item / a.chunks, chunk = item % a.chunks;
    const T* hist_row = a.hist + row * a.slots;
    if constexpr (SharedHist) load_hist_row(hist_row, a.slots, shared_hist);
    const HistRow<T, C, SharedHist> h{shared_hist, hist_row};
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    for (int64_t i = row * a.n + a.n * chunk / a.chunks + threadIdx.x; i < end; i += blockDim.x)
      a.out[i] = gather_one<K, Order, Edges, T, C>(win, static_cast<double>(a.x[i]), h, factor);
    if constexpr (SharedHist) __syncthreads();  // the next item overwrites shared_hist
  }
}

template <bool Edges>
void gather_axis(const GatherJob& job) {
  const Tensor& x = job.coords[0];
  const int64_t n = job.pb.n, rows = job.pb.rows, bins = job.pb.bins[0], slots = bins + Edges;
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const GatherSplit split = GatherSplit::of<C>(n, slots);
    const GatherArgs<T> args{x.const_data_ptr<T>(), job.hist.const_data_ptr<T>(),
                             job.params_of(0), n, bins, slots, split.chunks, rows * split.chunks,
                             job.explicit_edges(), job.out.mutable_data_ptr<T>()};
    const auto run = [&](auto k, auto ord) {
      const auto kernel_of = [](auto shared) {
        return gather_samples<decltype(k)::value, decltype(ord)::value, Edges, T, C,
                              decltype(shared)::value>;
      };
      launch_gather(split, kernel_of, args.items, kThreads, job.stream, args);
    };
    if constexpr (Edges)
      dispatch_smooth(job.kernel, job.pb.orders[0], run);
    else
      dispatch_kernel(job.kernel, job.pb.orders[0], run);
  });
}

}  // namespace

void gather_1d(const GatherJob& job) { gather_axis<false>(job); }
void edge_gather_1d(const GatherJob& job) { gather_axis<true>(job); }

}  // namespace softhist::cuda
