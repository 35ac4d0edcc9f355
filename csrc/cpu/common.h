// Shared by the CPU kernels: instruction-set clones, locating blocks of
// samples in their windows, the kernel values of a window and the
// deterministic chunking of samples.
#pragma once

#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "../dispatch.h"
#include "../kernels.h"
#include "../ops.h"

// One copy of each hot loop per instruction set, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define SOFTHIST_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SOFTHIST_CLONES
#endif

namespace softhist::cpu {

using torch::headeronly::ScalarType;

constexpr int kLanes = 32;
// Scatter splits each row into a number of chunks that depends only on the
// sizes, so the order of the floating-point sums (chunk partials merged in
// chunk order) does not depend on the thread count or scheduling.
constexpr int64_t kMinChunk = 32768;
constexpr int64_t kMaxChunks = 256;
constexpr int64_t kPartialBudget = int64_t(1) << 22;  // doubles across all partials
constexpr int64_t kGatherBlock = 8192;

// A short last block (n < kLanes samples left) padded with NaN, which reaches
// no bin, and weight 0, so that loops over a block have a fixed length: x and
// w then point at the copies.
template <typename T>
SOFTHIST_HD void pad_block(int64_t n, const T*& x, const T*& w, T (&x_tail)[kLanes],
                           T (&w_tail)[kLanes]) {
  if (n >= kLanes) return;
  for (int l = 0; l < kLanes; ++l) {
    x_tail[l] = l < n ? x[l] : static_cast<T>(NAN);
    w_tail[l] = l < n && w ? w[l] : T(0);
  }
  x = x_tail;
  w = w ? w_tail : nullptr;
}

// 8 consecutive values of S as one vector (GCC's vector extension), read and
// written at any address of S.
template <typename S>
struct Vec8Type {
  typedef S type __attribute__((vector_size(8 * sizeof(S)), aligned(sizeof(S)), may_alias));
};
template <typename S>
using Vec8Of = typename Vec8Type<S>::type;

// 4 doubles: one AVX2 register.
typedef double Vec4d __attribute__((vector_size(32), aligned(8), may_alias));
typedef float Vec4f __attribute__((vector_size(16), aligned(4), may_alias));

// 8 doubles as two halves of 4, for CPUs without AVX-512. There a
// vector_size(64) of doubles (Vec8Of<double>) is no register: GCC keeps it on
// the stack, and takes its shuffles apart, and copies it, element by element
// through memory, which stalls every load: in an AVX2-only build the float64
// logistic's forward + backward took 5 times as long (14.8x torch.histc
// against 2.9x). Halves stay in registers; with AVX-512, one register of 8
// is faster (halves everywhere cost 15-25%), so the loops over 8 doubles
// take either (has_avx512).
struct Vec8d {
  Vec4d lo, hi;

  SOFTHIST_HD static Vec8d load(const double* p) {
    Vec8d v;
    __builtin_memcpy(&v.lo, p, sizeof v.lo);
    __builtin_memcpy(&v.hi, p + 4, sizeof v.hi);
    return v;
  }
  // 8 floats (or doubles) from p, as doubles.
  SOFTHIST_HD static Vec8d widen(const float* p) {
    Vec4f lo, hi;
    __builtin_memcpy(&lo, p, sizeof lo);
    __builtin_memcpy(&hi, p + 4, sizeof hi);
    return {__builtin_convertvector(lo, Vec4d), __builtin_convertvector(hi, Vec4d)};
  }
  SOFTHIST_HD static Vec8d widen(const double* p) { return load(p); }
  SOFTHIST_HD void store(double* p) const {
    __builtin_memcpy(p, &lo, sizeof lo);
    __builtin_memcpy(p + 4, &hi, sizeof hi);
  }
  SOFTHIST_HD Vec8d& operator+=(const Vec8d& b) {
    lo += b.lo;
    hi += b.hi;
    return *this;
  }
};
SOFTHIST_HD Vec8d operator+(const Vec8d& a, const Vec8d& b) { return {a.lo + b.lo, a.hi + b.hi}; }
SOFTHIST_HD Vec8d operator-(const Vec8d& a, const Vec8d& b) { return {a.lo - b.lo, a.hi - b.hi}; }
SOFTHIST_HD Vec8d operator*(const Vec8d& a, const Vec8d& b) { return {a.lo * b.lo, a.hi * b.hi}; }
SOFTHIST_HD Vec8d operator*(double a, const Vec8d& b) { return {a * b.lo, a * b.hi}; }

// Whether the CPU has AVX-512, for the loops over 8 doubles to take
// Vec8Of<double> (else Vec8d, Vec8d's note) and those over floats 16 lanes
// (else 8): both are compiled into every clone (by a branch, not a lambda,
// which would not be compiled for the clone's ISA), and the check is one
// predictable branch. False off x86, and where the environment sets
// SOFTHIST_EXT_AVX512=0: CI's machine has AVX-512, and so tests the others
// too.
inline bool has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  // (x86-64-v4's features, as target_clones picks its clone by)
  static const bool yes = [] {
    const char* wanted = std::getenv("SOFTHIST_EXT_AVX512");
    return !(wanted && std::string_view(wanted) == "0") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }();
  return yes;
#else
  return false;
#endif
}

