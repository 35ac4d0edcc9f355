// A block's windows added into histogram rows, as vectors of 4 or 8 bins
// made and transposed in registers, each lane into its own copy of the row
// (LaneSums); and the rows read back against the windows (gather_rows).
#pragma once

#include <array>
#include <vector>

#include "common.h"

namespace softhist::cpu {
namespace {

// A 1-d chunk's sums. Consecutive samples' windows overlap, and adding into
// the same bins in turn waits on store forwarding, so the samples of lane l
// add into copy l % kCopies of the histogram, and the copies into acc in order
// at the end (where that costs little next to the samples). (The joint
// scatter's rows are whole vectors; copies measured no faster there.)
class LaneSums {
 public:
  static constexpr int kCopies = 4;

  LaneSums(double* acc, int64_t size, int64_t n)
      : acc_(acc), size_(size), stride_(stride_of(size)),
        copies_(kCopies * size <= n ? kCopies : 1),
        sums_(static_cast<size_t>(copies_ > 1 ? copies_ * stride_ : 0)) {}

  // Where lane l adds.
  double* lane(int l) { return copies_ > 1 ? sums_.data() + l % kCopies * stride_ : acc_; }
  // Where lanes l add, by l % kCopies.
  std::array<double*, kCopies> copies() {
    std::array<double*, kCopies> out;
    for (int j = 0; j < kCopies; ++j) out[j] = lane(j);
    return out;
  }

  // After the chunk's samples: the copies into acc, in order.
  void add_copies() const {
    if (copies_ > 1)
      for (int64_t b = 0; b < size_; ++b)
        for (int j = 0; j < kCopies; ++j) acc_[b] += sums_[j * stride_ + b];
  }

 private:
  // Copies 1088 bytes past a multiple of 4 KB apart (2176 and 3264 for the
  // others): never near a multiple of 4 KB, where loads would wait on another
  // copy's stores to the same low address bits (4K aliasing).
  static int64_t stride_of(int64_t size) { return (size + 511) / 512 * 512 + 136; }

