// Host-side plumbing shared by the CUDA ops: the stream to launch on, launches
// with their error check, and compile-time dispatch over dtype, kernel and order.
#pragma once

#include <cuda_runtime.h>

#include <torch/csrc/stable/c/shim.h>
#include <torch/csrc/stable/macros.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../kernels.h"
#include "../ops.h"

namespace softhist::cuda {

using torch::headeronly::ScalarType;

// Kernels loop over their work items, so a grid never needs more blocks than this.
constexpr int64_t kMaxGrid = int64_t(1) << 20;
// Dynamic shared memory a kernel may use without opting in.
constexpr size_t kDefaultSharedBytes = 48 * 1024;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// PyTorch's current stream on the device: ops run in its order, and inside
// CUDA-graph capture.
inline cudaStream_t current_stream(int32_t device_index) {
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device_index, &stream));
  return static_cast<cudaStream_t>(stream);
}

// kernel<<<min(items, kMaxGrid), threads, shared_bytes, stream>>>(args...),
// first raising the kernel's dynamic shared-memory limit where it asks for
// more than the default.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t items, int threads, size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
  if (shared_bytes > kDefaultSharedBytes)
    STD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared_bytes)));
  const auto blocks = static_cast<unsigned>(std::min(items, kMaxGrid));
  kernel<<<blocks, threads, shared_bytes, stream>>>(std::forward<Args>(args)...);
  STD_CUDA_KERNEL_LAUNCH_CHECK();
}

// shape[:-1] + [last]
inline std::vector<int64_t> with_last(const Tensor& t, int64_t last) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) shape.push_back(t.size(d));
  shape.push_back(last);
  return shape;
}

// Calls f(T{}, C{}): the storage type and the type the kernel math runs in
// (float for the 16-bit types, as on the CPU).
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

// Calls f(kernel, order) as compile-time constants; the hard kernel only has
// order 0 (check_order rejects the others).
template <typename F>
void dispatch_kernel(Kernel kernel, int64_t order, const F& f) {
  switch (kernel) {
    case Kernel::Logistic: return dispatch_order<Kernel::Logistic>(order, f);
    case Kernel::Gaussian: return dispatch_order<Kernel::Gaussian>(order, f);
    case Kernel::Triangular: return dispatch_order<Kernel::Triangular>(order, f);
    case Kernel::BSpline: return dispatch_order<Kernel::BSpline>(order, f);
    case Kernel::Hard:
      return f(std::integral_constant<Kernel, Kernel::Hard>{}, std::integral_constant<int, 0>{});
  }
}

}  // namespace softhist::cuda
