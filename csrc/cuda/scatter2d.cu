// CUDA joint scatter (sample pairs -> bins_x x bins_y), bitwise reproducible
// as the 1-d scatter is (scatter.cu): rows split into chunks, the joint bins
// into rectangular tiles that fit in shared memory; a block sums one chunk into
// one tile in 64-bit fixed point, and the chunk partials are merged in a fixed
// order (partials.cuh). Smooth kernels: each warp walks one pair's joint
// window at a time, a bin per lane (pair_window.cuh). The hard kernel: a pair
// per lane, one bin each.
#include <torch/csrc/stable/ops.h>

#include "device_params.cuh"
#include "fixed_point.cuh"
#include "launch.cuh"
#include "ops_cuda.h"
#include "pair_window.cuh"
#include "partials.cuh"
#include "reduce.cuh"

namespace softhist::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kTileBins = 8192;  // 64 KB of counters per block

// The tiles: tile_rows x tile_cols bins each (fewer at the last row and
// column of tiles), whole rows of bins when bins_y allows.
struct TileGrid {
  int64_t bins_x, bins_y, rows, cols;

  static TileGrid of(int64_t bins_x, int64_t bins_y) {
    const int64_t cols = std::min(bins_y, kTileBins);
    return {bins_x, bins_y, std::min(bins_x, kTileBins / cols), cols};
  }
  __host__ __device__ int64_t across() const { return ceil_div(bins_y, cols); }
  __host__ __device__ int64_t count() const { return ceil_div(bins_x, rows) * across(); }
  __device__ BinRect rect(int64_t tile) const {
    const int64_t ax0 = tile / across() * rows, by0 = tile % across() * cols;
    return {ax0, min(ax0 + rows, bins_x), by0, min(by0 + cols, bins_y)};
  }
};

template <typename T>
struct Scatter2dArgs {
  const T* x;
  const T* y;
  const T* weight;  // nullptr: every weight is 1
  const double* params_x;
  const double* params_y;
  int order_x, order_y;
  bool explicit_edges;  // params rows hold the edges
  bool at_x, at_y;      // an axis at its edges: its slots are its bins + 1 edges
  int64_t n, chunks, items;
  TileGrid grid;        // over the slots
  double* partial;      // [rows, chunks, bins_x * bins_y]
  unsigned* nonfinite;  // [rows, bins_x * bins_y], zeroed
};

// One tile's counters: slot (a - ax0) * width + (b - by0) for bin (a, b).
struct TileCounters {
  SharedCounters counters;
  BinRect r;

  __device__ int64_t width() const { return r.by1 - r.by0; }
  __device__ int64_t slots() const { return (r.ax1 - r.ax0) * width(); }
  __device__ int64_t slot(int64_t a, int64_t b) const { return (a - r.ax0) * width() + b - r.by0; }
  __device__ bool holds(int64_t a, int64_t b) const {
    return a >= r.ax0 && a < r.ax1 && b >= r.by0 && b < r.by1;
  }
};

// Pairs [begin, end) of one row, smooth kernel K, into the tile.
template <Kernel K, typename T, typename C>
__device__ void scatter_smooth_pairs(const Scatter2dArgs<T>& a, const PairWindow<K, C, T>& pw,
                                     int64_t begin, int64_t end, const TileCounters& tile,
                                     const FixedPoint& fixed, unsigned* flags, C* stage) {
  const int lane = threadIdx.x % 32;
  const int64_t bins_y = a.grid.bins_y;
  for (int64_t base = begin + threadIdx.x / 32 * 32; base < end; base += blockDim.x) {
    const LocatedPair<C> mine = pw.locate(a.x, a.y, a.weight, base + lane, end);
    // Zero weights add nothing, as on the CPU (NaN ones do).
    const bool adds = mine.scale != 0 && pw.meets(mine, tile.r);
    for (unsigned todo = __ballot_sync(kFullWarp, adds); todo != 0; todo &= todo - 1) {
      const LocatedPair<C> p = pw.broadcast(mine, __ffs(todo) - 1);
      pw.for_each_bin(p, tile.r, stage, [&](int64_t ia, int64_t ib, C dx, C dy) {
        // The CPU's product: (weight * dx) * dy in double; 0 where a mass is
        // (a NaN or infinite weight reaches no bin past the support or cut).
        const double d = dx == C(0) || dy == C(0)
                             ? 0.0
                             : p.scale * static_cast<double>(dx) * static_cast<double>(dy);
        tile.counters.add(tile.slot(ia, ib), quantise_or_flag(fixed, d, flags + ia * bins_y + ib));
      });
    }
  }
}

