// Two axes by Chebyshev pieces (chebyshev.h) of both. A sample's masses on
// the bins of either axis are, on its piece of that axis, polynomials in its
// place there (exactly, for the compact kernels); so its joint masses are
// the products T_m(dx) T_n(dy) times the two axes' tables. The scatter adds
// each sample's products into its pair of pieces' moments (one vector per
// term on the first axis), and the tables turn the moments into bins, one
// axis at a time; the gather sums each pair's coefficients against them.
// Where the windows (joint.h) take a window per axis, a kernel value per
// edge and a vector per row of the window for each sample.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <vector>

#include "chebyshev.h"
#include "layout.h"
#include "pieces_passes.h"
#include "window_rows.h"

namespace softhist::cpu {
namespace {

// The last axis's terms: one vector of doubles per term of the first axis.
constexpr int64_t kInnerTerms = 8;

// Terms that hold K^(order) exactly on a piece: a compact kernel's degree
// plus one; the smooth kernels' interpolants take chebyshev_terms's.
template <typename C>
int64_t exact_terms(Kernel kernel, int64_t order) {
  if (kernel == Kernel::Logistic || kernel == Kernel::Gaussian)
    return chebyshev_terms<C>(kernel, order);
  const int64_t degree = kernel == Kernel::BSpline ? 4 : kernel == Kernel::Triangular ? 2 : 1;
  return std::max<int64_t>(degree - order + 1, 1);
}

// Each axis's grid: the first with exact_terms, the last with kInnerTerms.
// A pair of pieces (px, py) holds its moments at cell * (px * count_y + py),
// term (m, n) at m * kInnerTerms + n.
struct PairGrid {
  std::array<ChebyshevGrid, 2> axis;

  int64_t cell() const { return axis[0].terms * kInnerTerms; }
  int64_t size() const { return axis[0].count * axis[1].count * cell(); }
  int64_t slots() const { return axis[0].slots * axis[1].slots; }
};

template <typename C, typename T>
PairGrid pair_grid(Kernel kernel, const std::array<Window, 2>& win,
                   const std::vector<int64_t>& orders) {
  PairGrid pg;
  pg.axis[0] = chebyshev_grid_of<C, T>(kernel, orders[0], win[0], false,
                                       exact_terms<C>(kernel, orders[0]));
  pg.axis[1] = chebyshev_grid_of<C, T>(kernel, orders[1], win[1], false, kInnerTerms);
  return pg;
}

// Whether the pieces cost less than the windows: two axes of even bins
// (not at their edges, orders <= 1) with pieces, the smooth kernels' windows
// of at least kMinChebyshevEdges edges and interpolants of at most
// kInnerTerms terms, and rows of at least 8 grids' size of samples.
template <typename C, typename T>
bool pair_pieces_pay(Kernel kernel, const std::array<Window, 2>& win, const Problem& pb) {
  if (kernel == Kernel::Hard) return false;
  const bool smooth = kernel == Kernel::Logistic || kernel == Kernel::Gaussian;
  double size = kInnerTerms;
  for (int a = 0; a < 2; ++a) {
    const int64_t order = pb.orders[a];
    if (pb.at_edges[a] || win[a].at || order > 1) return false;
    if (smooth && (win[a].edges < kMinChebyshevEdges || chebyshev_terms<C>(kernel, order) > kInnerTerms))
      return false;
    const int64_t per_bin = pieces_per_bin<C>(kernel, win[a].c);
    if (per_bin == 0) return false;
    const double pad = std::ceil(win[a].reach) + 2;  // chebyshev_grid's
    size *= static_cast<double>(per_bin) * (static_cast<double>(win[a].bins) + 2 * pad);
  }
  size *= static_cast<double>(exact_terms<C>(kernel, pb.orders[0]));
  return 8 * size <= static_cast<double>(pb.n) && size < 0x1p26;
}

// Whether all n weights are finite (true without weights): a NaN or infinite
// weight, which no moment can carry, leaves the samples to the windows.
template <typename T>
bool weights_finite(const T* w, int64_t n) {
  if (!w) return true;
  std::atomic<bool> finite{true};
  torch::stable::parallel_for(0, n, int64_t(1) << 16, [&](int64_t i0, int64_t i1) {
    bool all = true;
    for (int64_t i = i0; i < i1; ++i) all &= std::isfinite(static_cast<double>(w[i]));
    if (!all) finite = false;
  });
  return finite;
}

// A block's pieces on both axes: offset[l] = sample l's pair's moments,
// tx[m][l] = scale_l T_m(dx_l) (scale: its weight, 1 without, 0 where it
// reaches no bin on either axis) and ty[n][l] = T_n(dy_l).
template <bool OpenX, bool OpenY, typename T, typename C>
SOFTHIST_HD void locate_pairs(const T* x, const T* y, const T* w, int64_t n, const PairGrid& pg,
                              int64_t terms_x, int32_t* offset, double (*tx)[kLanes],
                              double (*ty)[kLanes]) {
  int32_t px[kLanes], py[kLanes];
  C dx[kLanes], dy[kLanes];
  double scale[kLanes], alive[kLanes];
  const ChebyshevGrid &gx = pg.axis[0], &gy = pg.axis[1];
  locate_pieces<OpenX>(x, w, n, gx.frame, gx, px, dx, scale, 1);
  locate_pieces<OpenY>(y, static_cast<const T*>(nullptr), n, gy.frame, gy, py, dy, alive, 1);
  const int32_t count_y = static_cast<int32_t>(gy.count), cell = static_cast<int32_t>(pg.cell());
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    offset[l] = (px[l] * count_y + py[l]) * cell;
    // Select, not multiply: a zero weight must not meet an infinite place.
    tx[0][l] = alive[l] != 0 ? scale[l] : 0.0;
    tx[1][l] = tx[0][l] * static_cast<double>(dx[l]);
    ty[0][l] = 1.0;
    ty[1][l] = static_cast<double>(dy[l]);
  }
  // T_(m+1) = 2 d T_m - T_(m-1), linear: tx carries the scale.
  for (int64_t m = 2; m < terms_x; ++m)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) tx[m][l] = 2.0 * static_cast<double>(dx[l]) * tx[m - 1][l] - tx[m - 2][l];
  for (int64_t m = 2; m < kInnerTerms; ++m)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) ty[m][l] = 2.0 * static_cast<double>(dy[l]) * ty[m - 1][l] - ty[m - 2][l];
}

