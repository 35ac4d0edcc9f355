// The passes of one axis by Chebyshev pieces: the grid, the chunks in
// parallel, their moments merged in chunk order and turned into slots (or the
// slots into coefficients, for the gathers).
#pragma once

#include <atomic>
#include <vector>

#include "chebyshev.h"
#include "engine.h"
#include "layout.h"
#include "pieces.h"

namespace softhist::cpu {
namespace {

// Each row's moments (partial: `chunks` per row of `size`, summed into its
// first in chunk order: in parallel over the grid, since a row or a few
// would leave threads idle) and directly added slots (`direct`, `slots` per
// chunk, most empty): f(row, moments, added).
template <typename F>
void merge_pieces(int64_t size, int64_t slots, double* partial,
                  const std::vector<std::vector<double>>& direct, int64_t rows, int64_t chunks,
                  const F& f) {
  constexpr int64_t kBlock = 2048;
  const int64_t blocks = (size + kBlock - 1) / kBlock;
  if (chunks > 1)
    torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t r = i / blocks, j0 = (i % blocks) * kBlock;
        const int64_t len = std::min(kBlock, size - j0);
        double* first = partial + r * chunks * size + j0;
        for (int64_t ci = 1; ci < chunks; ++ci) {
          const double* p = first + ci * size;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) first[j] += p[j];
        }
      }
    });
  torch::stable::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> added(static_cast<size_t>(slots));
    for (int64_t r = r0; r < r1; ++r) {
      std::fill(added.begin(), added.end(), 0.0);
      for (int64_t ci = 0; ci < chunks; ++ci) {
        const std::vector<double>& d = direct[r * chunks + ci];
        if (!d.empty())
          for (int64_t j = 0; j < slots; ++j) added[j] += d[j];
      }
      f(r, partial + r * chunks * size, added.data());
    }
  });
}

// A pass's moments: each chunk's (partial, `chunks` per row), and its blocks
// added by their windows (direct, most empty).
struct PieceMoments {
  AlignedRoom<double> partial;
  std::vector<std::vector<double>> direct;
  int64_t chunks;

  bool any_direct() const {
    for (const std::vector<double>& d : direct)
      if (!d.empty()) return true;
    return false;
  }
};

// (With pieces: each sample's place too, save_places's.)
template <typename T, typename C>
PieceMoments piece_moments(const T* x, const T* w, const Window& win, Kernel kernel,
                           int64_t order, const ChebyshevGrid& grid, int64_t n, int64_t rows,
                           int32_t* pieces = nullptr, C* deltas = nullptr) {
  const RuntimeValues<C> values(win, kernel, order);
  const int64_t size = grid.size();
  const int64_t chunks = pieces_chunks(n, rows, size, grid.fine ? kFineGridsPerChunk : kGridsPerChunk);
  PieceMoments pm{AlignedRoom<double>(rows * chunks * size),
                  std::vector<std::vector<double>>(static_cast<size_t>(rows * chunks)), chunks};
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      double* partial = pm.partial.zeroed(i, size);
      dispatch_pieces<C>(grid.terms, win.open_ends, [&](auto terms, auto open) {
        scatter_pieces_chunk<decltype(terms)::value, decltype(open)::value, T, C>(
            x + b, w ? w + b : nullptr, m, win, grid, values, partial,
            pm.direct[i], pieces ? pieces + b : nullptr, deltas ? deltas + b : nullptr);
      });
    }
  });
  return pm;
}

// scatter_axes for one axis by Chebyshev moments: each chunk's, merged. With
// places, over uneven pieces (explicit edges, a compact kernel), where
// locating a sample costs about as much as the rest of its pass, each
// sample's place too: their cuts are the kernel's knots whatever the order,
// so the backward's grid (order 1) has the same pieces.
template <typename T, typename C>
void scatter_pieces(const T* x, const T* w, const Window& win, Kernel kernel, int64_t order,
                    bool at_edges, int64_t n, int64_t rows, double factor, T* out,
                    Places<C>* places = nullptr) {
  const ChebyshevGrid grid = chebyshev_grid_of<C, T>(
      kernel, order, win, at_edges, 0, fine_pieces_pay<C, T>(kernel, win, order, at_edges, n, rows));
  const bool keep = places && !grid.cuts.empty();
  if (keep) places->kept = true;
  const PieceMoments pm = piece_moments<T, C>(x, w, win, kernel, order, grid, n, rows,
                                              keep ? places->pieces : nullptr,
                                              keep ? places->deltas : nullptr);
  merge_pieces(grid.size(), grid.slots, pm.partial.data, pm.direct, rows, pm.chunks,
               [&](int64_t r, const double* moments, const double* added) {
                 to_slots(grid, moments, added, factor, out + r * grid.slots);
               });
}

