// CPU kernels of the joint histogram: each sample pair splats into the outer
// product of its x window and its y window. The window values are computed
// across a block of samples at once; each sample's outer product is then
// vectorised along its y window, a row at a time.
#include <torch/csrc/stable/library.h>

#include <cmath>

#include "common.h"

namespace softhist::cpu {
namespace {

// Per block of kLanes pairs: where their windows start, the bin masses
// dx[k][l] = D(x_l, first_x[l] + k) and dy likewise, and each pair's scale
// (its weight, or 0 when x or y reaches no bin).
template <typename T, typename C>
struct PairBlock {
  const Window &wx, &wy;
  ValuesFn<C> fx, fy;
  int order_x, order_y;
  std::vector<C> vx, vy;
  int32_t first_x[kLanes], first_y[kLanes];
  double scale[kLanes];

  // Smooth kernels only: the hard kernel's chunks locate bins directly.
  PairBlock(const Window& wx_, const Window& wy_, Kernel kernel, int64_t order_x_,
            int64_t order_y_)
      : wx(wx_), wy(wy_),
        fx(kernel == Kernel::Hard ? nullptr : values_fn<C>(kernel, order_x_)),
        fy(kernel == Kernel::Hard ? nullptr : values_fn<C>(kernel, order_y_)),
        order_x(static_cast<int>(order_x_)), order_y(static_cast<int>(order_y_)),
        vx(static_cast<size_t>(wx_.edges * kLanes)),
        vy(static_cast<size_t>(wy_.edges * kLanes)) {}

  void load(const T* x, const T* y, const T* w, int64_t n);

  C dx(int64_t k, int l) const { return vx[k * kLanes + l]; }
  C dy(int64_t k, int l) const { return vy[k * kLanes + l]; }
};

template <typename T, typename C>
SOFTHIST_CLONES void PairBlock<T, C>::load(const T* x, const T* y, const T* w, int64_t n) {
  double tx[kLanes], ty[kLanes], alive_y[kLanes];
  C cx[kLanes], cy[kLanes];
  locate_block(x, w, n, wx, first_x, tx, scale);
  locate_block(y, static_cast<const T*>(nullptr), n, wy, first_y, ty, alive_y);
  for (int l = 0; l < kLanes; ++l) {
    // Select, not multiply: a NaN or infinite weight times 0 would be NaN.
    scale[l] = alive_y[l] != 0 ? scale[l] : 0.0;
    cx[l] = static_cast<C>(tx[l]);
    cy[l] = static_cast<C>(ty[l]);
  }
  fx(cx, static_cast<C>(wx.c), wx.edges, vx.data());
  fy(cy, static_cast<C>(wy.c), wy.edges, vy.data());
  if (wx.open_ends) open_window_ends(wx, order_x, first_x, vx.data());
  if (wy.open_ends) open_window_ends(wy, order_y, first_y, vy.data());
  // Edge values to bin masses, in place: D_k = K_k - K_{k+1}.
  for (int64_t k = 0; k + 1 < wx.edges; ++k)
    for (int l = 0; l < kLanes; ++l) vx[k * kLanes + l] -= vx[(k + 1) * kLanes + l];
  for (int64_t k = 0; k + 1 < wy.edges; ++k)
    for (int l = 0; l < kLanes; ++l) vy[k * kLanes + l] -= vy[(k + 1) * kLanes + l];
}

// The joint histograms are stored with rows padded by `pad` columns (a
// multiple of kRow, at least the y window), so that a sample's y window is
// added to a row as whole vectors of kRow values, zeros past its end.
constexpr int64_t kRow = 8;

int64_t row_pad(const Window& wy) { return (wy.edges - 1 + kRow - 1) / kRow * kRow; }

// One 32-byte vector of C (GCC's vector extension; an AVX2 register), read in
// place from a row (C's alignment, may alias C): the gather's row sums stay in
// registers, where stack arrays stall store forwarding.
template <typename C>
struct RowVecOf {
  typedef C type __attribute__((vector_size(32), aligned(alignof(C)), may_alias));
};
template <typename C>
using RowVec = typename RowVecOf<C>::type;
template <typename C>
constexpr int64_t kVecLen = 32 / sizeof(C);

template <typename C>
SOFTHIST_HD const RowVec<C>& row_at(const C* p) { return *reinterpret_cast<const RowVec<C>*>(p); }

// The block's y masses, one zero-padded row of `pad` values per sample:
// ty[l * pad + j] = dy(j, l). The padding is never written.
template <typename A, typename T, typename C>
SOFTHIST_CLONES void transpose_y(const PairBlock<T, C>& blk, int64_t pad, A* ty) {
  for (int64_t j = 0; j + 1 < blk.wy.edges; ++j)
    for (int l = 0; l < kLanes; ++l) ty[l * pad + j] = static_cast<A>(blk.dy(j, l));
}

template <typename T, typename C>
SOFTHIST_CLONES void scatter2d_chunk(const T* x, const T* y, const T* w, int64_t n,
                                     PairBlock<T, C>& blk, int64_t stride, double* acc) {
  const int64_t ex = blk.wx.edges - 1, pad = row_pad(blk.wy);
  std::vector<double> sx(static_cast<size_t>(ex * kLanes)), ty(static_cast<size_t>(kLanes * pad));
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    blk.load(x + i0, y + i0, w ? w + i0 : nullptr, n - i0);
    for (int64_t k = 0; k < ex; ++k)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l)
        sx[k * kLanes + l] = blk.scale[l] * static_cast<double>(blk.dx(k, l));
    transpose_y(blk, pad, ty.data());
    for (int l = 0; l < kLanes; ++l) {
      if (blk.scale[l] == 0) continue;
      const double* yl = ty.data() + l * pad;
      double* a = acc + int64_t(blk.first_x[l]) * stride + blk.first_y[l];
      // The padding holds zeros, but bins past the window may lie there: a
      // NaN or infinite weight must not turn them into 0 * inf = NaN.
      if (!std::isfinite(blk.scale[l])) {
        for (int64_t k = 0; k < ex; ++k, a += stride)
          for (int64_t j = 0; j + 1 < blk.wy.edges; ++j) a[j] += sx[k * kLanes + l] * yl[j];
        continue;
      }
      for (int64_t j0 = 0; j0 < pad; j0 += kRow) {
        const double* __restrict yr = yl + j0;
        double* __restrict ar = a + j0;
        for (int64_t k = 0; k < ex; ++k, ar += stride) {
          const double s = sx[k * kLanes + l];
#pragma omp simd
          for (int64_t j = 0; j < kRow; ++j) ar[j] += s * yr[j];
        }
      }
    }
  }
}