// Pairs [begin, end) of one row, hard kernel: the weight in the bin
// torch.histc would count each coordinate in.
template <typename T>
__device__ void scatter_hard_pairs(const Scatter2dArgs<T>& a, const Window& wx,
                                   const Window& wy, int64_t begin, int64_t end,
                                   const TileCounters& tile, const FixedPoint& fixed,
                                   unsigned* flags) {
  const int lane = threadIdx.x % 32;
  for (int64_t base = begin + threadIdx.x / 32 * 32; base < end; base += blockDim.x) {
    const int64_t i = base + lane;
    int64_t ia = 0, ib = 0;
    const bool in = i < end && wx.bin_of<HistcMath<T>>(static_cast<double>(a.x[i]), ia) &&
                    wy.bin_of<HistcMath<T>>(static_cast<double>(a.y[i]), ib) && tile.holds(ia, ib);
    if (a.weight) {
      if (in) {
        const double w = static_cast<double>(a.weight[i]);
        tile.counters.add(tile.slot(ia, ib),
                          quantise_or_flag(fixed, w, flags + ia * a.grid.bins_y + ib));
      }
    } else {
      // Unit weights: the lanes with the same bin add their count at once
      // (concentrated data would otherwise serialise on one counter).
      const long long key = in ? tile.slot(ia, ib) : -1;
      const unsigned same = __match_any_sync(kFullWarp, key);
      if (in && lane == __ffs(same) - 1)
        tile.counters.add(key, __popc(same) * fixed.quantise(1.0));
    }
  }
}

// Work item: tile (item % tiles) of chunk (item / tiles % chunks) of row
// (item / tiles / chunks).
template <Kernel K, typename T, typename C>
__global__ void __launch_bounds__(kThreads) scatter2d_partials(Scatter2dArgs<T> a) {
  extern __shared__ unsigned words[];
  __shared__ double scratch[kThreads / 32];
  __shared__ C stage[kThreads];  // 32 per warp
  const PairWindow<K, C, T> pw(a.params_x, a.grid.bins_x - a.at_x, a.order_x, a.params_y,
                               a.grid.bins_y - a.at_y, a.order_y, a.explicit_edges, a.at_x,
                               a.at_y);
  const int64_t bins = a.grid.bins_x * a.grid.bins_y, tiles = a.grid.count();
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t part = item / tiles, row = part / a.chunks, chunk = part % a.chunks;
    const int64_t begin = row * a.n + a.n * chunk / a.chunks;
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    const BinRect r = a.grid.rect(item % tiles);
    const TileCounters tile{{words, (r.ax1 - r.ax0) * (r.by1 - r.by0)}, r};
    for (int64_t j = threadIdx.x; j < 2 * tile.slots(); j += blockDim.x) words[j] = 0;
    const double max_weight = a.weight ? block_max_abs_finite(a.weight, begin, end, scratch) : 1.0;
    const FixedPoint fixed(max_weight, end - begin,
                           log2_max_abs_d(K, a.order_x) + log2_max_abs_d(K, a.order_y));
    unsigned* flags = a.nonfinite + row * bins;
    __syncthreads();
    if constexpr (K == Kernel::Hard)
      scatter_hard_pairs(a, pw.wx, pw.wy, begin, end, tile, fixed, flags);
    else
      scatter_smooth_pairs(a, pw, begin, end, tile, fixed, flags,
                           stage + threadIdx.x / 32 * 32);
    __syncthreads();
    double* out = a.partial + part * bins;
    for (int64_t j = threadIdx.x; j < tile.slots(); j += blockDim.x) {
      const int64_t ia = r.ax0 + j / tile.width(), ib = r.by0 + j % tile.width();
      out[ia * a.grid.bins_y + ib] = fixed.value(tile.counters.get(j));
    }
    __syncthreads();  // the next item resets the words
  }
}

}  // namespace

void scatter_2d(const ScatterJob& job) {
  const Tensor &x = job.coords[0], &y = job.coords[1];
  const int64_t n = job.pb.n, rows = job.pb.rows;
  const int64_t bins_x = job.slots(0), bins_y = job.slots(1), bins = bins_x * bins_y;
  const ChunkPartials partials(x, n, rows, bins, job.stream);
  const TileGrid grid = TileGrid::of(bins_x, bins_y);
  const int64_t items = rows * partials.chunks() * grid.count();
  const size_t counter_bytes = 2 * sizeof(unsigned) * grid.rows * grid.cols;
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const Scatter2dArgs<T> args{x.const_data_ptr<T>(),
                                y.const_data_ptr<T>(),
                                job.weight.has_value() ? job.weight->const_data_ptr<T>() : nullptr,
                                job.params_of(0),
                                job.params_of(1),
                                static_cast<int>(job.pb.orders[0]),
                                static_cast<int>(job.pb.orders[1]),
                                job.explicit_edges(),
                                job.pb.at_edges[0],
                                job.pb.at_edges[1],
                                n,
                                partials.chunks(),
                                items,
                                grid,
                                partials.partial(),
                                partials.flags()};
    // The order is a run-time argument of the kernels (see cdf_of_order).
    dispatch_kernel(job.kernel, 0, [&](auto k, auto) {
      launch(scatter2d_partials<decltype(k)::value, T, C>, items, kThreads, counter_bytes,
             job.stream, args);
    });
    partials.merge_into<T>(job);
  });
}

}  // namespace softhist::cuda
