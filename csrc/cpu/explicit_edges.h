// One axis of bins with explicit, unevenly spaced edges e_0 < ... < e_bins
// (params: one row followed by the edges, ops.h). A sample's window is still
// a fixed number of consecutive edges, the most that any interval of the
// kernel's support (2 * reach) holds plus its two saturated ends, so the
// window loops stay fixed-length; a sample finds its first edge by binary
// search, and each edge value reads its own edge.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "common.h"

namespace softhist::cpu {

// Whether explicit edges are evenly spaced, to within a few roundings of the
// compute type C of a bin's width: then the windows of evenly spaced bins,
// whose edge values step by a constant, compute the same histogram faster.
// (Relative to the width, not to the edges' magnitude: edges at 1000 given
// in float16, or at 1e6 in float32, are a whole bin apart at their type's
// rounding, and the samples are located in double.)
template <typename C>
bool evenly_spaced(const double* e, int64_t bins) {
  const double span = e[bins] - e[0];
  const double epsilon = sizeof(C) == 8 ? 0x1p-52 : 0x1p-23;
  const double tolerance = 4 * epsilon * span / static_cast<double>(bins);
  for (int64_t j = 1; j < bins; ++j)
    if (!(std::abs(e[j] - (e[0] + span * static_cast<double>(j) / static_cast<double>(bins))) <=
          tolerance))
      return false;
  return true;
}

// The index of explicit edges (or of uneven Chebyshev pieces' ends): even
// cells over [e_0, e_bins], fine enough that no two edges share a cell (at
// most kMaxCells, or 4 per bin past that, within int32_t).
constexpr int64_t kMaxCells = int64_t(1) << 16;

// The cell of v: the same double operations for edges and samples, so that
// it is monotone in v across both; clamped to [0, cells].
SOFTHIST_HD int32_t cell_of(double v, double e0, double cell_inv, double last_cell) {
  double cell = (v - e0) * cell_inv;
  cell = cell > 0 ? cell : 0.0;
  cell = cell < last_cell ? cell : last_cell;
  return static_cast<int32_t>(cell);
}

// Cells over increasing e_0 .. e_bins: first[c] = the last edge j < bins in
// a cell before c (0 if none), so at or below every value in cell c; steps:
// the most edges in one cell, which a lookup compares with its value.
struct Cells {
  std::vector<int32_t> first;
  int64_t count = 0, steps = 0;
  double inv = 0;
};
inline Cells index_cells(const double* e, int64_t bins) {
  Cells cells;
  double narrowest = e[bins] - e[0];
  for (int64_t j = 0; j < bins; ++j) narrowest = std::min(narrowest, e[j + 1] - e[j]);
  // Cells half the narrowest bin wide hold one edge at most.
  const double wanted = 2.0 * (e[bins] - e[0]) / narrowest + 1.0;
  const double most = static_cast<double>(std::min(std::max(kMaxCells, 4 * bins), int64_t(1) << 30));
  cells.count = static_cast<int64_t>(std::min(wanted, most));
  cells.inv = static_cast<double>(cells.count) / (e[bins] - e[0]);
  cells.first.resize(static_cast<size_t>(cells.count + 1));
  const double last_cell = static_cast<double>(cells.count);
  // A fill per edge (the cells outnumber the edges): the cells after edge
  // j - 1's, up to edge j's, have j - 1 as their first.
  int64_t c = 0, run = 0, prev = -1;
  for (int64_t j = 1; j <= bins; ++j) {
    const int64_t cj = cell_of(e[j], e[0], cells.inv, last_cell);
    run = cj == prev ? run + 1 : 1;
    cells.steps = std::max(cells.steps, run);
    prev = cj;
    for (; c <= cj; ++c) cells.first[c] = static_cast<int32_t>(j - 1);
  }
  for (; c <= cells.count; ++c) cells.first[c] = static_cast<int32_t>(bins - 1);
  return cells;
}

// What an explicit window points to: its edges, padded by 7 copies of the
// last (rows_of8 reads 8 at a time), the cells' first edges, and the
// logistic kernel's growth factors or the other kernels' shifts (Window::
// growth and shifts, padded likewise; C: the type of the window's values).
template <typename C>
struct ExplicitIndex {
  std::vector<double> edges;
  Cells cells;
  std::vector<C> growth;
  std::vector<C> shifts;
};

// The most growth factors or shifts a window keeps (2 MB).
constexpr int64_t kMaxTable = int64_t(1) << 18;

// table[f * edges + k] = entry(f, k) for every first edge f and its
// window's edges k, padded by 8; false (and no table) where that would be
// more than kMaxTable entries.
template <typename S, typename F>
bool per_first_edge(const Window& w, std::vector<S>& table, const F& entry) {
  const int64_t starts = w.bins + 2 - w.edges;  // first edges 0 .. bins + 1 - edges
  if (starts * w.edges > kMaxTable) return false;
  table.assign(static_cast<size_t>(starts * w.edges + 8), S(0));
  for (int64_t f = 0; f < starts; ++f)
    for (int64_t k = 0; k < w.edges; ++k) table[f * w.edges + k] = entry(f, k);
  return true;
}

// The logistic kernel's explicit windows in C: growth factors e^g, with the
// exponents g clamped to +-kGrowthCap<C>, and the exponents -kappa (x - e_r)
// of a window's reference edge that multiply them, at most kReachCap<C> in
// magnitude. A product whose true exponent a + g was clamped still lies
// beyond the kernel's clamp (cap - reach_cap > Logistic::clamp<C>()), so it
// saturates as cdf would.
template <typename C>
constexpr double kGrowthCap = sizeof(C) == 8 ? 600.0 : 80.0;
template <typename C>
constexpr double kReachCap = sizeof(C) == 8 ? 550.0 : 56.0;

// growth[f][k] = e^(kappa (e_(f+k) - e_(f+1))): relative to each window's
// second edge, the first within reach of the window's samples (so that
// -kappa (x - e_(f+1)) > -saturation for all but the last windows').
template <typename C>
void logistic_growth(Window& w, ExplicitIndex<C>& index) {
  const double* e = w.at;
  const double cap = kGrowthCap<C>;
  if (per_first_edge(w, index.growth, [&](int64_t f, int64_t k) {
        return static_cast<C>(std::exp(std::clamp(w.kappa * (e[f + k] - e[f + 1]), -cap, cap)));
      }))
    w.growth = index.growth.data();
}

// The window over a params row's explicit edges (has_explicit_edges), and
// the index locate_explicit finds a sample's first edge by.
template <typename C, typename T>
Window explicit_window(Kernel kernel, const double* row, int64_t bins, ExplicitIndex<C>& index) {
  Window w = Window::make_explicit<C, T>(kernel, row, bins);
  index.edges.assign(w.at, w.at + bins + 1);
  index.edges.resize(static_cast<size_t>(bins + 8), w.at[bins]);
  w.at = index.edges.data();
  const double* e = w.at;
  // The most edges in any [e_j, e_j + 2 reach] (two pointers), plus the
  // saturated edge on each side.
  int64_t most = 1;
  for (int64_t j = 0, end = 0; j <= bins; ++j) {
    end = std::max(end, j);
    while (end + 1 <= bins && e[end + 1] <= e[j] + 2 * w.reach) ++end;
    most = std::max(most, end - j + 1);
  }
  w.edges = std::min(most + 2, bins + 1);
  index.cells = index_cells(e, bins);
  w.cells = index.cells.count;
  w.cell_inv = index.cells.inv;
  w.cell_steps = index.cells.steps;
  w.cell_first = index.cells.first.data();
  if (kernel == Kernel::Logistic)
    logistic_growth(w, index);
  else if (per_first_edge(w, index.shifts, [&](int64_t f, int64_t k) {
             return static_cast<C>(w.kappa * (e[f + k] - e[f]));
           }))
    w.shifts = index.shifts.data();
  return w;
}

// The value locate_explicit gives a sample that reaches no bin: past reach
// of every edge, so that its window values are finite and saturated.
SOFTHIST_HD double unreached(const Window& win) { return win.at[0] - win.reach; }

// locate_block for explicit edges, without branches so that it vectorises:
// each sample's first edge (the last edge at or below x - reach: its cell's
// cell_first, then up to cell_steps edges on; clamped so the window fits),
// its value as a double in xd (for samples that reach no bin, unreached:
// finite window values, saturated at every edge) and its scale.
template <typename T>
SOFTHIST_HD void locate_explicit(const T* x, const T* w, int64_t n, const Window& win,
                                 int32_t* first, double* xd, double* scale) {
  T x_tail[kLanes], w_tail[kLanes];
  pad_block(n, x, w, x_tail, w_tail);
  const double* e = win.at;
  const int32_t* cell_first = win.cell_first;
  const int32_t bins = static_cast<int32_t>(win.bins);
  const int32_t last_start = static_cast<int32_t>(win.bins + 1 - win.edges);
  const double reach = win.reach, e0 = e[0], lo = unreached(win), hi = e[win.bins] + reach;
  const double cell_inv = win.cell_inv, last_cell = static_cast<double>(win.cells);
  const int64_t steps = win.cell_steps;
  const bool open_ends = win.open_ends;
  const double in_lo = win.in_lo, in_hi = win.in_hi;
  double y[kLanes];  // x - reach
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double v = static_cast<double>(x[l]);
    bool alive = v >= lo && v < hi;  // false for NaN
    alive = alive && (!open_ends || (v >= in_lo && v <= in_hi));
    y[l] = alive ? v - reach : e0;
    first[l] = cell_first[cell_of(y[l], e0, cell_inv, last_cell)];
    xd[l] = alive ? v : lo;
    scale[l] = alive ? (w ? static_cast<double>(w[l]) : 1.0) : 0.0;
  }
  // (Steps outside the lanes' loop, so that it vectorises.)
  for (int64_t s = 0; s < steps; ++s)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const int32_t f = first[l], next = f < bins ? f + 1 : bins;
      first[l] = f + static_cast<int32_t>((f < bins) & (e[next] <= y[l]));  // (no branch)
    }
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) first[l] = first[l] < last_start ? first[l] : last_start;
}

