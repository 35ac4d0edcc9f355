// One axis of bins with explicit, unevenly spaced edges e_0 < ... < e_bins
// (params: one row followed by the edges, ops.h). A sample's window is still
// a fixed number of consecutive edges, the most that any interval of the
// kernel's support (2 * reach) holds plus its two saturated ends, so the
// window loops stay fixed-length; a sample finds its first edge by binary
// search, and each edge value reads its own edge.
#pragma once

#include <algorithm>

#include "common.h"

namespace softhist::cpu {

// The window over params' explicit edges (has_explicit_edges(params)).
template <typename C, typename T>
Window explicit_window(Kernel kernel, const Tensor& params, int64_t bins) {
  const double* p = params.const_data_ptr<double>();
  Window w{};
  w.at = p + kParamsSize;
  w.kappa = p[2];
  w.bins = bins;
  w.open_ends = p[3] != 0;
  w.lo = w.at[0];
  w.in_lo = rounded_to<T>(w.at[0]);
  w.in_hi = rounded_to<T>(w.at[bins]);
  w.reach = static_cast<double>(saturation<C>(kernel)) / w.kappa;  // in units of the input
  // The most edges in any [e_j, e_j + 2 reach] (two pointers), plus the
  // saturated edge on each side.
  int64_t most = 1;
  for (int64_t j = 0, end = 0; j <= bins; ++j) {
    end = std::max(end, j);
    while (end + 1 <= bins && w.at[end + 1] <= w.at[j] + 2 * w.reach) ++end;
    most = std::max(most, end - j + 1);
  }
  w.edges = std::min(most + 2, bins + 1);
  return w;
}

// locate_block for explicit edges: each sample's first edge (the last edge at
// or below x - reach, clamped so the window fits), its value as a double in
// xd (the first edge for samples that reach no bin, so their window values
// stay finite) and its scale.
template <typename T>
SOFTHIST_HD void locate_explicit(const T* x, const T* w, int64_t n, const Window& win,
                                 int32_t* first, double* xd, double* scale) {
  const double* e = win.at;
  const int64_t last_start = win.bins + 1 - win.edges;
  for (int l = 0; l < kLanes; ++l) {
    const double v = l < n ? static_cast<double>(x[l]) : NAN;
    bool alive = v > e[0] - win.reach && v < e[win.bins] + win.reach;  // false for NaN
    if (win.open_ends) alive = alive && v >= win.in_lo && v <= win.in_hi;
    int64_t f = 0;
    if (alive) {
      f = std::upper_bound(e, e + win.bins + 1, v - win.reach) - e - 1;
      f = std::clamp<int64_t>(f, 0, last_start);
    }
    first[l] = static_cast<int32_t>(f);
    xd[l] = alive ? v : e[0];
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
void explicit_block(const T* x, const T* w, int64_t n, const Window& win,
                    ExplicitValuesFn<C> values, int order, int32_t* first, double* scale,
                    C* v) {
  double xd[kLanes];
  locate_explicit(x, w, n, win, first, xd, scale);
  values(xd, first, win, v);
  if (win.open_ends) open_window_ends(win, order, first, v);
}

}  // namespace softhist::cpu
