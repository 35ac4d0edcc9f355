// D = 2 or 3 axes by windows: each sample's windows on every axis, the
// outer axes' masses multiplied into one coefficient per histogram row, and
// the last axis's window added into (or read from) each row as whole vectors.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "common.h"
#include "explicit_edges.h"
#include "layout.h"
#include "window_rows.h"

namespace softhist::cpu {
namespace {

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
  std::vector<double> rows(static_cast<size_t>(kLanes * stride)), coef(count * kLanes), unscaled;
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    std::array<const T*, D> xs;
    for (int a = 0; a < D; ++a) xs[a] = x[a] + i0;
    blk.load(xs, w ? w + i0 : nullptr, n - i0);
    outer_coefs(blk, blk.scale, coef.data());
    transpose_last(blk, stride, rows.data() + kQuad);
    bool nonfinite = false;
    for (int l = 0; l < kLanes; ++l) nonfinite |= !std::isfinite(blk.scale[l]);
    if (nonfinite) {  // (unscaled, for the lanes below)
      unscaled.resize(coef.size());
      outer_coefs(blk, nullptr, unscaled.data());
    }
    for (int l = 0; l < kLanes; ++l) {
      if (blk.scale[l] == 0) continue;
      const int64_t o = lay.offset(blk.first, l), shift = aligned ? o % kQuad : 0;
      const double* yl = rows.data() + l * stride + kQuad;
      double* a = acc + o;
      // A NaN or infinite weight adds only the masses that are not 0
      // (weighted_mass), in the window or past it in its padding.
      if (!std::isfinite(blk.scale[l])) {
        for (int64_t m = 0; m < count; ++m)
          for (int64_t j = 0; j < last; ++j)
            a[offset[m] + j] += weighted_mass(blk.scale[l], unscaled[m * kLanes + l] * yl[j]);
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

}  // namespace
}  // namespace softhist::cpu
