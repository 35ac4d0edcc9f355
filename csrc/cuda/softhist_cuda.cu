// The CUDA kernels of the softhist ops, in a library of their own that is
// loaded only when torch has CUDA. The CPU library, always loaded first,
// defines the schemas.
#include <torch/csrc/stable/library.h>

#include "ops_cuda.h"

STABLE_TORCH_LIBRARY_IMPL(softhist, CUDA, m) {
  m.impl("params", TORCH_BOX(&softhist::cuda::params_cuda));
  m.impl("scatter", TORCH_BOX(&softhist::cuda::scatter_cuda));
  m.impl("gather", TORCH_BOX(&softhist::cuda::gather_cuda));
  m.impl("scatter2d", TORCH_BOX(&softhist::cuda::scatter2d_cuda));
  m.impl("gather2d", TORCH_BOX(&softhist::cuda::gather2d_cuda));
}
