// Host-side dispatch shared by the CPU and CUDA backends: dtype, kernel and
// derivative order as compile-time constants, and output shapes.
#pragma once

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "ops.h"

namespace softhist {

// Calls f(T{}, C{}): the storage type and the type the kernel math runs in
// (float for the 16-bit types).
template <typename F>
void dispatch_float(torch::headeronly::ScalarType t, const F& f) {
  using torch::headeronly::ScalarType;
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
#define SOFTHIST_CASE(K) \
  case Kernel::K: return dispatch_order<Kernel::K>(order, f);
    SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_CASE)
#undef SOFTHIST_CASE
    case Kernel::Hard: break;
  }
}

// dispatch_smooth, and the hard kernel at order 0 (check_order rejects others).
template <typename F>
void dispatch_kernel(Kernel kernel, int64_t order, const F& f) {
  if (kernel == Kernel::Hard)
    return f(std::integral_constant<Kernel, Kernel::Hard>{}, std::integral_constant<int, 0>{});
  dispatch_smooth(kernel, order, f);
}

// Calls f(std::bool_constant<b>{}).
template <typename F>
void dispatch_bool(bool b, const F& f) {
  return b ? f(std::true_type{}) : f(std::false_type{});
}

// t's shape.
inline std::vector<int64_t> shape_of(const Tensor& t) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < t.dim(); ++d) shape.push_back(t.size(d));
  return shape;
}

// t's shape without its last dimension, then `last`.
inline std::vector<int64_t> with_last(const Tensor& t, std::vector<int64_t> last) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) shape.push_back(t.size(d));
  shape.insert(shape.end(), last.begin(), last.end());
  return shape;
}

}  // namespace softhist
