// The joint window of a sample pair, walked by a whole warp: shared by the
// joint scatter and gather. A pair (x, y) reaches the ex x ey bins from
// (first_x, first_y), with mass D_order_x(x, a) * D_order_y(y, b) in bin (a, b)
// (kernels.h); on an axis at its edges, the slots are edges and the values
// kappa^order K^(order) there (one more slot per window). Lanes first evaluate the window's edges, one edge per lane, then
// take one bin each: every lane does useful work for windows of any shape, and
// the lanes of one step touch 32 different bins, so the scatter's atomics never
// collide within a warp, however concentrated the data.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../kernels.h"
#include "device_params.cuh"
#include "reduce.cuh"

namespace softhist::cuda {

// K^(order) for an order known at run time: the x and y edges of a window
// are evaluated in the same step, by different lanes, so a compile-time order
// would save nothing there.
template <Kernel K, typename C>
__device__ __forceinline__ C cdf_of_order(int order, C t) {
  switch (order) {
    case 0: return cdf<K, 0>(t);
    case 1: return cdf<K, 1>(t);
    case 2: return cdf<K, 2>(t);
    default: return cdf<K, 3>(t);
  }
}

// A pair located in its two windows, as the lane that loaded it holds it.
template <typename C>
struct LocatedPair {
  int first_x = 0, first_y = 0;  // first edge of each window (bins < 2^31, check_bins)
  C t_x = 0, t_y = 0;            // even bins: kappa * (coordinate - e_first), as the CPU rounds it
  double x = 0, y = 0;           // explicit edges: the coordinates
  double scale = 0;  // its weight (1 without weights); 0 when x or y reaches no bin
};

// The rectangle of bins [ax0, ax1) x [by0, by1) a walk is restricted to.
struct BinRect {
  int64_t ax0, ax1, by0, by1;
};

// T: the samples' type, whose rounding of min and max the hard kernel follows.
template <Kernel K, typename C, typename T>
struct PairWindow {
  // Edges a warp evaluates in one step besides the two that close the slabs:
  // slab_x + slab_y <= 30, so 2 + slab_x + slab_y edges fit in 32 lanes.
  static constexpr int64_t kSlabEdges = 30;

  Window wx, wy;
  int order_x, order_y;
  bool at_x, at_y;     // an axis at its edges
  int64_t ex, ey;      // slots per window, per axis
  int slab_x, slab_y;  // a window is walked in slabs of at most slab_x x slab_y bins

  // Explicit edges: on both axes (params rows then hold the edges); every
  // thread of the block must construct it then (window_1d).
  __device__ PairWindow(const double* params_x, int64_t bins_x, int order_x_,
                        const double* params_y, int64_t bins_y, int order_y_, bool explicit_edges,
                        bool at_x_ = false, bool at_y_ = false)
      : wx(window_1d<K, C, T>(params_x, bins_x, explicit_edges)),
        wy(window_1d<K, C, T>(params_y, bins_y, explicit_edges)), order_x(order_x_),
        order_y(order_y_), at_x(at_x_), at_y(at_y_), ex(wx.edges - (at_x ? 0 : 1)),
        ey(wy.edges - (at_y ? 0 : 1)) {
    // Whole windows in one slab where they fit; else about half the lanes each.
    const int64_t sy = min(ey, kSlabEdges - min(ex, kSlabEdges / 2));
    slab_y = static_cast<int>(sy);
    slab_x = static_cast<int>(min(ex, kSlabEdges - sy));
  }

  // Pair i (none at or past end), weighted by w[i] (1 when w is null).
  __device__ LocatedPair<C> locate(const T* x, const T* y, const T* w, int64_t i,
                                   int64_t end) const {
    LocatedPair<C> p;
    if (i >= end) return p;
    int64_t fx = 0, fy = 0;
    double tx = 0, ty = 0;
    p.x = static_cast<double>(x[i]);
    p.y = static_cast<double>(y[i]);
    if (!wx.locate_any(p.x, fx, tx) || !wy.locate_any(p.y, fy, ty))
      return LocatedPair<C>{};  // scale 0 whatever the weight, as on the CPU
    p.first_x = static_cast<int>(fx);
    p.first_y = static_cast<int>(fy);
    p.t_x = static_cast<C>(tx);
    p.t_y = static_cast<C>(ty);
    p.scale = w ? static_cast<double>(w[i]) : 1.0;
    return p;
  }

