// One axis by windows: each sample's window of kernel values over the edges
// it reaches, added into bins (scatter) or summed against them (gather), with
// the kernel and order compiled in (the forward and backward at even bins)
// or chosen at run time (edge sums, explicit edges, the pair pass).
#pragma once

#include <algorithm>
#include <vector>

#include "common.h"
#include "explicit_edges.h"
#include "window_rows.h"

namespace softhist::cpu {
namespace {

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

}  // namespace
}  // namespace softhist::cpu
