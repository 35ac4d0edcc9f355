// The engine's passes: scatter (samples -> bins) and gather (bins -> samples)
// over D = 1, 2 or 3 axes, as compile-time D, and Engine's members over them
// (instantiated per dtype in engine_*.cpp). Each axis's window comes from
// params (even bins or explicit edges); then, by the cheaper method, the
// samples are processed in blocks of kLanes, so the window loops (fixed
// length, only their offsets differ per sample) vectorise across samples:
//   D = 1: by Chebyshev pieces (pieces.h) where they pay, else a sample's
//          window of edges (windows_1d.h), the kernel and order as
//          compile-time constants;
//   D = 2: by Chebyshev pieces of both axes where they pay (joint_pieces.h);
//   D > 1: else a sample's window on the last axis, as whole vectors over
//          histogram rows padded with zeros; the outer axes' windows give
//          each row its coefficient (joint.h);
//   hard:  each sample's bin (hard.h).
// Scatter sums fixed chunks of each row into float64 partials, merged in
// chunk order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "engine.h"
#include "explicit_edges.h"
#include "hard.h"
#include "joint.h"
#include "joint_pieces.h"
#include "layout.h"
#include "pieces_passes.h"
#include "windows_1d.h"

namespace softhist::cpu {
namespace {

// What an op of D axes works on: contiguous coordinates, windows and layout.
template <int D, typename T, typename C>
struct Axes {
  std::array<const T*, D> x;
  std::array<Window, D> win;
  Layout<D> lay;
  double factor;  // prod kappa_a^order_a: window values are in units of kappa
  std::array<ExplicitIndex<C>, D> index;  // what explicit windows point to

