// Histograms as Chebyshev moments of pieces of bins (CPU).
//
// A logistic or gaussian window spans many edges (12 at the logistic's
// default kappa), each one a transcendental per sample. Instead, each bin is
// cut into `per_bin` pieces (pieces_per_bin). On piece p, a sample's
// K^(order) at every edge is a function of its place delta in [-1, 1) within
// the piece: smooth, and within 1e-9 (float compute, 8 terms) or 1e-17
// (double, 16 terms; or 8 on fine pieces, chebyshev_terms) of its
// Chebyshev interpolant sum_m c_m T_m(delta); or
// for the compact kernels, with pieces whose ends hold their knots, a
// polynomial of degree <= 4, equal to it. So the scatter adds each
// sample's T_m(delta) to its piece's `terms` moments (one vector add,
// whatever kappa), and bin b is the moments times b's coefficients; the
// gather evaluates, at each sample's delta, its piece's coefficients of
// sum_b h_b D(., b). Tables cost O(bins * window * terms). At the edges (edge
// sums; derivatives of order >= 1, which vanish where K saturates) the same
// holds of each edge's K^(order) itself.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common.h"
#include "explicit_edges.h"

namespace softhist::cpu {

// Chebyshev terms per piece for kernel K's derivative `order`, in the compute
// type C. The compact kernels' pieces are polynomials, whatever C: K is of
// degree 1 (box), 2 (triangular) or 4 (bspline), each derivative one less,
// and those of degree <= 3 take 4 terms (half the moments and coefficients
// to add and read), the others 8.
//
// Fine pieces (fine_pieces_pay): the smooth kernels' K and K' in double
// compute take 8 terms on pieces of half-width 0.04 (logistic) or 0.035
// (gaussian) in t, within the same error as 16 on the coarse ones (mpmath,
// worst piece: logistic 3e-18 (K), 1e-17 (K'); gaussian 6e-18, 2e-17): half
// the moments per sample, on a grid about 3x as large.
template <typename C>
int64_t chebyshev_terms(Kernel kernel, int64_t order, bool fine = false) {
  if (kernel == Kernel::Logistic || kernel == Kernel::Gaussian)
    return sizeof(C) == 8 && !fine ? 16 : 8;
  const int64_t degree = (kernel == Kernel::BSpline ? 4 : kernel == Kernel::Triangular ? 2 : 1) - order;
  return degree <= 3 ? 4 : 8;
}

// Pieces per bin for kernel K at c = kappa * (bin width), or 0 where none
// suit. The smooth kernels: the fewest of half-width a <= 0.5 in t (0.4 for
// the gaussian in float), for which the interpolant of K and K' (with its
// chebyshev_terms<C> terms) is within the saturation error (mpmath, over the
// worst piece, bounding the error by the coefficients past the last term:
// logistic a = 0.5: 4e-10 (K), 6e-9 (K'); 16 terms 2e-19, 2e-17; gaussian
// a = 0.4: 2e-10, 4e-9; a = 0.5, 16 terms: 5e-19, 2e-17). The triangular,
// bspline and box, piecewise polynomials of degree <= 4 between knots at
// integer t: pieces whose ends hold every knot (per_bin / c an integer),
// where the interpolant is the polynomial itself; at most kMaxPiecesPerBin
// of them. (The box's density jumps at its knots: a sample on one, whose
// piece is the one above it, takes the value on the right, as Box::cdf.)
constexpr int64_t kMaxPiecesPerBin = 8;
template <typename C>
int64_t pieces_per_bin(Kernel kernel, double c, bool fine = false) {
  if (kernel == Kernel::Logistic || kernel == Kernel::Gaussian) {
    const double coarse = kernel == Kernel::Gaussian && sizeof(C) == 4 ? 0.4 : 0.5;
    const double s = std::max(1.0, std::ceil(c / (2 * coarse)));
    if (s > kMaxPiecesPerBin) return 0;  // (fine ones only where coarse ones suit)
    const double half = fine ? (kernel == Kernel::Gaussian ? 0.035 : 0.04) : coarse;
    return static_cast<int64_t>(std::max(1.0, std::ceil(c / (2 * half))));
  }
  if (kernel == Kernel::Hard) return 0;
  for (int64_t s = 1; s <= kMaxPiecesPerBin; ++s) {
    const double q = static_cast<double>(s) / c;
    if (q >= 0.5 && std::abs(q - std::round(q)) <= 1e-12 * q) return s;
  }
  return 0;
}

// Pieces of 1 / per_bin of the bins' mean width, padded by `pad` such
// bins on either side so that every sample that reaches a slot (bin, or
// edge) has a piece, and every slot's coefficient rows lie inside the grid.
// `frame`: the even bins the pieces cut, to locate samples by (the bins
// themselves, or for explicit edges even ones over the same range).
struct ChebyshevGrid {
  Window frame;
  int64_t per_bin = 0, pad = 0, count = 0, terms = 0, slots = 0;
  bool fine = false;  // (fine_pieces_pay)
  // Uneven pieces (chebyshev_cut_grid; empty for the even ones): piece p
  // spans [cuts[p], cuts[p + 1]). A sample finds its piece from its cell's
  // (cells.first), a cut on at most, or up to cells.steps where the sign bit
  // of cells.first marks a cell of several cuts.
  std::vector<double> cuts;
  Cells cells;
  // Slot j's coefficients: spans[j] rows of `terms` from piece first_piece[j],
  // at tables[table_at[j]] (even bins share a table per kind of slot).
  std::vector<int64_t> first_piece, spans;
  std::vector<size_t> table_at;
  std::vector<double> tables;