// Loads, stores and conversions of 8 values for either type of 8 doubles,
// and for 8 floats.
SOFTHIST_HD void load8(Vec8d& v, const double* p) { v = Vec8d::load(p); }
template <typename S>
SOFTHIST_HD void load8(Vec8Of<S>& v, const S* p) { __builtin_memcpy(&v, p, sizeof v); }
SOFTHIST_HD void store8(double* p, const Vec8d& v) { v.store(p); }
template <typename S>
SOFTHIST_HD void store8(S* p, const Vec8Of<S>& v) { __builtin_memcpy(p, &v, sizeof v); }
template <typename C>
SOFTHIST_HD void widen8(Vec8d& v, const C* p) { v = Vec8d::widen(p); }
template <typename C>
SOFTHIST_HD void widen8(Vec8Of<double>& v, const C* p) {
  Vec8Of<C> c;
  __builtin_memcpy(&c, p, sizeof c);
  v = __builtin_convertvector(c, Vec8Of<double>);
}

// The 4 x 4 block a[k][j] transposed in place (2 rounds of shuffles).
SOFTHIST_HD void transpose4(Vec4d (&a)[4]) {
  const Vec4d t0 = __builtin_shufflevector(a[0], a[1], 0, 4, 2, 6);
  const Vec4d t1 = __builtin_shufflevector(a[0], a[1], 1, 5, 3, 7);
  const Vec4d t2 = __builtin_shufflevector(a[2], a[3], 0, 4, 2, 6);
  const Vec4d t3 = __builtin_shufflevector(a[2], a[3], 1, 5, 3, 7);
  a[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
  a[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
  a[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
  a[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
}

// transpose8 of doubles: four 4 x 4 blocks, the off-diagonal two swapped.
SOFTHIST_HD void transpose8(Vec8d (&r)[8]) {
  Vec4d a[4], b[4], c[4], d[4];  // rows 0-3 and 4-7, columns 0-3 and 4-7
  for (int k = 0; k < 4; ++k) {
    a[k] = r[k].lo;
    b[k] = r[k].hi;
    c[k] = r[k + 4].lo;
    d[k] = r[k + 4].hi;
  }
  transpose4(a);
  transpose4(b);
  transpose4(c);
  transpose4(d);
  for (int j = 0; j < 4; ++j) {
    r[j] = {a[j], c[j]};
    r[j + 4] = {b[j], d[j]};
  }
}

// The 8 x 8 block r[k][j] transposed in place, in registers (3 rounds of
// shuffles), so that r[j] holds the former column j.
template <typename V>
SOFTHIST_HD void transpose8(V (&r)[8]) {
  V t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 2, 10, 4, 12, 6, 14);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      r[i + j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      r[i + j + 2] = __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int j = 0; j < 4; ++j) {
    t[j] = __builtin_shufflevector(r[j], r[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    t[j + 4] = __builtin_shufflevector(r[j], r[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
  for (int j = 0; j < 8; ++j) r[j] = t[j];
}

// 16 floats: one AVX-512 register, lanes l and l + 8's 8 values side by
// side in the loops over rows of 8 (rows_of8_as, chebyshev_sums_as), which
// take sizeof(V) / sizeof(S) lanes per vector V of S: 16 here, else 8.
typedef float Vec16f __attribute__((vector_size(64), aligned(4), may_alias));

// One vector's lanes from p, or to p: load8 and store8's, or 16 floats.
template <typename V, typename S>
SOFTHIST_HD void load_lanes(V& v, const S* p) { load8(v, p); }
SOFTHIST_HD void load_lanes(Vec16f& v, const float* p) { __builtin_memcpy(&v, p, sizeof v); }
template <typename S, typename V>
SOFTHIST_HD void store_lanes(S* p, const V& v) { store8(p, v); }
SOFTHIST_HD void store_lanes(float* p, const Vec16f& v) { __builtin_memcpy(p, &v, sizeof v); }

// r[j] = src[first[l0 + j] + k0 ..][0 .. 8): each lane's 8 values, for
// transpose8; for 16 floats, lane l0 + 8 + j's beside lane l0 + j's.
template <typename V, typename S>
SOFTHIST_HD void load_rows8(V (&r)[8], const S* src, const int32_t* first, int l0, int64_t k0) {
  for (int j = 0; j < 8; ++j) load8(r[j], src + first[l0 + j] + k0);
}
SOFTHIST_HD void load_rows8(Vec16f (&r)[8], const float* src, const int32_t* first, int l0,
                            int64_t k0) {
  for (int j = 0; j < 8; ++j) {
    Vec8Of<float> a, b;
    __builtin_memcpy(&a, src + first[l0 + j] + k0, sizeof a);
    __builtin_memcpy(&b, src + first[l0 + 8 + j] + k0, sizeof b);
    r[j] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }
}

// r[j] = [p_j | p_(j+4) | p_(j+8) | p_(j+12)], 4 floats from each p, then
// each quarter's 4 x 4 block transposed in place: r[k] = value k of p_0 ..
// p_15 (shuffles within 128 bits, 2 rounds).
SOFTHIST_HD void rows_of4_quarters(Vec16f (&r)[4], const float* const (&p)[16]) {
  for (int j = 0; j < 4; ++j) {
    Vec4f a[4];
    for (int q = 0; q < 4; ++q) __builtin_memcpy(&a[q], p[j + 4 * q], sizeof a[q]);
    const Vec8Of<float> lo = __builtin_shufflevector(a[0], a[1], 0, 1, 2, 3, 4, 5, 6, 7);
    const Vec8Of<float> hi = __builtin_shufflevector(a[2], a[3], 0, 1, 2, 3, 4, 5, 6, 7);
    r[j] = __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }
  Vec16f t[4];
  for (int i = 0; i < 4; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28,
                                   13, 29);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27,
                                       14, 30, 15, 31);
  }
  for (int i = 0; i < 2; ++i) {
    r[2 * i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12,
                                       13, 28, 29);
    r[2 * i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26,
                                           27, 14, 15, 30, 31);
  }
}

// transpose8 of each half of 16 floats at once: half as many shuffles per
// lane as two transpose8 of 8.
SOFTHIST_HD void transpose8(Vec16f (&r)[8]) {
  Vec16f t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12,
                                   28, 14, 30);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27,
                                       13, 29, 15, 31);
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      r[i + j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9,
                                         24, 25, 12, 13, 28, 29);
      r[i + j + 2] = __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 18, 19, 6, 7, 22, 23,
                                             10, 11, 26, 27, 14, 15, 30, 31);
    }
  for (int j = 0; j < 4; ++j) {
    t[j] = __builtin_shufflevector(r[j], r[j + 4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24,
                                   25, 26, 27);
    t[j + 4] = __builtin_shufflevector(r[j], r[j + 4], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15,
                                       28, 29, 30, 31);
  }
  for (int j = 0; j < 8; ++j) r[j] = t[j];
}

// rows[k][l] = src[first[l] + k0 + k] for k < 8 and every lane: each lane's 8
// consecutive values loaded as one vector, 8 (or 16) lanes transposed in
// registers (a compiler's gather costs a load and an insert per value). src
// must hold 7 values past every first[l] + k0.
template <typename V, typename S>
SOFTHIST_HD void rows_of8_as(const S* src, const int32_t* first, int64_t k0, S (*rows)[kLanes]) {
  for (int l0 = 0; l0 < kLanes; l0 += static_cast<int>(sizeof(V) / sizeof(S))) {
    V r[8];
    load_rows8(r, src, first, l0, k0);
    transpose8(r);
    for (int k = 0; k < 8; ++k) store_lanes(&rows[k][l0], r[k]);
  }
}
template <typename S>
SOFTHIST_HD void rows_of8(const S* src, const int32_t* first, int64_t k0, S (*rows)[kLanes]) {
  if constexpr (sizeof(S) == 8)
    has_avx512() ? rows_of8_as<Vec8Of<double>>(src, first, k0, rows)
                 : rows_of8_as<Vec8d>(src, first, k0, rows);
  else
    has_avx512() ? rows_of8_as<Vec16f>(src, first, k0, rows)
                 : rows_of8_as<Vec8Of<S>>(src, first, k0, rows);
}

// Window::locate for a block of samples, written without branches so that it
// vectorises: the first edge of each sample's window, kappa * (x - e_first),
// and its scale (its weight, 1 without weights, 0 when it reaches no bin or
// lies past n). OpenEnds is win.open_ends as a compile-time constant, so that
// the loop for closed ends has no compares for it: with open ends, only
// samples inside [min, max] count.
template <bool OpenEnds, typename T>
SOFTHIST_HD void locate_block(const T* x, const T* w, int64_t n, const Window& win,
                              int32_t* first, double* t_first, double* scale) {
  T x_tail[kLanes], w_tail[kLanes];
  pad_block(n, x, w, x_tail, w_tail);
  const double lo = win.lo, inv_width = win.inv_width, c = win.c, reach = win.reach;
  const double hi = static_cast<double>(win.bins) + reach;
  const double last_start = static_cast<double>(win.bins + 1 - win.edges);
  const double in_lo = win.in_lo, in_hi = win.in_hi;
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double xd = static_cast<double>(x[l]);
    double u = (xd - lo) * inv_width;
    bool alive = u >= -reach && u < hi;  // false for NaN
    if constexpr (OpenEnds) alive = alive && xd >= in_lo && xd <= in_hi;
    u = alive ? u : 0.0;
    double start = u - reach;
    start = start > 0 ? start : 0.0;
    start = start < last_start ? start : last_start;
    first[l] = static_cast<int32_t>(start);  // floor: start >= 0; bins < 2^31 (check_bins)
    t_first[l] = c * (u - static_cast<double>(first[l]));
    scale[l] = alive ? (w ? static_cast<double>(w[l]) : 1.0) : 0.0;
  }
}

// v[k * kLanes + l] = K^(Order)(t_first[l] - k * c) for the window's edges k.
template <Kernel K, int Order, typename C>
SOFTHIST_CLONES void window_values(const C* t_first, C c, int64_t edges, C* v) {
  if constexpr (K == Kernel::Logistic) {
    // A window's edges are c apart in t, so e^-(t - k c) = e^-t * e^(k c):
    // one exp per sample, then a product per edge, clamped as cdf clamps t.
    // |t| < saturation + (edges - 1) * c in a window (Window::locate), so
    // every exponent stays within exp_bounded's range when that is small.
    constexpr double kExpRange = sizeof(C) == 8 ? 700.0 : 80.0;
    if (double(Logistic::saturation<C>()) + double(c) * double(edges - 1) < kExpRange) {
      const C e_min = exp_bounded(-Logistic::clamp<C>()), e_max = exp_bounded(Logistic::clamp<C>());
      C e_first[kLanes];
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) e_first[l] = exp_bounded(-t_first[l]);
      const double step = exp_bounded(double(c));
      double growth = 1.0;  // e^(k c), in double: k roundings stay far below C's
      for (int64_t k = 0; k < edges; ++k, growth *= step) {
        const C g = static_cast<C>(growth);
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          C e = e_first[l] * g;
          e = e > e_min ? e : e_min;
          e = e < e_max ? e : e_max;
          v[k * kLanes + l] = Logistic::from_exp<Order>(e);
        }
      }
      return;
    }
  }
  for (int64_t k = 0; k < edges; ++k) {
    const C shift = c * static_cast<C>(k);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) v[k * kLanes + l] = cdf<K, Order>(t_first[l] - shift);
  }
}