// h is padded like the partials of scatter2d (zeros in the padding).
template <typename T, typename C>
SOFTHIST_CLONES void gather2d_chunk(const T* x, const T* y, const C* h, int64_t n,
                                    PairBlock<T, C>& blk, int64_t stride, double factor,
                                    T* out) {
  const int64_t ex = blk.wx.edges - 1, ey = blk.wy.edges - 1, pad = row_pad(blk.wy);
  std::vector<C> ty(static_cast<size_t>(kLanes * pad));
  constexpr int64_t V = kVecLen<C>;
  static_assert(kRow % V == 0, "rows are padded to whole vectors");
  RowVec<C> column;  // j - j0
  for (int64_t j = 0; j < V; ++j) column[j] = static_cast<C>(j);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    blk.load(x + i0, y + i0, nullptr, n - i0);
    transpose_y(blk, pad, ty.data());
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    for (int l = 0; l < m; ++l) {
      double acc = 0;
      if (blk.scale[l] != 0) {
        // sum_j dy_j sum_k dx_k h[k][j], a vector of columns at a time, in
        // registers; one horizontal sum at the end.
        const C* yl = ty.data() + l * pad;
        const C* h0 = h + int64_t(blk.first_x[l]) * stride + blk.first_y[l];
        RowVec<C> sum = {};
        for (int64_t j0 = 0; j0 < pad; j0 += V) {
          RowVec<C> col = {};
          const C* hr = h0 + j0;
          for (int64_t k = 0; k < ex; ++k, hr += stride) col += blk.dx(k, l) * row_at(hr);
          // Columns past the window read bins outside it, which may hold
          // NaN or inf: masked, not multiplied by their zero mass.
          sum += column + static_cast<C>(j0) < static_cast<C>(ey) ? col * row_at(yl + j0)
                                                                  : RowVec<C>{};
        }
        for (int64_t half = V / 2; half > 0; half /= 2)
          for (int64_t j = 0; j < half; ++j) sum[j] += sum[j + half];
        acc = static_cast<double>(sum[0]);
      }
      out[i0 + l] = static_cast<T>(acc * factor);
    }
  }
}

// The hard kernel: exact joint counts (order 0 only).
template <typename T>
void scatter2d_hard_chunk(const T* x, const T* y, const T* w, int64_t n, const Window& wx,
                          const Window& wy, int64_t stride, double* acc) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t a, b;
    if (wx.bin_of(static_cast<double>(x[i]), a) && wy.bin_of(static_cast<double>(y[i]), b))
      acc[a * stride + b] += w ? static_cast<double>(w[i]) : 1.0;
  }
}

template <typename T, typename C>
void gather2d_hard_chunk(const T* x, const T* y, const C* h, int64_t n, const Window& wx,
                         const Window& wy, int64_t stride, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t a, b;
    const bool in = wx.bin_of(static_cast<double>(x[i]), a) &&
                    wy.bin_of(static_cast<double>(y[i]), b);
    out[i] = static_cast<T>(in ? h[a * stride + b] : C(0));
  }
}

// kappa_x^order_x * kappa_y^order_y: the window values are in units of kappa.
double order_factor(const Tensor& params_x, int64_t order_x, const Tensor& params_y,
                    int64_t order_y) {
  return std::pow(params_x.const_data_ptr<double>()[2], static_cast<double>(order_x)) *
         std::pow(params_y.const_data_ptr<double>()[2], static_cast<double>(order_y));
}

