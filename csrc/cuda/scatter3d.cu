// CUDA scatter over three axes (samples -> bins_x x bins_y x bins_z), bitwise
// reproducible as the 1-d and 2-d scatters are (scatter.cu, scatter2d.cu).
//
// Rows are split into chunks (a number that depends only on the sizes,
// partials.cuh) and the joint bins into boxes of at most kTileBins bins that
// fit in shared memory; a block sums one chunk into one box. Each thread takes
// one sample and walks the part of its 3-d window inside the box itself, x
// outermost, z innermost, adding each bin's mass ((w * dx) * dy) * dz (the
// CPU's product, in double) to the box's counters.
//
// Why the result never depends on scheduling: every contribution is rounded
// to 64-bit fixed point (FixedPoint, its scale a function of the chunk's
// largest finite |weight|, its length and the kernel's bound on |D_order|
// only) and added with integer atomics, whose sum is the same in any order;
// non-finite contributions (from NaN or infinite weights) only set flag bits
// with atomicOr, also order-free. Each box's counters are written once, as
// the chunk's float64 partial, and the partials of a bin are merged in chunk
// order (ChunkPartials::merge_into), as in 1-d and 2-d.
//
// The hard kernel: the weight in the bin torch.histc counts each coordinate
// in; unit weights are counted a warp at a time, the lanes of one bin adding
// their count at once.
#include <torch/csrc/stable/ops.h>

#include "axis_walk.cuh"
#include "device_params.cuh"
#include "fixed_point.cuh"
#include "launch.cuh"
#include "ops_cuda.h"
#include "partials.cuh"
#include "reduce.cuh"

namespace softhist::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kTileBins = 8192;  // 64 KB of counters per block

// Bins [lo[a], hi[a]) on each axis.
struct Box {
  int64_t lo[3], hi[3];

  __device__ int64_t size(int a) const { return hi[a] - lo[a]; }
  __device__ int64_t slots() const { return size(0) * size(1) * size(2); }
  __device__ int64_t slot(int64_t ia, int64_t ib, int64_t ic) const {
    return ((ia - lo[0]) * size(1) + ib - lo[1]) * size(2) + ic - lo[2];
  }
  __device__ bool holds(int64_t ia, int64_t ib, int64_t ic) const {
    return ia >= lo[0] && ia < hi[0] && ib >= lo[1] && ib < hi[1] && ic >= lo[2] && ic < hi[2];
  }
};

// The boxes: extent[a] bins on axis a each (fewer at the far sides), whole z
// rows, then whole yz planes, when they fit.
struct BoxGrid {
  int64_t bins[3], extent[3];

  static BoxGrid of(const std::vector<int64_t>& b) {
    BoxGrid g{{b[0], b[1], b[2]}, {}};
    g.extent[2] = std::min(b[2], kTileBins);
    g.extent[1] = std::min(b[1], kTileBins / g.extent[2]);
    g.extent[0] = std::min(b[0], kTileBins / (g.extent[2] * g.extent[1]));
    return g;
  }
  __host__ __device__ int64_t across(int a) const { return ceil_div(bins[a], extent[a]); }
  __host__ __device__ int64_t count() const { return across(0) * across(1) * across(2); }
  __host__ __device__ int64_t box_slots() const { return extent[0] * extent[1] * extent[2]; }
  __host__ __device__ int64_t total() const { return bins[0] * bins[1] * bins[2]; }
  __device__ Box box(int64_t tile) const {
    Box r;
    for (int a = 2; a >= 0; --a) {
      const int64_t i = tile % across(a);
      tile /= across(a);
      r.lo[a] = i * extent[a];
      r.hi[a] = min(r.lo[a] + extent[a], bins[a]);
    }
    return r;
  }
};

template <typename T>
struct Scatter3dArgs {
  const T* x[3];
  const T* weight;       // nullptr: every weight is 1
  const double* params;  // (3, row): kParamsSize values, then any explicit edges
  int64_t row;
  bool explicit_edges;
  int orders[3];
  bool at_edges[3];  // an axis at its edges: its slots are its bins + 1 edges
  int64_t n, chunks, items;
  BoxGrid grid;      // over the slots
  double* partial;      // [rows, chunks, bins_x * bins_y * bins_z]
  unsigned* nonfinite;  // [rows, bins_x * bins_y * bins_z], zeroed
};