// moments[offset_l + m * kInnerTerms + n] += tx[m][l] T_n(dy_l) for 8 lanes
// from l0: each lane's T_n(dy) one vector (transposed in registers), times
// each of its tx terms; V: either type of 8 doubles (has_avx512).
template <typename V>
SOFTHIST_HD void add_pairs(const double (*tx)[kLanes], const double (*ty)[kLanes],
                           const int32_t* offset, int l0, int64_t terms_x, double* moments) {
  V r[8];
  for (int k = 0; k < 8; ++k) load8(r[k], &ty[k][l0]);
  transpose8(r);  // r[j]: lane l0 + j's T_n(dy)
  for (int j = 0; j < 8; ++j) {
    const int l = l0 + j;
    if (tx[0][l] == 0) continue;  // reaches no bin (or weight 0)
    double* cell = moments + offset[l];
    for (int64_t m = 0; m < terms_x; ++m) add_first<8>(cell + m * kInnerTerms, tx[m][l] * r[j]);
  }
}

// moments[offset_i + m * kInnerTerms + n] += w_i T_m(dx_i) T_n(dy_i) over n
// samples of finite weight.
template <bool OpenX, bool OpenY, typename T, typename C>
SOFTHIST_CLONES void scatter_pairs_chunk(const T* x, const T* y, const T* w, int64_t n,
                                         const PairGrid& pg, double* moments) {
  const int64_t terms_x = pg.axis[0].terms;
  const bool wide = has_avx512();
  int32_t offset[kLanes];
  double tx[kInnerTerms][kLanes], ty[kInnerTerms][kLanes];
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    locate_pairs<OpenX, OpenY, T, C>(x + i0, y + i0, w ? w + i0 : nullptr, n - i0, pg, terms_x,
                                     offset, tx, ty);
    for (int l0 = 0; l0 < kLanes; l0 += 8)
      wide ? add_pairs<Vec8Of<double>>(tx, ty, offset, l0, terms_x, moments)
           : add_pairs<Vec8d>(tx, ty, offset, l0, terms_x, moments);
  }
}

