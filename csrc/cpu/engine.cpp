// The CPU engine: scatter (samples -> bins) and gather (bins -> samples) over
// D = 1, 2 or 3 axes, as compile-time D. Samples are processed in blocks of
// kLanes, so the window loops (fixed length, only their offsets differ per
// sample) vectorise across samples. Per D, the innermost loop:
//   D = 1: a sample's window of edges, the kernel and order as compile-time
//          constants; only the scatter into bins is scalar;
//   D > 1: a sample's window on the last axis, as whole vectors of kRow values
//          over histogram rows padded with zeros; the outer axes' windows
//          give each row its coefficient.
// Scatter sums fixed chunks of each row into float64 partials, merged in chunk
// order, so results do not depend on the thread count.
#include <torch/csrc/stable/library.h>

#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <tuple>

#include "chebyshev.h"
#include "common.h"
#include "explicit_edges.h"

namespace softhist::cpu {
namespace {

// ---------------------------------------------------------------- D = 1

// A 1-d chunk's sums. Consecutive samples' windows overlap, and adding into
// the same bins in turn waits on store forwarding, so the samples of lane l
// add into copy l % kCopies of the histogram, and the copies into acc in order
// at the end (where that costs little next to the samples). (The joint
// scatter's rows are whole vectors; copies measured no faster there.)
class LaneSums {
 public:
  static constexpr int kCopies = 4;

  LaneSums(double* acc, int64_t size, int64_t n)
      : acc_(acc), size_(size), stride_(stride_of(size)),
        copies_(kCopies * size <= n ? kCopies : 1),
        sums_(static_cast<size_t>(copies_ > 1 ? copies_ * stride_ : 0)) {}

  // Where lane l adds.
  double* lane(int l) { return copies_ > 1 ? sums_.data() + l % kCopies * stride_ : acc_; }
  // Where lanes l add, by l % kCopies.
  std::array<double*, kCopies> copies() {
    std::array<double*, kCopies> out;
    for (int j = 0; j < kCopies; ++j) out[j] = lane(j);
    return out;
  }

  // After the chunk's samples: the copies into acc, in order.
  void add_copies() const {
    if (copies_ > 1)
      for (int64_t b = 0; b < size_; ++b)
        for (int j = 0; j < kCopies; ++j) acc_[b] += sums_[j * stride_ + b];
  }

 private:
  // Copies 1088 bytes past a multiple of 4 KB apart (2176 and 3264 for the
  // others): never near a multiple of 4 KB, where loads would wait on another
  // copy's stores to the same low address bits (4K aliasing).
  static int64_t stride_of(int64_t size) { return (size + 511) / 512 * 512 + 136; }

  double* acc_;
  int64_t size_, stride_;
  int copies_;
  std::vector<double> sums_;
};

// A window of at most Len bins (the compact kernels at their default kappa)
// is added to the histogram as one vector of Len doubles, zeros past its end:
// a few wide adds per sample rather than a scalar loop. Len is 4 or 8, the
// shortest that holds the window (8 for 3 bins measured 30% slower). Longer
// windows are added as vectors of 8, 8 bins at a time (add_windows). The
// histogram is padded by 7 bins for that (Layout's pad).
constexpr int64_t kShortMax = 8;
template <int Len>
struct ShortVecOf {
  typedef double type __attribute__((vector_size(Len * sizeof(double)), aligned(8), may_alias));
};

// dst[0 .. vector length) += v. Through memcpy, not a vector-typed store:
// windows at nearby first bins overlap in part, and GCC assumes that two
// objects of one type never do (on AVX2 it split an add of 8 doubles into halves and
// moved one window's load above another's overlapping store, losing a bin).
template <typename V>
SOFTHIST_HD void add_at(double* dst, const V& v) {
  V sum;
  __builtin_memcpy(&sum, dst, sizeof sum);
  sum += v;
  __builtin_memcpy(dst, &sum, sizeof sum);
}

// Whether a block's scales hold a NaN or infinite weight.
SOFTHIST_HD bool nonfinite_scale(const double* scale) {
  double probe = 0;
#pragma omp simd reduction(+ : probe)
  for (int l = 0; l < kLanes; ++l) probe += scale[l] * 0.0;
  return probe != probe;
}

// r[k][j] = lane l0 + j's value k: transposed in registers, and each lane's
// values added as one vector of Len (4 or 8) at its first bin + k0, in its
// copy (dst: LaneSums::copies).
template <int Len>
SOFTHIST_HD void add_transposed(Vec8Of<double> (&r)[8], const int32_t* first, int l0, int64_t k0,
                                const std::array<double*, LaneSums::kCopies>& dst) {
  transpose8(r);
  for (int j = 0; j < 8; ++j) {  // (samples that reach no bin add zeros)
    double* a = dst[(l0 + j) % LaneSums::kCopies] + first[l0 + j] + k0;
    if constexpr (Len == 4)
      add_at(a, __builtin_shufflevector(r[j], r[j], 0, 1, 2, 3));
    else
      add_at(a, r[j]);
  }
}

// add_windows's adds for finite scales, each sample's as vectors of Len: each
// 8 lanes' masses, 8 bins at a time, made and transposed in registers.
template <int Len, bool Edges, typename C>
SOFTHIST_HD void add_window_vectors(const C* v, int64_t span, const int32_t* first,
                                    const double* scale, LaneSums& sums) {
  using V = Vec8Of<double>;
  const int64_t rows = Edges ? span : span + 1;
  const std::array<double*, LaneSums::kCopies> dst = sums.copies();
  for (int64_t k0 = 0; k0 < span; k0 += 8)
    for (int l0 = 0; l0 < kLanes; l0 += 8) {
      V s, r[8];
      __builtin_memcpy(&s, scale + l0, sizeof s);
      Vec8Of<C> c[9];  // v's rows k0 .. k0 + 8, lanes l0 .. l0 + 7
      for (int k = 0; k < 9; ++k) {
        c[k] = Vec8Of<C>{};
        if (k0 + k < rows) __builtin_memcpy(&c[k], v + (k0 + k) * kLanes + l0, sizeof c[k]);
      }
      for (int k = 0; k < 8; ++k) {
        const V here = __builtin_convertvector(c[k], V);
        r[k] = k0 + k >= span ? V{}
               : Edges        ? s * here
                              : s * (here - __builtin_convertvector(c[k + 1], V));
      }
      add_transposed<Len>(r, first, l0, k0, dst);
    }
}

// A block's windows of `edges` values v into the bins at first: their
// differences (bin masses), or with Edges the values themselves (edge sums),
// times scale. Each sample adds 8 consecutive bins (4 for windows of up to 4)
// as one vector, zeros past its window (add_window_vectors). A block with a
// NaN or infinite weight adds its masses one by one, since such a weight
// times those zeros would reach other bins.
template <bool Edges, typename C>
SOFTHIST_CLONES void add_windows(const C* v, int64_t edges, const int32_t* first,
                                 const double* scale, LaneSums& sums) {
  const int64_t span = Edges ? edges : edges - 1;
  if (!nonfinite_scale(scale)) {
    if (span <= 4) return add_window_vectors<4, Edges>(v, span, first, scale, sums);
    return add_window_vectors<8, Edges>(v, span, first, scale, sums);
  }
  for (int l = 0; l < kLanes; ++l) {
    if (scale[l] == 0) continue;
    double* a = sums.lane(l) + first[l];
    const C* vl = v + l;
    for (int64_t k = 0; k < span; ++k)
      a[k] += scale[l] * (static_cast<double>(vl[k * kLanes]) -
                          (Edges ? 0.0 : static_cast<double>(vl[(k + 1) * kLanes])));
  }
}

// acc[b] += sum_i w_i * D_Order(x_i, b) / kappa^Order over n samples.
template <Kernel K, int Order, bool OpenEnds, typename T, typename C>
SOFTHIST_CLONES void scatter_chunk_1d(const T* x, const T* w, int64_t n, const Window& win,
                                      double* acc) {
  const int64_t edges = win.edges;
  const C c = static_cast<C>(win.c);
  std::vector<C> values(static_cast<size_t>(edges * kLanes));
  C* v = values.data();
  LaneSums sums(acc, win.bins, n);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double t64[kLanes], scale[kLanes];
    C t_first[kLanes];
    locate_block<OpenEnds>(x + i0, w ? w + i0 : nullptr, n - i0, win, first, t64, scale);
    for (int l = 0; l < kLanes; ++l) t_first[l] = static_cast<C>(t64[l]);
    window_values<K, Order>(t_first, c, edges, v);
    if constexpr (OpenEnds) open_window_ends(win, Order, first, v);
    add_windows<false>(v, edges, first, scale, sums);
  }
  sums.add_copies();
}

// acc[l] += sum_k h[first[l] + k] * (v_k - v_(k+1)) over the window (the
// bin masses), or with Edges sum_k h[first[l] + k] * v_k (edge values). h's
// rows are padded by 7 (padded_rows), for rows_of8.
template <bool Edges, typename C>
SOFTHIST_CLONES void gather_rows(const C* v, int64_t edges, const int32_t* first, const C* h,
                                 C* acc) {
  const int64_t span = Edges ? edges : edges - 1;
  alignas(64) C hk[8][kLanes];
  for (int64_t k0 = 0; k0 < span; k0 += 8) {
    rows_of8(h, first, k0, hk);
    for (int64_t k = k0; k < std::min(k0 + 8, span); ++k)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l)
        acc[l] += hk[k - k0][l] * (v[k * kLanes + l] - (Edges ? C(0) : v[(k + 1) * kLanes + l]));
  }
}

// A block's window values with the kernel and order chosen at run time, over
// evenly spaced or explicit edges: for the edge sums and explicit edges,
// which run on fewer calls than the forward, so that a compiled copy per
// kernel, order and end does not double the engine's build time.
template <typename C>
struct RuntimeValues {
  ValuesFn<C> uniform = nullptr;
  ExplicitValuesFn<C> explicit_edges = nullptr;
  int order = 0;

  RuntimeValues(const Window& win, Kernel kernel, int64_t order_) : order(static_cast<int>(order_)) {
    if (win.at)
      explicit_edges = explicit_values_fn<C>(kernel, order_);
    else
      uniform = values_fn<C>(kernel, order_);
  }

  // The block's first edges, scales and window values (open ends applied);
  // returns how many of the window's edges hold values (explicit_block).
  template <typename T>
  SOFTHIST_HD int64_t load(const T* x, const T* w, int64_t n, const Window& win, int32_t* first,
                        double* scale, C* v) const {
    if (explicit_edges) return explicit_block(x, w, n, win, explicit_edges, order, first, scale, v);
    double t64[kLanes];
    C t_first[kLanes];
    if (win.open_ends)
      locate_block<true>(x, w, n, win, first, t64, scale);
    else
      locate_block<false>(x, w, n, win, first, t64, scale);
    for (int l = 0; l < kLanes; ++l) t_first[l] = static_cast<C>(t64[l]);
    uniform(t_first, static_cast<C>(win.c), win.edges, v);
    if (win.open_ends) open_window_ends(win, order, first, v);
    return win.edges;
  }
};