  int64_t size() const { return count * terms; }
  int64_t offset(int64_t j) const { return first_piece[j] * terms; }
  const double* table(int64_t j) const { return tables.data() + table_at[j]; }
  // Piece p's centre and half-width, in units of the input.
  void piece(int64_t p, double& centre, double& half) const {
    if (!cuts.empty()) {
      centre = 0.5 * (cuts[p] + cuts[p + 1]);
      half = 0.5 * (cuts[p + 1] - cuts[p]);
      return;
    }
    const double width = 1.0 / frame.inv_width, pieces = static_cast<double>(per_bin);
    centre = frame.lo + width * ((static_cast<double>(p) + 0.5) / pieces - static_cast<double>(pad));
    half = width / (2.0 * pieces);
  }
};

// hist[j] = factor * (the moments times slot j's coefficients + added[j]).
template <typename T>
SOFTHIST_CLONES void to_slots(const ChebyshevGrid& grid, const double* moments,
                              const double* added, double factor, T* hist) {
  for (int64_t b = 0; b < grid.slots; ++b) {
    const int64_t len = grid.spans[b] * grid.terms;
    const double* m = moments + grid.offset(b);
    const double* t = grid.table(b);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < len; ++j) s += m[j] * t[j];
    hist[b] = static_cast<T>((s + added[b]) * factor);
  }
}

// g = factor * sum_j h[j] * slot j's coefficients: each piece's
// coefficients of factor * sum_j h_j D(., j), in C; acc: grid.size()
// doubles of room.
template <typename T, typename C>
SOFTHIST_CLONES void from_slots(const ChebyshevGrid& grid, const T* h, double factor, double* acc,
                                C* g) {
  const int64_t size = grid.size();
  std::fill(acc, acc + size, 0.0);
  for (int64_t b = 0; b < grid.slots; ++b) {
    const int64_t len = grid.spans[b] * grid.terms;
    const double hb = static_cast<double>(h[b]);
    double* a = acc + grid.offset(b);
    const double* t = grid.table(b);
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) a[j] += hb * t[j];
  }
#pragma omp simd
  for (int64_t j = 0; j < size; ++j) g[j] = static_cast<C>(acc[j] * factor);
}

