// CUDA scatter (samples -> bins), bitwise reproducible. Each row is split into
// chunks (a number that depends only on the sizes) and the bins into tiles
// that fit in shared memory; a block sums one chunk into one tile in 64-bit
// fixed point with integer atomics, which give the same sum in any order,
// then writes it as a float64 partial. A second kernel adds the partials of
// each bin in a fixed order and applies kappa^order.
//
// Precision: a chunk's contributions are rounded to multiples of 2^-shift,
// chosen so that the chunk's sum stays below 2^62 in magnitude (FixedPoint,
// from the kernel's bound on |D_order|, log2_max_abs_d). A bin's error from one
// chunk is then at most n_chunk * 2^-61 of the chunk's largest possible mass
// (n_chunk * max|weight| * 2^log2_max_abs_d), as a bound (typical errors are
// far smaller): 2^-46 for 1e8 samples in 256 bins (chunks of 24,414 samples),
// 2^-41 in 65,536 bins (chunks of 781,250). The float64 partials and their
// sum round as the CPU's per-thread partials do.
#include <torch/csrc/stable/ops.h>

#include <climits>

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
// A warp whose samples' windows start within this many bins of each other
// sums its contributions before one atomic per bin: many samples in the same
// bins would otherwise serialise on the same shared-memory words.
constexpr int64_t kMaxWarpSpread = 4;

// A block's counters for bins [lo, hi) of one chunk, and the row's flags.
struct TileSums {
  SharedCounters counters;  // hi - lo
  unsigned* nonfinite;      // the row's flags, global memory
  int64_t lo, hi;
  FixedPoint fixed;

  __device__ long long quantise(double v, int64_t bin) const {
    return quantise_or_flag(fixed, v, nonfinite + bin);
  }
  __device__ void add(int64_t bin, long long q) const { counters.add(bin - lo, q); }
  __device__ double value(int64_t bin) const { return fixed.value(counters.get(bin - lo)); }
};

// A sample's contributions w * D_Order(x, first + k) for k in [0, span), in
// the CPU's arithmetic: K^(Order) at each edge of the window in C, their
// differences in double.
template <Kernel K, int Order, typename C>
struct SmoothSample {
  const Window* win = nullptr;
  int64_t first = 0;
  bool located = false;
  C t_first = 0, prev = 0;
  double x = 0;  // explicit edges: the sample

  __device__ void locate(const Window& w, double x_) {
    double t = 0;
    win = &w;
    x = x_;
    located = w.locate_any(x, first, t);
    t_first = static_cast<C>(t);
  }
  __device__ static int64_t span(const Window& win) { return win.edges - 1; }
  __device__ C edge_value(int64_t k) const {
    return win->at_edge(first + k, Order, cdf<K, Order>(win->t_at(first, k, t_first, x)));
  }
  __device__ void start(int64_t k) { prev = edge_value(k); }
  __device__ double next(int64_t k, double weight) {
    const C cur = edge_value(k + 1);
    const double mass = static_cast<double>(prev) - static_cast<double>(cur);
    prev = cur;
    return weighted_mass(weight, mass);
  }
};

// The edge sums: w * K^(Order)(x - e_{first + k}) for the window's edges
// k in [0, edges), into bins + 1 slots.
template <Kernel K, int Order, typename C>
struct EdgeSample : SmoothSample<K, Order, C> {
  __device__ static int64_t span(const Window& win) { return win.edges; }
  __device__ void start(int64_t) {}
  __device__ double next(int64_t k, double weight) {
    return weighted_mass(weight, static_cast<double>(this->edge_value(k)));
  }
};

// The hard kernel: the weight, in the bin torch.histc counts the sample in.
template <typename C>
struct HardSample {
  int64_t first = 0;
  bool located = false;

  __device__ void locate(const Window& win, double x) {
    located = win.bin_of<HistcMath<C>>(x, first);
  }
  __device__ static int64_t span(const Window&) { return 1; }
  __device__ void start(int64_t) {}
  __device__ double next(int64_t, double weight) { return weight; }
};

template <Kernel K, int Order, typename C>
using Sample = std::conditional_t<K == Kernel::Hard, HardSample<C>, SmoothSample<K, Order, C>>;