// scatter_chunk_1d with the values at run time; with Edges, the edge sums
// acc[j] += sum_i w_i * K^(order)(kappa (x_i - e_j)) / kappa^order over the
// bins + 1 edges.
template <bool Edges, typename T, typename C>
SOFTHIST_CLONES void runtime_scatter_chunk(const T* x, const T* w, int64_t n, const Window& win,
                           const RuntimeValues<C>& values, double* acc) {
  std::vector<C> v(static_cast<size_t>(win.edges * kLanes));
  LaneSums sums(acc, win.bins + Edges, n);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double scale[kLanes];
    const int64_t edges = values.load(x + i0, w ? w + i0 : nullptr, n - i0, win, first, scale, v.data());
    add_windows<Edges>(v.data(), edges, first, scale, sums);
  }
  sums.add_copies();
}

// gather_chunk_1d with the values at run time; with Edges, the adjoint of the
// edge sums: out_i = factor * sum_j h_j * K^(order)(kappa (x_i - e_j)).
template <bool Edges, typename T, typename C>
SOFTHIST_CLONES void runtime_gather_chunk(const T* x, const C* h, int64_t n, const Window& win,
                          const RuntimeValues<C>& values, double factor, T* out) {
  std::vector<C> v(static_cast<size_t>(win.edges * kLanes));
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double scale[kLanes];
    C acc[kLanes] = {};
    const int64_t edges =
        values.load(x + i0, static_cast<const T*>(nullptr), n - i0, win, first, scale, v.data());
    gather_rows<Edges>(v.data(), edges, first, h, acc);
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    for (int l = 0; l < m; ++l)
      out[i0 + l] = scale[l] == 0 ? T(0) : static_cast<T>(static_cast<double>(acc[l]) * factor);
  }
}

// A pair pass's scales: the block's weights (1 without) where a sample
// reaches a bin, else 0. A select, not a multiply: a NaN or infinite weight
// times 0 would be NaN.
template <typename T>
SOFTHIST_HD void pair_scales(const double* alive, const T* w, double* scale) {
  if (w) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) scale[l] = alive[l] != 0 ? static_cast<double>(w[l]) : 0.0;
  } else {
    for (int l = 0; l < kLanes; ++l) scale[l] = alive[l];
  }
}

// A pair pass's gathered block: out[l] = acc[l] * factor as T (0 where a
// sample reaches no bin); returns its part of sum_i w_i (x_i - e0) out_i.
template <typename T, typename C>
SOFTHIST_HD double pair_outputs(const C* acc, const double* alive, const double* scale,
                                const T* x, double factor, double e0, T* out) {
  double part = 0;
#pragma omp simd reduction(+ : part)
  for (int l = 0; l < kLanes; ++l) {
    out[l] = alive[l] == 0 ? T(0) : static_cast<T>(static_cast<double>(acc[l]) * factor);
    // As autograd weighs it: a sample with no gradient adds exactly 0.
    part += out[l] != T(0) ? scale[l] * static_cast<double>(out[l]) * (static_cast<double>(x[l]) - e0)
                           : 0.0;
  }
  return part;
}

// runtime_gather_chunk<true> (into out, with h) and runtime_scatter_chunk<true>
// (into acc, with w) over the same window values, and moment = sum_i w_i
// (x_i - e0) out_i: the pass of edge_gather_scatter.
template <typename T, typename C>
SOFTHIST_CLONES void runtime_pair_chunk(const T* x, const T* w, const C* h, int64_t n,
                                        const Window& win, const RuntimeValues<C>& values,
                                        double factor, double e0, T* out, double* acc,
                                        double& moment) {
  std::vector<C> v(static_cast<size_t>(win.edges * kLanes));
  LaneSums sums(acc, win.bins + 1, n);
  double sum = 0;  // (a local: moment's neighbours belong to other threads' chunks)
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double alive[kLanes], scale[kLanes];
    C g[kLanes] = {};
    T gl[kLanes];
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    const T* xb = x + i0;
    const T* wb = w ? w + i0 : nullptr;
    T x_tail[kLanes], w_tail[kLanes];
    pad_block(m, xb, wb, x_tail, w_tail);  // so that the loops below have a fixed length
    const int64_t edges =
        values.load(xb, static_cast<const T*>(nullptr), kLanes, win, first, alive, v.data());
    pair_scales(alive, wb, scale);
    gather_rows<true>(v.data(), edges, first, h, g);
    add_windows<true>(v.data(), edges, first, scale, sums);
    sum += pair_outputs(g, alive, scale, xb, factor, e0, gl);
    for (int l = 0; l < m; ++l) out[i0 + l] = gl[l];
  }
  sums.add_copies();
  moment = sum;
}

// out_i = sum_b h_b * D_Order(x_i, b) * factor.
template <Kernel K, int Order, bool OpenEnds, typename T, typename C>
SOFTHIST_CLONES void gather_chunk_1d(const T* x, const C* h, int64_t n, const Window& win,
                                     double factor, T* out) {
  const int64_t edges = win.edges;
  const C c = static_cast<C>(win.c);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double t64[kLanes], scale[kLanes];
    C t_first[kLanes], prev[kLanes], acc[kLanes], at_first[kLanes];
    locate_block<OpenEnds>(x + i0, static_cast<const T*>(nullptr), n - i0, win, first, t64,
                           scale);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      t_first[l] = static_cast<C>(t64[l]);
      prev[l] = cdf<K, Order>(t_first[l]);
      at_first[l] = prev[l];
      acc[l] = 0;
    }
    alignas(64) C hk[8][kLanes];  // h[first[l] + k - 1]
    for (int64_t k = 1; k < edges; ++k) {
      if ((k - 1) % 8 == 0) rows_of8(h, first, k - 1, hk);
      const C shift = c * static_cast<C>(k);
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const C cur = cdf<K, Order>(t_first[l] - shift);
        acc[l] += hk[(k - 1) % 8][l] * (prev[l] - cur);
        prev[l] = cur;
      }
    }
    // Open ends: the first bin's term used K at edge 0 and the last bin's K at
    // edge `bins` (prev holds the window's last edge); swap in the ends' values.
    if constexpr (OpenEnds) {
      for (int l = 0; l < kLanes; ++l) {
        if (first[l] == 0) acc[l] += h[0] * (win.at_edge(0, Order, at_first[l]) - at_first[l]);
        if (first[l] + edges - 1 == win.bins) acc[l] += h[win.bins - 1] * prev[l];
      }
    }
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    for (int l = 0; l < m; ++l)  // exactly 0 for a sample that reaches no bin
      out[i0 + l] = scale[l] == 0 ? T(0) : static_cast<T>(static_cast<double>(acc[l]) * factor);
  }
}

// ---------------------------------------------------------------- D = 1, Chebyshev pieces

// The even bins whose pieces a grid cuts (chebyshev.h): win's own, or over
// its explicit edges' range.
template <typename C, typename T>
Window frame_of(Kernel kernel, const Window& win) {
  if (!win.at) return win;
  return Window::make<C, T>(kernel, win.at[0], win.at[win.bins], win.kappa, win.bins,
                            win.open_ends);
}

// Whether a kernel's windows cost more than its Chebyshev moments
// (chebyshev.h): for K and K' over bins (the forward and backward) and K' at
// the edges (the range's, kappa's and edges' gradients), where the kernel has
// pieces (pieces_per_bin), the smooth kernels' windows hold at least
// kMinChebyshevEdges edges, and rows have enough samples to pay for the
// grid's tables and partials.
constexpr int64_t kMinChebyshevEdges = 6;
template <typename C, typename T>
bool chebyshev_pays(Kernel kernel, const Window& win, int64_t order, bool at_edges, int64_t n) {
  const bool smooth = kernel == Kernel::Logistic || kernel == Kernel::Gaussian;
  if (order > 1 || (at_edges && order == 0) || (smooth && win.edges < kMinChebyshevEdges) ||
      kernel == Kernel::Hard)
    return false;
  if (!smooth && win.at) {  // chebyshev_cut_grid: 2 * saturation + 1 cuts per edge
    const double cuts = static_cast<double>(win.bins + 1) * (2 * saturation<C>(kernel) + 1);
    const double size = cuts * chebyshev_terms<C>(kernel, order);
    return size * static_cast<double>(win.edges + 2) <= static_cast<double>(n) && size < 0x1p30;
  }
  const Window frame = frame_of<C, T>(kernel, win);
  const double per_bin = static_cast<double>(pieces_per_bin<C>(kernel, frame.c));
  const double bins = static_cast<double>(frame.bins);
  const double terms = static_cast<double>(chebyshev_terms<C>(kernel, order));
  const double size = per_bin * (bins + 2 * std::ceil(frame.reach) + 4) * terms;
  // Explicit edges' tables: per slot, the pieces its kernel reaches.
  const double tables =
      win.at ? ((bins + 1) * (2 * per_bin * frame.reach + 4) + per_bin * bins) * terms : 0.0;
  return per_bin > 0 && size + tables <= static_cast<double>(n) && size < 0x1p30;
}

// terms: chebyshev_terms's for `order` where 0; moments scattered for one
// order and read by another's grid need both grids to take the same.
template <typename C, typename T>
ChebyshevGrid chebyshev_grid_of(Kernel kernel, int64_t order, const Window& win, bool at_edges,
                                int64_t terms = 0) {
  if (terms == 0) terms = chebyshev_terms<C>(kernel, order);
  ChebyshevGrid g;
  const Window frame = frame_of<C, T>(kernel, win);
  const bool cut = win.at && kernel != Kernel::Logistic && kernel != Kernel::Gaussian;
  const double sat = static_cast<double>(saturation<C>(kernel));
  dispatch_smooth(kernel, order, [&](auto k, auto o) {
    constexpr Kernel K = decltype(k)::value;
    constexpr int Order = decltype(o)::value;
    if constexpr (Order <= 1) {  // (chebyshev_pays)
      if (cut)
        g = chebyshev_cut_grid<K, Order>(frame, win, at_edges, terms, sat);
      else
        g = chebyshev_grid<K, Order>(frame, win.at, at_edges, terms,
                                     pieces_per_bin<C>(kernel, frame.c), sat);
    }
  });
  return g;
}

// locate_pieces over uneven pieces (grid.cuts): a sample's piece is its
// cell's first q or the next, from cuts q .. q + 2, read as one vector per
// lane (4 lanes transposed in registers), or in a cell of several cuts
// (rare), up to cells.steps on.
template <bool OpenEnds, typename T, typename C>
SOFTHIST_HD void locate_cuts(const T* x, const T* w, int64_t n, const Window& win,
                             const ChebyshevGrid& grid, int32_t* first, C* delta, double* scale) {
  typedef double Cuts4 __attribute__((vector_size(32), aligned(8), may_alias));
  T x_tail[kLanes], w_tail[kLanes];
  pad_block(n, x, w, x_tail, w_tail);
  const double* cuts = grid.cuts.data();
  const double lo = cuts[0], hi = cuts[grid.count];
  const double cell_inv = grid.cells.inv, last_cell = static_cast<double>(grid.cells.count);
  const int32_t* cell_piece = grid.cells.first.data();
  const double in_lo = win.in_lo, in_hi = win.in_hi;
  const int32_t terms = static_cast<int32_t>(grid.terms);
  alignas(64) double v[kLanes], below[kLanes], at[kLanes], above[kLanes];
  int32_t p[kLanes], crowded = 0;
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double xd = static_cast<double>(x[l]);
    bool alive = xd >= lo && xd < hi;  // false for NaN
    if constexpr (OpenEnds) alive = alive && xd >= in_lo && xd <= in_hi;
    v[l] = alive ? xd : lo;
    p[l] = cell_piece[cell_of(v[l], lo, cell_inv, last_cell)];
    scale[l] = alive ? (w ? static_cast<double>(w[l]) : 1.0) : 0.0;
  }
  // (Loops of their own, so that each vectorises.)
