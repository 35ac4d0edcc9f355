// One axis by Chebyshev pieces (chebyshev.h): each sample's place in its
// piece, its polynomials added into the piece's moments (scatter) or the
// piece's coefficients summed at it (gather); per chunk of samples.
#pragma once

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

#include "chebyshev.h"
#include "common.h"
#include "windows_1d.h"

namespace softhist::cpu {
namespace {

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
// chebyshev_grid's size (count, with pad = ceil(reach) + 2, times terms), in
// double: a wide kernel's reach may pass any integer.
template <typename C>
double even_grid_size(Kernel kernel, const Window& frame, int64_t order, bool fine) {
  return static_cast<double>(pieces_per_bin<C>(kernel, frame.c, fine)) *
         (static_cast<double>(frame.bins) + 2 * std::ceil(frame.reach) + 4) *
         static_cast<double>(chebyshev_terms<C>(kernel, order, fine));
}
template <typename C, typename T>
bool chebyshev_pays(Kernel kernel, const Window& win, int64_t order, bool at_edges, int64_t n,
                    bool fine = false) {
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
  const double per_bin = static_cast<double>(pieces_per_bin<C>(kernel, frame.c, fine));
  const double bins = static_cast<double>(frame.bins);
  const double terms = static_cast<double>(chebyshev_terms<C>(kernel, order, fine));
  const double size = even_grid_size<C>(kernel, frame, order, fine);
  // Explicit edges' tables: per slot, the pieces its kernel reaches.
  const double tables =
      win.at ? ((bins + 1) * (2 * per_bin * frame.reach + 4) + per_bin * bins) * terms : 0.0;
  return per_bin > 0 && size + tables <= static_cast<double>(n) && size < 0x1p30;
}

// Chunks per row for the pieces: of at least `grids` grids' size of samples
// (the fine pieces' larger grid 4), since each zeroes and merges one.
constexpr int64_t kGridsPerChunk = 16, kFineGridsPerChunk = 4;
inline int64_t pieces_chunks(int64_t n, int64_t rows, int64_t size,
                             int64_t grids = kGridsPerChunk) {
  return chunks_per_row(n, rows, grids / 2 * size);
}

// Whether a row's bins take the fine pieces (chebyshev.h): double compute, a
// smooth kernel over even bins, and each row long enough for kFineChunks
// chunks of their larger grid, so that threads still share its samples
// (fixed by the input's size, as the chunks are, so that results do not
// depend on the thread count); many short rows, each zeroing and reading a
// grid of its own, keep the coarse pieces. So do its edges (the params'
// gradients, whose edge sums share the bins' moments).
constexpr int64_t kFineChunks = 8;
template <typename C, typename T>
bool fine_pieces_pay(Kernel kernel, const Window& win, int64_t order, bool at_edges, int64_t n,
                     int64_t rows) {
  if (sizeof(C) != 8 || at_edges || win.at ||
      (kernel != Kernel::Logistic && kernel != Kernel::Gaussian) ||
      !chebyshev_pays<C, T>(kernel, win, order, at_edges, n, true))
    return false;
  // (chebyshev_pays above bounds the size by n)
  const auto size = static_cast<int64_t>(even_grid_size<C>(kernel, win, order, true));
  return pieces_chunks(n, rows, size, kFineGridsPerChunk) >= kFineChunks;
}

// terms: chebyshev_terms's for `order` where 0; moments scattered for one
// order and read by another's grid need both grids to take the same.
template <typename C, typename T>
ChebyshevGrid chebyshev_grid_of(Kernel kernel, int64_t order, const Window& win, bool at_edges,
                                int64_t terms = 0, bool fine = false) {
  if (terms == 0) terms = chebyshev_terms<C>(kernel, order, fine);
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
                                     pieces_per_bin<C>(kernel, frame.c, fine), sat);
    }
  });
  g.fine = fine;
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
// piece's moments (`per_piece` per piece: grid.terms where 0), delta[l] in
// [-1, 1), and scale as locate_block's.
template <bool OpenEnds, typename T, typename C>
SOFTHIST_HD void locate_pieces(const T* x, const T* w, int64_t n, const Window& win,
                               const ChebyshevGrid& grid, int32_t* first, C* delta,
                               double* scale, int32_t per_piece = 0) {
  if (!grid.cuts.empty()) return locate_cuts<OpenEnds>(x, w, n, win, grid, first, delta, scale);
  T x_tail[kLanes], w_tail[kLanes];
  pad_block(n, x, w, x_tail, w_tail);
  const double lo = win.lo, inv_width = win.inv_width, reach = win.reach;
  const double hi = static_cast<double>(win.bins) + reach;
  const double in_lo = win.in_lo, in_hi = win.in_hi;
  const double pad = static_cast<double>(grid.pad), per_bin = static_cast<double>(grid.per_bin);
  const double terms = per_piece ? per_piece : static_cast<double>(grid.terms);
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double xd = static_cast<double>(x[l]);
    const double u = (xd - lo) * inv_width;
    bool alive = u >= -reach && u < hi;  // false for NaN
    if constexpr (OpenEnds) alive = alive && xd >= in_lo && xd <= in_hi;
    const double at = alive ? (u + pad) * per_bin : 0.0;  // >= 0: pad > reach
    const double piece = __builtin_trunc(at);  // (an int's round trip would not vectorise)
    first[l] = static_cast<int32_t>(piece * terms);  // (exact; no integer multiply)
    delta[l] = static_cast<C>(2.0 * (at - piece) - 1.0);
    scale[l] = alive ? (w ? static_cast<double>(w[l]) : 1.0) : 0.0;
  }
}

