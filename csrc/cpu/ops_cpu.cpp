// The CPU ops: arguments checked (ops.h), inputs made contiguous, outputs
// allocated, and the engine called for their dtype (engine.h); and their
// registration for the CPU dispatch key.
#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common.h"
#include "engine.h"

namespace softhist::cpu {
namespace {

// [lo, hi] of the finite values of p[0, m) (lo > hi when there are none), in
// the compute type C (exact: C holds every value of T), for the clone's ISA.
template <typename T, typename C>
SOFTHIST_CLONES void finite_min_max(const T* p, int64_t m, C& lo, C& hi) {
  C l = INFINITY, h = -INFINITY;
#pragma omp simd reduction(min : l) reduction(max : h)
  for (int64_t i = 0; i < m; ++i) {
    const C v = static_cast<C>(p[i]);
    const bool finite = v - v == 0;  // false for NaN and +-inf
    l = std::min(l, finite ? v : C(INFINITY));
    h = std::max(h, finite ? v : C(-INFINITY));
  }
  lo = l;
  hi = h;
}

// [lo, hi] of the finite values of x[0, n) (lo > hi when there are none):
// blocks in parallel.
template <typename T, typename C>
void finite_range(const T* x, int64_t n, double& lo, double& hi) {
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<C> block_lo(blocks), block_hi(blocks);
  torch::stable::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      finite_min_max(x + b * kBlock, std::min(kBlock, n - b * kBlock), block_lo[b], block_hi[b]);
  });
  for (int64_t b = 0; b < blocks; ++b) {
    lo = std::min(lo, static_cast<double>(block_lo[b]));
    hi = std::max(hi, static_cast<double>(block_hi[b]));
  }
}

Tensor params_cpu(const Tensor& input, int64_t bins, double min, double max,
                  std::optional<double> kappa, std::string kernel_name, bool conserve_mass) {
  const RangeArgs args =
      range_args(input, bins, min, max, kappa, parse_kernel(kernel_name), conserve_mass);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  if (min == max && input.numel() > 0) {
    const Tensor x = torch::stable::contiguous(input);
    dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
      finite_range<decltype(tag), decltype(ctag)>(x.const_data_ptr<decltype(tag)>(), x.numel(),
                                                  lo, hi);
    });
  }
  Tensor out = torch::stable::empty({kParamsSize}, ScalarType::Double, std::nullopt,
                                    input.device());
  double* p = out.mutable_data_ptr<double>();
  if (!resolve_range(args, lo, hi, p)) check_sharpness(args.kappa, (p[1] - p[0]) / bins);
  return out;
}

std::optional<Tensor> contiguous_if(const std::optional<Tensor>& t) {
  return t.has_value() ? std::optional<Tensor>(torch::stable::contiguous(*t)) : std::nullopt;
}

// A 0-d bool on like's device (the ops' `taken`).
Tensor flag_like(const Tensor& like) {
  return torch::stable::empty(std::vector<int64_t>{}, ScalarType::Bool, std::nullopt,
                              like.device());
}

std::vector<Tensor> contiguous_all(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(torch::stable::contiguous(t));
  return out;
}

// A histogram's result, like's dtype and device (fail_too_large where it
// doesn't fit).
Tensor histogram_room(const std::vector<int64_t>& shape, const Tensor& like) {
  try {
    return torch::stable::empty(shape, like.scalar_type(), std::nullopt, like.device());
  } catch (const std::exception&) {
    double slots = 1;
    for (int64_t s : shape) slots *= static_cast<double>(s);
    fail_too_large("result", slots * static_cast<double>(like.element_size()));
  }
}

