// The CUDA kernels of the softhist ops, in a library of their own that is
// loaded only when torch has CUDA. The CPU library, always loaded first,
// defines the schemas. The entries here are the one preamble of every op:
// the shared argument checks, the device guard and stream, contiguous inputs,
// the output and the empty cases; then the implementation for D axes.
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include "launch.cuh"
#include "ops_cuda.h"

namespace softhist::cuda {

namespace {

// The part of a job both ops fill alike (under the caller's device guard).
void prepare(Job& job, const std::vector<Tensor>& coords, const Tensor& params, Kernel kernel) {
  job.kernel = kernel;
  job.stream = current_stream(coords[0].get_device_index());
  for (const Tensor& c : coords) job.coords.push_back(torch::stable::contiguous(c));
  job.params = torch::stable::contiguous(params);
}

}  // namespace

Tensor scatter_cuda(std::vector<Tensor> coords, const std::optional<Tensor>& weight,
                    const Tensor& params, std::vector<int64_t> bins, std::vector<int64_t> orders,
                    std::string kernel_name, std::vector<int64_t> edge_axes) {
  const Kernel kernel = parse_kernel(kernel_name);
  ScatterJob job;
  job.pb = check_scatter_args(coords, weight, params, bins, orders, edge_axes, kernel);
  const torch::stable::accelerator::DeviceGuard guard(coords[0].get_device_index());
  prepare(job, coords, params, kernel);
  if (weight.has_value()) job.weight = torch::stable::contiguous(*weight);
  const Tensor& x = job.coords[0];
  job.out = torch::stable::empty(with_last(x, job.pb.all_slots()), x.scalar_type(), std::nullopt,
                                 x.device());
  if (job.pb.rows == 0) return job.out;
  if (job.pb.n == 0) return torch::stable::zero_(job.out);
  switch (job.pb.axes) {
    case 1: job.pb.at_edges[0] ? edge_scatter_1d(job) : scatter_1d(job); break;
    case 2: scatter_2d(job); break;
    default: scatter_3d(job); break;  // check_scatter_args: 1 to kMaxAxes = 3
  }
  return job.out;
}

Tensor gather_cuda(std::vector<Tensor> coords, const Tensor& hist, const Tensor& params,
                   std::vector<int64_t> orders, std::string kernel_name,
                   std::vector<int64_t> edge_axes) {
  const Kernel kernel = parse_kernel(kernel_name);
  GatherJob job;
  job.pb = check_gather_args(coords, hist, params, orders, edge_axes, kernel);
  const torch::stable::accelerator::DeviceGuard guard(coords[0].get_device_index());
  prepare(job, coords, params, kernel);
  job.hist = torch::stable::contiguous(hist);
  job.out = torch::stable::empty_like(job.coords[0]);
  if (job.out.numel() == 0) return job.out;
  switch (job.pb.axes) {
    case 1: job.pb.at_edges[0] ? edge_gather_1d(job) : gather_1d(job); break;
    case 2: gather_2d(job); break;
    default: gather_3d(job); break;  // check_gather_args: 1 to kMaxAxes = 3
  }
  return job.out;
}

}  // namespace softhist::cuda

STABLE_TORCH_LIBRARY_IMPL(softhist, CUDA, m) {
  m.impl("params", TORCH_BOX(&softhist::cuda::params_cuda));
  m.impl("scatter", TORCH_BOX(&softhist::cuda::scatter_cuda));
  m.impl("gather", TORCH_BOX(&softhist::cuda::gather_cuda));
}
