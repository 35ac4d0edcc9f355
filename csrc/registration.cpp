// The op schemas (the one place they are written), and a fallback for every
// device the build has no kernel for. Part of the CPU library only, which is
// always loaded first; the CUDA library adds its kernels to these ops.
#include <torch/csrc/stable/library.h>

#include <string>
#include <tuple>
#include <vector>

#include "ops.h"

namespace softhist {

namespace {

// Reached only for a device an op has no kernel for in this build.
[[noreturn]] void no_kernel(const char* op, const Tensor& input) {
  fail("softhist: ", op, " got a tensor on ",
       input.is_cuda() ? "a CUDA device, and this install has no CUDA kernels"
                       : "a device softhist_ext has no kernels for",
       ". CUDA kernels: reinstall on the machine with the GPU with `pip install -v .`, whose "
       "log says which CUDA compiler built them or why none did (FORCE_CUDA=1 insists), "
       "then check softhist_ext.show_config(); or move the input to the CPU with .cpu()");
}

Tensor params_no_kernel(const Tensor& input, int64_t, double, double, std::optional<double>,
                        std::string, bool) {
  no_kernel("params", input);
}
Tensor scatter_no_kernel(std::vector<Tensor> coords, const std::optional<Tensor>&,
                         const Tensor&, std::vector<int64_t>, std::vector<int64_t>, std::string,
                         std::vector<int64_t>) {
  no_kernel("scatter", coords.at(0));
}
Tensor gather_no_kernel(std::vector<Tensor> coords, const Tensor&, const Tensor&,
                        std::vector<int64_t>, std::string, std::vector<int64_t>) {
  no_kernel("gather", coords.at(0));
}

std::tuple<Tensor, Tensor, Tensor> edge_gather_scatter_no_kernel(
    const Tensor& x, const std::optional<Tensor>&, const Tensor&, const Tensor&, int64_t,
    std::string, const std::optional<Tensor>&, const std::optional<Tensor>&, bool) {
  if (x.is_cuda())
    fail("softhist: edge_gather_scatter runs on the CPU only (the backward's single pass "
         "there); on CUDA, call gather and scatter with edge_axes=[0], as the backward does");
  no_kernel("edge_gather_scatter", x);
}

std::tuple<Tensor, Tensor, Tensor> scatter_edge_sums_no_kernel(const Tensor& x,
                                                       const std::optional<Tensor>&,
                                                       const Tensor&, int64_t, std::string) {
  if (x.is_cuda())
    fail("softhist: scatter_edge_sums runs on the CPU only (the forward that saves its "
         "backward's edge sums there); on CUDA, call scatter, and scatter with edge_axes=[0] "
         "for the edge sums, as the backward does");
  no_kernel("scatter_edge_sums", x);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> scatter_places_no_kernel(
    const Tensor& x, const std::optional<Tensor>&, const Tensor&, int64_t, std::string) {
  if (x.is_cuda())
    fail("softhist: scatter_places runs on the CPU only (the forward that keeps its backward's "
         "places there); on CUDA, call scatter, as the forward does");
  no_kernel("scatter_places", x);
}

Tensor gather_at_places_no_kernel(const Tensor& x, const Tensor&, const Tensor&, int64_t,
                                  std::string, const Tensor&, const Tensor&, const Tensor&) {
  if (x.is_cuda())
    fail("softhist: gather_at_places runs on the CPU only; on CUDA, call gather, as the "
         "backward does");
  no_kernel("gather_at_places", x);
}

}  // namespace

STABLE_TORCH_LIBRARY(softhist, m) {
  // The smoothing kernels' names (kernels.h), for Python to list.
  m.def("kernels() -> str[]");
  // Range and kappa after defaults, and open ends (conserve_mass), as float64
  // [lo, hi, kappa, open] on the input's device, so that a range taken from
  // the data never leaves the device.
  m.def(
      "params(Tensor input, int bins, float min, float max, float? kappa, "
      "str kernel, bool conserve_mass=False) -> Tensor");
  // The engine, over D = 1 to 3 axes (see kernels.h): coords are the D
  // coordinates of the samples, each (..., N), batched over the leading
  // dimensions; params is (D, 4), a `params` row per axis.
  //   scatter: out[..., b_1..b_D] = sum_i weight[..., i] * prod_a D_order_a(coords[a][..., i], b_a),
  //            shape (..., *bins)
  //   gather:  out[..., i] = sum_b hist[..., b_1..b_D] * prod_a D_order_a(coords[a][..., i], b_a),
  //            coords' shape
  // An axis a in edge_axes (order >= 1) takes, instead of the masses D_order_a
  // of its bins, the values at its bins + 1 edges e_j (its dimension then has
  // bins + 1 slots): with t = kappa * (coords[a][..., i] - e_j),
  //   kappa^order K^(order)(t)  (at open ends, the end edges' values are constants: 0),
  // for the gradients with respect to the edges, the range and kappa.
  m.def(
      "scatter(Tensor[] coords, Tensor? weight, Tensor params, int[] bins, int[] orders, "
      "str kernel, int[] edge_axes=[]) -> Tensor");
  m.def(
      "gather(Tensor[] coords, Tensor hist, Tensor params, int[] orders, str kernel, "
      "int[] edge_axes=[]) -> Tensor");
  // One axis at its edges: gather (coef at the edges) and scatter (weight) in
  // one pass over the samples, and sum_i weight[..., i] * (x[..., i] - e_0) *
  // gathered[..., i] over all rows, as float64 (CPU): the first-order
  // gradients with respect to x, the edges and kappa. Given scatter_edge_sums's
  // sums where it took them (taken), the gather alone: the scatter and the
  // moment are theirs. gather=False: x's gradient is not wanted, and the
  // gathered tensor is empty (0 elements); given sums, nothing is read from x.
  // No derivative of its own.
  m.def(
      "edge_gather_scatter(Tensor x, Tensor? weight, Tensor coef, Tensor params, int order, "
      "str kernel, Tensor? sums=None, Tensor? taken=None, bool gather=True) "
      "-> (Tensor, Tensor, Tensor)");
  // One axis: scatter at order 0 (the histogram, (..., bins)), and where it
  // costs less than edge_gather_scatter's pass (over Chebyshev pieces) what
  // its first-order backward needs for the edges, the range and kappa, as
  // float64 (..., 2, bins + 1): scatter at order 1 at the edges (the edge
  // sums), and the same with each weight times x - e_0; taken (0-d bool):
  // whether it took them (else zeros). CPU; no derivative of its own.
  m.def(
      "scatter_edge_sums(Tensor x, Tensor? weight, Tensor params, int bins, str kernel) "
      "-> (Tensor, Tensor, Tensor)");
  // One axis: scatter at order 0 (the histogram, (..., bins)), and where
  // locating a sample costs about as much as the rest of its pass (explicit,
  // uneven edges and a compact kernel: uneven Chebyshev pieces), each sample's
  // piece (int32; -1 for a sample that reaches no bin) and its place in it
  // (float64 for float64 x, else float32), both x's shape; taken (0-d bool):
  // whether it kept them (else their values are unspecified). CPU; no
  // derivative of its own.
  m.def(
      "scatter_places(Tensor x, Tensor? weight, Tensor params, int bins, str kernel) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
  // One axis: gather at order 0 or 1 from scatter_places's pieces and deltas
  // where it kept them (taken), without locating the samples again, and else
  // from x: scatter's backward for x and the weights. CPU; no derivative of
  // its own.
  m.def(
      "gather_at_places(Tensor x, Tensor hist, Tensor params, int order, str kernel, "
      "Tensor pieces, Tensor deltas, Tensor taken) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(softhist, CompositeExplicitAutograd, m) {
  m.impl("kernels", TORCH_BOX(&kernel_names));
  m.impl("params", TORCH_BOX(&params_no_kernel));
  m.impl("scatter", TORCH_BOX(&scatter_no_kernel));
  m.impl("gather", TORCH_BOX(&gather_no_kernel));
  m.impl("edge_gather_scatter", TORCH_BOX(&edge_gather_scatter_no_kernel));
  m.impl("scatter_edge_sums", TORCH_BOX(&scatter_edge_sums_no_kernel));
  m.impl("scatter_places", TORCH_BOX(&scatter_places_no_kernel));
  m.impl("gather_at_places", TORCH_BOX(&gather_at_places_no_kernel));
}

}  // namespace softhist