  __device__ bool meets(const LocatedPair<C>& p, const BinRect& r) const {
    return p.first_x < r.ax1 && p.first_x + ex > r.ax0 && p.first_y < r.by1 &&
           p.first_y + ey > r.by0;
  }

  // The pair held by lane `src`, in every lane (the whole warp calls this).
  __device__ LocatedPair<C> broadcast(const LocatedPair<C>& p, int src) const {
    LocatedPair<C> q;
    q.first_x = __shfl_sync(kFullWarp, p.first_x, src);
    q.first_y = __shfl_sync(kFullWarp, p.first_y, src);
    q.scale = __shfl_sync(kFullWarp, p.scale, src);
    if (wx.at) {
      q.x = __shfl_sync(kFullWarp, p.x, src);
      q.y = __shfl_sync(kFullWarp, p.y, src);
    } else {
      q.t_x = __shfl_sync(kFullWarp, p.t_x, src);
      q.t_y = __shfl_sync(kFullWarp, p.t_y, src);
    }
    return q;
  }

  // f(a, b, dx, dy) for every bin (a, b) of p's window inside r, one bin per
  // lane at a time, with dx = D_order_x(x, a) and dy = D_order_y(y, b) in C
  // (in units of kappa, as the CPU's window values). The whole warp calls this
  // with the same p; stage is this warp's 32 values of shared memory.
  template <typename F>
  __device__ void for_each_bin(const LocatedPair<C>& p, const BinRect& r, C* stage,
                               const F& f) const {
    const int lane = threadIdx.x % 32;
    const int64_t kx0 = max(int64_t(0), r.ax0 - p.first_x), kx1 = min(ex, r.ax1 - p.first_x);
    const int64_t ky0 = max(int64_t(0), r.by0 - p.first_y), ky1 = min(ey, r.by1 - p.first_y);
    // Lanes 0..slab_x hold x edges, lanes slab_x + 1.. y edges.
    const bool x_lane = lane <= slab_x;
    const int y_edge = lane - slab_x - 1;
    const int order = x_lane ? order_x : order_y;
    const C t = x_lane ? p.t_x : p.t_y;
    const double u = x_lane ? p.x : p.y;
    for (int64_t xs = kx0; xs < kx1; xs += slab_x) {
      const int nx = static_cast<int>(min(int64_t(slab_x), kx1 - xs));
      for (int64_t ys = ky0; ys < ky1; ys += slab_y) {
        const int ny = static_cast<int>(min(int64_t(slab_y), ky1 - ys));
        // Edges xs..xs+nx of the x window in lanes 0..nx, edges ys..ys+ny of
        // the y window in lanes slab_x+1..slab_x+1+ny (<= 31); then each lane's
        // edge minus the next lane's is the mass of the bin from its edge (at
        // the edges, the edge's value itself, so edge nx or ny is not read:
        // past the window's last, it may lie past explicit edges' end).
        const bool needed = x_lane ? lane < nx + !at_x : y_edge < ny + !at_y;
        const int64_t k = x_lane ? xs + lane : ys + y_edge;
        const Window& w = x_lane ? wx : wy;
        const int64_t first = x_lane ? p.first_x : p.first_y;
        const C edge =
            needed ? w.at_edge(first + k, order, cdf_of_order<K>(order, w.t_at(first, k, t, u)))
                   : C(0);
        const C next = __shfl_down_sync(kFullWarp, edge, 1);
        stage[lane] = (x_lane ? at_x : at_y) ? edge : edge - next;
        __syncwarp();
        // Lane takes bins s = lane, lane + 32, ... of the slab, s = kx * ny + ky,
        // stepping (kx, ky) without a division per bin.
        const int step_x = 32 / ny, step_y = 32 - step_x * ny;
        int kx = lane / ny, ky = lane - kx * ny;
        for (int s = lane; s < nx * ny; s += 32) {
          f(p.first_x + xs + kx, p.first_y + ys + ky, stage[kx], stage[slab_x + 1 + ky]);
          kx += step_x;
          ky += step_y;
          if (ky >= ny) {
            ky -= ny;
            ++kx;
          }
        }
        __syncwarp();  // the next slab overwrites stage
      }
    }
  }
};

}  // namespace softhist::cuda
