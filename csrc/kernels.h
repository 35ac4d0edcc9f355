// Kernel math shared by the CPU and CUDA backends: plain C++, no torch types.
//
// A sample at x spreads over the bins by a kernel with CDF K(kappa * t).
// Bin b receives D_m(x, b) = K^(m)(x - e_b) - K^(m)(x - e_{b+1}), where K^(m) is
// the m-th derivative of K. Every op is built on D_m:
//   scatter_m(x, w)[b] = sum_i w_i D_m(x_i, b)   (forward, order 0)
//   gather_m(x, h)[i]  = sum_b h_b D_m(x_i, b)   (backward, order 1)
// and d/dx D_m = D_{m+1}, so each op's derivative is the other one, one order up.
#pragma once

#include <cstdint>
#include <cmath>
#include <cstring>
#include <iterator>

#if defined(__CUDACC__)
#define SOFTHIST_HD __host__ __device__ __forceinline__
#else
#define SOFTHIST_HD inline __attribute__((always_inline))
#endif

namespace softhist {

// Highest derivative order of K implemented (order 2 is double backward).
constexpr int64_t kMaxOrder = 3;

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
  const double shifted = x * 1.4426950408889634 + 6755399441055744.0;  // 1.5 * 2^52 + n
  const double n = shifted - 6755399441055744.0;
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
  // 2^n from shifted's low mantissa bits, which hold n: AVX2 has no
  // double -> int64 conversion, but 64-bit integer adds and shifts.
  uint64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// The smoothing kernels, one traits struct each: the CDF K of a density with
// scale 1/kappa in units of t = kappa * (x - edge), and K^(m), its m-th
// derivative in those units (the caller multiplies by kappa^m). Each has:
//   kName                 its name in the API
//   kDefaultKappaWidth    kappa * bin width for kappa=None: a spread of about
//                         half a bin (README, "Choosing kappa")
//   saturation<C>()       |t| beyond which K is within 1e-8 (float compute) or
//                         1e-17 (double) of 0 or 1: a sample's mass is kept to
//                         2 * that, below the result's rounding error; exact
//                         for compact kernels
//   log2_max_abs_d(m)     ceil(log2(max K^(m) - min K^(m))): |D_m| <= 2^this,
//                         the headroom a fixed-point sum of D_m needs
//   cdf<Order>(t)         K^(Order)(t)
// Adding a kernel: a struct here, its line in SOFTHIST_FORALL_SMOOTH_KERNELS,
// and its dense formula in softhist_ext/reference.py.

struct Logistic {  // K = sigmoid(t): the forum's SoftHistogram
  static constexpr const char* kName = "logistic";
  static constexpr double kDefaultKappaWidth = 4.0;  // standard deviation 0.45 bins
  template <typename C>
  SOFTHIST_HD static C saturation() { return sizeof(C) == 8 ? C(39.2) : C(18.5); }  // e^-T
  // sigmoid spans 1, s(1-s) <= 1/4, and its derivatives span less.
  SOFTHIST_HD static int log2_max_abs_d(int64_t order) { return order == 0 ? 0 : -2; }

  template <int Order, typename C>
  SOFTHIST_HD static C cdf(C t) {
    const C sat = clamp<C>();
    t = t > -sat ? t : -sat;  // the operand order of maxps/minps: no blend needed
    t = t < sat ? t : sat;
    return from_exp<Order>(exp_bounded(-t));
  }

  // |t| beyond which cdf evaluates K at the clamp.
  template <typename C>
  SOFTHIST_HD static C clamp() { return saturation<C>() + 2; }