// A task's room for one row at a time of each piece's coefficients of
// factor * sum_j h_j D(., j) (hist: rows of grid.slots values), and 8 zeros
// after them (rows_of8 reads 8 terms of a piece of 4). A row's are made when
// the task first reads it, just before its samples do: made for all rows
// first, most rows' would have left the cache by then.
template <typename T, typename C>
class RowCoefficients {
 public:
  RowCoefficients(const ChebyshevGrid& grid, const T* hist, double factor)
      : grid_(grid), hist_(hist), factor_(factor), g_(grid.size() + 8),
        acc_(static_cast<size_t>(grid.size())) {
    std::fill(g_.data + grid.size(), g_.data + grid.size() + 8, C(0));
  }
  const C* of(int64_t row) {
    if (row != made_) from_slots(grid_, hist_ + row * grid_.slots, factor_, acc_.data(), g_.data);
    made_ = row;
    return g_.data;
  }

 private:
  const ChebyshevGrid& grid_;
  const T* hist_;
  double factor_;
  AlignedRoom<C> g_;
  std::vector<double> acc_;
  int64_t made_ = -1;
};

// gather_axes for one axis by Chebyshev coefficients, evaluated at each
// sample (located, or at its place in `pieces`: save_places's, which must
// lie in the grid: else it says so).
template <typename T, typename C>
void gather_pieces(const T* x, const T* hist, const Window& win, Kernel kernel, int64_t order,
                   bool at_edges, int64_t n, int64_t rows, double factor, T* out,
                   const int32_t* pieces = nullptr, const C* deltas = nullptr) {
  const ChebyshevGrid grid = chebyshev_grid_of<C, T>(
      kernel, order, win, at_edges, 0, fine_pieces_pay<C, T>(kernel, win, order, at_edges, n, rows));
  SOFTHIST_CHECK(!pieces || (grid.count > 0 && !grid.cuts.empty()),
                 "softhist: gather_at_places's pieces must be scatter_places's over the same "
                 "params and kernel: these keep no places");
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  std::atomic<bool> in_grid{true};
  torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
    RowCoefficients<T, C> g(grid, hist, factor);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
      const int64_t m = std::min(b + kGatherBlock, (row + 1) * n) - b;
      const C* coefficients = g.of(row);
      dispatch_pieces<C>(grid.terms, win.open_ends, [&](auto terms, auto open) {
        if (!gather_pieces_chunk<decltype(terms)::value, decltype(open)::value, T, C>(
                x + b, coefficients, m, win, grid, out + b, pieces ? pieces + b : nullptr,
                deltas ? deltas + b : nullptr))
          in_grid = false;
      });
    }
  });
  SOFTHIST_CHECK(in_grid, "softhist: gather_at_places's pieces must be scatter_places's over the "
                 "same params and kernel: some lie outside its ", grid.count, " pieces");
}

// pair_axes by Chebyshev pieces: the edge sums merged as scatter_pieces's,
// the gather's coefficients from coef as gather_pieces's.
template <typename T, typename C>
void pair_pieces(const T* x, const T* w, const T* coef, const C* h, int64_t h_stride,
                 const Window& win, Kernel kernel, int64_t order, int64_t n, int64_t rows,
                 double factor, double e0, T* gathered, T* scattered, double* moment) {
  const ChebyshevGrid grid = chebyshev_grid_of<C, T>(kernel, order, win, true);
  const RuntimeValues<C> values(win, kernel, order);
  const int64_t size = grid.size(), chunks = pieces_chunks(n, rows, size);
  const AlignedRoom<double> partial(rows * chunks * size);
  std::vector<std::vector<double>> direct(static_cast<size_t>(rows * chunks));
  std::vector<double> moments(static_cast<size_t>(rows * chunks), 0.0);
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    RowCoefficients<T, C> g(grid, coef, 1.0);
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      const int64_t row = i / chunks;
      double* part = partial.zeroed(i, size);
      const C* coefficients = g.of(row);
      dispatch_pieces<C>(grid.terms, win.open_ends, [&](auto terms, auto open) {
        pair_pieces_chunk<decltype(terms)::value, decltype(open)::value, T, C>(
            x + b, w ? w + b : nullptr, coefficients, h + row * h_stride, m, win, grid, values,
            factor, e0, gathered + b, part, direct[i], moments[i]);
      });
    }
  });
  merge_pieces(grid.size(), grid.slots, partial.data, direct, rows, chunks,
               [&](int64_t r, const double* moments, const double* added) {
                 to_slots(grid, moments, added, factor, scattered + r * grid.slots);
               });
  double sum = 0;
  for (double mi : moments) sum += mi;
  *moment = sum;
}

}  // namespace
}  // namespace softhist::cpu