Tensor scatter_cpu(std::vector<Tensor> coords_in, const std::optional<Tensor>& weight,
                   const Tensor& params, std::vector<int64_t> bins, std::vector<int64_t> orders,
                   std::string kernel_name, std::vector<int64_t> edge_axes) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb =
      check_scatter_args(coords_in, weight, params, bins, orders, edge_axes, kernel);
  const std::vector<Tensor> coords = contiguous_all(coords_in);
  const std::optional<Tensor> wc = contiguous_if(weight);
  Tensor out = histogram_room(with_last(coords[0], pb.all_slots()), coords[0]);
  dispatch_float(coords[0].scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const T* w = wc.has_value() ? wc->const_data_ptr<T>() : nullptr;
    Engine<T, C>::scatter(coords, w, params, pb, kernel, out.mutable_data_ptr<T>());
  });
  return out;
}

Tensor gather_cpu(std::vector<Tensor> coords_in, const Tensor& hist, const Tensor& params,
                  std::vector<int64_t> orders, std::string kernel_name,
                  std::vector<int64_t> edge_axes) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb = check_gather_args(coords_in, hist, params, orders, edge_axes, kernel);
  const std::vector<Tensor> coords = contiguous_all(coords_in);
  const Tensor hc = torch::stable::contiguous(hist);
  Tensor out = torch::stable::empty_like(coords[0]);
  dispatch_float(coords[0].scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    Engine<T, C>::gather(coords, hc.const_data_ptr<T>(), params, pb, kernel,
                         out.mutable_data_ptr<T>());
  });
  return out;
}

std::tuple<Tensor, Tensor, Tensor> edge_gather_scatter_cpu(
    const Tensor& x_in, const std::optional<Tensor>& weight, const Tensor& coef,
    const Tensor& params, int64_t order, std::string kernel_name,
    const std::optional<Tensor>& sums, const std::optional<Tensor>& taken, bool gather) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb = check_edge_gather_scatter_args(x_in, weight, coef, params, order, kernel,
                                                    sums, taken);
  const bool from_sums = sums.has_value() && *taken->const_data_ptr<bool>();
  const Tensor sc = from_sums ? torch::stable::contiguous(*sums) : Tensor();
  const Tensor x = torch::stable::contiguous(x_in);
  const Tensor cc = torch::stable::contiguous(coef);
  const std::optional<Tensor> wc = contiguous_if(weight);
  // Without `gather`, the pass still gathers (into room of its own) where
  // there are no sums to take the moment from.
  Tensor gathered = gather ? torch::stable::empty_like(x)
                           : torch::stable::empty(std::vector<int64_t>{0}, x.scalar_type(),
                                                  std::nullopt, x.device());
  const Tensor room = gather || from_sums ? gathered : torch::stable::empty_like(x);
  Tensor scattered = torch::stable::empty(with_last(x, {pb.bins[0] + 1}), x.scalar_type(),
                                          std::nullopt, x.device());
  Tensor moment = torch::stable::empty(std::vector<int64_t>{}, ScalarType::Double, std::nullopt,
                                       x.device());
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    if (from_sums)
      return Engine<T, decltype(ctag)>::pair_from_sums(
          x, cc.const_data_ptr<T>(), params, pb, kernel, sc.const_data_ptr<double>(),
          gather ? gathered.mutable_data_ptr<T>() : nullptr, scattered.mutable_data_ptr<T>(),
          moment.mutable_data_ptr<double>());
    Engine<T, decltype(ctag)>::pair(x, wc.has_value() ? wc->const_data_ptr<T>() : nullptr,
                                    cc.const_data_ptr<T>(), params, pb, kernel,
                                    room.mutable_data_ptr<T>(), scattered.mutable_data_ptr<T>(),
                                    moment.mutable_data_ptr<double>());
  });
  return {gathered, scattered, moment};
}

