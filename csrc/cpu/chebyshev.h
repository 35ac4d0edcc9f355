// The smooth kernels' histograms over even bins as Chebyshev moments.
//
// A logistic or gaussian window spans many edges (12 at the logistic's
// default kappa), each one a transcendental per sample. Instead, each bin is
// cut into `per_bin` pieces of half-width a <= max_half_width in t; on piece
// p, a sample's K^(order) at every edge is a smooth function of its place
// delta in [-1, 1) within the piece, within 1e-9 (float compute, 8 terms) or
// 1e-17 (double, 16 terms) of its Chebyshev interpolant sum_m c_m T_m(delta).
// So the scatter adds each sample's T_m(delta) to its piece's `terms`
// moments (one vector add, whatever kappa), and bin b is the moments times
// b's coefficients; the gather evaluates, at each sample's delta, its piece's
// coefficients of sum_b h_b D(., b). Tables cost O(bins * window * terms).
// At the edges (edge sums; derivatives of order >= 1, which vanish where K
// saturates) the same holds of each edge's K^(order) itself.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.h"

namespace softhist::cpu {

// Chebyshev terms per piece, in the compute type C.
template <typename C>
constexpr int kChebyshevTerms = sizeof(C) == 8 ? 16 : 8;

// Largest piece half-width in t for which the interpolant of K and K' (with
// its kChebyshevTerms<C> terms) is within the saturation error. mpmath, over
// the worst piece, bounding the error by the coefficients past the last term:
// logistic a = 0.5: 4e-10 (K), 6e-9 (K'); 16 terms 2e-19, 2e-17;
// gaussian a = 0.4 (float): 2e-10, 4e-9; a = 0.5, 16 terms: 5e-19, 2e-17.
template <typename C>
double max_half_width(Kernel kernel) {
  return kernel == Kernel::Gaussian && sizeof(C) == 4 ? 0.4 : 0.5;
}

// Pieces over even bins, padded by `pad` bins on either side so that every
// sample that reaches a bin has a piece, and the coefficient rows of every
// slot (bin, or edge) lie inside the grid.
struct ChebyshevGrid {
  int64_t per_bin = 0, pad = 0, count = 0, terms = 0, slots = 0;
  // Slot j's coefficients are rows r0 .. r0 + span of pieces, from piece
  // per_bin * (pad + j) + r0, `terms` each: one table for the inner slots,
  // and at open ends one for the first, the last and a single slot.
  int64_t r0 = 0, span = 0;
  std::vector<double> inner, first, last, only;
  bool open_ends = false;

  int64_t size() const { return count * terms; }
  // Offset of slot j's first coefficient row in a grid of moments.
  int64_t offset(int64_t j) const { return (per_bin * (pad + j) + r0) * terms; }
  const double* table(int64_t j) const {
    if (!open_ends || (j > 0 && j < slots - 1)) return inner.data();
    if (slots == 1) return only.data();
    return j == 0 ? first.data() : last.data();
  }
};

// hist[j] = factor * (the moments times slot j's coefficients + added[j]).
template <typename T>
SOFTHIST_CLONES void to_slots(const ChebyshevGrid& grid, const double* moments,
                              const double* added, double factor, T* hist) {
  const int64_t len = grid.span * grid.terms;
  for (int64_t b = 0; b < grid.slots; ++b) {
    const double* m = moments + grid.offset(b);
    const double* t = grid.table(b);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < len; ++j) s += m[j] * t[j];
    hist[b] = static_cast<T>((s + added[b]) * factor);
  }
}

// g = sum_j h[j] * slot j's coefficients: each piece's coefficients of
// sum_j h_j D(., j), in C; acc: grid.size() doubles of room.
template <typename T, typename C>
SOFTHIST_CLONES void from_slots(const ChebyshevGrid& grid, const T* h, double* acc, C* g) {
  const int64_t len = grid.span * grid.terms, size = grid.size();
  std::fill(acc, acc + size, 0.0);
  for (int64_t b = 0; b < grid.slots; ++b) {
    const double hb = static_cast<double>(h[b]);
    double* a = acc + grid.offset(b);
    const double* t = grid.table(b);
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) a[j] += hb * t[j];
  }