  // K^(Order)(t) from e = e^-t, |t| <= clamp(). With s = sigmoid(t), q = 1 - s
  // is computed as e * s so it keeps full precision where s is near 1.
  template <int Order, typename C>
  SOFTHIST_HD static C from_exp(C e) {
    const C s = C(1) / (C(1) + e);
    const C q = e * s;
    if constexpr (Order == 0) return s;
    if constexpr (Order == 1) return s * q;
    if constexpr (Order == 2) return s * q * (q - s);
    if constexpr (Order == 3) return s * q * (C(1) - C(6) * s * q);
  }
};

// erfc(x) for float compute: Numerical Recipes' Chebyshev fit, relative error
// below 1.2e-7 everywhere, in arithmetic that vectorises.
SOFTHIST_HD float erfc_vectorisable(float x) {
  const float z = x < 0 ? -x : x;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float r = t * exp_bounded(p - z * z);
  return x < 0 ? 2.0f - r : r;
}

#if defined(__CUDA_ARCH__)
SOFTHIST_HD double erfc_vectorisable(double x) { return erfc(x); }
#else
// erfcx(z) = e^(z^2) erfc(z) for 0 <= z <= 7, as a polynomial in
// s = 4 / (4 + z) - kErfcxMid (degree 20, highest power first; a Chebyshev
// fit made with mpmath at 50 digits, within 1.3e-19 of erfcx).
inline constexpr double kErfcxMid = 0.6818181818181818;
inline constexpr double kErfcx[] = {
    -7.323935690696699e-05, -0.0071991011712969, 0.0012817935560796969, 0.019191958302261204,
    -0.0025648000581789334, -0.044678223550914296, -0.005843119638723174, 0.10650578285925759,
    0.08020113602074176, -0.21742887157055749, -0.4663254108686894, -0.015511473004627251,
    1.4748515803065438, 3.556002066068134, 5.2415340765679606, 5.747948057515744,
    5.007604535762422, 3.566018251221691, 2.0996607846234596, 1.022406487799801,
    0.2704168122429287};

// kErfcx's polynomial up to power J at s, unrolled (a loop of 21 steps would
// not be, and would keep the caller's loop over samples from vectorising).
template <size_t J>
SOFTHIST_HD double erfcx_horner(double s) {
  if constexpr (J == 0) return kErfcx[0];
  else return erfcx_horner<J - 1>(s) * s + kErfcx[J];
}

// erfc(x) for double compute, |x| <= 7 (the gaussian kernel's clamped range;
// beyond, erfc(7) = 4e-23 is returned): e^(-z^2) erfcx(z) with z^2 split into
// its rounded value and error (fma), so the exponential keeps full precision;
// one polynomial, so loops over samples vectorise. Against mpmath over
// [-6.8, 6.8]: relative error within 1e-15 (libm's erfc: 1e-16).
SOFTHIST_HD double erfc_vectorisable(double x) {
  double z = x < 0 ? -x : x;
  z = z < 7.0 ? z : 7.0;
  const double s = 4.0 / (4.0 + z) - kErfcxMid;
  const double p = erfcx_horner<std::size(kErfcx) - 1>(s);
  const double square = z * z, error = std::fma(z, z, -square);
  const double r = exp_bounded(-square) * (1.0 - error) * p;
  return x < 0 ? 2.0 - r : r;
}
#endif

struct Gaussian {  // K = Phi(t): standard deviation 1/kappa
  static constexpr const char* kName = "gaussian";
  static constexpr double kDefaultKappaWidth = 2.0;  // standard deviation 0.5 bins
  template <typename C>
  SOFTHIST_HD static C saturation() { return sizeof(C) == 8 ? C(8.6) : C(5.7); }  // Phi(-T)
  // Phi spans 1, pdf <= 0.40, -t pdf spans 0.48, (t^2 - 1) pdf 0.58.
  SOFTHIST_HD static int log2_max_abs_d(int64_t order) { return order == 0 || order == 3 ? 0 : -1; }

  template <int Order, typename C>
  SOFTHIST_HD static C cdf(C t) {
    const C sat = saturation<C>() + 1;
    t = t > -sat ? t : -sat;
    t = t < sat ? t : sat;
    const C pdf = C(0.398942280401432677939946) * exp_bounded(C(-0.5) * t * t);
    if constexpr (Order == 0) return C(0.5) * erfc_vectorisable(C(-0.707106781186547524400844) * t);
    if constexpr (Order == 1) return pdf;
    if constexpr (Order == 2) return -t * pdf;
    if constexpr (Order == 3) return (t * t - C(1)) * pdf;
  }
};

struct Triangular {  // density max(0, 1 - |t|): half-width 1/kappa (the linear splat)
  static constexpr const char* kName = "triangular";
  static constexpr double kDefaultKappaWidth = 1.0;  // standard deviation 0.41 bins
  template <typename C>
  SOFTHIST_HD static C saturation() { return C(1); }
  // K spans 1, the density 1, its derivative 2, then 0.
  SOFTHIST_HD static int log2_max_abs_d(int64_t order) { return order == 2 ? 1 : 0; }

