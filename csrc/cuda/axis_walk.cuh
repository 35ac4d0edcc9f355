// A sample's window on one axis, as the thread that walks it holds it: the
// three-axis kernels (scatter3d.cu, gather3d.cu) give each sample one thread,
// which walks its whole 3-d window itself, one axis inside the other.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../kernels.h"
#include "device_params.cuh"
#include "pair_window.cuh"

namespace softhist::cuda {

template <Kernel K, typename C>
struct AxisWalk {
  const Window* win = nullptr;
  int64_t first = 0;  // the window's first edge
  C t = 0;            // even bins: kappa * (coordinate - e_first), as the CPU rounds it
  double x = 0;       // explicit edges: the coordinate
  int order = 0;
  bool at_edges = false;  // slots are edges, values kappa^order K^(order) there

  // Locates x in win (false: it reaches no bin, see Window::locate).
  __device__ bool locate(const Window& w, int order_, double x_, bool at_edges_ = false) {
    double t64 = 0;
    win = &w;
    order = order_;
    x = x_;
    at_edges = at_edges_;
    if (!w.locate_any(x, first, t64)) return false;
    t = static_cast<C>(t64);
    return true;
  }
  // Slots of the window: its bins, edges - 1, all inside [0, bins) (Window::locate
  // clamps), or at the edges all its edges.
  __device__ int64_t span() const { return win->edges - (at_edges ? 0 : 1); }
  // K^(order) at the window's edge k, with the open ends' values: the value
  // the CPU's window holds there (and the 2-d walk's lanes compute).
  __device__ C edge(int64_t k) const {
    return win->at_edge(first + k, order, cdf_of_order<K>(order, win->t_at(first, k, t, x)));
  }
};

// Walks the masses D_order(x, first + k) = edge(k) - edge(k + 1) for k in
// [k0, k1), differences in C as on the CPU (at the edges, edge(k) itself):
// f(k, mass).
template <Kernel K, typename C, typename F>
__device__ __forceinline__ void for_each_mass(const AxisWalk<K, C>& w, int64_t k0, int64_t k1,
                                              const F& f) {
  if (w.at_edges) {
    for (int64_t k = k0; k < k1; ++k) f(k, w.edge(k));
    return;
  }
  C prev = w.edge(k0);
  for (int64_t k = k0; k < k1; ++k) {
    const C next = w.edge(k + 1);
    f(k, prev - next);
    prev = next;
  }
}

// The masses of the innermost axis, which the walk of the outer axes reads
// once per outer bin: computed once and kept in local memory when there are at
// most kCached of them, else recomputed on each pass. Either way f(k, mass)
// gets the values for_each_mass gives.
template <Kernel K, typename C>
struct InnerMasses {
  static constexpr int64_t kCached = 16;

  const AxisWalk<K, C>* w;
  int64_t k0, k1;
  bool cached;
  C cache[kCached];

  __device__ InnerMasses(const AxisWalk<K, C>& walk, int64_t k0_, int64_t k1_)
      : w(&walk), k0(k0_), k1(k1_), cached(k1_ - k0_ <= kCached) {
    if (cached) for_each_mass(walk, k0, k1, [&](int64_t k, C d) { cache[k - k0] = d; });
  }
  template <typename F>
  __device__ void for_each(const F& f) const {
    if (cached) {
      for (int64_t k = k0; k < k1; ++k) f(k, cache[k - k0]);
    } else {
      for_each_mass(*w, k0, k1, f);
    }
  }
};

}  // namespace softhist::cuda