// out: the moments of each piece weighted by its samples' x - e0 too. On
// piece p, x - e0 = a_p + b delta, and delta T_m = (T_(m+1) + T_|m-1|) / 2,
// so they follow from the moments themselves, but for T_terms's, which is
// dropped: the coefficient it would meet (term terms - 1) is within the
// interpolant's error, and 0 for the compact kernels' polynomials.
inline void placed_moments(const ChebyshevGrid& grid, double e0, const double* moments,
                           double* out) {
  const int64_t terms = grid.terms;
  for (int64_t p = 0; p < grid.count; ++p) {
    double a, b;
    grid.piece(p, a, b);
    a -= e0;
    const double* m = moments + p * terms;
    double* o = out + p * terms;
    for (int64_t k = 0; k < terms; ++k) {
      const double up = k + 1 < terms ? m[k + 1] : 0.0;
      o[k] = a * m[k] + 0.5 * b * (up + m[k == 0 ? 1 : k - 1]);
    }
  }
}

// Chebyshev coefficients c of f on [-1, 1] (terms of them), by the
// discrete cosine transform of its values at the Chebyshev nodes.
struct ChebyshevFit {
  int64_t terms;
  std::vector<double> nodes, cosines;

  explicit ChebyshevFit(int64_t terms_) : terms(terms_) {
    const double pi = 3.14159265358979323846;
    nodes.resize(static_cast<size_t>(terms));
    cosines.resize(static_cast<size_t>(terms * terms));
    for (int64_t k = 0; k < terms; ++k) {
      nodes[k] = std::cos(pi * (k + 0.5) / terms);
      for (int64_t m = 0; m < terms; ++m) cosines[m * terms + k] = std::cos(pi * m * (k + 0.5) / terms);
    }
  }
  template <typename F>
  void operator()(const F& f, double* c) const {
    double values[32];
    for (int64_t k = 0; k < terms; ++k) values[k] = f(nodes[k]);
    for (int64_t m = 0; m < terms; ++m) {
      double s = 0;
      for (int64_t k = 0; k < terms; ++k) s += values[k] * cosines[m * terms + k];
      c[m] = s * (m == 0 ? 1.0 : 2.0) / static_cast<double>(terms);
    }
  }
};

// Chebyshev coefficients of K^(Order) on even pieces: on a piece rho pieces
// (fractional) above an edge, t = a (2 rho + 1 + delta). Below rho = lo it
// is saturated at 0, from hi at its upper limit.
template <Kernel K, int Order>
struct EdgeCoefficients {
  ChebyshevFit fit;
  double a, lo, hi;

  EdgeCoefficients(int64_t terms, double a_, double saturation) : fit(terms), a(a_) {
    lo = std::floor(-saturation / (2 * a)) - 1;
    hi = std::ceil(saturation / (2 * a)) + 1;
  }
  static constexpr double upper() { return Order == 0 ? 1.0 : 0.0; }

  void at(double rho, double* c) const {
    for (int64_t m = 0; m < fit.terms; ++m) c[m] = 0;
    if (rho < lo) return;
    if (rho >= hi) {
      c[0] = upper();
      return;
    }
    fit([&](double node) { return cdf<K, Order>(a * (2.0 * rho + 1.0 + node)); }, c);
  }
};

// Whether edge k is an open end (k = 0 or bins, open): then its K^(Order) is
// a constant, 1 at edge 0 over bins (order 0: upper), else 0, into c.
inline bool open_end_value(bool open, int64_t k, int64_t bins, bool at_edges, double upper,
                           int64_t terms, double* c) {
  if (!open || (k != 0 && k != bins)) return false;
  for (int64_t m = 0; m < terms; ++m) c[m] = 0;
  c[0] = k == 0 && !at_edges ? upper : 0.0;
  return true;
}