// One sample per thread (i < end), a whole warp at a time.
template <typename S, typename T>
__device__ void scatter_sample(const Window& win, const T* x, const T* w, int64_t i,
                               int64_t end, const TileSums& tile) {
  S s;
  double weight = 0;
  if (i < end) {
    s.locate(win, static_cast<double>(x[i]));
    if (s.located) weight = w ? static_cast<double>(w[i]) : 1.0;
  }
  const bool adds = weight != 0;  // zero weights add nothing, as on the CPU
  const int64_t span = S::span(win);
  const int lo_first = __reduce_min_sync(kFullWarp, adds ? static_cast<int>(s.first) : INT_MAX);
  const int hi_first = __reduce_max_sync(kFullWarp, adds ? static_cast<int>(s.first) : INT_MIN);
  if (lo_first == INT_MAX) return;

  if (hi_first - lo_first > kMaxWarpSpread) {
    if (!adds) return;
    const int64_t k0 = max(int64_t(0), tile.lo - s.first);
    const int64_t k1 = min(span, tile.hi - s.first);
    if (k0 >= k1) return;
    s.start(k0);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t bin = s.first + k;
      tile.add(bin, tile.quantise(s.next(k, weight), bin));
    }
    return;
  }
  // Bins lo_first + r for r in [r0, r1), the same loop in every lane.
  const int64_t offset = s.first - lo_first;
  const int64_t r0 = max(int64_t(0), tile.lo - lo_first);
  const int64_t r1 = min(span + (hi_first - lo_first), tile.hi - lo_first);
  if (adds) s.start(max(r0 - offset, int64_t(0)));
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k = r - offset, bin = lo_first + r;
    long long q = 0;
    if (adds && k >= 0 && k < span) q = tile.quantise(s.next(k, weight), bin);
    q = warp_sum(q);
    if (threadIdx.x % 32 == 0) tile.add(bin, q);
  }
}

// slots: the output's values per row, bins (or bins + 1 for edge sums).
template <typename T>
struct ScatterArgs {
  const T* x;
  const T* weight;  // nullptr: every weight is 1
  const double* params;
  int64_t n, bins, slots, chunks, tile_bins, items;
  bool explicit_edges;  // params holds the edges (one axis)
  double* partial;     // [rows, chunks, slots]
  unsigned* nonfinite;  // [rows, slots], zeroed
};

// Work item: tile (item % tiles) of chunk (item / tiles % chunks) of row
// (item / tiles / chunks). Edges: the edge sums.
template <Kernel K, int Order, bool Edges, typename T, typename C>
__global__ void __launch_bounds__(kThreads) scatter_partials(ScatterArgs<T> a) {
  using S = std::conditional_t<Edges, EdgeSample<K, Order, C>, Sample<K, Order, C>>;
  extern __shared__ unsigned words[];
  __shared__ double scratch[kThreads / 32];
  const Window win = window_1d<K, C, T>(a.params, a.bins, a.explicit_edges);
  const int64_t tiles = ceil_div(a.slots, a.tile_bins);
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t part = item / tiles, row = part / a.chunks, chunk = part % a.chunks;
    const int64_t begin = row * a.n + a.n * chunk / a.chunks;
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    const int64_t lo = item % tiles * a.tile_bins, hi = min(lo + a.tile_bins, a.slots);
    for (int64_t j = threadIdx.x; j < 2 * (hi - lo); j += blockDim.x) words[j] = 0;
    const double max_weight = a.weight ? block_max_abs_finite(a.weight, begin, end, scratch) : 1.0;
    // (|K^(Order)| <= max |D_Order|: D_Order is K^(Order) where the next edge is far.)
    const TileSums tile{{words, hi - lo}, a.nonfinite + row * a.slots, lo, hi,
                        FixedPoint(max_weight, end - begin, log2_max_abs_d(K, Order))};
    __syncthreads();
    for (int64_t base = begin; base < end; base += blockDim.x)
      scatter_sample<S>(win, a.x, a.weight, base + threadIdx.x, end, tile);
    __syncthreads();
    double* out = a.partial + part * a.slots;
    for (int64_t b = lo + threadIdx.x; b < hi; b += blockDim.x) out[b] = tile.value(b);
    __syncthreads();  // the next item resets the words
  }
}

template <bool Edges>
void scatter_axis(const ScatterJob& job) {
  const Tensor& x = job.coords[0];
  const int64_t n = job.pb.n, rows = job.pb.rows, bins = job.pb.bins[0], slots = bins + Edges;
  const ChunkPartials partials(x, n, rows, slots, job.stream);
  const int64_t chunks = partials.chunks();
  const int64_t tile_bins = std::min(slots, kTileBins);
  const int64_t items = rows * chunks * ceil_div(slots, tile_bins);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const ScatterArgs<T> args{x.const_data_ptr<T>(),
                              job.weight.has_value() ? job.weight->const_data_ptr<T>() : nullptr,
                              job.params_of(0), n, bins, slots, chunks, tile_bins, items,
                              job.explicit_edges(), partials.partial(),
                              partials.flags()};
    const auto run = [&](auto k, auto ord) {
      launch(scatter_partials<decltype(k)::value, decltype(ord)::value, Edges, T, C>, items,
             kThreads, 2 * sizeof(unsigned) * tile_bins, job.stream, args);
    };
    if constexpr (Edges)
      dispatch_smooth(job.kernel, job.pb.orders[0], run);
    else
      dispatch_kernel(job.kernel, job.pb.orders[0], run);
    partials.merge_into<T>(job);
  });
}

}  // namespace

void scatter_1d(const ScatterJob& job) { scatter_axis<false>(job); }
void edge_scatter_1d(const ScatterJob& job) { scatter_axis<true>(job); }

}  // namespace softhist::cuda