  // Axis a's window from params row a: over even bins, or explicit edges
  // (even ones as even bins: the same histogram, faster).
  Axes(const std::vector<Tensor>& coords, const Tensor& params, const Problem& pb,
       Kernel kernel) {
    factor = 1;
    for (int a = 0; a < D; ++a) {
      const double* row = params.const_data_ptr<double>() + a * params.size(1);
      const int64_t bins = pb.bins[a];
      const double* e = row + kParamsSize;
      x[a] = coords[a].const_data_ptr<T>();
      if (!has_explicit_edges(params))
        win[a] = Window::make<C, T>(kernel, row[0], row[1], row[2], bins, row[3] != 0);
      else if (evenly_spaced<C>(e, bins))
        win[a] = Window::make<C, T>(kernel, e[0], e[bins], row[2], bins, row[3] != 0);
      else
        win[a] = explicit_window<C, T>(kernel, row, bins, index[a]);
      factor *= std::pow(row[2], static_cast<double>(pb.orders[a]));
    }
    lay = Layout<D>::of(win.data(), pb);
  }
  std::array<const T*, D> at(int64_t i) const {
    std::array<const T*, D> xs;
    for (int a = 0; a < D; ++a) xs[a] = x[a] + i;
    return xs;
  }
};

// (With places: scatter_places's, scatter_pieces's.)
template <int D, typename T, typename C>
void scatter_axes(const std::vector<Tensor>& coords, const T* w, const Tensor& params,
                  const Problem& pb, Kernel kernel, T* out, Places<C>* places = nullptr) {
  const Axes<D, T, C> ax(coords, params, pb, kernel);
  const int64_t n = pb.n, rows = pb.rows, size = ax.lay.size;
  if (D == 1 && chebyshev_pays<C, T>(kernel, ax.win[0], pb.orders[0], pb.at_edges[0], n))
    return scatter_pieces<T, C>(ax.x[0], w, ax.win[0], kernel, pb.orders[0], pb.at_edges[0], n,
                                rows, ax.factor, out, places);
  if constexpr (D == 2)
    if (pair_pieces_pay<C, T>(kernel, ax.win, pb) && weights_finite(w, rows * n))
      return scatter_pair_pieces<T, C>(ax.x, w, ax.win, kernel, pb, ax.factor, out);
  const int64_t chunks = chunks_per_row(n, rows, size);
  const int64_t total = total_slots(pb), last = pb.slots(D - 1);
  // Share i: chunk i % chunks of row i / chunks, into partial[i], merged after.
  // Where rows are one chunk each (many rows, or few samples), share i is a
  // thread's run of whole rows, each written as it is done from partial[i]:
  // no rows x slots of partials.
  const bool whole_rows = chunks == 1;
  const int64_t shares =
      whole_rows ? std::min<int64_t>(rows, torch::stable::get_num_threads()) : rows * chunks;
  const AlignedRoom<double> partial = partial_room(shares * size);
  torch::stable::parallel_for(0, shares, 1, [&](int64_t s0, int64_t s1) {
    std::optional<Block<D, T, C>> blk;
    if (D > 1 && kernel != Kernel::Hard) blk.emplace(ax.win.data(), kernel, pb);
    for (int64_t share = s0; share < s1; ++share) {
      const int64_t i0 = whole_rows ? share * rows / shares : share;
      const int64_t i1 = whole_rows ? (share + 1) * rows / shares : share + 1;
      for (int64_t i = i0; i < i1; ++i) {
        int64_t b, m;
        chunk_bounds(i, chunks, n, b, m);
        const T* ws = w ? w + b : nullptr;
        double* acc = partial.zeroed(share, size);
        if (kernel == Kernel::Hard) {
          scatter_chunk_hard<D>(ax.at(b), ws, m, ax.win.data(), ax.lay, acc);
        } else if (D == 1 && (pb.at_edges[0] || ax.win[0].at)) {
          const RuntimeValues<C> values(ax.win[0], kernel, pb.orders[0]);
          if (pb.at_edges[0])
            runtime_scatter_chunk<true, T, C>(ax.x[0] + b, ws, m, ax.win[0], values, acc);
          else
            runtime_scatter_chunk<false, T, C>(ax.x[0] + b, ws, m, ax.win[0], values, acc);
        } else if constexpr (D == 1) {
          dispatch_smooth(kernel, pb.orders[0], [&](auto k, auto ord) {
            dispatch_bool(ax.win[0].open_ends, [&](auto open) {
              scatter_chunk_1d<decltype(k)::value, decltype(ord)::value, decltype(open)::value, T,
                               C>(ax.x[0] + b, ws, m, ax.win[0], acc);
            });
          });
        } else {
          scatter_chunk_joint<D>(ax.at(b), ws, m, *blk, ax.lay, acc);
        }
        if (whole_rows) write_partial(acc, total, last, ax.lay.pad, ax.factor, out + i * total);
      }
    }
  });
  if (!whole_rows)
    merge_partials(partial.data, rows, chunks, size, total, last, ax.lay.pad, ax.factor, out);
}

template <int D, typename T, typename C>
void gather_axes(const std::vector<Tensor>& coords, const T* hist, const Tensor& params,
                 const Problem& pb, Kernel kernel, T* out) {
  const Axes<D, T, C> ax(coords, params, pb, kernel);
  const int64_t n = pb.n, rows = pb.rows, size = ax.lay.size;
  if (D == 1 && chebyshev_pays<C, T>(kernel, ax.win[0], pb.orders[0], pb.at_edges[0], n))
    return gather_pieces<T, C>(ax.x[0], hist, ax.win[0], kernel, pb.orders[0], pb.at_edges[0], n,
                               rows, ax.factor, out);
  if constexpr (D == 2)
    if (pair_pieces_pay<C, T>(kernel, ax.win, pb))
      return gather_pair_pieces<T, C>(ax.x, hist, ax.win, kernel, pb, ax.factor, out);
  const int64_t last = pb.slots(D - 1), stride = last + ax.lay.pad, total = total_slots(pb);
  const std::vector<C> h = padded_rows<C>(hist, rows * (total / last), last, stride, rows * size);
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  // Work item i: block i % blocks of row i / blocks.
  torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
    std::optional<Block<D, T, C>> blk;
    if (D > 1 && kernel != Kernel::Hard) blk.emplace(ax.win.data(), kernel, pb);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
      const int64_t m = std::min(b + kGatherBlock, (row + 1) * n) - b;
      const C* hr = h.data() + row * size;
      if (kernel == Kernel::Hard) {
        gather_chunk_hard<D>(ax.at(b), hr, m, ax.win.data(), ax.lay, out + b);
      } else if (D == 1 && (pb.at_edges[0] || ax.win[0].at || kernel == Kernel::Logistic)) {
        // (the logistic kernel's window values come cheaper all at once, one
        // exp per sample, than where they are summed, one per edge)
        const RuntimeValues<C> values(ax.win[0], kernel, pb.orders[0]);
        if (pb.at_edges[0])
          runtime_gather_chunk<true, T, C>(ax.x[0] + b, hr, m, ax.win[0], values, ax.factor,
                                           out + b);
        else
          runtime_gather_chunk<false, T, C>(ax.x[0] + b, hr, m, ax.win[0], values, ax.factor,
                                            out + b);
      } else if constexpr (D == 1) {
        dispatch_smooth(kernel, pb.orders[0], [&](auto k, auto ord) {
          dispatch_bool(ax.win[0].open_ends, [&](auto open) {
            gather_chunk_1d<decltype(k)::value, decltype(ord)::value, decltype(open)::value, T,
                            C>(ax.x[0] + b, hr, m, ax.win[0], ax.factor, out + b);
          });
        });
      } else {
        gather_chunk_joint<D>(ax.at(b), hr, m, *blk, ax.lay, ax.factor, out + b);
      }
    }
  });
}