#pragma omp simd reduction(| : crowded)
  for (int l = 0; l < kLanes; ++l) {
    crowded |= p[l];
    p[l] &= std::numeric_limits<int32_t>::max();
  }
  for (int l0 = 0; l0 < kLanes; l0 += 4) {
    Cuts4 r[4];
    for (int j = 0; j < 4; ++j) r[j] = *reinterpret_cast<const Cuts4*>(cuts + p[l0 + j]);
    const Cuts4 even01 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
    const Cuts4 odd01 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
    const Cuts4 even23 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
    const Cuts4 odd23 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
    *reinterpret_cast<Cuts4*>(below + l0) = __builtin_shufflevector(even01, even23, 0, 1, 4, 5);
    *reinterpret_cast<Cuts4*>(at + l0) = __builtin_shufflevector(odd01, odd23, 0, 1, 4, 5);
    *reinterpret_cast<Cuts4*>(above + l0) = __builtin_shufflevector(even01, even23, 2, 3, 6, 7);
  }
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const bool up = at[l] <= v[l];  // (v < hi, the last cut)
    p[l] += static_cast<int32_t>(up);
    const double a = up ? at[l] : below[l], b = up ? above[l] : at[l];
    below[l] = a;
    above[l] = b;
  }
  if (crowded < 0) {
    for (int64_t s = 1; s < grid.cells.steps; ++s)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) p[l] += static_cast<int32_t>(cuts[p[l] + 1] <= v[l]);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      below[l] = cuts[p[l]];
      above[l] = cuts[p[l] + 1];
    }
  }
  // (As ChebyshevGrid::piece: the same centre and half-width.)
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double centre = 0.5 * (below[l] + above[l]), half = 0.5 * (above[l] - below[l]);
    delta[l] = static_cast<C>((v[l] - centre) * (1.0 / half));
    first[l] = p[l] * terms;
  }
}

// A block's pieces and places in them: first[l] = the offset of sample l's
// piece's moments (terms per piece), delta[l] in [-1, 1), and scale as
// locate_block's.
template <bool OpenEnds, typename T, typename C>
SOFTHIST_HD void locate_pieces(const T* x, const T* w, int64_t n, const Window& win,
                               const ChebyshevGrid& grid, int32_t* first, C* delta,
                               double* scale) {
  if (!grid.cuts.empty()) return locate_cuts<OpenEnds>(x, w, n, win, grid, first, delta, scale);
  T x_tail[kLanes], w_tail[kLanes];
  pad_block(n, x, w, x_tail, w_tail);
  const double lo = win.lo, inv_width = win.inv_width, reach = win.reach;
  const double hi = static_cast<double>(win.bins) + reach;
  const double in_lo = win.in_lo, in_hi = win.in_hi;
  const double pad = static_cast<double>(grid.pad), per_bin = static_cast<double>(grid.per_bin);
  const int32_t terms = static_cast<int32_t>(grid.terms);
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double xd = static_cast<double>(x[l]);
    const double u = (xd - lo) * inv_width;
    bool alive = u >= -reach && u < hi;  // false for NaN
    if constexpr (OpenEnds) alive = alive && xd >= in_lo && xd <= in_hi;
    const double at = alive ? (u + pad) * per_bin : 0.0;  // >= 0: pad > reach
    const double piece = __builtin_trunc(at);  // (an int's round trip would not vectorise)
    first[l] = static_cast<int32_t>(piece) * terms;
    delta[l] = static_cast<C>(2.0 * (at - piece) - 1.0);
    scale[l] = alive ? (w ? static_cast<double>(w[l]) : 1.0) : 0.0;
  }
}

// acc[l] = sum_m g[first[l] + m] * T_m(delta[l]), by Clenshaw's recurrence
// (b_m = g_m + 2 delta b_(m+1) - b_(m+2), the sum g_0 + delta b_1 - b_2;
// stable on [-1, 1]): each 8 lanes' terms, 8 at a time from the last, are
// transposed in registers and summed there, with no rows of T_m to store
// and read back. g must hold 7 values past every piece's terms.
template <int Terms, typename C>
SOFTHIST_HD void chebyshev_sums(const C* g, const int32_t* first, const C* delta, C* acc) {
  using V = Vec8Of<C>;
  for (int l0 = 0; l0 < kLanes; l0 += 8) {
    V d, b1 = {}, b2 = {}, r[8];
    __builtin_memcpy(&d, delta + l0, sizeof d);
    const V twice = d + d;
    for (int k0 = (Terms - 1) / 8 * 8; k0 >= 0; k0 -= 8) {
      for (int j = 0; j < 8; ++j) __builtin_memcpy(&r[j], g + first[l0 + j] + k0, sizeof r[j]);
      transpose8(r);
      for (int k = std::min(7, Terms - 1 - k0); k >= (k0 == 0 ? 1 : 0); --k) {
        const V b = r[k] + twice * b1 - b2;
        b2 = b1;
        b1 = b;
      }
    }
    const V sum = r[0] + d * b1 - b2;  // (r: terms 0 .. 7)
    __builtin_memcpy(acc + l0, &sum, sizeof sum);
  }
}

// Whether a chunk's first samples repeat their neighbours often (flat image
// regions, masks): then consecutive samples add into the same piece in turn,
// and LaneSums' copies pay for their zeroing and merging, which on samples
// that rarely repeat cost more than they save.
template <typename T>
bool runs_of_equals(const T* x, int64_t n) {
  const int64_t m = std::min<int64_t>(n, 4096);
  int64_t equal = 0;
  for (int64_t i = 1; i < m; ++i) equal += x[i] == x[i - 1];
  return 8 * equal > m;
}

// The room for blocks added by their windows: slots + kShortMax - 1 doubles,
// allocated at the first.
inline double* direct_room(const ChebyshevGrid& grid, std::vector<double>& direct) {
  if (direct.empty()) direct.assign(static_cast<size_t>(grid.slots + kShortMax - 1), 0.0);
  return direct.data();
}

// moments[first[l] + m] += scale[l] * T_m(delta[l]): each sample's
// Chebyshev polynomials times its weight, in double, by their recurrence
// from scale and scale * delta (it is linear: no multiply per term). Each 8
// lanes' terms, 8 at a time, are made and transposed in registers, and each
// sample adds its terms as one vector, with no rows to store and read back.
template <int Terms, typename C>
SOFTHIST_HD void add_moments(const C* delta, const double* scale, const int32_t* first,
                             LaneSums& sums) {
  using V = Vec8Of<double>;
  const std::array<double*, LaneSums::kCopies> dst = sums.copies();
  for (int l0 = 0; l0 < kLanes; l0 += 8) {
    V d, t0, t1, r[8];
    for (int j = 0; j < 8; ++j) d[j] = static_cast<double>(delta[l0 + j]);
    __builtin_memcpy(&t0, scale + l0, sizeof t0);
    t1 = t0 * d;
    const V twice = d + d;
    for (int k0 = 0; k0 < Terms; k0 += 8) {
      for (int k = 0; k < 8; ++k) {
        r[k] = k0 + k < Terms ? t0 : V{};
        const V t2 = twice * t1 - t0;
        t0 = t1;
        t1 = t2;
      }
      add_transposed<Terms == 4 ? 4 : 8>(r, first, l0, k0, dst);
    }
  }
}

// A block with a NaN or infinite weight, which no moment can carry: added
// to `direct` (slots + kShortMax - 1 doubles, allocated then) by its
// windows, as the windows' scatter adds it.
template <typename T, typename C>
void scatter_directly(const T* x, const T* w, int64_t n, const Window& win,
                      const ChebyshevGrid& grid, const RuntimeValues<C>& values,
                      std::vector<double>& direct) {
  double* acc = direct_room(grid, direct);
  if (grid.slots > win.bins)
    runtime_scatter_chunk<true, T, C>(x, w, n, win, values, acc);
  else
    runtime_scatter_chunk<false, T, C>(x, w, n, win, values, acc);
}

// A block's places, for gather_pieces_chunk to read rather than locate the
// samples again: pieces[l] = sample l's piece (-1 where it reaches no bin),
// deltas[l] its place in it.
template <int Terms, typename C>
SOFTHIST_HD void save_places(const int32_t* first, const C* delta, const double* alive, int64_t m,
                             int32_t* pieces, C* deltas) {
  for (int64_t l = 0; l < m; ++l) {
    pieces[l] = alive[l] == 0 ? -1 : first[l] / Terms;
    deltas[l] = delta[l];
  }
}

// The inverse: a block's first, delta and scale (1, or 0 where the piece is
// -1) from its places. False where a piece lies outside the grid's `count`
// (not scatter_places's over this grid), which reads the nearest instead.
template <int Terms, typename C>
SOFTHIST_HD bool load_places(const int32_t* pieces, const C* deltas, int64_t m, int32_t count,
                             int32_t* first, C* delta, double* scale) {
  int32_t p_tail[kLanes];
  C d_tail[kLanes];
  if (m < kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      p_tail[l] = l < m ? pieces[l] : -1;
      d_tail[l] = l < m ? deltas[l] : C(0);
    }
    pieces = p_tail;
    deltas = d_tail;
  }
  int32_t lowest = 0, highest = 0;
#pragma omp simd reduction(min : lowest) reduction(max : highest)
  for (int l = 0; l < kLanes; ++l) {
    const int32_t p = pieces[l];
    lowest = std::min(lowest, p);
    highest = std::max(highest, p);
    first[l] = std::clamp(p, 0, count - 1) * Terms;
    scale[l] = p < 0 ? 0.0 : 1.0;
    delta[l] = deltas[l];
  }
  return lowest >= -1 && highest < count;
}

// moments[piece * Terms + m] += w_i * T_m(delta_i) over n samples (blocks
// with a non-finite weight: scatter_directly); with `pieces`, each sample's
// place too (save_places).
template <int Terms, bool OpenEnds, typename T, typename C>
SOFTHIST_CLONES void scatter_pieces_chunk(const T* x, const T* w, int64_t n, const Window& win,
                                          const ChebyshevGrid& grid,
                                          const RuntimeValues<C>& values, double* moments,
                                          std::vector<double>& direct, int32_t* pieces,
                                          C* deltas) {
  LaneSums sums(moments, grid.size(), runs_of_equals(x, n) ? n : 0);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double scale[kLanes];
    C delta[kLanes];
    if (pieces) {  // (located unweighted, to tell the samples that reach no bin)
      const int64_t m = std::min<int64_t>(kLanes, n - i0);
      const T* xb = x + i0;
      const T* wb = w ? w + i0 : nullptr;
      T x_tail[kLanes], w_tail[kLanes];
      double alive[kLanes];
      pad_block(m, xb, wb, x_tail, w_tail);
      locate_pieces<OpenEnds>(xb, static_cast<const T*>(nullptr), kLanes, grid.frame, grid, first,
                              delta, alive);
      save_places<Terms>(first, delta, alive, m, pieces + i0, deltas + i0);
      pair_scales(alive, wb, scale);
    } else {
      locate_pieces<OpenEnds>(x + i0, w ? w + i0 : nullptr, n - i0, grid.frame, grid, first,
                              delta, scale);
    }
    if (nonfinite_scale(scale)) {
      scatter_directly(x + i0, w + i0, std::min<int64_t>(kLanes, n - i0), win, grid, values, direct);
      continue;
    }
    add_moments<Terms>(delta, scale, first, sums);
  }
  sums.add_copies();
}

