// Kernel math shared by the CPU and CUDA backends: plain C++, no torch types.
//
// A sample at x spreads over the bins by the logistic CDF K(t) = sigmoid(kappa*t).
// Bin b receives D_m(x, b) = K^(m)(x - e_b) - K^(m)(x - e_{b+1}), where K^(m) is
// the m-th derivative of K. Every op is built on D_m:
//   scatter_m(x, w)[b] = sum_i w_i D_m(x_i, b)   (forward, order 0)
//   gather_m(x, h)[i]  = sum_b h_b D_m(x_i, b)   (backward, order 1)
// and d/dx D_m = D_{m+1}, so each op's derivative is the other one, one order up.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SOFTHIST_HD __host__ __device__ __forceinline__
#else
#define SOFTHIST_HD inline __attribute__((always_inline))
#endif

namespace softhist {

// Highest derivative order of K implemented (order 2 is double backward).
constexpr int64_t kMaxOrder = 3;

// |t| beyond which sigmoid(t) is within e^-T of 0 or 1. Chosen from the
// precision promised, not the dtype's epsilon: a sample's total mass is kept to
// 2e^-T relative (1.9e-8 for float compute, 1.4e-16 for double), below the
// rounding error of the result type.
template <typename C> struct Saturation;
template <> struct Saturation<float> { static constexpr float value = 18.5f; };
template <> struct Saturation<double> { static constexpr double value = 37.5; };

// exp(x) for |x| <= 80 in branch-free arithmetic so loops over samples
// vectorise; accurate to ~1 ulp (float) / ~2 ulp (double).
SOFTHIST_HD float exp_bounded(float x) {
  // Round to nearest by adding and subtracting 1.5 * 2^23 (vectorises; floor doesn't).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float f = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 5040;
  p = p * f + 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

SOFTHIST_HD double exp_bounded(double x) {
  const double n = (x * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
  const double f = (x - n * 0.693147180369123816490) - n * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * f + 1.0 / 479001600.0;
  p = p * f + 1.0 / 39916800.0;
  p = p * f + 1.0 / 3628800.0;
  p = p * f + 1.0 / 362880.0;
  p = p * f + 1.0 / 40320.0;
  p = p * f + 1.0 / 5040.0;
  p = p * f + 1.0 / 720.0;
  p = p * f + 1.0 / 120.0;
  p = p * f + 1.0 / 24.0;
  p = p * f + 1.0 / 6.0;
  p = p * f + 0.5;
  p = p * f + 1.0;
  p = p * f + 1.0;
  const int64_t bits = (static_cast<int64_t>(n) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// K^(order)(t / kappa) / kappa^order: the logistic CDF and its derivatives in
// units of kappa*t. With s = sigmoid(t), q = 1 - s computed as e^-t * s so it
// keeps full precision where s is near 1.
template <int Order, typename C>
SOFTHIST_HD C logistic(C t) {
  const C sat = Saturation<C>::value + 2;
  t = t > -sat ? t : -sat;  // the operand order of maxps/minps: no blend needed
  t = t < sat ? t : sat;
  const C e = exp_bounded(-t);
  const C s = C(1) / (C(1) + e);
  const C q = e * s;
  if constexpr (Order == 0) return s;
  if constexpr (Order == 1) return s * q;
  if constexpr (Order == 2) return s * q * (q - s);
  if constexpr (Order == 3) return s * q * (C(1) - C(6) * s * q);
}

// The edges a sample reaches. Edge j sits at lo + j*width; a sample at x has
// position u = (x - lo) / width in bin units and kappa*(x - e_j) = c*(u - j)
// with c = kappa*width. Beyond `reach` = T/c bins on either side K is
// saturated, so a window of `edges` consecutive edges, clipped to [0, bins],
// holds every nonzero D_m. The window length is the same for every sample;
// only its first edge differs.
struct Window {
  double lo, inv_width, c, reach;
  int64_t bins, edges;

  template <typename C>
  static Window make(double lo, double hi, double kappa, int64_t bins) {
    Window w;
    const double width = (hi - lo) / static_cast<double>(bins);
    w.lo = lo;
    w.inv_width = 1.0 / width;
    w.c = kappa * width;
    w.reach = static_cast<double>(Saturation<C>::value) / w.c;
    w.bins = bins;
    const double span = __builtin_ceil(2.0 * w.reach) + 2.0;
    w.edges = span > static_cast<double>(bins + 1) ? bins + 1 : static_cast<int64_t>(span);
    return w;
  }

  // First edge of x's window and kappa*(x - e_first), or false when x is not
  // finite or too far from the range to reach any bin.
  SOFTHIST_HD bool locate(double x, int64_t& first, double& t_first) const {
    const double u = (x - lo) * inv_width;
    if (!(u > -reach && u < static_cast<double>(bins) + reach)) return false;
    double start = __builtin_floor(u - reach);
    const double last_start = static_cast<double>(bins + 1 - edges);
    start = start < 0 ? 0 : (start > last_start ? last_start : start);
    first = static_cast<int64_t>(start);
    t_first = c * (u - start);
    return true;
  }
};

}  // namespace softhist