// Adds slot j's rows, span pieces from piece p0, to g: K at the slot's lower
// edge minus K at its upper (at the edges, K at its edge), value(k, p, c)
// giving edge k's coefficients on piece p.
template <typename V>
void add_slot(ChebyshevGrid& g, bool at_edges, int64_t j, int64_t p0, int64_t span, const V& value) {
  const int64_t terms = g.terms;
  g.first_piece.push_back(p0);
  g.spans.push_back(span);
  g.table_at.push_back(g.tables.size());
  g.tables.resize(g.tables.size() + static_cast<size_t>(span * terms), 0.0);
  double* t = g.tables.data() + g.table_at.back();
  double lower[32], upper[32];
  for (int64_t i = 0; i < span; ++i) {
    value(j, p0 + i, lower);
    if (!at_edges) value(j + 1, p0 + i, upper);
    for (int64_t m = 0; m < terms; ++m) t[i * terms + m] = lower[m] - (at_edges ? 0.0 : upper[m]);
  }
}

// The grid for kernel K's derivative Order over the bins of `frame` (even),
// or over the explicit edges `at` (null: the frame's), at the bins or at the
// edges (Order >= 1), with per_bin pieces per bin (pieces_per_bin): K
// beyond `saturation` (in t) of an edge counts as saturated, as the windows
// count it. Bin b's masses are K at its lower edge minus K at its upper edge;
// at open ends, K is 1 (order 0) at edge 0 and 0 at edge bins, and at the
// edges both ends' values are 0 (Order >= 1).
template <Kernel K, int Order>
ChebyshevGrid chebyshev_grid(const Window& frame, const double* at, bool at_edges, int64_t terms,
                             int64_t per_bin_, double saturation) {
  static_assert(Order <= 3);
  ChebyshevGrid g;
  g.frame = frame;
  const int64_t bins = frame.bins;
  g.slots = bins + (at_edges ? 1 : 0);
  g.terms = terms;
  g.per_bin = per_bin_;
  g.pad = static_cast<int64_t>(std::ceil(frame.reach)) + 2;
  g.count = g.per_bin * (bins + 2 * g.pad);
  const bool open = frame.open_ends;
  const EdgeCoefficients<K, Order> coef(terms, frame.c / (2.0 * static_cast<double>(g.per_bin)),
                                        saturation);
  const double per_bin = static_cast<double>(g.per_bin);
  // Edge k sits at piece `place(k)`: its rows are the pieces from first(k)
  // to last(k) (exclusive), the rest saturated.
  auto place = [&](int64_t k) {
    const double u = at ? (at[k] - frame.lo) * frame.inv_width : static_cast<double>(k);
    return per_bin * (static_cast<double>(g.pad) + u);
  };
  auto first = [&](int64_t k) { return static_cast<int64_t>(std::floor(place(k) + coef.lo)); };
  auto last = [&](int64_t k) { return static_cast<int64_t>(std::ceil(place(k) + coef.hi)); };
  // K at edge k on piece p, the ends as open ends have them.
  auto value = [&](int64_t k, int64_t p, double* c) {
    if (!open_end_value(open, k, bins, at_edges, coef.upper(), terms, c))
      coef.at(static_cast<double>(p) - place(k), c);
  };
  const bool even = at == nullptr;
  for (int64_t j = 0; j < g.slots; ++j) {
    const int64_t p0 = first(j), span = (at_edges ? last(j) : last(j + 1)) - p0;
    // Even bins: the inner slots share slot 1's table (or slot 0's, closed).
    const int64_t shared = open ? 1 : 0;
    const bool inner = !open || (j > 0 && j < g.slots - 1);
    if (even && inner && j > shared) {
      g.first_piece.push_back(p0);
      g.spans.push_back(span);
      g.table_at.push_back(g.table_at[static_cast<size_t>(shared)]);
    } else {
      add_slot(g, at_edges, j, p0, span, value);
    }
  }
  return g;
}