// out_i = factor * sum_m g[piece_i * Terms + m] * T_m(delta_i): g holds each
// piece's coefficients of sum_b h_b D(., b) (from_slots). The samples'
// pieces and places are located, or read from `pieces` (save_places's;
// false where one lies outside the grid: load_places).
template <int Terms, bool OpenEnds, typename T, typename C>
SOFTHIST_CLONES bool gather_pieces_chunk(const T* x, const C* g, int64_t n, const Window& win,
                                         const ChebyshevGrid& grid, double factor, T* out,
                                         const int32_t* pieces, const C* deltas) {
  bool in_grid = true;
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double scale[kLanes];
    C delta[kLanes], acc[kLanes];
    if (pieces)
      in_grid &= load_places<Terms>(pieces + i0, deltas + i0, n - i0,
                                    static_cast<int32_t>(grid.count), first, delta, scale);
    else
      locate_pieces<OpenEnds>(x + i0, static_cast<const T*>(nullptr), n - i0, grid.frame, grid,
                              first, delta, scale);
    chebyshev_sums<Terms>(g, first, delta, acc);
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    for (int l = 0; l < m; ++l)  // exactly 0 for a sample that reaches no bin
      out[i0 + l] = scale[l] == 0 ? T(0) : static_cast<T>(static_cast<double>(acc[l]) * factor);
  }
  return in_grid;
}

// gather_pieces_chunk (into out, at the edges: g from the coefficients of
// the edges) and scatter_pieces_chunk (into moments, with w) over the same
// samples' pieces, and moment = sum_i w_i (x_i - e0) out_i: the pass of
// edge_gather_scatter, as runtime_pair_chunk's (h: the windows' coefficients,
// for blocks with a non-finite weight).
template <int Terms, bool OpenEnds, typename T, typename C>
SOFTHIST_CLONES void pair_pieces_chunk(const T* x, const T* w, const C* g, const C* h, int64_t n,
                                       const Window& win, const ChebyshevGrid& grid,
                                       const RuntimeValues<C>& values, double factor, double e0,
                                       T* out, double* moments, std::vector<double>& direct,
                                       double& moment) {
  LaneSums sums(moments, grid.size(), runs_of_equals(x, n) ? n : 0);
  double sum = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double alive[kLanes], scale[kLanes];
    C delta[kLanes], acc[kLanes];
    T gl[kLanes];
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    const T* xb = x + i0;
    const T* wb = w ? w + i0 : nullptr;
    T x_tail[kLanes], w_tail[kLanes];
    pad_block(m, xb, wb, x_tail, w_tail);  // so that the loops below have a fixed length
    locate_pieces<OpenEnds>(xb, static_cast<const T*>(nullptr), kLanes, grid.frame, grid, first, delta,
                            alive);
    pair_scales(alive, wb, scale);
    if (nonfinite_scale(scale)) {
      double part = 0;
      runtime_pair_chunk<T, C>(x + i0, wb ? w + i0 : nullptr, h, m, win, values, factor, e0,
                               out + i0, direct_room(grid, direct), part);
      sum += part;
      continue;
    }
    chebyshev_sums<Terms>(g, first, delta, acc);
    add_moments<Terms>(delta, scale, first, sums);
    sum += pair_outputs(acc, alive, scale, xb, factor, e0, gl);
    for (int l = 0; l < m; ++l) out[i0 + l] = gl[l];
  }
  sums.add_copies();
  moment = sum;
}

// f(terms, open ends) as compile-time constants.
template <typename C, typename F>
void dispatch_pieces(int64_t terms, bool open_ends, const F& f) {
  dispatch_bool(open_ends, [&](auto open) {
    if (sizeof(C) == 8 && terms == 16)
      f(std::integral_constant<int, 16>{}, open);
    else if (terms == 4)
      f(std::integral_constant<int, 4>{}, open);
    else
      f(std::integral_constant<int, 8>{}, open);
  });
}

// ---------------------------------------------------------------- D > 1

// The histograms of D > 1 axes are stored with rows (the last axis) padded,
// so that a sample's window on it is taken as whole vectors:
//   scatter: adds of kQuad doubles, zeros around the window, 32-byte aligned
//            from the quad at or before its first bin where that takes no
//            more quads than from the bin itself (adds across cache lines
//            took 9-15% longer for windows of 5 bins);
//   gather: reads of kRow values from the window's first bin, the columns
//           past the window masked.
// Rows start at 32-byte boundaries (AlignedZeros, rows of a multiple of kQuad).
constexpr int64_t kQuad = 4, kRow = 8;

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
// The values a scatter adds, or a gather reads, per window of `span` bins.
inline int64_t quad_width(int64_t span) { return round_up(span + kQuad - 1, kQuad); }
inline int64_t row_width(int64_t span) { return round_up(span, kRow); }

// n zeros from a cache line's start: the scatter's partials.
template <typename S = double>
struct AlignedZeros {
  std::vector<S> store;
  S* data;
  explicit AlignedZeros(int64_t n) : store(static_cast<size_t>(n) + 64 / sizeof(S)) {
    void* p = store.data();
    size_t space = store.size() * sizeof(S);
    data = static_cast<S*>(std::align(64, n * sizeof(S), p, space));
  }
  AlignedZeros(const AlignedZeros&) = delete;  // (data points into store)
  AlignedZeros(AlignedZeros&&) = default;
};

// A window's span on an axis: its bins (edges - 1), or at the edges all of them.
inline int64_t span_of(const Window& win, bool at_edges) { return win.edges - (at_edges ? 0 : 1); }

// Per block of kLanes samples: where their windows start on each axis, the
// bin masses d(a, k, l) = D_order_a(x_l on axis a, first[a][l] + k) (on an
// axis at its edges, the edge values), and each sample's scale (its weight,
// or 0 when it reaches no bin on some axis).
template <int D, typename T, typename C>
struct Block {
  const Window* win;
  ValuesFn<C> values[D];
  ExplicitValuesFn<C> explicit_values[D];  // for axes over explicit edges
  int order[D];
  bool at_edges[D];
  std::vector<C> v[D];
  int32_t first[D][kLanes];
  double scale[kLanes];

  // Smooth kernels only: the hard kernel's chunks locate bins directly.
  Block(const Window* w, Kernel kernel, const Problem& pb) : win(w) {
    const std::vector<int64_t>& orders = pb.orders;
    for (int a = 0; a < D; ++a) {
      at_edges[a] = pb.at_edges[a];
      const bool smooth = kernel != Kernel::Hard;
      values[a] = smooth && !w[a].at ? values_fn<C>(kernel, orders[a]) : nullptr;
      explicit_values[a] = smooth && w[a].at ? explicit_values_fn<C>(kernel, orders[a]) : nullptr;
      order[a] = static_cast<int>(orders[a]);
      v[a].resize(static_cast<size_t>(w[a].edges * kLanes));
    }
  }

  void load(const std::array<const T*, D>& x, const T* w, int64_t n);

  C d(int a, int64_t k, int l) const { return v[a][k * kLanes + l]; }
  int64_t span(int a) const { return span_of(win[a], at_edges[a]); }
};

template <int D, typename T, typename C>
SOFTHIST_CLONES void Block<D, T, C>::load(const std::array<const T*, D>& x, const T* w,
                                          int64_t n) {
  double t[kLanes], alive[kLanes];
  C ct[kLanes];
  for (int a = 0; a < D; ++a) {
    // (A branch, not dispatch_bool: a lambda would not be compiled for this clone's ISA.)
    const T* wa = a == 0 ? w : static_cast<const T*>(nullptr);
    double* sa = a == 0 ? scale : alive;
    C* va = v[a].data();
    if (win[a].at) {
      // Values up to the first edge past every sample's reach; 0 beyond.
      const int64_t filled =
          explicit_block(x[a], wa, n, win[a], explicit_values[a], order[a], first[a], sa, va);
      std::fill(va + filled * kLanes, va + win[a].edges * kLanes, C(0));
    } else {
      if (win[a].open_ends)
        locate_block<true>(x[a], wa, n, win[a], first[a], t, sa);
      else
        locate_block<false>(x[a], wa, n, win[a], first[a], t, sa);
      for (int l = 0; l < kLanes; ++l) ct[l] = static_cast<C>(t[l]);
      values[a](ct, static_cast<C>(win[a].c), win[a].edges, va);
      if (win[a].open_ends) open_window_ends(win[a], order[a], first[a], va);
    }
    // Select, not multiply: a NaN or infinite weight times 0 would be NaN.
    if (a > 0)
      for (int l = 0; l < kLanes; ++l) scale[l] = alive[l] != 0 ? scale[l] : 0.0;
    if (at_edges[a]) continue;
    // Edge values to bin masses, in place: D_k = K_k - K_{k+1}.
    for (int64_t k = 0; k + 1 < win[a].edges; ++k)
      for (int l = 0; l < kLanes; ++l) va[k * kLanes + l] -= va[(k + 1) * kLanes + l];
  }
}

// One 32-byte vector of C (GCC's vector extension; an AVX2 register), read in
// place from a row (C's alignment, may alias C): the gather's row sums stay in
// registers, where stack arrays stall store forwarding.
template <typename C>
struct RowVecOf {
  typedef C type __attribute__((vector_size(32), aligned(alignof(C)), may_alias));
};
template <typename C>
using RowVec = typename RowVecOf<C>::type;
template <typename C>
constexpr int64_t kVecLen = 32 / sizeof(C);

template <typename C>
SOFTHIST_HD const RowVec<C>& row_at(const C* p) { return *reinterpret_cast<const RowVec<C>*>(p); }

// v[0][i] = the sum of v[i]'s elements, for the kVecLen<C> vectors v (which
// it overwrites): pairs of neighbours summed, log2(kVecLen) times, where one
// horizontal sum per vector takes as many steps for each.
template <typename C>
SOFTHIST_HD void lane_totals(RowVec<C> (&v)[kVecLen<C>]) {
  for (int64_t width = kVecLen<C>; width > 1; width /= 2)
    for (int64_t i = 0; i < width / 2; ++i) {
      const RowVec<C> a = v[2 * i], b = v[2 * i + 1];
      if constexpr (kVecLen<C> == 8)
        v[i] = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14) +
               __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
      else
        v[i] = __builtin_shufflevector(a, b, 0, 2, 4, 6) +
               __builtin_shufflevector(a, b, 1, 3, 5, 7);
    }
}