std::tuple<Tensor, Tensor, Tensor> scatter_edge_sums_cpu(const Tensor& x_in,
                                                 const std::optional<Tensor>& weight,
                                                 const Tensor& params, int64_t bins,
                                                 std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  const auto [bins_pb, edges_pb] = check_scatter_edge_sums_args(x_in, weight, params, bins, kernel);
  const Tensor x = torch::stable::contiguous(x_in);
  const std::optional<Tensor> wc = contiguous_if(weight);
  Tensor hist = torch::stable::empty(with_last(x, {bins}), x.scalar_type(), std::nullopt,
                                     x.device());
  Tensor sums = torch::stable::empty(with_last(x, {2, bins + 1}), ScalarType::Double,
                                     std::nullopt, x.device());
  std::fill_n(sums.mutable_data_ptr<double>(), sums.numel(), 0.0);  // (zeros, where not taken)
  Tensor taken = flag_like(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    *taken.mutable_data_ptr<bool>() = Engine<T, decltype(ctag)>::edge_sums(
        x, wc.has_value() ? wc->const_data_ptr<T>() : nullptr, params, bins_pb, edges_pb, kernel,
        hist.mutable_data_ptr<T>(), sums.mutable_data_ptr<double>());
  });
  return {hist, sums, taken};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> scatter_places_cpu(const Tensor& x_in,
                                                              const std::optional<Tensor>& weight,
                                                              const Tensor& params, int64_t bins,
                                                              std::string kernel_name) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb = check_scatter_args({x_in}, weight, params, {bins}, {0}, {}, kernel);
  const Tensor x = torch::stable::contiguous(x_in);
  const std::optional<Tensor> wc = contiguous_if(weight);
  Tensor hist = torch::stable::empty(with_last(x, {bins}), x.scalar_type(), std::nullopt,
                                     x.device());
  Tensor pieces = torch::stable::empty(shape_of(x), ScalarType::Int, std::nullopt, x.device());
  Tensor deltas, taken = flag_like(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    deltas = torch::stable::empty(shape_of(x), delta_type(x.scalar_type()), std::nullopt,
                                  x.device());
    Places<C> places{pieces.mutable_data_ptr<int32_t>(),
                     static_cast<C*>(deltas.mutable_data_ptr())};
    Engine<T, C>::scatter({x}, wc.has_value() ? wc->const_data_ptr<T>() : nullptr, params, pb,
                          kernel, hist.mutable_data_ptr<T>(), &places);
    *taken.mutable_data_ptr<bool>() = places.kept;
  });
  return {hist, pieces, deltas, taken};
}

Tensor gather_at_places_cpu(const Tensor& x_in, const Tensor& hist, const Tensor& params,
                            int64_t order, std::string kernel_name, const Tensor& pieces_in,
                            const Tensor& deltas_in, const Tensor& taken) {
  const Kernel kernel = parse_kernel(kernel_name);
  const Problem pb =
      check_gather_at_places_args(x_in, hist, params, order, kernel, pieces_in, deltas_in, taken);
  const bool kept = *taken.const_data_ptr<bool>();
  const Tensor x = torch::stable::contiguous(x_in);
  const Tensor hc = torch::stable::contiguous(hist);
  const Tensor pieces = kept ? torch::stable::contiguous(pieces_in) : Tensor();
  const Tensor deltas = kept ? torch::stable::contiguous(deltas_in) : Tensor();
  Tensor out = torch::stable::empty_like(x);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    Engine<T, C>::gather_places(x, hc.const_data_ptr<T>(), params, pb, kernel,
                                kept ? pieces.const_data_ptr<int32_t>() : nullptr,
                                kept ? static_cast<const C*>(deltas.const_data_ptr()) : nullptr,
                                out.mutable_data_ptr<T>());
  });
  return out;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(softhist, CPU, m) {
  m.impl("params", TORCH_BOX(&params_cpu));
  m.impl("scatter", TORCH_BOX(&scatter_cpu));
  m.impl("gather", TORCH_BOX(&gather_cpu));
  m.impl("edge_gather_scatter", TORCH_BOX(&edge_gather_scatter_cpu));
  m.impl("scatter_edge_sums", TORCH_BOX(&scatter_edge_sums_cpu));
  m.impl("scatter_places", TORCH_BOX(&scatter_places_cpu));
  m.impl("gather_at_places", TORCH_BOX(&gather_at_places_cpu));
}

}  // namespace softhist::cpu