  template <int Order, typename C>
  SOFTHIST_HD static C cdf(C t) {
    const C a = t < 0 ? -t : t;
    const C r = a < 1 ? C(1) - a : C(0);  // density; its derivatives ignore the kinks
    const C sign = t < 0 ? C(-1) : C(1);
    if constexpr (Order == 0) return t < 0 ? C(0.5) * r * r : C(1) - C(0.5) * r * r;
    if constexpr (Order == 1) return r;
    if constexpr (Order == 2) return a < 1 ? -sign : C(0);
    if constexpr (Order == 3) return C(0);
  }
};

struct BSpline {  // cubic B-spline density, support |t| < 2 (MONAI's Parzen window)
  static constexpr const char* kName = "bspline";
  static constexpr double kDefaultKappaWidth = 1.0;  // standard deviation 0.58 bins
  template <typename C>
  SOFTHIST_HD static C saturation() { return C(2); }
  // K spans 1, the density 2/3, its derivatives 4/3 and 3.
  SOFTHIST_HD static int log2_max_abs_d(int64_t order) { return order < 2 ? 0 : int(order) - 1; }

  template <int Order, typename C>
  SOFTHIST_HD static C cdf(C t) {
    // Density (4 - 6a^2 + 3a^3)/6 for a = |t| < 1, (2 - a)^3/6 for 1 <= a < 2.
    const C a = t < 0 ? -t : t;
    const C sign = t < 0 ? C(-1) : C(1);
    const C b = a < 2 ? C(2) - a : C(0);
    const bool inner = a < 1;
    // Horner forms with the divisions by 6 and 24 folded into the coefficients.
    if constexpr (Order == 0) {
      // Mass in [0, a] = (4a - 2a^3 + 3a^4/4) / 6, or 1/2 - (2 - a)^4 / 24; then
      // K(t) = 1/2 + sign * mass.
      const C inner_mass = a * (C(2.0 / 3) + a * a * (C(-1.0 / 3) + C(0.125) * a));
      const C outer_mass = C(0.5) - b * b * b * b * C(1.0 / 24);
      return C(0.5) + sign * (inner ? inner_mass : outer_mass);
    }
    if constexpr (Order == 1)
      return inner ? C(2.0 / 3) + a * a * (C(-1) + C(0.5) * a) : b * b * b * C(1.0 / 6);
    if constexpr (Order == 2) return sign * (inner ? C(-2) * a + C(1.5) * a * a : C(-0.5) * b * b);
    if constexpr (Order == 3) return inner ? C(-2) + C(3) * a : b;
  }
};

struct Box {  // density 1/2 for -1 <= t < 1: half-width 1/kappa
  static constexpr const char* kName = "box";
  // Half-width half a bin: a sample's masses are the linear interpolation
  // weights of the two nearest bin centres (linear binning).
  static constexpr double kDefaultKappaWidth = 2.0;  // standard deviation 0.29 bins
  template <typename C>
  SOFTHIST_HD static C saturation() { return C(1); }
  // K spans 1, the density 1/2, its derivatives are 0 (off the kinks).
  SOFTHIST_HD static int log2_max_abs_d(int64_t order) { return order == 0 ? 0 : -1; }

  // At its knots the density takes its value on the right, [-1, 1), as the
  // Chebyshev pieces (whose ends hold the knots) locate samples.
  template <int Order, typename C>
  SOFTHIST_HD static C cdf(C t) {
    const bool inside = t >= C(-1) && t < C(1);
    if constexpr (Order == 0) return inside ? C(0.5) * (t + C(1)) : (t < 0 ? C(0) : C(1));
    if constexpr (Order == 1) return inside ? C(0.5) : C(0);
    if constexpr (Order >= 2) return C(0);
  }
};

// The one list of smoothing kernels: the enum, parsing, dispatch, defaults
// and error messages are generated from it.
#define SOFTHIST_FORALL_SMOOTH_KERNELS(_) _(Logistic) _(Gaussian) _(Triangular) _(BSpline) _(Box)

// A smoothing kernel, or Hard: the bin a sample falls in, as torch.histc
// (exact counts, no derivative in x).
enum class Kernel : int32_t {
#define SOFTHIST_ENUM_ENTRY(K) K,
  SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_ENUM_ENTRY)
#undef SOFTHIST_ENUM_ENTRY
  Hard,
};
constexpr const char* kHardName = "hard";

template <Kernel K>
struct TraitsOf;
#define SOFTHIST_TRAITS_ENTRY(K) \
  template <>                    \
  struct TraitsOf<Kernel::K> {   \
    using type = K;              \
  };
SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_TRAITS_ENTRY)
#undef SOFTHIST_TRAITS_ENTRY

template <Kernel K, int Order, typename C>
SOFTHIST_HD C cdf(C t) {
  return TraitsOf<K>::type::template cdf<Order>(t);
}

// The traits of a kernel known at run time; the hard kernel's window is its bin.
template <typename C>
SOFTHIST_HD C saturation(Kernel k) {
  switch (k) {
#define SOFTHIST_CASE(K) \
  case Kernel::K: return K::saturation<C>();
    SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_CASE)
#undef SOFTHIST_CASE
    case Kernel::Hard: return C(0);
  }
  return C(0);
}

