// The argument checks of ../ops.cpp for the CUDA library, without that file's
// op registrations: the schemas and the fallback kernels are registered once,
// by the CPU library. Its two registration blocks compile here into unused
// functions.
#include <torch/csrc/stable/library.h>

#undef STABLE_TORCH_LIBRARY
#undef STABLE_TORCH_LIBRARY_IMPL
#define STABLE_TORCH_LIBRARY(ns, m) \
  [[maybe_unused]] static void unused_schemas(torch::stable::detail::StableLibrary& m)
#define STABLE_TORCH_LIBRARY_IMPL(ns, k, m) \
  [[maybe_unused]] static void unused_fallbacks(torch::stable::detail::StableLibrary& m)

#include "../ops.cpp"
