// The CPU engine's entry points, per dtype: the ops (ops_cpu.cpp) call
// Engine<T, C>, whose members are compiled once per dtype (engine_*.cpp,
// built in parallel) from engine_impl.h. T: the storage type, C: the type
// the kernel math runs in (dispatch_float's).
#pragma once

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <cstdint>
#include <vector>

#include "../kernels.h"
#include "../ops.h"

namespace softhist::cpu {

// Where scatter_places keeps the samples' places (save_places's), and
// whether it did.
template <typename C>
struct Places {
  int32_t* pieces;
  C* deltas;
  bool kept = false;
};

template <typename T, typename C>
struct Engine {
  // The histogram (rows of pb's slots) of D = pb.axes coordinates; with
  // places, the samples' places in their pieces too, where kept.
  static void scatter(const std::vector<Tensor>& coords, const T* w, const Tensor& params,
                      const Problem& pb, Kernel kernel, T* out, Places<C>* places = nullptr);
  // Each sample's sum of hist against its windows.
  static void gather(const std::vector<Tensor>& coords, const T* hist, const Tensor& params,
                     const Problem& pb, Kernel kernel, T* out);
  // edge_gather_scatter's pass over one axis at its edges.
  static void pair(const Tensor& x, const T* w, const T* coef, const Tensor& params,
                   const Problem& pb, Kernel kernel, T* gathered, T* scattered, double* moment);
  // scatter_edge_sums: false where the sums were not taken.
  static bool edge_sums(const Tensor& x, const T* w, const Tensor& params, const Problem& bins_pb,
                        const Problem& edges_pb, Kernel kernel, T* hist, double* sums);
  // edge_gather_scatter from scatter_edge_sums's sums.
  static void pair_from_sums(const Tensor& x, const T* coef, const Tensor& params,
                             const Problem& pb, Kernel kernel, const double* sums, T* gathered,
                             T* scattered, double* moment);
  // gather at scatter_places's places (null pieces: gather's).
  static void gather_places(const Tensor& x, const T* hist, const Tensor& params,
                            const Problem& pb, Kernel kernel, const int32_t* pieces,
                            const C* deltas, T* out);
};

extern template struct Engine<float, float>;
extern template struct Engine<double, double>;
extern template struct Engine<torch::headeronly::Half, float>;
extern template struct Engine<torch::headeronly::BFloat16, float>;

}  // namespace softhist::cpu
