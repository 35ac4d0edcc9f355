// One axis of bins with explicit, unevenly spaced edges e_0 < ... < e_bins
// (params: one row followed by the edges, ops.h). A sample's window is still
// a fixed number of consecutive edges, the most that any interval of the
// kernel's support (2 * reach) holds plus its two saturated ends, so the
// window loops stay fixed-length; a sample finds its first edge by binary
// search, and each edge value reads its own edge.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "common.h"

namespace softhist::cpu {

// Whether explicit edges are evenly spaced, to within a few roundings of the
// samples' type T (torch.linspace's): then the windows of evenly spaced bins,
// whose edge values step by a constant, compute the same histogram faster.
template <typename T>
bool evenly_spaced(const double* e, int64_t bins) {
  const double span = e[bins] - e[0];
  const double scale = std::max({std::abs(e[0]), std::abs(e[bins]), span});
  const double epsilon = sizeof(T) == 8                 ? 0x1p-52
                         : sizeof(T) == 4               ? 0x1p-23
                         : std::is_same_v<T, torch::headeronly::Half> ? 0x1p-10
                                                        : 0x1p-7;  // bfloat16
  const double tolerance = 4 * epsilon * scale;
  for (int64_t j = 1; j < bins; ++j)
    if (!(std::abs(e[j] - (e[0] + span * static_cast<double>(j) / static_cast<double>(bins))) <=
          tolerance))
      return false;
  return true;
}

// Cells per edge in the index of explicit edges: enough that most cells hold
// at most an edge or two; at most kMaxCells in all.
constexpr int64_t kCellsPerBin = 4;
constexpr int64_t kMaxCells = int64_t(1) << 16;

// The window over params' explicit edges (has_explicit_edges(params)), and
// the index locate_explicit finds a sample's first edge by, in cell_first.
template <typename C, typename T>
Window explicit_window(Kernel kernel, const Tensor& params, int64_t bins,
                       std::vector<int32_t>& cell_first) {
  Window w = Window::make_explicit<C, T>(kernel, params.const_data_ptr<double>(), bins);
  // The most edges in any [e_j, e_j + 2 reach] (two pointers), plus the
  // saturated edge on each side.
  int64_t most = 1;
  for (int64_t j = 0, end = 0; j <= bins; ++j) {
    end = std::max(end, j);
    while (end + 1 <= bins && w.at[end + 1] <= w.at[j] + 2 * w.reach) ++end;
    most = std::max(most, end - j + 1);
  }
  w.edges = std::min(most + 2, bins + 1);
  // The index: even cells over [e_0, e_bins], each cell's last edge at or
  // below its start, and the most edges a cell holds past that.
  w.cells = std::min(kCellsPerBin * bins, kMaxCells);
  w.cell_inv = static_cast<double>(w.cells) / (w.at[bins] - w.at[0]);
  cell_first.assign(static_cast<size_t>(w.cells + 1), 0);
  int64_t f = 0;
  for (int64_t c = 0; c <= w.cells; ++c) {
    const double start = w.at[0] + static_cast<double>(c) / w.cell_inv;
    while (f < bins && w.at[f + 1] <= start) ++f;
    cell_first[c] = static_cast<int32_t>(f);
    // locate_explicit starts a cell early (a sample's cell may round up), so
    // it steps over two cells' edges.
    if (c > 1) w.cell_steps = std::max<int64_t>(w.cell_steps, f - cell_first[c - 2]);
  }
  w.cell_steps += 1;
  w.cell_first = cell_first.data();
  return w;
}

// locate_block for explicit edges, without branches so that it vectorises:
// each sample's first edge (the last edge at or below x - reach: from the
// cell's first edge, up to cell_steps edges on; clamped so the window fits),
// its value as a double in xd (the first edge for samples that reach no bin,
// so their window values stay finite) and its scale. It starts a cell early,
// where a rounded cell index may be one too high.
template <typename T>
SOFTHIST_HD void locate_explicit(const T* x, const T* w, int64_t n, const Window& win,
                                 int32_t* first, double* xd, double* scale) {
  T x_tail[kLanes], w_tail[kLanes];
  pad_block(n, x, w, x_tail, w_tail);
  const double* e = win.at;
  const int32_t* cell_first = win.cell_first;
  const int32_t bins = static_cast<int32_t>(win.bins);
  const int32_t last_start = static_cast<int32_t>(win.bins + 1 - win.edges);
  const double reach = win.reach, e0 = e[0], lo = e0 - reach, hi = e[win.bins] + reach;
  const double cell_inv = win.cell_inv, last_cell = static_cast<double>(win.cells);
  const int64_t steps = win.cell_steps;
  const bool open_ends = win.open_ends;
  const double in_lo = win.in_lo, in_hi = win.in_hi;
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double v = static_cast<double>(x[l]);
    bool alive = v > lo && v < hi;  // false for NaN
    alive = alive && (!open_ends || (v >= in_lo && v <= in_hi));
    const double y = alive ? v - reach : e0;
    double cell = (y - e0) * cell_inv;
    cell = cell > 0 ? cell : 0.0;
    cell = cell < last_cell ? cell : last_cell;
    const int32_t c = static_cast<int32_t>(cell);
    int32_t f = cell_first[c > 0 ? c - 1 : 0];
    for (int64_t s = 0; s < steps; ++s) {
      const int32_t next = f < bins ? f + 1 : bins;
      f += (f < bins && e[next] <= y) ? 1 : 0;
    }
    f = f < last_start ? f : last_start;
    first[l] = f;
    xd[l] = alive ? v : e0;
    scale[l] = alive ? (w ? static_cast<double>(w[l]) : 1.0) : 0.0;
  }
}

// v[k * kLanes + l] = K^(Order)(kappa * (xd[l] - e[first[l] + k])) for the
// window's edges k.
template <Kernel K, int Order, typename C>
SOFTHIST_CLONES void explicit_window_values(const double* xd, const int32_t* first,
                                            const Window& win, C* v) {
  const double* e = win.at;
  const double kappa = win.kappa;
  for (int64_t k = 0; k < win.edges; ++k)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l)
      v[k * kLanes + l] = cdf<K, Order>(static_cast<C>(kappa * (xd[l] - e[first[l] + k])));
}

template <typename C>
using ExplicitValuesFn = void (*)(const double*, const int32_t*, const Window&, C*);

template <typename C>
ExplicitValuesFn<C> explicit_values_fn(Kernel kernel, int64_t order) {
  ExplicitValuesFn<C> fn = nullptr;
  dispatch_smooth(kernel, order, [&](auto k, auto o) {
    fn = &explicit_window_values<decltype(k)::value, decltype(o)::value, C>;
  });
  return fn;
}

// A block of samples over explicit edges: located, and their window values
// of `order` with the open ends' values where win has them.
template <typename T, typename C>
SOFTHIST_HD void explicit_block(const T* x, const T* w, int64_t n, const Window& win,
                    ExplicitValuesFn<C> values, int order, int32_t* first, double* scale,
                    C* v) {
  double xd[kLanes];
  locate_explicit(x, w, n, win, first, xd, scale);
  values(xd, first, win, v);
  if (win.open_ends) open_window_ends(win, order, first, v);
}

}  // namespace softhist::cpu