#pragma omp simd
  for (int64_t j = 0; j < size; ++j) g[j] = static_cast<C>(acc[j]);
}

// The grid for kernel K's derivative Order over win's even bins (or its
// edges, Order >= 1), with pieces of half-width at most max_half: K beyond
// `saturation` (in t) of an edge counts as saturated, as the windows count it.
template <Kernel K, int Order>
ChebyshevGrid chebyshev_grid(const Window& win, bool at_edges, int64_t terms, double max_half,
                             double saturation) {
  static_assert(Order <= 3);
  ChebyshevGrid g;
  g.slots = win.bins + (at_edges ? 1 : 0);
  g.terms = terms;
  g.per_bin = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(win.c / (2 * max_half))));
  g.pad = static_cast<int64_t>(std::ceil(win.reach)) + 2;
  g.count = g.per_bin * (win.bins + 2 * g.pad);
  g.open_ends = win.open_ends;
  const double a = win.c / (2.0 * static_cast<double>(g.per_bin));
  // Piece r (relative to an edge) spans t in [2a r, 2a (r + 1)]: below e_lo
  // K^(Order) is saturated at 0, from e_hi at its upper limit.
  const int64_t e_lo = static_cast<int64_t>(std::floor(-saturation / (2 * a))) - 1;
  const int64_t e_hi = static_cast<int64_t>(std::ceil(saturation / (2 * a))) + 1;
  const double upper = Order == 0 ? 1.0 : 0.0;
  std::vector<double> cosines(static_cast<size_t>(terms * terms)), nodes(static_cast<size_t>(terms));
  const double pi = 3.14159265358979323846;
  for (int64_t k = 0; k < terms; ++k) {
    nodes[k] = std::cos(pi * (k + 0.5) / terms);
    for (int64_t m = 0; m < terms; ++m) cosines[m * terms + k] = std::cos(pi * m * (k + 0.5) / terms);
  }
  // Edge r's Chebyshev coefficients, by the discrete cosine transform of K at
  // the Chebyshev nodes.
  auto edge = [&](int64_t r, double* c) {
    for (int64_t m = 0; m < terms; ++m) c[m] = 0;
    if (r < e_lo) return;
    if (r >= e_hi) {
      c[0] = upper;
      return;
    }
    double values[32];
    for (int64_t k = 0; k < terms; ++k)
      values[k] = cdf<K, Order>(a * (2.0 * static_cast<double>(r) + 1.0 + nodes[k]));
    for (int64_t m = 0; m < terms; ++m) {
      double s = 0;
      for (int64_t k = 0; k < terms; ++k) s += values[k] * cosines[m * terms + k];
      c[m] = s * (m == 0 ? 1.0 : 2.0) / static_cast<double>(terms);
    }
  };
  g.r0 = e_lo;
  g.span = at_edges ? e_hi - e_lo : e_hi + g.per_bin - e_lo;
  const size_t len = static_cast<size_t>(g.span * terms);
  g.inner.assign(len, 0.0);
  if (g.open_ends) {
    g.first.assign(len, 0.0);
    g.last.assign(len, 0.0);
    g.only.assign(len, 0.0);
  }
  // Bin b's masses are K at its lower edge minus K at its upper edge, per_bin
  // pieces further; at open ends, K is 1 (order 0) at edge 0, 0 at edge bins.
  // At the edges: K itself, 0 at open ends (Order >= 1).
  double lower[32], upper_edge[32] = {};
  for (int64_t i = 0; i < g.span; ++i) {
    const int64_t r = g.r0 + i;
    edge(r, lower);
    if (!at_edges) edge(r - g.per_bin, upper_edge);
    for (int64_t m = 0; m < terms; ++m) {
      const double one = m == 0 ? upper : 0.0;
      g.inner[i * terms + m] = lower[m] - upper_edge[m];
      if (g.open_ends) {
        g.first[i * terms + m] = one - upper_edge[m];
        g.last[i * terms + m] = at_edges ? 0.0 : lower[m];
        g.only[i * terms + m] = one;
      }
    }
  }
  return g;
}

}  // namespace softhist::cpu