// What a sample adds to a box: the counters, and the row's flags.
struct BoxSums {
  SharedCounters counters;
  Box box;
  const FixedPoint* fixed;
  unsigned* flags;     // the row's, global memory
  int64_t bins_y, bins_z;

  __device__ void add(int64_t ia, int64_t ib, int64_t ic, double v) const {
    counters.add(box.slot(ia, ib, ic),
                 quantise_or_flag(*fixed, v, flags + (ia * bins_y + ib) * bins_z + ic));
  }
};

// Sample i (none at or past end), smooth kernel K: its window's bins inside
// the box, each once, in one thread.
template <Kernel K, typename T, typename C>
__device__ void scatter_smooth_sample(const Scatter3dArgs<T>& a, const Window* win, int64_t i,
                                      int64_t end, const BoxSums& sums) {
  if (i >= end) return;
  AxisWalk<K, C> w[3];
  for (int ax = 0; ax < 3; ++ax)
    if (!w[ax].locate(win[ax], a.orders[ax], static_cast<double>(a.x[ax][i]), a.at_edges[ax]))
      return;  // reaches no bin on this axis: adds nothing whatever the weight, as on the CPU
  const double weight = a.weight ? static_cast<double>(a.weight[i]) : 1.0;
  if (weight == 0) return;  // zero weights add nothing, as on the CPU (NaN ones do)
  int64_t k0[3], k1[3];
  for (int ax = 0; ax < 3; ++ax) {
    k0[ax] = max(int64_t(0), sums.box.lo[ax] - w[ax].first);
    k1[ax] = min(w[ax].span(), sums.box.hi[ax] - w[ax].first);
    if (k0[ax] >= k1[ax]) return;
  }
  // Every bin of the window in the box; zero masses add 0, so that a NaN or
  // infinite weight reaches no bin past the support or cut, as on the CPU.
  const InnerMasses<K, C> z(w[2], k0[2], k1[2]);
  for_each_mass(w[0], k0[0], k1[0], [&](int64_t kx, C dx) {
    const double wx = weight * static_cast<double>(dx);
    for_each_mass(w[1], k0[1], k1[1], [&](int64_t ky, C dy) {
      const double wxy = wx * static_cast<double>(dy);
      z.for_each([&](int64_t kz, C dz) {
        sums.add(w[0].first + kx, w[1].first + ky, w[2].first + kz,
                 dx == C(0) || dy == C(0) || dz == C(0) ? 0.0 : wxy * static_cast<double>(dz));
      });
    });
  });
}

// Sample i (none at or past end), hard kernel; the whole warp calls this.
template <typename T>
__device__ void scatter_hard_sample(const Scatter3dArgs<T>& a, const Window* win, int64_t i,
                                    int64_t end, const BoxSums& sums) {
  int64_t b[3] = {0, 0, 0};
  bool in = i < end;
  for (int ax = 0; ax < 3 && in; ++ax)
    in = win[ax].bin_of<HistcMath<T>>(static_cast<double>(a.x[ax][i]), b[ax]);
  in = in && sums.box.holds(b[0], b[1], b[2]);
  if (a.weight) {
    if (in) sums.add(b[0], b[1], b[2], static_cast<double>(a.weight[i]));
  } else {
    // Unit weights: the lanes with the same bin add their count at once
    // (concentrated data would otherwise serialise on one counter).
    const long long key = in ? sums.box.slot(b[0], b[1], b[2]) : -1;
    const unsigned same = __match_any_sync(kFullWarp, key);
    if (in && static_cast<int>(threadIdx.x % 32) == __ffs(same) - 1)
      sums.counters.add(key, __popc(same) * sums.fixed->quantise(1.0));
  }
}