// edge_gather_scatter's pass (one axis at its edges): scattered as
// scatter_axes, gathered as gather_axes, moment
// as runtime_pair_chunk's, chunk partials merged in order.
template <typename T, typename C>
void pair_axes(const Tensor& x, const T* w, const T* coef, const Tensor& params,
               const Problem& pb, Kernel kernel, T* gathered, T* scattered, double* moment) {
  const Axes<1, T, C> ax({x}, params, pb, kernel);
  const int64_t n = pb.n, rows = pb.rows, last = pb.slots(0), size = ax.lay.size;
  const std::vector<C> h = padded_rows<C>(coef, rows, last, size, rows * size);
  const double* p = params.const_data_ptr<double>();
  const double e0 = has_explicit_edges(params) ? p[kParamsSize] : p[0];
  if (chebyshev_pays<C, T>(kernel, ax.win[0], pb.orders[0], true, n))
    return pair_pieces<T, C>(ax.x[0], w, coef, h.data(), size, ax.win[0], kernel, pb.orders[0], n,
                             rows, ax.factor, e0, gathered, scattered, moment);
  const int64_t chunks = chunks_per_row(n, rows, size);
  std::vector<double> partial(static_cast<size_t>(rows * chunks * size));
  std::vector<double> moments(static_cast<size_t>(rows * chunks), 0.0);
  const RuntimeValues<C> values(ax.win[0], kernel, pb.orders[0]);
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      runtime_pair_chunk<T, C>(ax.x[0] + b, w ? w + b : nullptr, h.data() + i / chunks * size, m,
                               ax.win[0], values, ax.factor, e0, gathered + b,
                               partial.data() + i * size, moments[i]);
    }
  });
  merge_partials(partial.data(), rows, chunks, size, last, last, ax.lay.pad, ax.factor, scattered);
  double sum = 0;
  for (double mi : moments) sum += mi;
  *moment = sum;
}

// scatter_edge_sums: the histogram (scatter at order 0), and over pieces each
// row's sums at its edges (rows of 2 * edges: the edge sums at order 1, then
// those with each sample's weight times x - e0), the histogram's own moments
// times the edges' tables. False where the windows run (or a weight is not
// finite, which no moment carries): there two sums would cost more than
// edge_gather_scatter's pass takes them for.
template <typename T, typename C>
bool edge_sums_axes(const Tensor& x, const T* w, const Tensor& params, const Problem& bins_pb,
                    const Problem& edges_pb, Kernel kernel, T* hist, double* sums) {
  const Axes<1, T, C> ax({x}, params, edges_pb, kernel);
  const Window& win = ax.win[0];
  const int64_t n = edges_pb.n, rows = edges_pb.rows, edges = edges_pb.slots(0);
  if (!chebyshev_pays<C, T>(kernel, win, 0, false, n) ||
      !chebyshev_pays<C, T>(kernel, win, 1, true, n)) {
    scatter_axes<1, T, C>({x}, w, params, bins_pb, kernel, hist);
    return false;
  }
  const double* p = params.const_data_ptr<double>();
  const double e0 = has_explicit_edges(params) ? p[kParamsSize] : p[0];
  // (The edges' tables read the histogram's moments: both grids take its terms.)
  const int64_t terms = chebyshev_terms<C>(kernel, 0);
  const ChebyshevGrid bins_grid = chebyshev_grid_of<C, T>(kernel, 0, win, false, terms);
  const ChebyshevGrid edges_grid = chebyshev_grid_of<C, T>(kernel, 1, win, true, terms);
  const PieceMoments pm = piece_moments<T, C>(ax.x[0], w, win, kernel, 0, bins_grid, n, rows);
  const bool taken = !pm.any_direct();
  merge_pieces(bins_grid.size(), bins_grid.slots, pm.partial.data, pm.direct, rows, pm.chunks,
               [&](int64_t r, const double* moments, const double* added) {
                 to_slots(bins_grid, moments, added, 1.0, hist + r * bins_grid.slots);
                 if (!taken) return;
                 std::vector<double> placed(static_cast<size_t>(edges_grid.size()));
                 const std::vector<double> zeros(static_cast<size_t>(edges));
                 double* s = sums + 2 * r * edges;
                 to_slots(edges_grid, moments, zeros.data(), ax.factor, s);
                 placed_moments(edges_grid, e0, moments, placed.data());
                 to_slots(edges_grid, placed.data(), zeros.data(), ax.factor, s + edges);
               });
  return taken;
}