Tensor scatter2d_cpu(const Tensor& x_in, const Tensor& y_in, const std::optional<Tensor>& weight,
                     const Tensor& params_x, const Tensor& params_y, int64_t bins_x,
                     int64_t bins_y, int64_t order_x, int64_t order_y, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_scatter2d_args(x_in, y_in, weight, params_x, params_y, bins_x, bins_y, order_x, order_y,
                       kernel);
  const Tensor x = torch::stable::contiguous(x_in), y = torch::stable::contiguous(y_in);
  const std::optional<Tensor> wc =
      weight.has_value() ? std::optional<Tensor>(torch::stable::contiguous(*weight))
                         : std::nullopt;
  Tensor out = torch::stable::empty(with_last(x, {bins_x, bins_y}), x.scalar_type(),
                                    std::nullopt, x.device());
  const int64_t n = row_length(x), rows = row_count(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const Window wx = window_from<C, T>(kernel, params_x, bins_x);
    const Window wy = window_from<C, T>(kernel, params_y, bins_y);
    const int64_t stride = bins_y + row_pad(wy), bins = bins_x * stride;
    const int64_t chunks = chunks_per_row(n, rows, bins);
    std::vector<double> partial(static_cast<size_t>(rows * chunks * bins));
    const T *xp = x.const_data_ptr<T>(), *yp = y.const_data_ptr<T>();
    const T* wp = wc.has_value() ? wc->const_data_ptr<T>() : nullptr;
    const bool hard = kernel == Kernel::Hard;
    torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
      PairBlock<T, C> blk(wx, wy, kernel, order_x, order_y);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t row = i / chunks, ci = i % chunks;
        const int64_t b = row * n + n * ci / chunks, e = row * n + n * (ci + 1) / chunks;
        double* acc = partial.data() + i * bins;
        if (hard)
          scatter2d_hard_chunk(xp + b, yp + b, wp ? wp + b : nullptr, e - b, wx, wy, stride, acc);
        else
          scatter2d_chunk(xp + b, yp + b, wp ? wp + b : nullptr, e - b, blk, stride, acc);
      }
    });
    const double factor = order_factor(params_x, order_x, params_y, order_y);
    // Sum the chunks of each row in chunk order, dropping the padding.
    T* o = out.mutable_data_ptr<T>();
    torch::stable::parallel_for(0, rows * bins_x, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const double* p = partial.data() + (r / bins_x) * chunks * bins + (r % bins_x) * stride;
        for (int64_t b = 0; b < bins_y; ++b) {
          double sum = 0;
          for (int64_t ci = 0; ci < chunks; ++ci) sum += p[ci * bins + b];
          o[r * bins_y + b] = static_cast<T>(sum * factor);
        }
      }
    });
  });
  return out;
}

Tensor gather2d_cpu(const Tensor& x_in, const Tensor& y_in, const Tensor& hist,
                    const Tensor& params_x, const Tensor& params_y, int64_t order_x,
                    int64_t order_y, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_gather2d_args(x_in, y_in, hist, params_x, params_y, order_x, order_y, kernel);
  const Tensor x = torch::stable::contiguous(x_in), y = torch::stable::contiguous(y_in);
  const Tensor hc = torch::stable::contiguous(hist);
  Tensor out = torch::stable::empty_like(x);
  const int64_t n = row_length(x), rows = row_count(x);
  const int64_t bins_x = hc.size(hc.dim() - 2), bins_y = hc.size(hc.dim() - 1);
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const Window wx = window_from<C, T>(kernel, params_x, bins_x);
    const Window wy = window_from<C, T>(kernel, params_y, bins_y);
    const int64_t stride = bins_y + row_pad(wy), bins = bins_x * stride;
    std::vector<C> h(static_cast<size_t>(rows * bins), C(0));
    const T* hp = hc.const_data_ptr<T>();
    for (int64_t r = 0; r < rows * bins_x; ++r)
      for (int64_t b = 0; b < bins_y; ++b) h[r * stride + b] = static_cast<C>(hp[r * bins_y + b]);
    const T *xp = x.const_data_ptr<T>(), *yp = y.const_data_ptr<T>();
    T* o = out.mutable_data_ptr<T>();
    const bool hard = kernel == Kernel::Hard;
    const double factor = order_factor(params_x, order_x, params_y, order_y);
    torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
      PairBlock<T, C> blk(wx, wy, kernel, order_x, order_y);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
        const int64_t e = std::min(b + kGatherBlock, (row + 1) * n);
        const C* hr = h.data() + row * bins;
        if (hard)
          gather2d_hard_chunk(xp + b, yp + b, hr, e - b, wx, wy, stride, o + b);
        else
          gather2d_chunk(xp + b, yp + b, hr, e - b, blk, stride, factor, o + b);
      }
    });
  });
  return out;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(softhist, CPU, m) {
  m.impl("scatter2d", TORCH_BOX(&scatter2d_cpu));
  m.impl("gather2d", TORCH_BOX(&gather2d_cpu));
}

}  // namespace softhist::cpu