// sums[j] = sum_(m, n) g[offset_l + m * kInnerTerms + n] tx[m][l] T_n(dy_l)
// for 8 lanes l = l0 + j: each lane's sum over m as one vector, the 8
// transposed in registers and summed against their T_n(dy).
template <typename V>
SOFTHIST_HD void pair_sums(const double (*tx)[kLanes], const double (*ty)[kLanes],
                           const int32_t* offset, int l0, int64_t terms_x, const double* g,
                           double* sums) {
  V r[8];
  for (int j = 0; j < 8; ++j) {
    const double* cell = g + offset[l0 + j];
    V acc = {}, row;
    for (int64_t m = 0; m < terms_x; ++m) {
      load8(row, cell + m * kInnerTerms);
      acc += tx[m][l0 + j] * row;
    }
    r[j] = acc;
  }
  transpose8(r);  // r[n][j]: lane l0 + j's sum over m at term n
  V sum = {}, t;
  for (int k = 0; k < 8; ++k) {
    load8(t, &ty[k][l0]);
    sum += r[k] * t;
  }
  store8(sums, sum);
}

// out_i = factor * sum_(m, n) g[offset_i + m * kInnerTerms + n] T_m(dx_i)
// T_n(dy_i).
template <bool OpenX, bool OpenY, typename T, typename C>
SOFTHIST_CLONES void gather_pairs_chunk(const T* x, const T* y, const double* g, int64_t n,
                                        const PairGrid& pg, double factor, T* out) {
  const int64_t terms_x = pg.axis[0].terms;
  const bool wide = has_avx512();
  int32_t offset[kLanes];
  double tx[kInnerTerms][kLanes], ty[kInnerTerms][kLanes], sums[8];
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    locate_pairs<OpenX, OpenY, T, C>(x + i0, y + i0, static_cast<const T*>(nullptr), n - i0, pg,
                                     terms_x, offset, tx, ty);
    const int64_t m_lanes = std::min<int64_t>(kLanes, n - i0);
    for (int l0 = 0; l0 < m_lanes; l0 += 8) {
      wide ? pair_sums<Vec8Of<double>>(tx, ty, offset, l0, terms_x, g, sums)
           : pair_sums<Vec8d>(tx, ty, offset, l0, terms_x, g, sums);
      for (int j = 0; j < 8 && l0 + j < m_lanes; ++j)  // exactly 0 where it reaches no bin
        out[i0 + l0 + j] = tx[0][l0 + j] == 0 ? T(0) : static_cast<T>(sums[j] * factor);
    }
  }
}

// hist[a * slots_y + b] = factor * the moments times slot a's coefficients
// on the first axis and slot b's on the last: the last axis's first, into
// z[(px * terms_x + m) * slots_y + b].
template <typename T>
void pair_to_slots(const PairGrid& pg, const double* moments, double factor, T* hist) {
  const ChebyshevGrid &gx = pg.axis[0], &gy = pg.axis[1];
  const int64_t tx = gx.terms, sy = gy.slots, cell = pg.cell();
  std::vector<double> z(static_cast<size_t>(gx.count * tx * sy), 0.0);
  for (int64_t px = 0; px < gx.count; ++px)
    for (int64_t b = 0; b < sy; ++b) {
      const double* t = gy.table(b);
      const double* mom = moments + (px * gy.count + gy.first_piece[b]) * cell;
      for (int64_t m = 0; m < tx; ++m) {
        double s = 0;
        for (int64_t i = 0; i < gy.spans[b]; ++i)
#pragma omp simd reduction(+ : s)
          for (int64_t k = 0; k < kInnerTerms; ++k)
            s += t[i * kInnerTerms + k] * mom[i * cell + m * kInnerTerms + k];
        z[(px * tx + m) * sy + b] = s;
      }
    }
  std::vector<double> row(static_cast<size_t>(sy));
  for (int64_t a = 0; a < gx.slots; ++a) {
    std::fill(row.begin(), row.end(), 0.0);
    const double* t = gx.table(a);
    for (int64_t k = 0; k < gx.spans[a] * tx; ++k) {
      const double c = t[k];
      const double* zr = z.data() + (gx.first_piece[a] * tx + k) * sy;
#pragma omp simd
      for (int64_t b = 0; b < sy; ++b) row[b] += c * zr[b];
    }
    for (int64_t b = 0; b < sy; ++b) hist[a * sy + b] = static_cast<T>(row[b] * factor);
  }
}