  double* acc_;
  int64_t size_, stride_;
  int copies_;
  std::vector<double> sums_;
};

// A window of at most Len bins (the compact kernels at their default kappa)
// is added to the histogram as one vector of Len doubles, zeros past its end:
// a few wide adds per sample rather than a scalar loop. Len is 4 or 8, the
// shortest that holds the window (8 for 3 bins measured 30% slower). Longer
// windows are added as vectors of 8, 8 bins at a time (add_windows). The
// histogram is padded by 7 bins for that (Layout's pad).
constexpr int64_t kShortMax = 8;
template <int Len>
struct ShortVecOf {
  typedef double type __attribute__((vector_size(Len * sizeof(double)), aligned(8), may_alias));
};

// dst[0 .. vector length) += v. Through memcpy, not a vector-typed store:
// windows at nearby first bins overlap in part, and GCC assumes that two
// objects of one type never do (on AVX2 it split an add of 8 doubles into halves and
// moved one window's load above another's overlapping store, losing a bin).
template <typename V>
SOFTHIST_HD void add_at(double* dst, const V& v) {
  V sum;
  __builtin_memcpy(&sum, dst, sizeof sum);
  sum += v;
  __builtin_memcpy(dst, &sum, sizeof sum);
}

// dst[0 .. Len) += v's first Len (4 or 8), for either type of 8 doubles.
template <int Len>
SOFTHIST_HD void add_first(double* dst, const Vec8d& v) {
  add_at(dst, v.lo);
  if constexpr (Len == 8) add_at(dst + 4, v.hi);
}
template <int Len>
SOFTHIST_HD void add_first(double* dst, const Vec8Of<double>& v) {
  if constexpr (Len == 4)
    add_at(dst, __builtin_shufflevector(v, v, 0, 1, 2, 3));
  else
    add_at(dst, v);
}

// Whether a block's scales hold a NaN or infinite weight.
SOFTHIST_HD bool nonfinite_scale(const double* scale) {
  double probe = 0;
#pragma omp simd reduction(+ : probe)
  for (int l = 0; l < kLanes; ++l) probe += scale[l] * 0.0;
  return probe != probe;
}

// r[k][j] = lane l0 + j's value k: transposed in registers, and each lane's
// values added as one vector of Len (4 or 8) at its first bin + k0, in its
// copy (dst: LaneSums::copies).
template <int Len, typename V>
SOFTHIST_HD void add_transposed(V (&r)[8], const int32_t* first, int l0, int64_t k0,
                                const std::array<double*, LaneSums::kCopies>& dst) {
  transpose8(r);
  for (int j = 0; j < 8; ++j)  // (samples that reach no bin add zeros)
    add_first<Len>(dst[(l0 + j) % LaneSums::kCopies] + first[l0 + j] + k0, r[j]);
}

// add_windows's adds for finite scales, each sample's as vectors of Len: each
// 8 lanes' masses, 8 bins at a time, made and transposed in registers.
template <int Len, bool Edges, typename V, typename C>
SOFTHIST_HD void add_window_vectors_as(const C* v, int64_t span, const int32_t* first,
                                       const double* scale, LaneSums& sums) {
  const int64_t rows = Edges ? span : span + 1;
  const std::array<double*, LaneSums::kCopies> dst = sums.copies();
  for (int64_t k0 = 0; k0 < span; k0 += 8)
    for (int l0 = 0; l0 < kLanes; l0 += 8) {
      V s, c[9], r[8];  // c: v's rows k0 .. k0 + 8, lanes l0 .. l0 + 7, as doubles
      load8(s, scale + l0);
      for (int k = 0; k < 9; ++k) {
        c[k] = V{};
        if (k0 + k < rows) widen8(c[k], v + (k0 + k) * kLanes + l0);
      }
      for (int k = 0; k < 8; ++k)
        r[k] = k0 + k >= span ? V{} : Edges ? s * c[k] : s * (c[k] - c[k + 1]);
      add_transposed<Len>(r, first, l0, k0, dst);
    }
}
template <int Len, bool Edges, typename C>
SOFTHIST_HD void add_window_vectors(const C* v, int64_t span, const int32_t* first,
                                    const double* scale, LaneSums& sums) {
  has_avx512() ? add_window_vectors_as<Len, Edges, Vec8Of<double>>(v, span, first, scale, sums)
               : add_window_vectors_as<Len, Edges, Vec8d>(v, span, first, scale, sums);
}

// A block's windows of `edges` values v into the bins at first: their
// differences (bin masses), or with Edges the values themselves (edge sums),
// times scale. Each sample adds 8 consecutive bins (4 for windows of up to 4)
// as one vector, zeros past its window (add_window_vectors). A block with a
// NaN or infinite weight adds its masses one by one (weighted_mass: such a
// weight times a zero past the kernel's support or cut would reach that bin).
template <bool Edges, typename C>
SOFTHIST_CLONES void add_windows(const C* v, int64_t edges, const int32_t* first,
                                 const double* scale, LaneSums& sums) {
  const int64_t span = Edges ? edges : edges - 1;
  if (!nonfinite_scale(scale)) {
    if (span <= 4) return add_window_vectors<4, Edges>(v, span, first, scale, sums);
    return add_window_vectors<8, Edges>(v, span, first, scale, sums);
  }
  for (int l = 0; l < kLanes; ++l) {
    if (scale[l] == 0) continue;
    double* a = sums.lane(l) + first[l];
    const C* vl = v + l;
    for (int64_t k = 0; k < span; ++k) {
      const double mass = static_cast<double>(vl[k * kLanes]) -
                          (Edges ? 0.0 : static_cast<double>(vl[(k + 1) * kLanes]));
      a[k] += weighted_mass(scale[l], mass);
    }
  }
}

// acc[l] += sum_k h[first[l] + k] * (v_k - v_(k+1)) over the window (the
// bin masses), or with Edges sum_k h[first[l] + k] * v_k (edge values). h's
// rows are padded by 7 (padded_rows), for rows_of8.
template <bool Edges, typename C>
SOFTHIST_CLONES void gather_rows(const C* v, int64_t edges, const int32_t* first, const C* h,
                                 C* acc) {
  const int64_t span = Edges ? edges : edges - 1;
  alignas(64) C hk[8][kLanes];
  for (int64_t k0 = 0; k0 < span; k0 += 8) {
    rows_of8(h, first, k0, hk);
    for (int64_t k = k0; k < std::min(k0 + 8, span); ++k)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l)
        acc[l] += hk[k - k0][l] * (v[k * kLanes + l] - (Edges ? C(0) : v[(k + 1) * kLanes + l]));
  }
}

}  // namespace
}  // namespace softhist::cpu