SOFTHIST_HD int log2_max_abs_d(Kernel k, int64_t order) {
  switch (k) {
#define SOFTHIST_CASE(K) \
  case Kernel::K: return K::log2_max_abs_d(order);
    SOFTHIST_FORALL_SMOOTH_KERNELS(SOFTHIST_CASE)
#undef SOFTHIST_CASE
    case Kernel::Hard: return 0;  // counts of weights
  }
  return 0;
}

// A sample's weight times a mass of one of its bins, for the scatters of every
// backend: 0 where the mass is, whatever the weight, so that a NaN or infinite
// weight reaches no bin past the kernel's support or cut.
SOFTHIST_HD double weighted_mass(double weight, double mass) {
  return mass != 0 ? weight * mass : 0.0;
}

// v rounded to the type T and back. The volatile keeps the rounding: GCC 12's
// SLP vectorizer drops it from two adjacent double -> float -> double round
// trips (-O2 and above).
template <typename T>
SOFTHIST_HD double rounded_to(double v) {
  volatile double r = static_cast<double>(static_cast<T>(v));
  return r;
}

// The edges a sample reaches. Edge j sits at lo + j*width; a sample at x has
// position u = (x - lo) / width in bin units and kappa*(x - e_j) = c*(u - j)
// with c = kappa*width. Beyond `reach` = T/c bins on either side K is
// saturated, so a window of `edges` consecutive edges, clipped to [0, bins],
// holds every nonzero D_m. The window length is the same for every sample;
// only its first edge differs.
//
// Open ends (conserve_mass): a sample inside [min, max] keeps its whole mass,
// the kernel mass beyond min going to the first bin and beyond max to the last
// (K is taken as 1 at edge 0 and 0 at edge `bins`; its derivatives as 0);
// samples outside [min, max] add nothing, as in torch.histc.
struct Window {
  double lo, inv_width, c, reach;
  double in_lo, in_hi;  // the range rounded to the samples' type, as torch.histc sees it
  int64_t bins, edges;
  bool open_ends;
  // Explicit edges (one axis; cpu/explicit_edges.h, cuda/device_params.cuh):
  // the bins + 1 edges, with reach in units of the input and kappa; null for
  // evenly spaced bins.
  // CPU: cell_first[c], the last edge below even cell c of `cells` over
  // [e_0, e_bins], each cell holding at most cell_steps edges.
  const double* at = nullptr;
  double kappa = 0;
  const int32_t* cell_first = nullptr;
  double cell_inv = 0;
  int64_t cells = 0, cell_steps = 0;
  // CPU, per first edge f and window edge k, in the type window values are
  // computed in (null where the table would be too large): the logistic
  // kernel's growth[f * edges + k] = e^(kappa (e_(f+k) - e_(f+1))), the other
  // kernels' shifts, kappa (e_(f+k) - e_f).
  const void* growth = nullptr;
  const void* shifts = nullptr;

  // reach, but at least 2^-50 of `far`, the largest |place| of a sample in
  // range: a sharper kernel's reach would vanish in x - reach, and a sample
  // on an edge lose the bin below it.
  SOFTHIST_HD static double reach_of(double reach, double far) {
    return reach > far * 0x1p-50 ? reach : far * 0x1p-50;
  }

  // C: the type kernel values are computed in; T: the samples' type.
  template <typename C, typename T>
  SOFTHIST_HD static Window make(Kernel kernel, double lo, double hi, double kappa,
                                 int64_t bins, bool open_ends) {
    Window w;
    const double width = (hi - lo) / static_cast<double>(bins);
    w.lo = lo;
    w.in_lo = rounded_to<T>(lo);
    w.in_hi = rounded_to<T>(hi);
    w.inv_width = 1.0 / width;
    w.c = kappa * width;
    w.reach = reach_of(static_cast<double>(saturation<C>(kernel)) / w.c, static_cast<double>(bins));
    w.bins = bins;
    const double span = __builtin_ceil(2.0 * w.reach) + 2.0;
    w.edges = span > static_cast<double>(bins + 1) ? bins + 1 : static_cast<int64_t>(span);
    w.open_ends = open_ends;
    return w;
  }

