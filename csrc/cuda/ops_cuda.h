// The CUDA implementations of the softhist ops (schemas in ../registration.cpp).
// One entry per op (softhist_cuda.cu) checks the arguments, makes the inputs
// contiguous on the input's device and stream and allocates the output, then
// hands a job to the implementation for its number of axes.
#pragma once

#include <cuda_runtime.h>

#include <torch/csrc/stable/tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../ops.h"

namespace softhist::cuda {

using torch::stable::Tensor;

Tensor params_cuda(const Tensor& input, int64_t bins, double min, double max,
                   std::optional<double> kappa, std::string kernel_name, bool conserve_mass);
Tensor scatter_cuda(std::vector<Tensor> coords, const std::optional<Tensor>& weight,
                    const Tensor& params, std::vector<int64_t> bins, std::vector<int64_t> orders,
                    std::string kernel_name, std::vector<int64_t> edge_axes);
Tensor gather_cuda(std::vector<Tensor> coords, const Tensor& hist, const Tensor& params,
                   std::vector<int64_t> orders, std::string kernel_name,
                   std::vector<int64_t> edge_axes);

// What the entries hand the implementations: contiguous tensors on the current
// device, the checked problem, the stream to launch on, and the output.
struct Job {
  Problem pb;
  Kernel kernel;
  std::vector<Tensor> coords;  // pb.axes tensors, contiguous
  Tensor params;  // float64, a row per axis: kParamsSize values, then any explicit edges
  cudaStream_t stream;
  Tensor out;

  int64_t params_row() const { return params.size(1); }
  // The histogram's extent on axis a: its bins, or its edges at its edges.
  int64_t slots(int64_t a) const { return pb.slots(a); }
  bool explicit_edges() const { return has_explicit_edges(params); }
  const double* params_of(int64_t axis) const {
    return params.const_data_ptr<double>() + axis * params_row();
  }
};

// scatter: out is (..., *slots) (bins, or bins + 1 at the edges); every row has
// at least one sample.
struct ScatterJob : Job {
  std::optional<Tensor> weight;  // contiguous
};
// gather: out is coords[0]'s shape, not empty.
struct GatherJob : Job {
  Tensor hist;  // contiguous, (..., *slots)
};

// The implementations by number of axes: 1 (scatter.cu, gather.cu), 2
// (scatter2d.cu, gather2d.cu) and 3 (scatter3d.cu, gather3d.cu).
void scatter_1d(const ScatterJob& job);
void scatter_2d(const ScatterJob& job);
void scatter_3d(const ScatterJob& job);
void gather_1d(const GatherJob& job);
void gather_2d(const GatherJob& job);
void gather_3d(const GatherJob& job);
// One axis at its edges (scatter.cu, gather.cu): bins + 1 slots per row.
void edge_scatter_1d(const ScatterJob& job);
void edge_gather_1d(const GatherJob& job);

}  // namespace softhist::cuda
