// CUDA gather over three axes (bins_x x bins_y x bins_z -> samples):
// out_i = factor * sum_{a,b,c} hist[a, b, c] * D_ox(x_i, a) * D_oy(y_i, b) * D_oz(z_i, c).
// One thread per sample walks its 3-d window and sums in C, reading the row's
// histogram from shared memory when it fits. No atomics and a fixed order of
// the sum per sample, so results are reproducible. The hard kernel reads the
// histogram at the sample's bin.
#include <torch/csrc/stable/ops.h>

#include "axis_walk.cuh"
#include "device_params.cuh"
#include "hist_row.cuh"
#include "launch.cuh"
#include "ops_cuda.h"

namespace softhist::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
struct Gather3dArgs {
  const T* x[3];
  const T* hist;         // [rows, bins_x, bins_y, bins_z]
  const double* params;  // (3, row): kParamsSize values, then any explicit edges
  int64_t row;
  bool explicit_edges;
  int orders[3];
  bool at_edges[3];  // an axis at its edges: its slots are its bins + 1 edges
  int64_t bins[3];   // the slots
  int64_t n, chunks, items;
  T* out;
};

// Sample i's value. A sample that reaches no bin gets exactly 0 (even where
// the histogram holds NaN or inf); inside its window every bin counts, zero
// masses included, as on the CPU.
template <Kernel K, typename T, typename C, typename Hist>
__device__ T gather_one(const Gather3dArgs<T>& a, const Window* win, const Hist& h,
                        double factor, int64_t i) {
  const int64_t bins_y = a.bins[1], bins_z = a.bins[2];
  if constexpr (K == Kernel::Hard) {
    int64_t b[3];
    for (int ax = 0; ax < 3; ++ax)
      if (!win[ax].bin_of<HistcMath<T>>(static_cast<double>(a.x[ax][i]), b[ax])) return T(0);
    return static_cast<T>(h[(b[0] * bins_y + b[1]) * bins_z + b[2]]);
  } else {
    AxisWalk<K, C> w[3];
    for (int ax = 0; ax < 3; ++ax)
      if (!w[ax].locate(win[ax], a.orders[ax], static_cast<double>(a.x[ax][i]), a.at_edges[ax]))
        return T(0);
    const InnerMasses<K, C> z(w[2], 0, w[2].span());
    C acc = 0;
    for_each_mass(w[0], 0, w[0].span(), [&](int64_t kx, C dx) {
      const int64_t row_x = (w[0].first + kx) * bins_y;
      for_each_mass(w[1], 0, w[1].span(), [&](int64_t ky, C dy) {
        const C dxy = dx * dy;  // the CPU's outer coefficient
        const int64_t base = (row_x + w[1].first + ky) * bins_z + w[2].first;
        z.for_each([&](int64_t kz, C dz) { acc += dxy * h[base + kz] * dz; });
      });
    });
    return static_cast<T>(static_cast<double>(acc) * factor);
  }
}

// Work item: chunk (item % chunks) of row (item / chunks).
template <Kernel K, typename T, typename C, bool SharedHist>
__global__ void __launch_bounds__(kThreads) gather3d_samples(Gather3dArgs<T> a) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  C* shared_hist = reinterpret_cast<C*>(shared_bytes);
  Window win[3];
  double factor = 1;  // as OrderFactor::value
  for (int ax = 0; ax < 3; ++ax) {
    win[ax] = window_1d<K, C, T>(a.params + ax * a.row, a.bins[ax] - a.at_edges[ax],
                                 a.explicit_edges);
    factor *= kappa_power(a.params + ax * a.row, a.orders[ax]);
  }
  const int64_t bins = a.bins[0] * a.bins[1] * a.bins[2];
  for (int64_t item = blockIdx.x; item < a.items; item += gridDim.x) {
    const int64_t row = item / a.chunks, chunk = item % a.chunks;
    const T* hist_row = a.hist + row * bins;
    if constexpr (SharedHist) load_hist_row(hist_row, bins, shared_hist);
    const HistRow<T, C, SharedHist> h{shared_hist, hist_row};
    const int64_t end = row * a.n + a.n * (chunk + 1) / a.chunks;
    for (int64_t i = row * a.n + a.n * chunk / a.chunks + threadIdx.x; i < end; i += blockDim.x)
      a.out[i] = gather_one<K, T, C>(a, win, h, factor, i);
    if constexpr (SharedHist) __syncthreads();  // the next item overwrites shared_hist
  }
}

}  // namespace

void gather_3d(const GatherJob& job) {
  const Tensor& x = job.coords[0];
  const int64_t n = job.pb.n, rows = job.pb.rows;
  const int64_t bins = job.slots(0) * job.slots(1) * job.slots(2);
  dispatch_float(x.scalar_type(), [&](auto tag, auto ctag) {
    using T = decltype(tag);
    using C = decltype(ctag);
    const GatherSplit split = GatherSplit::of<C>(n, bins);
    Gather3dArgs<T> args{};
    for (int ax = 0; ax < 3; ++ax) {
      args.x[ax] = job.coords[ax].const_data_ptr<T>();
      args.orders[ax] = static_cast<int>(job.pb.orders[ax]);
      args.at_edges[ax] = job.pb.at_edges[ax];
      args.bins[ax] = job.slots(ax);
    }
    args.hist = job.hist.const_data_ptr<T>();
    args.params = job.params_of(0);
    args.row = job.params_row();
    args.explicit_edges = job.explicit_edges();
    args.n = n;
    args.chunks = split.chunks;
    args.items = rows * split.chunks;
    args.out = job.out.mutable_data_ptr<T>();
    // The orders are run-time arguments of the kernels (see cdf_of_order).
    dispatch_kernel(job.kernel, 0, [&](auto k, auto) {
      const auto kernel_of = [](auto shared) {
        return gather3d_samples<decltype(k)::value, T, C, decltype(shared)::value>;
      };
      launch_gather(split, kernel_of, args.items, kThreads, job.stream, args);
    });
  });
}

}  // namespace softhist::cuda
