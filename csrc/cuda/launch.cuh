// Host-side plumbing shared by the CUDA ops: the stream to launch on, and
// launches with their error check (dispatch is in ../dispatch.h).
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

#include "../dispatch.h"
#include "../kernels.h"
#include "../ops.h"

namespace softhist::cuda {

using torch::headeronly::ScalarType;

// Kernels loop over their work items, so a grid never needs more blocks than this.
constexpr int64_t kMaxGrid = int64_t(1) << 20;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// PyTorch's current stream on the device: ops run in its order, and inside
// CUDA-graph capture.
//
// This library links the CUDA runtime statically (setup.py), so it has a
// runtime of its own beside torch's, possibly of another CUDA version. Sharing
// torch's stream is still sound: a cudaStream_t is the driver's CUstream
// handle, and both runtimes work in the device's primary context, which the
// driver keeps, one per device and process (the runtime API retains it, never
// creates its own). So the stream and the tensors' memory that torch's runtime
// made are valid here, launches queue in the order of torch's own, and the
// device guard above (torch's) has made the device current for this thread.
// What must not cross between the runtimes is their per-runtime state:
// cudaGetLastError's error (each checks its own, right after the launch) and
// function attributes (set here, on this library's kernels).
inline cudaStream_t current_stream(int32_t device_index) {
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device_index, &stream));
  return static_cast<cudaStream_t>(stream);
}

// CUDA's error check, naming the way out where the library has no code for
// the GPU (older than Ampere, or left out of TORCH_CUDA_ARCH_LIST) rather than
// "no kernel image is available".
inline void check_cuda(cudaError_t error) {
  SOFTHIST_CHECK(error != cudaErrorNoKernelImageForDevice,
                 "softhist: the CUDA kernels have no code for this GPU: they need compute "
                 "capability 8.0 (Ampere) or newer, built for it (softhist_ext.show_config() "
                 "lists the architectures; reinstall with TORCH_CUDA_ARCH_LIST set to the GPU's, "
                 "e.g. \"8.9\")");
  STD_CUDA_CHECK(error);
}

// kernel<<<min(items, kMaxGrid), threads, shared_bytes, stream>>>(args...),
// first raising the kernel's dynamic shared-memory limit where it asks for
// more. (The default limit is 48 KB less the kernel's static shared memory,
// so it is asked of the kernel rather than assumed.)
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t items, int threads, size_t shared_bytes,
            cudaStream_t stream, Args&&... args) {
  if (shared_bytes > 0) {
    cudaFuncAttributes attributes;
    check_cuda(cudaFuncGetAttributes(&attributes, kernel));
    if (shared_bytes > static_cast<size_t>(attributes.maxDynamicSharedSizeBytes))
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(shared_bytes)));
  }
  const auto blocks = static_cast<unsigned>(std::min(items, kMaxGrid));
  kernel<<<blocks, threads, shared_bytes, stream>>>(std::forward<Args>(args)...);
  check_cuda(cudaGetLastError());
}

}  // namespace softhist::cuda