// Whether every lane's latest edge lies past its reach (so do all later
// edges): checked from the fourth edge on, since no kernel's windows are
// shorter and this horizontal reduction costs about an edge's values.
SOFTHIST_HD bool all_past(int64_t k, const int32_t* past) {
  if (k < 3) return false;
  int all = 1;
#pragma omp simd reduction(& : all)
  for (int l = 0; l < kLanes; ++l) all &= past[l];
  return all;
}

// explicit_window_values for the logistic kernel from Window::growth:
// e^(-kappa (x - e_(f+k))) = e^(-kappa (x - e_(f+1))) * growth[f][k], one exp
// per sample (in double: x may lie many kernel widths from e_(f+1)), then a
// product per edge in C, clamped as cdf clamps t. Returns how many edges hold
// values, as explicit_window_values does, or 0 (and no values) for a block
// with a sample whose exponent exceeds kReachCap: far past the last window's
// second edge, or before a first bin wider than that.
template <int Order, typename C>
SOFTHIST_HD int64_t logistic_growth_values(const double* xd, const int32_t* first,
                                           const Window& win, C* v) {
  const C* growth = static_cast<const C*>(win.growth);
  const C e_min = exp_bounded(-Logistic::clamp<C>()), e_max = exp_bounded(Logistic::clamp<C>());
  const C e_past = exp_bounded(Logistic::saturation<C>());
  const double kappa = win.kappa, cap = kReachCap<C>, dead = unreached(win);
  alignas(64) C gk[8][kLanes];
  C e_ref[kLanes];
  int32_t row[kLanes], past[kLanes];
  int in_range = 1;
#pragma omp simd reduction(& : in_range)
  for (int l = 0; l < kLanes; ++l) {
    double a = -kappa * (xd[l] - win.at[first[l] + 1]);
    in_range &= (a >= -cap && a <= cap) || xd[l] == dead;
    a = a > -cap ? a : -cap;
    a = a < cap ? a : cap;
    // A sample that reaches no bin saturates at every edge.
    e_ref[l] = xd[l] == dead ? std::numeric_limits<C>::infinity() : static_cast<C>(exp_bounded(a));
    row[l] = first[l] * static_cast<int32_t>(win.edges);
  }
  if (!in_range) return 0;
  for (int64_t k0 = 0; k0 < win.edges; k0 += 8) {
    rows_of8(growth, row, k0, gk);
    for (int64_t k = k0; k < std::min(k0 + 8, win.edges); ++k) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const C product = e_ref[l] * gk[k - k0][l];
        C e = product > e_min ? product : e_min;
        e = e < e_max ? e : e_max;
        v[k * kLanes + l] = Logistic::from_exp<Order>(e);
        past[l] = product >= e_past;
      }
      if (all_past(k, past)) return k + 1;
    }
  }
  return win.edges;
}

