// CPU kernels: samples are processed in blocks of kLanes so the window loop
// (fixed length, only its offset differs per sample) vectorises across
// samples; only the scatter into bins is scalar.
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../kernels.h"
#include "../ops.h"

// One copy of each hot loop per instruction set, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define SOFTHIST_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SOFTHIST_CLONES
#endif

namespace softhist {
namespace {

using torch::headeronly::ScalarType;

constexpr int kLanes = 32;
// Scatter splits each row into a number of chunks that depends only on the
// sizes, so the order of the floating-point sums (chunk partials merged in
// chunk order) does not depend on the thread count or scheduling.
constexpr int64_t kMinChunk = 32768;
constexpr int64_t kMaxChunks = 256;
constexpr int64_t kPartialBudget = int64_t(1) << 22;  // doubles across all partials
constexpr int64_t kGatherBlock = 8192;

template <typename T>
SOFTHIST_HD void locate_block(const T* x, const T* w, int64_t n, const Window& win,
                              int32_t* first, double* t_first, double* scale) {
  for (int l = 0; l < kLanes; ++l) {
    int64_t f = 0;
    t_first[l] = 0;
    scale[l] = 0;
    if (l < n && win.locate(static_cast<double>(x[l]), f, t_first[l]))
      scale[l] = w ? static_cast<double>(w[l]) : 1.0;
    first[l] = static_cast<int32_t>(f);  // bins < 2^31 (check_bins)
  }
}

// acc[b] += sum_i w_i * D_Order(x_i, b) / kappa^Order over n samples.
template <Kernel K, int Order, typename T, typename C>
SOFTHIST_CLONES void scatter_chunk(const T* x, const T* w, int64_t n, const Window& win,
                                   double* acc) {
  const int64_t edges = win.edges;
  const C c = static_cast<C>(win.c);
  std::vector<C> values(static_cast<size_t>(edges * kLanes));
  C* v = values.data();
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double t64[kLanes], scale[kLanes];
    C t_first[kLanes];
    locate_block(x + i0, w ? w + i0 : nullptr, n - i0, win, first, t64, scale);
    for (int l = 0; l < kLanes; ++l) t_first[l] = static_cast<C>(t64[l]);
    for (int64_t k = 0; k < edges; ++k) {
      const C shift = c * static_cast<C>(k);
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) v[k * kLanes + l] = cdf<K, Order>(t_first[l] - shift);
    }
    for (int l = 0; l < kLanes; ++l) {
      if (scale[l] == 0) continue;
      double* a = acc + first[l];
      const C* vl = v + l;
      for (int64_t k = 0; k + 1 < edges; ++k)
        a[k] += scale[l] * (static_cast<double>(vl[k * kLanes]) -
                            static_cast<double>(vl[(k + 1) * kLanes]));
    }
  }
}

// out_i = sum_b h_b * D_Order(x_i, b) * factor.
template <Kernel K, int Order, typename T, typename C>
SOFTHIST_CLONES void gather_chunk(const T* x, const C* h, int64_t n, const Window& win,
                                  double factor, T* out) {
  const int64_t edges = win.edges;
  const C c = static_cast<C>(win.c);
  for (int64_t i0 = 0; i0 < n; i0 += kLanes) {
    int32_t first[kLanes];
    double t64[kLanes], scale[kLanes];
    C t_first[kLanes], prev[kLanes], acc[kLanes];
    locate_block(x + i0, static_cast<const T*>(nullptr), n - i0, win, first, t64, scale);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      t_first[l] = static_cast<C>(t64[l]);
      prev[l] = cdf<K, Order>(t_first[l]);
      acc[l] = 0;
    }
    for (int64_t k = 1; k < edges; ++k) {
      const C shift = c * static_cast<C>(k);
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const C cur = cdf<K, Order>(t_first[l] - shift);
        acc[l] += h[first[l] + k - 1] * (prev[l] - cur);
        prev[l] = cur;
      }
    }
    const int64_t m = std::min<int64_t>(kLanes, n - i0);
    for (int l = 0; l < m; ++l)
      out[i0 + l] = static_cast<T>(static_cast<double>(acc[l]) * scale[l] * factor);
  }
}