// The block's masses on the last axis, one row of `stride` values per sample:
// rows[l * stride + j] = d(D - 1, j, l). Nothing else is ever written: the
// rows' zeros.
template <typename A, int D, typename T, typename C>
SOFTHIST_CLONES void transpose_last(const Block<D, T, C>& blk, int64_t stride, A* rows) {
  for (int64_t j = 0; j < blk.span(D - 1); ++j)
    for (int l = 0; l < kLanes; ++l) rows[l * stride + j] = static_cast<A>(blk.d(D - 1, j, l));
}

// A histogram row's layout: strides of the axes (the last axis contiguous,
// padded by `pad`: for the joint rows, or for D = 1 the short windows) and the
// size of one row's histogram, over each axis's slots (bins, or edges).
template <int D>
struct Layout {
  std::array<int64_t, D> stride;
  int64_t pad, size;

  static Layout of(const Window* win, const Problem& pb) {
    Layout lay;
    const int64_t last = pb.slots(D - 1), span = span_of(win[D - 1], pb.at_edges[D - 1]);
    // (A window's first slot is at most last - span.)
    const int64_t widest = std::max(quad_width(span), row_width(span));
    lay.pad = D == 1 ? kShortMax - 1 : round_up(last + widest - span, kQuad) - last;
    int64_t s = last + lay.pad;
    lay.stride[D - 1] = 1;
    for (int a = D - 2; a >= 0; --a) {
      lay.stride[a] = s;
      s *= pb.slots(a);
    }
    lay.size = s;
    return lay;
  }
  int64_t offset(const int32_t (&first)[D][kLanes], int l) const {
    int64_t o = 0;
    for (int a = 0; a < D; ++a) o += int64_t(first[a][l]) * stride[a];
    return o;
  }
};

// The rows of a window on the outer axes (every axis but the last), in
// order: their offsets from the window's first bin, the same for every sample.
template <int D, typename T, typename C>
std::vector<int64_t> outer_offsets(const Block<D, T, C>& blk, const Layout<D>& lay) {
  std::vector<int64_t> offset{0};
  for (int a = 0; a + 1 < D; ++a) {
    std::vector<int64_t> next;
    for (int64_t o : offset)
      for (int64_t k = 0; k < blk.span(a); ++k) next.push_back(o + k * lay.stride[a]);
    offset.swap(next);
  }
  return offset;
}

// coef[m * kLanes + l]: sample l's masses on the outer axes multiplied
// together for row m (outer_offsets' order), times scale[l] (1 if null).
template <typename S, int D, typename T, typename C>
SOFTHIST_CLONES void outer_coefs(const Block<D, T, C>& blk, const double* scale, S* coef) {
  const int64_t ex = blk.span(0);
  if constexpr (D == 2) {
    for (int64_t k = 0; k < ex; ++k)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l)
        coef[k * kLanes + l] = (scale ? static_cast<S>(scale[l]) : S(1)) * static_cast<S>(blk.d(0, k, l));
  } else {
    static_assert(D == 3, "outer_coefs: D = 2 or 3");
    const int64_t ey = blk.span(1);
    for (int64_t kx = 0; kx < ex; ++kx)
      for (int64_t ky = 0; ky < ey; ++ky)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          coef[(kx * ey + ky) * kLanes + l] = (scale ? static_cast<S>(scale[l]) : S(1)) *
                                              static_cast<S>(blk.d(0, kx, l)) *
                                              static_cast<S>(blk.d(1, ky, l));
  }
}

// A window's rows m < count: a[row(m) + j] += coef[m * kLanes] * y[j] for
// j < Quads * kQuad, where row(m) = offset[m], or m * stride without offsets.
// y's quads are loaded once, into registers.
template <int Quads>
SOFTHIST_HD void add_quads(double* a, const int64_t* offset, int64_t stride, int64_t count,
                           const double* coef, const double* y) {
  typename ShortVecOf<kQuad>::type yq[Quads];
  for (int q = 0; q < Quads; ++q) __builtin_memcpy(&yq[q], y + q * kQuad, sizeof yq[q]);
  for (int64_t m = 0; m < count; ++m) {
    double* ar = a + (offset ? offset[m] : m * stride);
    const double s = coef[m * kLanes];
    for (int q = 0; q < Quads; ++q) add_at(ar + q * kQuad, s * yq[q]);
  }
}

template <int D, typename T, typename C>
SOFTHIST_CLONES void scatter_chunk_joint(const std::array<const T*, D>& x, const T* w, int64_t n,
                                         Block<D, T, C>& blk, const Layout<D>& lay, double* acc) {
  const int64_t last = blk.span(D - 1);
  // From the aligned quad at or before a window's first bin, unless that
  // takes more quads than from the bin itself.
  const bool aligned = quad_width(last) <= row_width(last);
  const int64_t width = aligned ? quad_width(last) : row_width(last);
  const std::vector<int64_t> offset = outer_offsets(blk, lay);
  const int64_t count = static_cast<int64_t>(offset.size());
  // Each lane's masses with a quad of zeros before them and enough after.
  const int64_t stride = kQuad + width;
  std::vector<double> rows(static_cast<size_t>(kLanes * stride)), coef(count * kLanes);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    std::array<const T*, D> xs;
    for (int a = 0; a < D; ++a) xs[a] = x[a] + i0;
    blk.load(xs, w ? w + i0 : nullptr, n - i0);
    outer_coefs(blk, blk.scale, coef.data());
    transpose_last(blk, stride, rows.data() + kQuad);
    for (int l = 0; l < kLanes; ++l) {
      if (blk.scale[l] == 0) continue;
      const int64_t o = lay.offset(blk.first, l), shift = aligned ? o % kQuad : 0;
      const double* yl = rows.data() + l * stride + kQuad;
      double* a = acc + o;
      // The padding holds zeros, but bins past the window may lie there: a
      // NaN or infinite weight must not turn them into 0 * inf = NaN.
      if (!std::isfinite(blk.scale[l])) {
        for (int64_t m = 0; m < count; ++m)
          for (int64_t j = 0; j < last; ++j) a[offset[m] + j] += coef[m * kLanes + l] * yl[j];
        continue;
      }
      // (Two axes: the rows are evenly spaced; no offset to load.)
      const int64_t* row_offsets = D == 2 ? nullptr : offset.data();
      const double* cl = coef.data() + l;
      switch (width) {  // (quads in registers, unlike a loop of run-time length)
        case 4: add_quads<1>(a - shift, row_offsets, lay.stride[0], count, cl, yl - shift); break;
        case 8: add_quads<2>(a - shift, row_offsets, lay.stride[0], count, cl, yl - shift); break;
        case 12: add_quads<3>(a - shift, row_offsets, lay.stride[0], count, cl, yl - shift); break;
        case 16: add_quads<4>(a - shift, row_offsets, lay.stride[0], count, cl, yl - shift); break;
        default:
          for (int64_t j0 = 0; j0 < width; j0 += kQuad)
            add_quads<1>(a - shift + j0, row_offsets, lay.stride[0], count, cl, yl - shift + j0);
      }
    }
  }
}

// h is padded like the partials of the scatter (zeros in the padding).
template <int D, typename T, typename C>
SOFTHIST_CLONES void gather_chunk_joint(const std::array<const T*, D>& x, const C* h, int64_t n,
                                        Block<D, T, C>& blk, const Layout<D>& lay, double factor,
                                        T* out) {
  const int64_t last = blk.span(D - 1), width = row_width(last);
  const std::vector<int64_t> offset = outer_offsets(blk, lay);
  const int64_t count = static_cast<int64_t>(offset.size());
  std::vector<C> rows(static_cast<size_t>(kLanes * width)), coef(count * kLanes);
  constexpr int64_t V = kVecLen<C>;
  static_assert(kRow % V == 0, "rows are padded to whole vectors");
  RowVec<C> column;  // j - j0
  for (int64_t j = 0; j < V; ++j) column[j] = static_cast<C>(j);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    std::array<const T*, D> xs;
    for (int a = 0; a < D; ++a) xs[a] = x[a] + i0;
    blk.load(xs, nullptr, n - i0);
    // (Two axes: the coefficients are the first axis's masses themselves.)
    if constexpr (D > 2) outer_coefs(blk, static_cast<const double*>(nullptr), coef.data());
    transpose_last(blk, width, rows.data());
    const int64_t m_lanes = std::min<int64_t>(kLanes, n - i0);
    for (int l0 = 0; l0 < m_lanes; l0 += V) {
      // sum_j d_last(j) sum_m coef_m h[row m][j] for V lanes at once, a
      // vector of columns at a time, in registers: the lanes' sums over m
      // interleaved, as independent chains, where one lane's would wait on
      // each add in turn. A lane that reaches no bin reads row 0 (inside the
      // histogram) and is zeroed at the end.
      const C* h0[V];
      bool live[V];
      for (int i = 0; i < V; ++i) {
        const int l = l0 + i;
        live[i] = l < m_lanes && blk.scale[l] != 0;
        h0[i] = live[i] ? h + lay.offset(blk.first, l) : h;
      }
      RowVec<C> sums[V] = {};  // lane l0 + i's sum: that of sums[i]'s elements
      for (int64_t j0 = 0; j0 < width; j0 += V) {
        RowVec<C> col[V] = {};
        for (int64_t m = 0; m < count; ++m) {
          const int64_t row = (D == 2 ? m * lay.stride[0] : offset[m]) + j0;
          const C* c = D == 2 ? &blk.v[0][m * kLanes + l0] : &coef[m * kLanes + l0];
          for (int i = 0; i < V; ++i) col[i] += c[i] * row_at(h0[i] + row);
        }
        // Columns past the window read bins outside it, which may hold
        // NaN or inf: masked, not multiplied by their zero mass.
        const auto inside = column + static_cast<C>(j0) < static_cast<C>(last);
        for (int i = 0; i < V; ++i)
          sums[i] += inside ? col[i] * row_at(rows.data() + (l0 + i) * width + j0) : RowVec<C>{};
      }
      for (int i = 0; i < V; ++i)
        if (!live[i]) sums[i] = RowVec<C>{};
      lane_totals<C>(sums);
      for (int i = 0; i < V && l0 + i < m_lanes; ++i)
        out[i0 + l0 + i] = static_cast<T>(static_cast<double>(sums[0][i]) * factor);
    }
  }
}

// ---------------------------------------------------------------- hard

// The hard kernel: exact counts, as torch.histc counts each coordinate.
template <int D, typename T>
bool hard_offset(const std::array<const T*, D>& x, int64_t i, const Window* win,
                 const Layout<D>& lay, int64_t& offset) {
  offset = 0;
  for (int a = 0; a < D; ++a) {
    int64_t b;
    if (!win[a].template bin_of<T>(static_cast<double>(x[a][i]), b)) return false;
    offset += b * lay.stride[a];
  }
  return true;
}

template <int D, typename T>
void scatter_chunk_hard(const std::array<const T*, D>& x, const T* w, int64_t n,
                        const Window* win, const Layout<D>& lay, double* acc) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t o;
    if (hard_offset<D>(x, i, win, lay, o)) acc[o] += w ? static_cast<double>(w[i]) : 1.0;
  }
}

template <int D, typename T, typename C>
void gather_chunk_hard(const std::array<const T*, D>& x, const C* h, int64_t n,
                       const Window* win, const Layout<D>& lay, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t o;
    out[i] = static_cast<T>(hard_offset<D>(x, i, win, lay, o) ? h[o] : C(0));
  }
}

