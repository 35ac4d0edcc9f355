// CUDA joint gather (bins_x x bins_y -> sample pairs): out_i = factor *
// sum_{a,b} hist[a, b] * D_order_x(x_i, a) * D_order_y(y_i, b). Smooth kernels:
// each warp walks one pair's joint window at a time, a bin per lane
// (pair_window.cuh), and adds the lanes' sums in a fixed order; the histogram
// row is held in shared memory when it fits. No atomics, so results are
// reproducible. The hard kernel: a pair per thread, reading its one bin.
#include <torch/csrc/stable/ops.h>

#include "device_params.cuh"
#include "hist_row.cuh"
#include "launch.cuh"
#include "ops_cuda.h"
#include "pair_window.cuh"
#include "reduce.cuh"

namespace softhist::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
struct Gather2dArgs {
  const T* x;
  const T* y;
  const T* hist;  // [rows, bins_x, bins_y]
  const double* params_x;
  const double* params_y;
  int order_x, order_y;
  bool explicit_edges;  // params rows hold the edges
  bool at_x, at_y;      // an axis at its edges: its slots are its bins + 1 edges
  int64_t n, bins_x, bins_y, chunks, items;  // bins_x, bins_y: the slots
  T* out;
};

// Pairs [begin, end) of one row, smooth kernel K. A pair that reaches no bin
// gets exactly 0 (even where the histogram holds NaN or inf).
template <Kernel K, typename T, typename C, typename Hist>
__device__ void gather_smooth_pairs(const Gather2dArgs<T>& a, const PairWindow<K, C, T>& pw,
                                    const Hist& h, double factor, int64_t begin, int64_t end,
                                    C* stage) {
  const int lane = threadIdx.x % 32;
  const BinRect all{0, a.bins_x, 0, a.bins_y};
  for (int64_t base = begin + threadIdx.x / 32 * 32; base < end; base += blockDim.x) {
    const int64_t i = base + lane;
    const LocatedPair<C> mine = pw.locate(a.x, a.y, static_cast<const T*>(nullptr), i, end);
    double result = 0;
    for (unsigned todo = __ballot_sync(kFullWarp, mine.scale != 0); todo != 0;
         todo &= todo - 1) {
      const int src = __ffs(todo) - 1;
      const LocatedPair<C> p = pw.broadcast(mine, src);
      C acc = 0;  // in C, as the CPU's per-column sums
      pw.for_each_bin(p, all, stage, [&](int64_t ia, int64_t ib, C dx, C dy) {
        acc += h[ia * a.bins_y + ib] * (dy * dx);
      });
      const double total = warp_sum(static_cast<double>(acc));
      if (lane == src) result = total * factor;
    }
    if (i < end) a.out[i] = static_cast<T>(result);
  }
}

// Pairs [begin, end) of one row, hard kernel: the histogram at the pair's bin,
// 0 outside the range.
template <typename T, typename C, typename Hist>
__device__ void gather_hard_pairs(const Gather2dArgs<T>& a, const Window& wx, const Window& wy,
                                  const Hist& h, int64_t begin, int64_t end) {
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    int64_t ia = 0, ib = 0;
    const bool in = wx.bin_of<HistcMath<T>>(static_cast<double>(a.x[i]), ia) &&
                    wy.bin_of<HistcMath<T>>(static_cast<double>(a.y[i]), ib);
    a.out[i] = static_cast<T>(in ? h[ia * a.bins_y + ib] : C(0));
  }
}

// Work item: chunk (item % chunks) of row (item / chunks).
template <Kernel K, typename T, typename C, bool SharedHist>
__global__ void __launch_bounds__(kThreads) gather2d_pairs(Gather2dArgs<T> a) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  C* shared_hist = reinterpret_cast<C*>(shared_bytes);
  __shared__ C stage[kThreads];  // 32 per warp
  const PairWindow<K, C, T> pw(a.params_x, a.bins_x - a.at_x, a.order_x, a.params_y,
                               a.bins_y - a.at_y, a.order_y, a.explicit_edges, a.at_x, a.at_y);
  const double factor = kappa_power(a.params_x, a.order_x) * kappa_power(a.params_y, a.order_y);
  const int64_t bins = a.bins_x * a.bins_y;
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t row = item / a.chunks, chunk = item % a.chunks;
    const T* hist_row = a.hist + row * bins;
    if constexpr (SharedHist) load_hist_row(hist_row, bins, shared_hist);
    const HistRow<T, C, SharedHist> h{shared_hist, hist_row};
    const int64_t begin = row * a.n + a.n * chunk / a.chunks;
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    if constexpr (K == Kernel::Hard)
      gather_hard_pairs<T, C>(a, pw.wx, pw.wy, h, begin, end);
    else
      gather_smooth_pairs(a, pw, h, factor, begin, end, stage + threadIdx.x / 32 * 32);
    if constexpr (SharedHist) __syncthreads();  // the next item overwrites shared_hist
  }
}

}  // namespace

void gather_2d(const GatherJob& job) {
  const Tensor &x = job.coords[0], &y = job.coords[1];
  const int64_t n = job.pb.n, rows = job.pb.rows;
  const int64_t bins_x = job.slots(0), bins_y = job.slots(1), bins = bins_x * bins_y;
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const GatherSplit split = GatherSplit::of<C>(n, bins);
    const Gather2dArgs<T> args{x.const_data_ptr<T>(),
                               y.const_data_ptr<T>(),
                               job.hist.const_data_ptr<T>(),
                               job.params_of(0),
                               job.params_of(1),
                               static_cast<int>(job.pb.orders[0]),
                               static_cast<int>(job.pb.orders[1]),
                               job.explicit_edges(),
                               job.pb.at_edges[0],
                               job.pb.at_edges[1],
                               n,
                               bins_x,
                               bins_y,
                               split.chunks,
                               rows * split.chunks,
                               job.out.mutable_data_ptr<T>()};
    // The orders are run-time arguments of the kernels (see cdf_of_order).
    dispatch_kernel(job.kernel, 0, [&](auto k, auto) {
      const auto kernel_of = [](auto shared) {
        return gather2d_pairs<decltype(k)::value, T, C, decltype(shared)::value>;
      };
      launch_gather(split, kernel_of, args.items, kThreads, job.stream, args);
    });
  });
}

}  // namespace softhist::cuda