// Work item: box (item % boxes) of chunk (item / boxes % chunks) of row
// (item / boxes / chunks).
template <Kernel K, typename T, typename C>
__global__ void __launch_bounds__(kThreads) scatter3d_partials(Scatter3dArgs<T> a) {
  extern __shared__ unsigned words[];
  __shared__ double scratch[kThreads / 32];
  Window win[3];
  int log2_max_d = 0;  // |D_ox * D_oy * D_oz| <= 2^this
  for (int ax = 0; ax < 3; ++ax) {
    win[ax] = window_1d<K, C, T>(a.params + ax * a.row, a.grid.bins[ax] - a.at_edges[ax],
                                 a.explicit_edges);
    log2_max_d += log2_max_abs_d(K, a.orders[ax]);
  }
  const int64_t bins = a.grid.total(), boxes = a.grid.count();
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t part = item / boxes, row = part / a.chunks, chunk = part % a.chunks;
    const int64_t begin = row * a.n + a.n * chunk / a.chunks;
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    const Box box = a.grid.box(item % boxes);
    const int64_t slots = box.slots();
    for (int64_t j = threadIdx.x; j < 2 * slots; j += blockDim.x) words[j] = 0;
    const double max_weight = a.weight ? block_max_abs_finite(a.weight, begin, end, scratch) : 1.0;
    const FixedPoint fixed(max_weight, end - begin, log2_max_d);
    const BoxSums sums{{words, slots}, box, &fixed, a.nonfinite + row * bins,
                       a.grid.bins[1], a.grid.bins[2]};
    __syncthreads();
    // The loop's bounds are the block's, so whole warps call the hard kernel.
    for (int64_t base = begin; base < end; base += blockDim.x) {
      if constexpr (K == Kernel::Hard)
        scatter_hard_sample(a, win, base + threadIdx.x, end, sums);
      else
        scatter_smooth_sample<K, T, C>(a, win, base + threadIdx.x, end, sums);
    }
    __syncthreads();
    double* out = a.partial + part * bins;
    for (int64_t j = threadIdx.x; j < slots; j += blockDim.x) {
      const int64_t ic = box.lo[2] + j % box.size(2);
      const int64_t ib = box.lo[1] + j / box.size(2) % box.size(1);
      const int64_t ia = box.lo[0] + j / (box.size(2) * box.size(1));
      out[(ia * a.grid.bins[1] + ib) * a.grid.bins[2] + ic] = fixed.value(sums.counters.get(j));
    }
    __syncthreads();  // the next item resets the words
  }
}

}  // namespace

void scatter_3d(const ScatterJob& job) {
  const Tensor& x = job.coords[0];
  const int64_t n = job.pb.n, rows = job.pb.rows;
  const BoxGrid grid = BoxGrid::of({job.slots(0), job.slots(1), job.slots(2)});
  const ChunkPartials partials(x, n, rows, grid.total(), job.stream);
  const int64_t items = rows * partials.chunks() * grid.count();
  const size_t counter_bytes = 2 * sizeof(unsigned) * grid.box_slots();
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    Scatter3dArgs<T> args{};
    for (int ax = 0; ax < 3; ++ax) {
      args.x[ax] = job.coords[ax].const_data_ptr<T>();
      args.orders[ax] = static_cast<int>(job.pb.orders[ax]);
      args.at_edges[ax] = job.pb.at_edges[ax];
    }
    args.weight = job.weight.has_value() ? job.weight->const_data_ptr<T>() : nullptr;
    args.params = job.params_of(0);
    args.row = job.params_row();
    args.explicit_edges = job.explicit_edges();
    args.n = n;
    args.chunks = partials.chunks();
    args.items = items;
    args.grid = grid;
    args.partial = partials.partial();
    args.nonfinite = partials.flags();
    // The orders are run-time arguments of the kernels (see cdf_of_order).
    dispatch_kernel(job.kernel, 0, [&](auto k, auto) {
      launch(scatter3d_partials<decltype(k)::value, T, C>, items, kThreads, counter_bytes,
             job.stream, args);
    });
    partials.merge_into<T>(job);
  });
}

}  // namespace softhist::cuda