// ---------------------------------------------------------------- ops

// [lo, hi] of the finite values of p[0, m) (lo > hi when there are none), in
// the compute type C (exact: C holds every value of T), for the clone's ISA.
template <typename T, typename C>
SOFTHIST_CLONES void finite_min_max(const T* p, int64_t m, C& lo, C& hi) {
  C l = INFINITY, h = -INFINITY;
#pragma omp simd reduction(min : l) reduction(max : h)
  for (int64_t i = 0; i < m; ++i) {
    const C v = static_cast<C>(p[i]);
    const bool finite = v - v == 0;  // false for NaN and +-inf
    l = std::min(l, finite ? v : C(INFINITY));
    h = std::max(h, finite ? v : C(-INFINITY));
  }
  lo = l;
  hi = h;
}

// [lo, hi] of the finite values of x[0, n) (lo > hi when there are none):
// blocks in parallel.
template <typename T, typename C>
void finite_range(const T* x, int64_t n, double& lo, double& hi) {
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<C> block_lo(blocks), block_hi(blocks);
  torch::stable::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      finite_min_max(x + b * kBlock, std::min(kBlock, n - b * kBlock), block_lo[b], block_hi[b]);
  });
  for (int64_t b = 0; b < blocks; ++b) {
    lo = std::min(lo, static_cast<double>(block_lo[b]));
    hi = std::max(hi, static_cast<double>(block_hi[b]));
  }
}

Tensor params_cpu(const Tensor& input, int64_t bins, double min, double max,
                  std::optional<double> kappa, std::string kernel_name, bool conserve_mass) {
  const RangeArgs args =
      range_args(input, bins, min, max, kappa, parse_kernel(kernel_name), conserve_mass);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  if (min == max && input.numel() > 0) {
    const Tensor x = torch::stable::contiguous(input);
    dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
      finite_range<decltype(tag), decltype(ctag)>(x.const_data_ptr<decltype(tag)>(), x.numel(),
                                                  lo, hi);
    });
  }
  Tensor out = torch::stable::empty({kParamsSize}, ScalarType::Double, std::nullopt,
                                    input.device());
  resolve_range(args, lo, hi, out.mutable_data_ptr<double>());
  return out;
}

// What an op of D axes works on: contiguous coordinates, windows and layout.
template <int D, typename T, typename C>
struct Axes {
  std::array<const T*, D> x;
  std::array<Window, D> win;
  Layout<D> lay;
  double factor;  // prod kappa_a^order_a: window values are in units of kappa
  std::array<ExplicitIndex<C>, D> index;  // what explicit windows point to

  // Axis a's window from params row a: over even bins, or explicit edges
  // (even ones as even bins: the same histogram, faster).
  Axes(const std::vector<Tensor>& coords, const Tensor& params, const Problem& pb,
       Kernel kernel) {
    factor = 1;
    for (int a = 0; a < D; ++a) {
      const double* row = params.const_data_ptr<double>() + a * params.size(1);
      const int64_t bins = pb.bins[a];
      const double* e = row + kParamsSize;
      x[a] = coords[a].const_data_ptr<T>();
      if (!has_explicit_edges(params))
        win[a] = Window::make<C, T>(kernel, row[0], row[1], row[2], bins, row[3] != 0);
      else if (evenly_spaced<T>(e, bins))
        win[a] = Window::make<C, T>(kernel, e[0], e[bins], row[2], bins, row[3] != 0);
      else
        win[a] = explicit_window<C, T>(kernel, row, bins, index[a]);
      factor *= std::pow(row[2], static_cast<double>(pb.orders[a]));
    }
    lay = Layout<D>::of(win.data(), pb);
  }
  std::array<const T*, D> at(int64_t i) const {
    std::array<const T*, D> xs;
    for (int a = 0; a < D; ++a) xs[a] = x[a] + i;
    return xs;
  }
};

// Scatter's work item i: chunk i % chunks of row i / chunks, as its first
// sample and its number of samples (rows of n).
inline void chunk_bounds(int64_t i, int64_t chunks, int64_t n, int64_t& begin, int64_t& count) {
  const int64_t row = i / chunks, ci = i % chunks;
  begin = row * n + n * ci / chunks;
  count = row * n + n * (ci + 1) / chunks - begin;
}

// `lines` lines of `last` values in C, each padded with zeros to `stride`
// (into `size` values), as the scatter's partials are: the gathers' histogram.
template <typename C, typename T>
std::vector<C> padded_rows(const T* hist, int64_t lines, int64_t last, int64_t stride,
                           int64_t size) {
  std::vector<C> h(static_cast<size_t>(size), C(0));
  for (int64_t r = 0; r < lines; ++r)
    for (int64_t b = 0; b < last; ++b) h[r * stride + b] = static_cast<C>(hist[r * last + b]);
  return h;
}

// out[row, outer, j] = factor * sum over chunks of partial[row, chunk, outer
// row, j], in chunk order, dropping the rows' padding.
template <typename T>
void merge_partials(const double* partial, int64_t rows, int64_t chunks,
                    int64_t size, int64_t total_bins, int64_t last_bins, int64_t pad,
                    double factor, T* out) {
  torch::stable::parallel_for(0, rows * total_bins, 4096, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t row = j / total_bins, b = j % total_bins;
      const double* p =
          partial + row * chunks * size + b / last_bins * (last_bins + pad) + b % last_bins;
      double s = 0;
      for (int64_t ci = 0; ci < chunks; ++ci) s += p[ci * size];
      out[j] = static_cast<T>(s * factor);
    }
  });
}

// Slots per row of the histogram (bins, or edges on the axes at their edges).
int64_t total_slots(const Problem& pb) {
  int64_t total = 1;
  for (int64_t a = 0; a < pb.axes; ++a) total *= pb.slots(a);
  return total;
}

// Chunks per row for the pieces: of at least 16 grids' size of samples, since
// each zeroes and merges one.
inline int64_t pieces_chunks(int64_t n, int64_t rows, int64_t size) {
  return chunks_per_row(n, rows, 8 * size);
}

// Each row's moments (partial: `chunks` per row) and directly added slots
// (`direct`, one per chunk, most empty), summed in chunk order:
// f(row, moments, added).
template <typename F>
void merge_pieces(const ChebyshevGrid& grid, const double* partial,
                  const std::vector<std::vector<double>>& direct, int64_t rows, int64_t chunks,
                  const F& f) {
  const int64_t size = grid.size(), slots = grid.slots;
  torch::stable::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> moments(static_cast<size_t>(size)), added(static_cast<size_t>(slots));
    for (int64_t r = r0; r < r1; ++r) {
      std::fill(moments.begin(), moments.end(), 0.0);
      std::fill(added.begin(), added.end(), 0.0);
      for (int64_t ci = 0; ci < chunks; ++ci) {
        const double* p = partial + (r * chunks + ci) * size;
        for (int64_t j = 0; j < size; ++j) moments[j] += p[j];
        const std::vector<double>& d = direct[r * chunks + ci];
        if (!d.empty())
          for (int64_t j = 0; j < slots; ++j) added[j] += d[j];
      }
      f(r, moments.data(), added.data());
    }
  });
}

// A pass's moments: each chunk's (partial, `chunks` per row), and its blocks
// added by their windows (direct, most empty).
struct PieceMoments {
  AlignedZeros<double> partial;
  std::vector<std::vector<double>> direct;
  int64_t chunks;

  bool any_direct() const {
    for (const std::vector<double>& d : direct)
      if (!d.empty()) return true;
    return false;
  }
};

// (With pieces: each sample's place too, save_places's.)
template <typename T, typename C>
PieceMoments piece_moments(const T* x, const T* w, const Window& win, Kernel kernel,
                           int64_t order, const ChebyshevGrid& grid, int64_t n, int64_t rows,
                           int32_t* pieces = nullptr, C* deltas = nullptr) {
  const RuntimeValues<C> values(win, kernel, order);
  const int64_t size = grid.size(), chunks = pieces_chunks(n, rows, size);
  PieceMoments pm{AlignedZeros<double>(rows * chunks * size),
                  std::vector<std::vector<double>>(static_cast<size_t>(rows * chunks)), chunks};
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      dispatch_pieces<C>(grid.terms, win.open_ends, [&](auto terms, auto open) {
        scatter_pieces_chunk<decltype(terms)::value, decltype(open)::value, T, C>(
            x + b, w ? w + b : nullptr, m, win, grid, values, pm.partial.data + i * size,
            pm.direct[i], pieces ? pieces + b : nullptr, deltas ? deltas + b : nullptr);
      });
    }
  });
  return pm;
}

// Where scatter_places keeps the samples' places (save_places's), and
// whether it did.
template <typename C>
struct Places {
  int32_t* pieces;
  C* deltas;
  bool kept = false;
};

// scatter_axes for one axis by Chebyshev moments: each chunk's, merged. With
// places, over uneven pieces (explicit edges, a compact kernel), where
// locating a sample costs about as much as the rest of its pass, each
// sample's place too: their cuts are the kernel's knots whatever the order,
// so the backward's grid (order 1) has the same pieces.
template <typename T, typename C>
void scatter_pieces(const T* x, const T* w, const Window& win, Kernel kernel, int64_t order,
                    bool at_edges, int64_t n, int64_t rows, double factor, T* out,
                    Places<C>* places = nullptr) {
  const ChebyshevGrid grid = chebyshev_grid_of<C, T>(kernel, order, win, at_edges);
  const bool keep = places && !grid.cuts.empty();
  if (keep) places->kept = true;
  const PieceMoments pm = piece_moments<T, C>(x, w, win, kernel, order, grid, n, rows,
                                              keep ? places->pieces : nullptr,
                                              keep ? places->deltas : nullptr);
  merge_pieces(grid, pm.partial.data, pm.direct, rows, pm.chunks,
               [&](int64_t r, const double* moments, const double* added) {
                 to_slots(grid, moments, added, factor, out + r * grid.slots);
               });
}

// Each row's coefficients of sum_j h_j D(., j) per piece (hist: rows of
// grid.slots values), and 8 zeros after them (rows_of8 reads 8 terms of a
// piece of 4).
template <typename T, typename C>
AlignedZeros<C> piece_coefficients(const ChebyshevGrid& grid, const T* hist, int64_t rows) {
  const int64_t size = grid.size();
  AlignedZeros<C> g(rows * size + 8);
  torch::stable::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> acc(static_cast<size_t>(size));
    for (int64_t r = r0; r < r1; ++r)
      from_slots(grid, hist + r * grid.slots, acc.data(), g.data + r * size);
  });
  return g;
}