  // Explicit edges: the window over the bins + 1 edges after a params row
  // [lo, hi, kappa, open] (p), but for its length (edges), which the backends
  // find each their own way.
  template <typename C, typename T>
  SOFTHIST_HD static Window make_explicit(Kernel kernel, const double* p, int64_t bins) {
    Window w{};
    w.at = p + 4;  // (kParamsSize)
    w.kappa = p[2];
    w.bins = bins;
    w.open_ends = p[3] != 0;
    w.lo = w.at[0];
    w.in_lo = rounded_to<T>(w.at[0]);
    w.in_hi = rounded_to<T>(w.at[bins]);
    const double lo_far = __builtin_fabs(w.at[0]), hi_far = __builtin_fabs(w.at[bins]);
    w.reach = reach_of(static_cast<double>(saturation<C>(kernel)) / w.kappa,
                       lo_far > hi_far ? lo_far : hi_far);  // in units of the input
    return w;
  }

  // Whether x lies in [min, max] as torch.histc compares them: with min and
  // max rounded to the samples' type (a float32 sample equal to float32(max)
  // is counted where float32(max) > max). False for NaN.
  SOFTHIST_HD bool inside(double x) const { return x >= in_lo && x <= in_hi; }

  // The bin of x as torch.histc counts it, or false when x is outside the
  // range or not finite. A is the type torch.histc computes the bin in (the
  // samples' type on the CPU, rounding after each operation; CUDA's
  // accumulation type), so that a sample within rounding of an edge lands
  // where torch.histc puts it; max falls in the last bin. Where A overflows
  // ((x - min) * bins past float16's 65504, say), torch.histc's bin is
  // garbage; this one is then computed in double, dividing first.
  template <typename A>
  SOFTHIST_HD bool bin_of(double x, int64_t& bin) const {
    if (!inside(x)) return false;
    const A lo_a = static_cast<A>(in_lo);
    const A pos = (static_cast<A>(x) - lo_a) * static_cast<A>(bins) / (static_cast<A>(in_hi) - lo_a);
    double p = static_cast<double>(pos);  // >= 0
    if (!(p - p == 0)) p = (x - in_lo) / (in_hi - in_lo) * static_cast<double>(bins);
    bin = p < static_cast<double>(bins) ? static_cast<int64_t>(p) : bins - 1;
    return true;
  }

  // First edge of x's window and kappa*(x - e_first), or false when x is not
  // finite, too far from the range to reach any bin, or (open ends) outside it.
  SOFTHIST_HD bool locate(double x, int64_t& first, double& t_first) const {
    const double u = (x - lo) * inv_width;
    if (!(u >= -reach && u < static_cast<double>(bins) + reach)) return false;
    if (open_ends && !inside(x)) return false;
    double start = __builtin_floor(u - reach);
    const double last_start = static_cast<double>(bins + 1 - edges);
    start = start < 0 ? 0 : (start > last_start ? last_start : start);
    first = static_cast<int64_t>(start);
    t_first = c * (u - start);
    return true;
  }

  // Explicit edges (at): x's first edge, the last edge at or below x - reach
  // by binary search (clamped so the window fits), or false as locate.
  SOFTHIST_HD bool locate_explicit(double x, int64_t& first) const {
    if (!(x >= at[0] - reach && x < at[bins] + reach)) return false;
    if (open_ends && !inside(x)) return false;
    int64_t lo_edge = 0, hi_edge = bins + 1;  // at[lo_edge] <= y < at[hi_edge] (hi: past the end)
    const double y = x - reach;
    while (hi_edge - lo_edge > 1) {
      const int64_t mid = (lo_edge + hi_edge) / 2;
      if (at[mid] <= y) lo_edge = mid; else hi_edge = mid;
    }
    const int64_t last_start = bins + 1 - edges;
    first = lo_edge < last_start ? lo_edge : last_start;
    return true;
  }

  // locate or locate_explicit, as the window's edges are (t_first: even bins).
  SOFTHIST_HD bool locate_any(double x, int64_t& first, double& t_first) const {
    return at ? locate_explicit(x, first) : locate(x, first, t_first);
  }

  // kappa * (x - e_(first + k)) in C: over explicit edges from the sample x,
  // as the CPU rounds it where it keeps no shifts; over even bins from
  // t_first = kappa * (x - e_first) (locate's) in k steps of c.
  template <typename C>
  SOFTHIST_HD C t_at(int64_t first, int64_t k, C t_first, double x) const {
    return at ? static_cast<C>(kappa * (x - at[first + k]))
              : t_first - static_cast<C>(c) * static_cast<C>(k);
  }

  // K^(order) at edge `edge` given its kernel value: the value itself, except
  // at the open ends.
  template <typename C>
  SOFTHIST_HD C at_edge(int64_t edge, int order, C value) const {
    if (open_ends && edge == 0) return order == 0 ? C(1) : C(0);
    if (open_ends && edge == bins) return C(0);
    return value;
  }
};

}  // namespace softhist