// The inverse: g = each pair of pieces' coefficients of sum_(a, b) h_ab
// D(., a) D(., b), the last axis's first, into
// v[(a * count_y + py) * kInnerTerms + n].
template <typename T>
void pair_from_slots(const PairGrid& pg, const T* h, double* g) {
  const ChebyshevGrid &gx = pg.axis[0], &gy = pg.axis[1];
  const int64_t tx = gx.terms, sy = gy.slots, cy = gy.count, cell = pg.cell();
  std::vector<double> v(static_cast<size_t>(gx.slots * cy * kInnerTerms), 0.0);
  for (int64_t a = 0; a < gx.slots; ++a)
    for (int64_t b = 0; b < sy; ++b) {
      const double hb = static_cast<double>(h[a * sy + b]);
      const double* t = gy.table(b);
      double* va = v.data() + (a * cy + gy.first_piece[b]) * kInnerTerms;
#pragma omp simd
      for (int64_t k = 0; k < gy.spans[b] * kInnerTerms; ++k) va[k] += hb * t[k];
    }
  std::fill(g, g + pg.size(), 0.0);
  for (int64_t a = 0; a < gx.slots; ++a) {
    const double* t = gx.table(a);
    for (int64_t i = 0; i < gx.spans[a]; ++i)
      for (int64_t m = 0; m < tx; ++m) {
        const double c = t[i * tx + m];
        double* gp = g + (gx.first_piece[a] + i) * cy * cell + m * kInnerTerms;
        const double* va = v.data() + a * cy * kInnerTerms;
        for (int64_t py = 0; py < cy; ++py)
#pragma omp simd
          for (int64_t k = 0; k < kInnerTerms; ++k) gp[py * cell + k] += c * va[py * kInnerTerms + k];
      }
  }
}

// f(open x, open y) as compile-time constants.
template <typename F>
void dispatch_open_pair(const std::array<Window, 2>& win, const F& f) {
  dispatch_bool(win[0].open_ends, [&](auto ox) { dispatch_bool(win[1].open_ends, [&](auto oy) { f(ox, oy); }); });
}

// scatter_axes for two axes by pieces (pair_pieces_pay; w finite): each
// chunk's moments, merged in chunk order and turned into bins.
template <typename T, typename C>
void scatter_pair_pieces(const std::array<const T*, 2>& x, const T* w,
                         const std::array<Window, 2>& win, Kernel kernel, const Problem& pb,
                         double factor, T* out) {
  const PairGrid pg = pair_grid<C, T>(kernel, win, pb.orders);
  const int64_t n = pb.n, rows = pb.rows, size = pg.size(), chunks = pieces_chunks(n, rows, size);
  const AlignedRoom<double> partial(rows * chunks * size);
  torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t b, m;
      chunk_bounds(i, chunks, n, b, m);
      double* moments = partial.zeroed(i, size);
      dispatch_open_pair(win, [&](auto ox, auto oy) {
        scatter_pairs_chunk<decltype(ox)::value, decltype(oy)::value, T, C>(
            x[0] + b, x[1] + b, w ? w + b : nullptr, m, pg, moments);
      });
    }
  });
  const std::vector<std::vector<double>> none(static_cast<size_t>(rows * chunks));
  merge_pieces(size, 0, partial.data, none, rows, chunks,
               [&](int64_t r, const double* moments, const double*) {
                 pair_to_slots(pg, moments, factor, out + r * pg.slots());
               });
}

// gather_axes for two axes by pieces (pair_pieces_pay).
template <typename T, typename C>
void gather_pair_pieces(const std::array<const T*, 2>& x, const T* hist,
                        const std::array<Window, 2>& win, Kernel kernel, const Problem& pb,
                        double factor, T* out) {
  const PairGrid pg = pair_grid<C, T>(kernel, win, pb.orders);
  const int64_t n = pb.n, rows = pb.rows, size = pg.size();
  const AlignedRoom<double> g(rows * size);
  torch::stable::parallel_for(0, rows, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) pair_from_slots(pg, hist + r * pg.slots(), g.data + r * size);
  });
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
      const int64_t m = std::min(b + kGatherBlock, (row + 1) * n) - b;
      dispatch_open_pair(win, [&](auto ox, auto oy) {
        gather_pairs_chunk<decltype(ox)::value, decltype(oy)::value, T, C>(
            x[0] + b, x[1] + b, g.data + row * size, m, pg, factor, out + b);
      });
    }
  });
}

}  // namespace
}  // namespace softhist::cpu