// acc[l] = sum_m g[first[l] + m] * T_m(delta[l]), by Clenshaw's recurrence
// (b_m = g_m + 2 delta b_(m+1) - b_(m+2), the sum g_0 + delta b_1 - b_2;
// stable on [-1, 1]): each 8 (or 16: V) lanes' terms, 8 at a time from the
// last, are transposed in registers and summed there, with no rows of T_m to
// store and read back. g must hold 7 values past every piece's terms.
template <int Terms, typename V, typename C>
SOFTHIST_HD void chebyshev_sums_as(const C* g, const int32_t* first, const C* delta, C* acc) {
  for (int l0 = 0; l0 < kLanes; l0 += static_cast<int>(sizeof(V) / sizeof(C))) {
    V d, b1 = {}, b2 = {}, r[8];
    load_lanes(d, delta + l0);
    const V twice = d + d;
    for (int k0 = (Terms - 1) / 8 * 8; k0 >= 0; k0 -= 8) {
      load_rows8(r, g, first, l0, k0);
      transpose8(r);
      for (int k = std::min(7, Terms - 1 - k0); k >= (k0 == 0 ? 1 : 0); --k) {
        const V b = twice * b1 + (r[k] - b2);  // (one multiply-add on the chain)
        b2 = b1;
        b1 = b;
      }
    }
    store_lanes(acc + l0, r[0] + d * b1 - b2);  // (r: terms 0 .. 7)
  }
}
// The same for 4 terms of floats with AVX-512: four lanes' terms to a
// register, 16 lanes at a time.
SOFTHIST_HD void chebyshev_sums4_quarters(const float* g, const int32_t* first, const float* delta,
                                          float* acc) {
  for (int l0 = 0; l0 < kLanes; l0 += 16) {
    Vec16f d, r[4];
    load_lanes(d, delta + l0);
    const Vec16f twice = d + d;
    const float* p[16];
    for (int l = 0; l < 16; ++l) p[l] = g + first[l0 + l];
    rows_of4_quarters(r, p);
    const Vec16f b = r[3] * twice + r[2];
    store_lanes(acc + l0, r[0] + d * (twice * b + (r[1] - r[3])) - b);
  }
}
template <int Terms, typename C>
SOFTHIST_HD void chebyshev_sums(const C* g, const int32_t* first, const C* delta, C* acc) {
  if constexpr (sizeof(C) == 8) {
    has_avx512() ? chebyshev_sums_as<Terms, Vec8Of<double>>(g, first, delta, acc)
                 : chebyshev_sums_as<Terms, Vec8d>(g, first, delta, acc);
  } else if (!has_avx512()) {
    chebyshev_sums_as<Terms, Vec8Of<C>>(g, first, delta, acc);
  } else if constexpr (Terms == 4) {
    chebyshev_sums4_quarters(g, first, delta, acc);
  } else {
    chebyshev_sums_as<Terms, Vec16f>(g, first, delta, acc);
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
template <int Terms, typename V, typename C>
SOFTHIST_HD void add_moments_as(const C* delta, const double* scale, const int32_t* first,
                                LaneSums& sums) {
  const std::array<double*, LaneSums::kCopies> dst = sums.copies();
  for (int l0 = 0; l0 < kLanes; l0 += 8) {
    V t0, d, r[8];
    load8(t0, scale + l0);
    widen8(d, delta + l0);
    const V twice = d + d;
    V t1 = t0 * d;
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
template <int Terms, typename C>
SOFTHIST_HD void add_moments(const C* delta, const double* scale, const int32_t* first,
                             LaneSums& sums) {
  has_avx512() ? add_moments_as<Terms, Vec8Of<double>>(delta, scale, first, sums)
               : add_moments_as<Terms, Vec8d>(delta, scale, first, sums);
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
SOFTHIST_HD void save_places(const int32_t* first, const double* delta, const double* alive,
                             int64_t m, int32_t* pieces, C* deltas) {
  for (int64_t l = 0; l < m; ++l) {
    pieces[l] = alive[l] == 0 ? -1 : first[l] / Terms;
    deltas[l] = static_cast<C>(delta[l]);
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
    double delta[kLanes];  // (the moments' type, whatever C: no round trip through C)
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
    if (w && nonfinite_scale(scale)) {  // (unweighted scales are 0 or 1)
      scatter_directly(x + i0, w + i0, std::min<int64_t>(kLanes, n - i0), win, grid, values, direct);
      continue;
    }
    add_moments<Terms>(delta, scale, first, sums);
  }
  sums.add_copies();
}

// out_i = sum_m g[piece_i * Terms + m] * T_m(delta_i): g holds each
// piece's coefficients of factor * sum_b h_b D(., b) (from_slots). The
// samples' pieces and places are located, or read from `pieces`
// (save_places's; false where one lies outside the grid: load_places).
template <int Terms, bool OpenEnds, typename T, typename C>
SOFTHIST_CLONES bool gather_pieces_chunk(const T* x, const C* g, int64_t n, const Window& win,
                                         const ChebyshevGrid& grid, T* out, const int32_t* pieces,
                                         const C* deltas) {
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
      out[i0 + l] = scale[l] == 0 ? T(0) : static_cast<T>(acc[l]);
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
    if (w && nonfinite_scale(scale)) {
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

}  // namespace
}  // namespace softhist::cpu
