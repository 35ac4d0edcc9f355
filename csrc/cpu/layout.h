// Where the histograms' bins lie in memory (rows padded for whole-vector
// windows), the scatter's partials (one per chunk of samples, zeroed and
// cache-line aligned) and their merge in chunk order.
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include "common.h"
#include "window_rows.h"

namespace softhist::cpu {
namespace {

// The histograms of D > 1 axes are stored with rows (the last axis) padded,
// so that a sample's window on it is taken as whole vectors:
//   scatter: adds of kQuad doubles, zeros around the window, 32-byte aligned
//            from the quad at or before its first bin where that takes no
//            more quads than from the bin itself (adds across cache lines
//            took 9-15% longer for windows of 5 bins);
//   gather: reads of kRow values from the window's first bin, the columns
//           past the window masked.
// Rows start at 32-byte boundaries (AlignedRoom, rows of a multiple of kQuad).
constexpr int64_t kQuad = 4, kRow = 8;

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
// The values a scatter adds, or a gather reads, per window of `span` bins.
inline int64_t quad_width(int64_t span) { return round_up(span + kQuad - 1, kQuad); }
inline int64_t row_width(int64_t span) { return round_up(span, kRow); }

// n values from a cache line's start, left for their pass to write: the
// scatters' partials (zeroed(), each by the thread that adds into it, in its
// cache) and the gathers' coefficients.
template <typename S = double>
struct AlignedRoom {
  std::unique_ptr<S[]> store;
  S* data;
  explicit AlignedRoom(int64_t n) : store(new S[static_cast<size_t>(n) + 64 / sizeof(S)]) {
    void* p = store.get();
    size_t space = (static_cast<size_t>(n) + 64 / sizeof(S)) * sizeof(S);
    data = static_cast<S*>(std::align(64, n * sizeof(S), p, space));
  }
  // Partial i of `size` values, zeroed.
  S* zeroed(int64_t i, int64_t size) const {
    S* p = data + i * size;
    std::fill(p, p + size, S(0));
    return p;
  }
};

// AlignedRoom for n partial sums (fail_too_large where they don't fit).
inline AlignedRoom<double> partial_room(int64_t n) {
  try {
    return AlignedRoom<double>(n);
  } catch (const std::bad_alloc&) {
    fail_too_large("partial sums", static_cast<double>(n) * sizeof(double));
  }
}

// A window's span on an axis: its bins (edges - 1), or at the edges all of them.
inline int64_t span_of(const Window& win, bool at_edges) { return win.edges - (at_edges ? 0 : 1); }

// A histogram row's layout: strides of the axes (the last axis contiguous,
// padded by `pad`: for the joint rows, or for D = 1 the short windows) and the
// size of one row's histogram, over each axis's slots (bins, or edges).
template <int D>
struct Layout {
  std::array<int64_t, D> stride;
  int64_t pad, size;

  static Layout of(const Window* win, const Problem& pb) {
    Layout lay;
    const int64_t last = pb.slots(D - 1), span = span_of(win[D - 1], pb.at_edges[D - 1]);
    // (A window's first slot is at most last - span.)
    const int64_t widest = std::max(quad_width(span), row_width(span));
    lay.pad = D == 1 ? kShortMax - 1 : round_up(last + widest - span, kQuad) - last;
    int64_t s = last + lay.pad;
    lay.stride[D - 1] = 1;
    for (int a = D - 2; a >= 0; --a) {
      lay.stride[a] = s;
      s *= pb.slots(a);
    }
    lay.size = s;
    return lay;
  }
  int64_t offset(const int32_t (&first)[D][kLanes], int l) const {
    int64_t o = 0;
    for (int a = 0; a < D; ++a) o += int64_t(first[a][l]) * stride[a];
    return o;
  }
};

// Scatter's work item i: chunk i % chunks of row i / chunks, as its first
// sample and its number of samples (rows of n).
inline void chunk_bounds(int64_t i, int64_t chunks, int64_t n, int64_t& begin, int64_t& count) {
  const int64_t row = i / chunks, ci = i % chunks;
  begin = row * n + n * ci / chunks;
  count = row * n + n * (ci + 1) / chunks - begin;
}

// `lines` lines of `last` values in C, each padded with zeros to `stride`
// (into `size` values), as the scatter's partials are: the gathers' histogram.
template <typename C, typename T>
std::vector<C> padded_rows(const T* hist, int64_t lines, int64_t last, int64_t stride,
                           int64_t size) {
  std::vector<C> h(static_cast<size_t>(size), C(0));
  for (int64_t r = 0; r < lines; ++r)
    for (int64_t b = 0; b < last; ++b) h[r * stride + b] = static_cast<C>(hist[r * last + b]);
  return h;
}

// Where slot b of a row lies in its partial: rows of last_bins, each padded.
inline int64_t partial_at(int64_t b, int64_t last_bins, int64_t pad) {
  return b / last_bins * (last_bins + pad) + b % last_bins;
}

// out[row, outer, j] = factor * sum over chunks of partial[row, chunk, outer
// row, j], in chunk order, dropping the rows' padding.
template <typename T>
void merge_partials(const double* partial, int64_t rows, int64_t chunks,
                    int64_t size, int64_t total_bins, int64_t last_bins, int64_t pad,
                    double factor, T* out) {
  torch::stable::parallel_for(0, rows * total_bins, 4096, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t row = j / total_bins, b = j % total_bins;
      const double* p = partial + row * chunks * size + partial_at(b, last_bins, pad);
      double s = 0;
      for (int64_t ci = 0; ci < chunks; ++ci) s += p[ci * size];
      out[j] = static_cast<T>(s * factor);
    }
  });
}

// merge_partials of one row of one chunk, by the thread that made it (a
// parallel_for per row costs more than the row).
template <typename T>
void write_partial(const double* partial, int64_t total_bins, int64_t last_bins, int64_t pad,
                   double factor, T* out) {
  for (int64_t b = 0; b < total_bins; ++b)  // (0 + p as merge_partials: -0 becomes 0)
    out[b] = static_cast<T>((0.0 + partial[partial_at(b, last_bins, pad)]) * factor);
}

// Slots per row of the histogram (bins, or edges on the axes at their edges).
int64_t total_slots(const Problem& pb) {
  int64_t total = 1;
  for (int64_t a = 0; a < pb.axes; ++a) total *= pb.slots(a);
  return total;
}

}  // namespace
}  // namespace softhist::cpu