// v[k * kLanes + l] = K^(Order)(kappa * (xd[l] - e[first[l] + k])) for the
// window's edges k, up to an edge past every sample's reach (K and its
// derivatives saturated at 0 there and beyond; all_past): returns how many
// edges that is. (Windows fit the widest spread of edges; most blocks need fewer.)
template <Kernel K, int Order, typename C>
SOFTHIST_CLONES int64_t explicit_window_values(const double* xd, const int32_t* first,
                                               const Window& win, C* v) {
  const double kappa = win.kappa, reach = win.reach;
  alignas(64) double ek[8][kLanes];  // e[first[l] + k]
  int32_t past[kLanes];
  if constexpr (K == Kernel::Logistic) {
    if (win.growth)
      if (const int64_t edges = logistic_growth_values<Order>(xd, first, win, v)) return edges;
  } else if (win.shifts) {
    // kappa (x - e_(f+k)) = kappa (x - e_f) - shifts[f][k]: the window's
    // arithmetic in C (in double, the subtractions would take twice the
    // vectors); past every sample's reach at -T, where the CDF is 0.
    const C* shifts = static_cast<const C*>(win.shifts);
    const C past_t = -saturation<C>(K);
    alignas(64) C sk[8][kLanes];
    C t_first[kLanes];
    int32_t row[kLanes];
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      t_first[l] = static_cast<C>(kappa * (xd[l] - win.at[first[l]]));
      row[l] = first[l] * static_cast<int32_t>(win.edges);
    }
    for (int64_t k0 = 0; k0 < win.edges; k0 += 8) {
      rows_of8(shifts, row, k0, sk);
      for (int64_t k = k0; k < std::min(k0 + 8, win.edges); ++k) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const C t = t_first[l] - sk[k - k0][l];
          v[k * kLanes + l] = cdf<K, Order>(t);
          past[l] = t <= past_t;
        }
        if (all_past(k, past)) return k + 1;
      }
    }
    return win.edges;
  }
  for (int64_t k0 = 0; k0 < win.edges; k0 += 8) {
    rows_of8(win.at, first, k0, ek);
    for (int64_t k = k0; k < std::min(k0 + 8, win.edges); ++k) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const double d = xd[l] - ek[k - k0][l];
        v[k * kLanes + l] = cdf<K, Order>(static_cast<C>(kappa * d));
        past[l] = d <= -reach;
      }
      if (all_past(k, past)) return k + 1;
    }
  }
  return win.edges;
}
template <typename C>
using ExplicitValuesFn = int64_t (*)(const double*, const int32_t*, const Window&, C*);

template <typename C>
ExplicitValuesFn<C> explicit_values_fn(Kernel kernel, int64_t order) {
  ExplicitValuesFn<C> fn = nullptr;
  dispatch_smooth(kernel, order, [&](auto k, auto o) {
    fn = &explicit_window_values<decltype(k)::value, decltype(o)::value, C>;
  });
  return fn;
}

// A block of samples over explicit edges: located, and their window values
// of `order` (all `edges` of them, with the open ends' values, where win has
// open ends); returns how many edges hold values.
template <typename T, typename C>
SOFTHIST_HD int64_t explicit_block(const T* x, const T* w, int64_t n, const Window& win,
                                   ExplicitValuesFn<C> values, int order, int32_t* first,
                                   double* scale, C* v) {
  double xd[kLanes];
  locate_explicit(x, w, n, win, first, xd, scale);
  const int64_t edges = values(xd, first, win, v);
  if (!win.open_ends) return edges;
  for (int64_t k = edges; k < win.edges; ++k)
    for (int l = 0; l < kLanes; ++l) v[k * kLanes + l] = C(0);
  open_window_ends(win, order, first, v);
  return win.edges;
}

}  // namespace softhist::cpu