// The hard kernel: exact counts, as torch.histc (order 0 only).
template <typename T>
void scatter_hard_chunk(const T* x, const T* w, int64_t n, const Window& win, double* acc) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t b;
    if (win.bin_of(static_cast<double>(x[i]), b)) acc[b] += w ? static_cast<double>(w[i]) : 1.0;
  }
}

template <typename T, typename C>
void gather_hard_chunk(const T* x, const C* h, int64_t n, const Window& win, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t b;
    out[i] = static_cast<T>(win.bin_of(static_cast<double>(x[i]), b) ? h[b] : C(0));
  }
}

template <typename F>
void dispatch_float(ScalarType t, const F& f) {
  switch (t) {
    case ScalarType::Float: return f(float{}, float{});
    case ScalarType::Double: return f(double{}, double{});
    case ScalarType::Half: return f(torch::headeronly::Half{}, float{});
    case ScalarType::BFloat16: return f(torch::headeronly::BFloat16{}, float{});
    default: fail("softhist: unsupported dtype ", t);
  }
}

template <Kernel K, typename F>
void dispatch_order(int64_t order, const F& f) {
  switch (order) {
    case 0: return f(std::integral_constant<Kernel, K>{}, std::integral_constant<int, 0>{});
    case 1: return f(std::integral_constant<Kernel, K>{}, std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<Kernel, K>{}, std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<Kernel, K>{}, std::integral_constant<int, 3>{});
  }
}

// Calls f(kernel, order) as compile-time constants, for the smooth kernels.
template <typename F>
void dispatch_smooth(Kernel kernel, int64_t order, const F& f) {
  switch (kernel) {
    case Kernel::Logistic: return dispatch_order<Kernel::Logistic>(order, f);
    case Kernel::Gaussian: return dispatch_order<Kernel::Gaussian>(order, f);
    case Kernel::Triangular: return dispatch_order<Kernel::Triangular>(order, f);
    case Kernel::BSpline: return dispatch_order<Kernel::BSpline>(order, f);
    case Kernel::Hard: break;
  }
}

Tensor params_cpu(const Tensor& input, int64_t bins, double min, double max,
                  std::optional<double> kappa, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_input(input);
  check_histc_args(bins, min, max, kappa);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  if (min == max && input.numel() > 0) {
    const Tensor x = torch::stable::contiguous(input);
    dispatch_float(x.scalar_type(), [&](auto tag, auto) {
      using T = decltype(tag);
      const T* p = x.const_data_ptr<T>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        const double v = static_cast<double>(p[i]);
        if (std::isfinite(v)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      }
    });
  }
  const Resolved r = resolve(kernel, bins, min, max, kappa, lo, hi);
  Tensor out = torch::stable::empty({3}, ScalarType::Double, std::nullopt, input.device());
  double* o = out.mutable_data_ptr<double>();
  o[0] = r.lo;
  o[1] = r.hi;
  o[2] = r.kappa;
  return out;
}

template <typename C>
Window window_from(Kernel kernel, const Tensor& params, int64_t bins) {
  const double* p = params.const_data_ptr<double>();
  return Window::make<C>(kernel, p[0], p[1], p[2], bins);
}

// shape[:-1] + [last]
std::vector<int64_t> with_last(const Tensor& t, int64_t last) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) shape.push_back(t.size(d));
  shape.push_back(last);
  return shape;
}

