// CPU kernels: samples are processed in blocks of kLanes so the window loop
// (fixed length, only its offset differs per sample) vectorises across
// samples; only the scatter into bins is scalar.
#include <torch/csrc/stable/library.h>

#include <cmath>
#include <limits>

#include "common.h"

namespace softhist::cpu {
namespace {

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
    window_values<K, Order>(t_first, c, edges, v);
    if (win.open_ends) open_window_ends(win, Order, first, v);
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
    C t_first[kLanes], prev[kLanes], acc[kLanes], at_first[kLanes];
    locate_block(x + i0, static_cast<const T*>(nullptr), n - i0, win, first, t64, scale);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      t_first[l] = static_cast<C>(t64[l]);
      prev[l] = cdf<K, Order>(t_first[l]);
      at_first[l] = prev[l];
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
    // Open ends: the first bin's term used K at edge 0 and the last bin's K at
    // edge `bins` (prev holds the window's last edge); swap in the ends' values.
    if (win.open_ends) {
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

Tensor params_cpu(const Tensor& input, int64_t bins, double min, double max,
                  std::optional<double> kappa, std::string kernel_name, bool conserve_mass) {
  const RangeArgs args =
      range_args(input, bins, min, max, kappa, parse_kernel(kernel_name), conserve_mass);
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
  Tensor out = torch::stable::empty({kParamsSize}, ScalarType::Double, std::nullopt,
                                    input.device());
  resolve_range(args, lo, hi, out.mutable_data_ptr<double>());
  return out;
}

Tensor scatter_cpu(const Tensor& input, const std::optional<Tensor>& weight,
                   const Tensor& params, int64_t bins, int64_t order, std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  check_scatter_args(input, weight, params, bins, order, kernel);
  const Tensor x = torch::stable::contiguous(input);
  const std::optional<Tensor> wc =
      weight.has_value() ? std::optional<Tensor>(torch::stable::contiguous(*weight))
                         : std::nullopt;
  Tensor out = torch::stable::empty(with_last(x, {bins}), x.scalar_type(), std::nullopt,
                                    x.device());
  const int64_t n = row_length(x), rows = row_count(x);
  const double kappa = params.const_data_ptr<double>()[2];
  const int64_t chunks = chunks_per_row(n, rows, bins);
  std::vector<double> partial(static_cast<size_t>(rows * chunks * bins));

  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const Window win = window_from<C, T>(kernel, params, bins);
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
    merge_partials(partial, rows, chunks, bins, std::pow(kappa, static_cast<double>(order)),
                   out.mutable_data_ptr<T>());
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
    const Window win = window_from<C, T>(kernel, params, bins);
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

}  // namespace softhist::cpu