// The grid for the compact kernel K's derivative Order over explicit edges
// (win's), whose knots (integer t = kappa (x - e_k) within reach) the even
// pieces' ends miss: uneven pieces cut at every edge's knots, between which
// each edge's K^(Order) is a polynomial of degree <= 4, equal to its
// interpolant. They span [e_0 - reach, e_bins + reach), where samples reach
// a bin; slot j's rows are the pieces within reach of its edges.
template <Kernel K, int Order>
ChebyshevGrid chebyshev_cut_grid(const Window& frame, const Window& win, bool at_edges,
                                 int64_t terms, double saturation) {
  static_assert(Order <= 3);
  ChebyshevGrid g;
  g.frame = frame;
  const int64_t bins = win.bins;
  const double* e = win.at;
  const double reach = win.reach, kappa = win.kappa;
  g.slots = bins + (at_edges ? 1 : 0);
  g.terms = terms;
  const int64_t knots = static_cast<int64_t>(saturation);  // t = -knots .. knots
  const int64_t step = K == Kernel::Box ? 2 : 1;  // (the box's K is linear on (-1, 1))
  for (int64_t k = 0; k <= bins; ++k)
    for (int64_t i = -knots; i <= knots; i += step)
      g.cuts.push_back(e[k] + static_cast<double>(i) * (reach / static_cast<double>(knots)));
  std::sort(g.cuts.begin(), g.cuts.end());
  g.cuts.erase(std::unique(g.cuts.begin(), g.cuts.end()), g.cuts.end());
  g.count = static_cast<int64_t>(g.cuts.size()) - 1;
  g.cells = index_cells(g.cuts.data(), g.count);
  const double last_cell = static_cast<double>(g.cells.count);
  for (int64_t j = 2, before = cell_of(g.cuts[1], g.cuts[0], g.cells.inv, last_cell); j <= g.count;
       ++j) {
    const int64_t c = cell_of(g.cuts[j], g.cuts[0], g.cells.inv, last_cell);
    if (c == before) g.cells.first[c] |= std::numeric_limits<int32_t>::min();
    before = c;
  }
  auto cut = [&](double v) {  // the piece from cut v on
    return static_cast<int64_t>(std::lower_bound(g.cuts.begin(), g.cuts.end(), v) - g.cuts.begin());
  };
  // Edge k's coefficients on the pieces within its reach, from piece
  // reached[k], at fitted[rows[k] .. rows[k + 1]); saturated beyond. Fitted
  // once, for both of its slots.
  std::vector<int64_t> reached(static_cast<size_t>(bins + 1)), rows(static_cast<size_t>(bins + 2), 0);
  for (int64_t k = 0; k <= bins; ++k) {
    reached[k] = cut(e[k] - reach);
    rows[k + 1] = rows[k] + (cut(e[k] + reach) - reached[k]) * terms;
  }
  std::vector<double> fitted(static_cast<size_t>(rows[bins + 1]));
  const ChebyshevFit fit(terms);
  torch::stable::parallel_for(0, bins + 1, 16, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t i = 0; i < (rows[k + 1] - rows[k]) / terms; ++i) {
        const int64_t p = reached[k] + i;
        double centre, half;
        g.piece(p, centre, half);
        const double t0 = kappa * (centre - e[k]), dt = kappa * half;
        fit([&](double node) { return cdf<K, Order>(t0 + dt * node); }, &fitted[rows[k] + i * terms]);
      }
  });
  const double upper = Order == 0 ? 1.0 : 0.0;
  auto value = [&](int64_t k, int64_t p, double* c) {
    if (open_end_value(win.open_ends, k, bins, at_edges, upper, terms, c)) return;
    const int64_t i = p - reached[k];
    if (i >= 0 && i * terms < rows[k + 1] - rows[k]) {
      std::copy_n(&fitted[rows[k] + i * terms], terms, c);
      return;
    }
    std::fill_n(c, terms, 0.0);
    c[0] = i < 0 ? 0.0 : upper;
  };
  for (int64_t j = 0; j < g.slots; ++j) {
    const int64_t p0 = reached[j];
    add_slot(g, at_edges, j, p0, cut(e[at_edges ? j : j + 1] + reach) - p0, value);
  }
  // Past the last cut, 2 more, which no piece has: a lookup reads a sample's
  // piece's first cut and the 3 after it.
  g.cuts.resize(g.cuts.size() + 2, std::numeric_limits<double>::infinity());
  return g;
}

}  // namespace softhist::cpu