// edge_gather_scatter given the sums scatter_edge_sums took (rows of 2 *
// edges): the gather alone (none without `gathered`); the edge sums are
// theirs, and the moment their placed sums against coef.
template <typename T, typename C>
void pair_from_sums_axes(const Tensor& x, const T* coef, const Tensor& params,
                         const Problem& pb, Kernel kernel, const double* sums, T* gathered,
                         T* scattered, double* moment) {
  if (gathered) gather_axes<1, T, C>({x}, coef, params, pb, kernel, gathered);
  const int64_t edges = pb.slots(0);
  double sum = 0;
  for (int64_t r = 0; r < pb.rows; ++r)
    for (int64_t j = 0; j < edges; ++j) {
      scattered[r * edges + j] = static_cast<T>(sums[2 * r * edges + j]);
      sum += static_cast<double>(coef[r * edges + j]) * sums[(2 * r + 1) * edges + j];
    }
  *moment = sum;
}

// gather_at_places: gather_axes's at the samples' places (pieces and deltas,
// scatter_places's where it kept them), or gather_axes's itself.
template <typename T, typename C>
void gather_places_axes(const Tensor& x, const T* hist, const Tensor& params, const Problem& pb,
                        Kernel kernel, const int32_t* pieces, const C* deltas, T* out) {
  if (!pieces) return gather_axes<1, T, C>({x}, hist, params, pb, kernel, out);
  const Axes<1, T, C> ax({x}, params, pb, kernel);
  gather_pieces<T, C>(ax.x[0], hist, ax.win[0], kernel, pb.orders[0], false, pb.n, pb.rows,
                      ax.factor, out, pieces, deltas);
}

}  // namespace

template <typename T, typename C>
void Engine<T, C>::scatter(const std::vector<Tensor>& coords, const T* w, const Tensor& params,
                           const Problem& pb, Kernel kernel, T* out, Places<C>* places) {
  switch (pb.axes) {  // (a switch: a lambda here would capture types of hidden visibility)
    case 1: return scatter_axes<1, T, C>(coords, w, params, pb, kernel, out, places);
    case 2: return scatter_axes<2, T, C>(coords, w, params, pb, kernel, out, places);
    case 3: return scatter_axes<3, T, C>(coords, w, params, pb, kernel, out, places);
  }
}

template <typename T, typename C>
void Engine<T, C>::gather(const std::vector<Tensor>& coords, const T* hist, const Tensor& params,
                          const Problem& pb, Kernel kernel, T* out) {
  switch (pb.axes) {
    case 1: return gather_axes<1, T, C>(coords, hist, params, pb, kernel, out);
    case 2: return gather_axes<2, T, C>(coords, hist, params, pb, kernel, out);
    case 3: return gather_axes<3, T, C>(coords, hist, params, pb, kernel, out);
  }
}

template <typename T, typename C>
void Engine<T, C>::pair(const Tensor& x, const T* w, const T* coef, const Tensor& params,
                        const Problem& pb, Kernel kernel, T* gathered, T* scattered,
                        double* moment) {
  pair_axes<T, C>(x, w, coef, params, pb, kernel, gathered, scattered, moment);
}

template <typename T, typename C>
bool Engine<T, C>::edge_sums(const Tensor& x, const T* w, const Tensor& params,
                             const Problem& bins_pb, const Problem& edges_pb, Kernel kernel,
                             T* hist, double* sums) {
  return edge_sums_axes<T, C>(x, w, params, bins_pb, edges_pb, kernel, hist, sums);
}

template <typename T, typename C>
void Engine<T, C>::pair_from_sums(const Tensor& x, const T* coef, const Tensor& params,
                                  const Problem& pb, Kernel kernel, const double* sums,
                                  T* gathered, T* scattered, double* moment) {
  pair_from_sums_axes<T, C>(x, coef, params, pb, kernel, sums, gathered, scattered, moment);
}

template <typename T, typename C>
void Engine<T, C>::gather_places(const Tensor& x, const T* hist, const Tensor& params,
                                 const Problem& pb, Kernel kernel, const int32_t* pieces,
                                 const C* deltas, T* out) {
  gather_places_axes<T, C>(x, hist, params, pb, kernel, pieces, deltas, out);
}

}  // namespace softhist::cpu