Tensor scatter_cpu(const Tensor& input, const std::optional<Tensor>& weight,
                   const Tensor& params, int64_t bins, int64_t order, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_scatter_args(input, weight, params, bins, order, kernel);
  const Tensor x = torch::stable::contiguous(input);
  const std::optional<Tensor> wc =
      weight.has_value() ? std::optional<Tensor>(torch::stable::contiguous(*weight))
                         : std::nullopt;
  Tensor out = torch::stable::empty(with_last(x, bins), x.scalar_type(), std::nullopt,
                                    x.device());
  const int64_t n = row_length(x), rows = row_count(x);
  const double kappa = params.const_data_ptr<double>()[2];
  const int64_t chunks = std::max<int64_t>(
      1, std::min({n / std::max(kMinChunk, 2 * bins), kMaxChunks,
                   kPartialBudget / (bins * std::max<int64_t>(rows, 1))}));
  std::vector<double> partial(static_cast<size_t>(rows * chunks * bins));

  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const Window win = window_from<C>(kernel, params, bins);
    const T* xp = x.const_data_ptr<T>();
    const T* wp = wc.has_value() ? wc->const_data_ptr<T>() : nullptr;
    // Work item i: chunk i % chunks of row i / chunks, into partial[i].
    auto for_each_chunk = [&](const auto& run) {
      torch::stable::parallel_for(0, rows * chunks, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t row = i / chunks, ci = i % chunks;
          const int64_t b = row * n + n * ci / chunks, e = row * n + n * (ci + 1) / chunks;
          run(xp + b, wp ? wp + b : nullptr, e - b, partial.data() + i * bins);
        }
      });
    };
    if (kernel == Kernel::Hard) {
      for_each_chunk([&](const T* xs, const T* ws, int64_t m, double* acc) {
        scatter_hard_chunk(xs, ws, m, win, acc);
      });
    } else {
      dispatch_smooth(kernel, order, [&](auto k, auto ord) {
        for_each_chunk([&](const T* xs, const T* ws, int64_t m, double* acc) {
          scatter_chunk<decltype(k)::value, decltype(ord)::value, T, C>(xs, ws, m, win, acc);
        });
      });
    }
    const double factor = std::pow(kappa, static_cast<double>(order));
    T* o = out.mutable_data_ptr<T>();
    torch::stable::parallel_for(0, rows * bins, 4096, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t row = j / bins, b = j % bins;
        const double* p = partial.data() + row * chunks * bins + b;
        double s = 0;
        for (int64_t ci = 0; ci < chunks; ++ci) s += p[ci * bins];
        o[j] = static_cast<T>(s * factor);
      }
    });
  });
  return out;
}

Tensor gather_cpu(const Tensor& input, const Tensor& hist, const Tensor& params,
                  int64_t order, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_gather_args(input, hist, params, order, kernel);
  const Tensor x = torch::stable::contiguous(input);
  const Tensor hc = torch::stable::contiguous(hist);
  Tensor out = torch::stable::empty_like(x);
  const int64_t n = row_length(x), rows = row_count(x), bins = row_length(hc);
  const int64_t blocks = (n + kGatherBlock - 1) / kGatherBlock;
  const double kappa = params.const_data_ptr<double>()[2];
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const Window win = window_from<C>(kernel, params, bins);
    std::vector<C> h(static_cast<size_t>(rows * bins));
    const T* hp = hc.const_data_ptr<T>();
    for (int64_t b = 0; b < rows * bins; ++b) h[b] = static_cast<C>(hp[b]);
    const T* xp = x.const_data_ptr<T>();
    T* o = out.mutable_data_ptr<T>();
    const double factor = std::pow(kappa, static_cast<double>(order));
    // Work item i: block i % blocks of row i / blocks.
    auto for_each_block = [&](const auto& run) {
      torch::stable::parallel_for(0, rows * blocks, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t row = i / blocks, b = row * n + (i % blocks) * kGatherBlock;
          const int64_t e = std::min(b + kGatherBlock, (row + 1) * n);
          run(xp + b, h.data() + row * bins, e - b, o + b);
        }
      });
    };
    if (kernel == Kernel::Hard) {
      for_each_block([&](const T* xs, const C* hs, int64_t m, T* os) {
        gather_hard_chunk(xs, hs, m, win, os);
      });
    } else {
      dispatch_smooth(kernel, order, [&](auto k, auto ord) {
        for_each_block([&](const T* xs, const C* hs, int64_t m, T* os) {
          gather_chunk<decltype(k)::value, decltype(ord)::value, T, C>(xs, hs, m, win, factor,
                                                                      os);
        });
      });
    }
  });
  return out;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(softhist, CPU, m) {
  m.impl("params", TORCH_BOX(&params_cpu));
  m.impl("scatter", TORCH_BOX(&scatter_cpu));
  m.impl("gather", TORCH_BOX(&gather_cpu));
}

}  // namespace softhist
