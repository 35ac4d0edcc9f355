// The CUDA implementations of the softhist ops (schemas in ../ops.cpp).
#pragma once

#include <torch/csrc/stable/tensor.h>

#include <cstdint>
#include <optional>
#include <string>

namespace softhist::cuda {

using torch::stable::Tensor;

Tensor params_cuda(const Tensor& input, int64_t bins, double min, double max,
                   std::optional<double> kappa, std::string kernel_name, bool conserve_mass);
Tensor scatter_cuda(const Tensor& input, const std::optional<Tensor>& weight,
                    const Tensor& params, int64_t bins, int64_t order, std::string kernel_name);
Tensor gather_cuda(const Tensor& input, const Tensor& hist, const Tensor& params,
                   int64_t order, std::string kernel_name);
Tensor scatter2d_cuda(const Tensor& x, const Tensor& y, const std::optional<Tensor>& weight,
                      const Tensor& params_x, const Tensor& params_y, int64_t bins_x,
                      int64_t bins_y, int64_t order_x, int64_t order_y, std::string kernel_name);
Tensor gather2d_cuda(const Tensor& x, const Tensor& y, const Tensor& hist,
                     const Tensor& params_x, const Tensor& params_y, int64_t order_x,
                     int64_t order_y, std::string kernel_name);

}  // namespace softhist::cuda