// gather_axes for one axis by Chebyshev coefficients, evaluated at each
// sample (located, or at its place in `pieces`: save_places's, which must
// lie in the grid: else it says so).
template <typename T, typename C>
void gather_pieces(const T* x, const T* hist, const Window& win, Kernel kernel, int64_t order,
                   bool at_edges, int64_t n, int64_t rows, double factor, T* out,
                   const int32_t* pieces = nullptr, const C* deltas = nullptr) {
  const ChebyshevGrid grid = chebyshev_grid_of<C, T>(kernel, order, win, at_edges);
  const int64_t size = grid.size();
  const AlignedZeros<C> g = piece_coefficients<T, C>(grid, hist, rows);
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  std::atomic<bool> in_grid{true};
  torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
      const int64_t m = std::min(b + kGatherBlock, (row + 1) * n) - b;
      dispatch_pieces<C>(grid.terms, win.open_ends, [&](auto terms, auto open) {
        if (!gather_pieces_chunk<decltype(terms)::value, decltype(open)::value, T, C>(
                x + b, g.data + row * size, m, win, grid, factor, out + b,
                pieces ? pieces + b : nullptr, deltas ? deltas + b : nullptr))
          in_grid = false;
      });
    }
  });
  SOFTHIST_CHECK(in_grid, "softhist: gather_at_places's pieces must be scatter_places's over the "
                 "same params and kernel: some lie outside its ", grid.count, " pieces");
}

// pair_axes by Chebyshev pieces: the edge sums merged as scatter_pieces's,
// the gather's coefficients from coef as gather_pieces's.
template <typename T, typename C>
void pair_pieces(const T* x, const T* w, const T* coef, const C* h, int64_t h_stride,
                 const Window& win, Kernel kernel, int64_t order, int64_t n, int64_t rows,
                 double factor, double e0, T* gathered, T* scattered, double* moment) {
  const ChebyshevGrid grid = chebyshev_grid_of<C, T>(kernel, order, win, true);
  const RuntimeValues<C> values(win, kernel, order);
  const int64_t size = grid.size(), chunks = pieces_chunks(n, rows, size);
  const AlignedZeros<C> g = piece_coefficients<T, C>(grid, coef, rows);
  const AlignedZeros partial(rows * chunks * size);
  std::vector<std::vector<double>> direct(static_cast<size_t>(rows * chunks));
  std::vector<double> moments(static_cast<size_t>(rows * chunks), 0.0);
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      const int64_t row = i / chunks;
      dispatch_pieces<C>(grid.terms, win.open_ends, [&](auto terms, auto open) {
        pair_pieces_chunk<decltype(terms)::value, decltype(open)::value, T, C>(
            x + b, w ? w + b : nullptr, g.data + row * size, h + row * h_stride, m, win, grid,
            values, factor, e0, gathered + b, partial.data + i * size, direct[i], moments[i]);
      });
    }
  });
  merge_pieces(grid, partial.data, direct, rows, chunks,
               [&](int64_t r, const double* moments, const double* added) {
                 to_slots(grid, moments, added, factor, scattered + r * grid.slots);
               });
  double sum = 0;
  for (double mi : moments) sum += mi;
  *moment = sum;
}

// (With places: scatter_places's, scatter_pieces's.)
template <int D, typename T, typename C>
void scatter_axes(const std::vector<Tensor>& coords, const T* w, const Tensor& params,
                  const Problem& pb, Kernel kernel, T* out, Places<C>* places = nullptr) {
  const Axes<D, T, C> ax(coords, params, pb, kernel);
  const int64_t n = pb.n, rows = pb.rows, size = ax.lay.size;
  if (D == 1 && chebyshev_pays<C, T>(kernel, ax.win[0], pb.orders[0], pb.at_edges[0], n))
    return scatter_pieces<T, C>(ax.x[0], w, ax.win[0], kernel, pb.orders[0], pb.at_edges[0], n,
                                rows, ax.factor, out, places);
  const int64_t chunks = chunks_per_row(n, rows, size);
  const AlignedZeros partial(rows * chunks * size);
  // Work item i: chunk i % chunks of row i / chunks, into partial[i].
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    std::optional<Block<D, T, C>> blk;
    if (D > 1 && kernel != Kernel::Hard) blk.emplace(ax.win.data(), kernel, pb);
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      const T* ws = w ? w + b : nullptr;
      double* acc = partial.data + i * size;
      if (kernel == Kernel::Hard) {
        scatter_chunk_hard<D>(ax.at(b), ws, m, ax.win.data(), ax.lay, acc);
      } else if (D == 1 && (pb.at_edges[0] || ax.win[0].at)) {
        const RuntimeValues<C> values(ax.win[0], kernel, pb.orders[0]);
        if (pb.at_edges[0])
          runtime_scatter_chunk<true, T, C>(ax.x[0] + b, ws, m, ax.win[0], values, acc);
        else
          runtime_scatter_chunk<false, T, C>(ax.x[0] + b, ws, m, ax.win[0], values, acc);
      } else if constexpr (D == 1) {
        dispatch_smooth(kernel, pb.orders[0], [&](auto k, auto ord) {
          dispatch_bool(ax.win[0].open_ends, [&](auto open) {
            scatter_chunk_1d<decltype(k)::value, decltype(ord)::value, decltype(open)::value, T,
                             C>(ax.x[0] + b, ws, m, ax.win[0], acc);
          });
        });
      } else {
        scatter_chunk_joint<D>(ax.at(b), ws, m, *blk, ax.lay, acc);
      }
    }
  });
  merge_partials(partial.data, rows, chunks, size, total_slots(pb), pb.slots(D - 1), ax.lay.pad,
                 ax.factor, out);
}

template <int D, typename T, typename C>
void gather_axes(const std::vector<Tensor>& coords, const T* hist, const Tensor& params,
                 const Problem& pb, Kernel kernel, T* out) {
  const Axes<D, T, C> ax(coords, params, pb, kernel);
  const int64_t n = pb.n, rows = pb.rows, size = ax.lay.size;
  if (D == 1 && chebyshev_pays<C, T>(kernel, ax.win[0], pb.orders[0], pb.at_edges[0], n))
    return gather_pieces<T, C>(ax.x[0], hist, ax.win[0], kernel, pb.orders[0], pb.at_edges[0], n,
                               rows, ax.factor, out);
  const int64_t last = pb.slots(D - 1), stride = last + ax.lay.pad, total = total_slots(pb);
  const std::vector<C> h = padded_rows<C>(hist, rows * (total / last), last, stride, rows * size);
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  // Work item i: block i % blocks of row i / blocks.
  torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
    std::optional<Block<D, T, C>> blk;
    if (D > 1 && kernel != Kernel::Hard) blk.emplace(ax.win.data(), kernel, pb);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
      const int64_t m = std::min(b + kGatherBlock, (row + 1) * n) - b;
      const C* hr = h.data() + row * size;
      if (kernel == Kernel::Hard) {
        gather_chunk_hard<D>(ax.at(b), hr, m, ax.win.data(), ax.lay, out + b);
      } else if (D == 1 && (pb.at_edges[0] || ax.win[0].at || kernel == Kernel::Logistic)) {
        // (the logistic kernel's window values come cheaper all at once, one
        // exp per sample, than where they are summed, one per edge)
        const RuntimeValues<C> values(ax.win[0], kernel, pb.orders[0]);
        if (pb.at_edges[0])
          runtime_gather_chunk<true, T, C>(ax.x[0] + b, hr, m, ax.win[0], values, ax.factor,
                                           out + b);
        else
          runtime_gather_chunk<false, T, C>(ax.x[0] + b, hr, m, ax.win[0], values, ax.factor,
                                            out + b);
      } else if constexpr (D == 1) {
        dispatch_smooth(kernel, pb.orders[0], [&](auto k, auto ord) {
          dispatch_bool(ax.win[0].open_ends, [&](auto open) {
            gather_chunk_1d<decltype(k)::value, decltype(ord)::value, decltype(open)::value, T,
                            C>(ax.x[0] + b, hr, m, ax.win[0], ax.factor, out + b);
          });
        });
      } else {
        gather_chunk_joint<D>(ax.at(b), hr, m, *blk, ax.lay, ax.factor, out + b);
      }
    }
  });
}

// edge_gather_scatter's pass (one axis at its edges): scattered as
// scatter_axes, gathered as gather_axes, moment
// as runtime_pair_chunk's, chunk partials merged in order.
template <typename T, typename C>
void pair_axes(const Tensor& x, const T* w, const T* coef, const Tensor& params,
               const Problem& pb, Kernel kernel, T* gathered, T* scattered, double* moment) {
  const Axes<1, T, C> ax({x}, params, pb, kernel);
  const int64_t n = pb.n, rows = pb.rows, last = pb.slots(0), size = ax.lay.size;
  const std::vector<C> h = padded_rows<C>(coef, rows, last, size, rows * size);
  const double* p = params.const_data_ptr<double>();
  const double e0 = has_explicit_edges(params) ? p[kParamsSize] : p[0];
  if (chebyshev_pays<C, T>(kernel, ax.win[0], pb.orders[0], true, n))
    return pair_pieces<T, C>(ax.x[0], w, coef, h.data(), size, ax.win[0], kernel, pb.orders[0], n,
                             rows, ax.factor, e0, gathered, scattered, moment);
  const int64_t chunks = chunks_per_row(n, rows, size);
  std::vector<double> partial(static_cast<size_t>(rows * chunks * size));
  std::vector<double> moments(static_cast<size_t>(rows * chunks), 0.0);
  const RuntimeValues<C> values(ax.win[0], kernel, pb.orders[0]);
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      runtime_pair_chunk<T, C>(ax.x[0] + b, w ? w + b : nullptr, h.data() + i / chunks * size, m,
                               ax.win[0], values, ax.factor, e0, gathered + b,
                               partial.data() + i * size, moments[i]);
    }
  });
  merge_partials(partial.data(), rows, chunks, size, last, last, ax.lay.pad, ax.factor, scattered);
  double sum = 0;
  for (double mi : moments) sum += mi;
  *moment = sum;
}

// scatter_edge_sums: the histogram (scatter at order 0), and over pieces each
// row's sums at its edges (rows of 2 * edges: the edge sums at order 1, then
// those with each sample's weight times x - e0), the histogram's own moments
// times the edges' tables. False where the windows run (or a weight is not
// finite, which no moment carries): there two sums would cost more than
// edge_gather_scatter's pass takes them for.
template <typename T, typename C>
bool edge_sums_axes(const Tensor& x, const T* w, const Tensor& params, const Problem& bins_pb,
                    const Problem& edges_pb, Kernel kernel, T* hist, double* sums) {
  const Axes<1, T, C> ax({x}, params, edges_pb, kernel);
  const Window& win = ax.win[0];
  const int64_t n = edges_pb.n, rows = edges_pb.rows, edges = edges_pb.slots(0);
  if (!chebyshev_pays<C, T>(kernel, win, 0, false, n) ||
      !chebyshev_pays<C, T>(kernel, win, 1, true, n)) {
    scatter_axes<1, T, C>({x}, w, params, bins_pb, kernel, hist);
    return false;
  }
  const double* p = params.const_data_ptr<double>();
  const double e0 = has_explicit_edges(params) ? p[kParamsSize] : p[0];
  // (The edges' tables read the histogram's moments: both grids take its terms.)
  const int64_t terms = chebyshev_terms<C>(kernel, 0);
  const ChebyshevGrid bins_grid = chebyshev_grid_of<C, T>(kernel, 0, win, false, terms);
  const ChebyshevGrid edges_grid = chebyshev_grid_of<C, T>(kernel, 1, win, true, terms);
  const PieceMoments pm = piece_moments<T, C>(ax.x[0], w, win, kernel, 0, bins_grid, n, rows);
  const bool taken = !pm.any_direct();
  merge_pieces(bins_grid, pm.partial.data, pm.direct, rows, pm.chunks,
               [&](int64_t r, const double* moments, const double* added) {
                 to_slots(bins_grid, moments, added, 1.0, hist + r * bins_grid.slots);
                 if (!taken) return;
                 std::vector<double> placed(static_cast<size_t>(edges_grid.size()));
                 const std::vector<double> zeros(static_cast<size_t>(edges));
                 double* s = sums + 2 * r * edges;
                 to_slots(edges_grid, moments, zeros.data(), ax.factor, s);
                 placed_moments(edges_grid, e0, moments, placed.data());
                 to_slots(edges_grid, placed.data(), zeros.data(), ax.factor, s + edges);
               });
  return taken;
}