// Window values (as window_values lays them out) at the open ends of the
// range: edge 0 is the first edge of a window starting there, edge `bins` the
// last edge of one ending there (Window::at_edge's values, as selects so that
// the loop vectorises).
template <typename C>
SOFTHIST_HD void open_window_ends(const Window& win, int order, const int32_t* first, C* v) {
  const int64_t last = (win.edges - 1) * kLanes;
  const int32_t last_start = static_cast<int32_t>(win.bins + 1 - win.edges);
  const C at_lo = win.at_edge(0, order, C(0));
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    v[l] = first[l] == 0 ? at_lo : v[l];
    v[last + l] = first[l] == last_start ? C(0) : v[last + l];
  }
}

template <typename C>
using ValuesFn = void (*)(const C*, C, int64_t, C*);

// window_values for a kernel and order chosen at run time.
template <typename C>
ValuesFn<C> values_fn(Kernel kernel, int64_t order) {
  ValuesFn<C> fn = nullptr;
  dispatch_smooth(kernel, order, [&](auto k, auto o) {
    fn = &window_values<decltype(k)::value, decltype(o)::value, C>;
  });
  return fn;
}

// A histogram too large for memory: an error that says what could not be
// allocated, its size and the fix (not a bare std::bad_alloc or the
// dispatcher's message).
[[noreturn]] inline void fail_too_large(const char* what, double bytes) {
  fail("softhist: out of memory for the histogram's ", what, " (", bytes / 1e9,
       " GB); use fewer bins or rows");
}

// Chunks per row for scatter: enough to keep every thread busy, few enough
// that the partial histograms (`size` doubles each) stay within kPartialBudget.
inline int64_t chunks_per_row(int64_t n, int64_t rows, int64_t size) {
  return std::max<int64_t>(
      1, std::min({n / std::max(kMinChunk, 2 * size), kMaxChunks,
                   kPartialBudget / (size * std::max<int64_t>(rows, 1))}));
}

}  // namespace softhist::cpu