// edge_gather_scatter given the sums scatter_edge_sums took (rows of 2 *
// edges): the gather alone (none without `gathered`); the edge sums are
// theirs, and the moment their placed sums against coef.
template <typename T, typename C>
void pair_from_sums(const Tensor& x, const T* coef, const Tensor& params, const Problem& pb,
                    Kernel kernel, const double* sums, T* gathered, T* scattered,
                    double* moment) {
  if (gathered) gather_axes<1, T, C>({x}, coef, params, pb, kernel, gathered);
  const int64_t edges = pb.slots(0);
  double sum = 0;
  for (int64_t r = 0; r < pb.rows; ++r)
    for (int64_t j = 0; j < edges; ++j) {
      scattered[r * edges + j] = static_cast<T>(sums[2 * r * edges + j]);
      sum += static_cast<double>(coef[r * edges + j]) * sums[(2 * r + 1) * edges + j];
    }
  *moment = sum;
}

// gather_at_places: gather_axes's at the samples' places (pieces and deltas,
// scatter_places's where it kept them), or gather_axes's itself.
template <typename T, typename C>
void gather_places_axes(const Tensor& x, const T* hist, const Tensor& params, const Problem& pb,
                        Kernel kernel, const int32_t* pieces, const C* deltas, T* out) {
  if (!pieces) return gather_axes<1, T, C>({x}, hist, params, pb, kernel, out);
  const Axes<1, T, C> ax({x}, params, pb, kernel);
  gather_pieces<T, C>(ax.x[0], hist, ax.win[0], kernel, pb.orders[0], false, pb.n, pb.rows,
                      ax.factor, out, pieces, deltas);
}

// f(std::integral_constant<int, D>) for the problem's number of axes.
template <typename F>
void dispatch_axes(int64_t axes, const F& f) {
  switch (axes) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
  }
}

std::optional<Tensor> contiguous_if(const std::optional<Tensor>& t) {
  return t.has_value() ? std::optional<Tensor>(torch::stable::contiguous(*t)) : std::nullopt;
}

// A 0-d bool on like's device (the ops' `taken`).
Tensor flag_like(const Tensor& like) {
  return torch::stable::empty(std::vector<int64_t>{}, ScalarType::Bool, std::nullopt,
                              like.device());
}

std::vector<Tensor> contiguous_all(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(torch::stable::contiguous(t));
  return out;
}

Tensor scatter_cpu(std::vector<Tensor> coords_in, const std::optional<Tensor>& weight,
                   const Tensor& params, std::vector<int64_t> bins, std::vector<int64_t> orders,
                   std::string kernel_name, std::vector<int64_t> edge_axes) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb =
      check_scatter_args(coords_in, weight, params, bins, orders, edge_axes, kernel);
  const std::vector<Tensor> coords = contiguous_all(coords_in);
  const std::optional<Tensor> wc = contiguous_if(weight);
  Tensor out = torch::stable::empty(with_last(coords[0], pb.all_slots()), coords[0].scalar_type(),
                                    std::nullopt, coords[0].device());
  dispatch_float(coords[0].scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const T* w = wc.has_value() ? wc->const_data_ptr<T>() : nullptr;
    dispatch_axes(pb.axes, [&](auto d) {
      scatter_axes<decltype(d)::value, T, C>(coords, w, params, pb, kernel,
                                             out.mutable_data_ptr<T>());
    });
  });
  return out;
}

Tensor gather_cpu(std::vector<Tensor> coords_in, const Tensor& hist, const Tensor& params,
                  std::vector<int64_t> orders, std::string kernel_name,
                  std::vector<int64_t> edge_axes) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb = check_gather_args(coords_in, hist, params, orders, edge_axes, kernel);
  const std::vector<Tensor> coords = contiguous_all(coords_in);
  const Tensor hc = torch::stable::contiguous(hist);
  Tensor out = torch::stable::empty_like(coords[0]);
  dispatch_float(coords[0].scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    dispatch_axes(pb.axes, [&](auto d) {
      gather_axes<decltype(d)::value, T, C>(coords, hc.const_data_ptr<T>(), params, pb, kernel,
                                            out.mutable_data_ptr<T>());
    });
  });
  return out;
}

std::tuple<Tensor, Tensor, Tensor> edge_gather_scatter_cpu(
    const Tensor& x_in, const std::optional<Tensor>& weight, const Tensor& coef,
    const Tensor& params, int64_t order, std::string kernel_name,
    const std::optional<Tensor>& sums, const std::optional<Tensor>& taken, bool gather) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb = check_edge_gather_scatter_args(x_in, weight, coef, params, order, kernel,
                                                    sums, taken);
  const bool from_sums = sums.has_value() && *taken->const_data_ptr<bool>();
  const Tensor sc = from_sums ? torch::stable::contiguous(*sums) : Tensor();
  const Tensor x = torch::stable::contiguous(x_in);
  const Tensor cc = torch::stable::contiguous(coef);
  const std::optional<Tensor> wc = contiguous_if(weight);
  // Without `gather`, the pass still gathers (into room of its own) where
  // there are no sums to take the moment from.
  Tensor gathered = gather ? torch::stable::empty_like(x)
                           : torch::stable::empty(std::vector<int64_t>{0}, x.scalar_type(),
                                                  std::nullopt, x.device());
  const Tensor room = gather || from_sums ? gathered : torch::stable::empty_like(x);
  Tensor scattered = torch::stable::empty(with_last(x, {pb.bins[0] + 1}), x.scalar_type(),
                                          std::nullopt, x.device());
  Tensor moment = torch::stable::empty(std::vector<int64_t>{}, ScalarType::Double, std::nullopt,
                                       x.device());
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    if (from_sums)
      return pair_from_sums<T, decltype(ctag)>(
          x, cc.const_data_ptr<T>(), params, pb, kernel, sc.const_data_ptr<double>(),
          gather ? gathered.mutable_data_ptr<T>() : nullptr, scattered.mutable_data_ptr<T>(),
          moment.mutable_data_ptr<double>());
    pair_axes<T, decltype(ctag)>(x, wc.has_value() ? wc->const_data_ptr<T>() : nullptr,
                                 cc.const_data_ptr<T>(), params, pb, kernel,
                                 room.mutable_data_ptr<T>(), scattered.mutable_data_ptr<T>(),
                                 moment.mutable_data_ptr<double>());
  });
  return {gathered, scattered, moment};
}

std::tuple<Tensor, Tensor, Tensor> scatter_edge_sums_cpu(const Tensor& x_in,
                                                 const std::optional<Tensor>& weight,
                                                 const Tensor& params, int64_t bins,
                                                 std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  const auto [bins_pb, edges_pb] = check_scatter_edge_sums_args(x_in, weight, params, bins, kernel);
  const Tensor x = torch::stable::contiguous(x_in);
  const std::optional<Tensor> wc = contiguous_if(weight);
  Tensor hist = torch::stable::empty(with_last(x, {bins}), x.scalar_type(), std::nullopt,
                                     x.device());
  Tensor sums = torch::stable::empty(with_last(x, {2, bins + 1}), ScalarType::Double,
                                     std::nullopt, x.device());
  std::fill_n(sums.mutable_data_ptr<double>(), sums.numel(), 0.0);  // (zeros, where not taken)
  Tensor taken = flag_like(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    *taken.mutable_data_ptr<bool>() = edge_sums_axes<T, decltype(ctag)>(
        x, wc.has_value() ? wc->const_data_ptr<T>() : nullptr, params, bins_pb, edges_pb, kernel,
        hist.mutable_data_ptr<T>(), sums.mutable_data_ptr<double>());
  });
  return {hist, sums, taken};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> scatter_places_cpu(const Tensor& x_in,
                                                              const std::optional<Tensor>& weight,
                                                              const Tensor& params, int64_t bins,
                                                              std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb = check_scatter_args({x_in}, weight, params, {bins}, {0}, {}, kernel);
  const Tensor x = torch::stable::contiguous(x_in);
  const std::optional<Tensor> wc = contiguous_if(weight);
  Tensor hist = torch::stable::empty(with_last(x, {bins}), x.scalar_type(), std::nullopt,
                                     x.device());
  Tensor pieces = torch::stable::empty(shape_of(x), ScalarType::Int, std::nullopt, x.device());
  Tensor deltas, taken = flag_like(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    deltas = torch::stable::empty(shape_of(x), delta_type(x.scalar_type()), std::nullopt,
                                  x.device());
    Places<C> places{pieces.mutable_data_ptr<int32_t>(),
                     static_cast<C*>(deltas.mutable_data_ptr())};
    scatter_axes<1, T, C>({x}, wc.has_value() ? wc->const_data_ptr<T>() : nullptr, params, pb,
                          kernel, hist.mutable_data_ptr<T>(), &places);
    *taken.mutable_data_ptr<bool>() = places.kept;
  });
  return {hist, pieces, deltas, taken};
}

Tensor gather_at_places_cpu(const Tensor& x_in, const Tensor& hist, const Tensor& params,
                            int64_t order, std::string kernel_name, const Tensor& pieces_in,
                            const Tensor& deltas_in, const Tensor& taken) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb =
      check_gather_at_places_args(x_in, hist, params, order, kernel, pieces_in, deltas_in, taken);
  const bool kept = *taken.const_data_ptr<bool>();
  const Tensor x = torch::stable::contiguous(x_in);
  const Tensor hc = torch::stable::contiguous(hist);
  const Tensor pieces = kept ? torch::stable::contiguous(pieces_in) : Tensor();
  const Tensor deltas = kept ? torch::stable::contiguous(deltas_in) : Tensor();
  Tensor out = torch::stable::empty_like(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    gather_places_axes<T, C>(x, hc.const_data_ptr<T>(), params, pb, kernel,
                             kept ? pieces.const_data_ptr<int32_t>() : nullptr,
                             kept ? static_cast<const C*>(deltas.const_data_ptr()) : nullptr,
                             out.mutable_data_ptr<T>());
  });
  return out;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(softhist, CPU, m) {
  m.impl("params", TORCH_BOX(&params_cpu));
  m.impl("scatter", TORCH_BOX(&scatter_cpu));
  m.impl("gather", TORCH_BOX(&gather_cpu));
  m.impl("edge_gather_scatter", TORCH_BOX(&edge_gather_scatter_cpu));
  m.impl("scatter_edge_sums", TORCH_BOX(&scatter_edge_sums_cpu));
  m.impl("scatter_places", TORCH_BOX(&scatter_places_cpu));
  m.impl("gather_at_places", TORCH_BOX(&gather_at_places_cpu));
}

}  // namespace softhist::cpu
