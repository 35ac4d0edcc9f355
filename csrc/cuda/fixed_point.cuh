// Order-independent sums for the scatter kernels: contributions rounded to 64-bit
// fixed point and added with integer atomics give the same sum in any order, so
// results are bitwise reproducible. Non-finite contributions, which fixed point
// cannot hold, are kept as flags per bin instead.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace softhist::cuda {

// Non-finite contributions (from non-finite weights) a bin received.
constexpr unsigned kNaN = 1, kPlusInf = 2, kMinusInf = 4;

// Values as integer multiples of 2^-shift, shift chosen from a bound on a
// bin's sum over `samples` contributions of at most max_weight * 2^log2_max_d
// each, kept below 2^62.
struct FixedPoint {
  int shift;
  double scale;  // 2^shift

  __device__ FixedPoint(double max_weight, int64_t samples, int log2_max_d) {
    const int weight_bits = max_weight > 0 ? ilogb(max_weight) + 1 : 0;  // < 2^weight_bits
    const int sample_bits = 64 - __clzll(samples);  // samples < 2^sample_bits
    shift = min(62 - (weight_bits + log2_max_d + sample_bits), 1023);
    scale = ldexp(1.0, shift);
  }
  __device__ long long quantise(double v) const { return __double2ll_rn(v * scale); }
  __device__ double value(unsigned long long q) const {
    return ldexp(static_cast<double>(static_cast<long long>(q)), -shift);
  }
};

// v in fixed point, or 0 with v's kind recorded in *flag when v is not finite.
__device__ __forceinline__ long long quantise_or_flag(const FixedPoint& fixed, double v,
                                                      unsigned* flag) {
  if (isfinite(v)) return fixed.quantise(v);
  atomicOr(flag, isnan(v) ? kNaN : v > 0 ? kPlusInf : kMinusInf);
  return 0;
}

// A bin's sum with the non-finite contributions it received: NaN for a NaN or
// for both infinities, as float addition would give.
__device__ __forceinline__ double with_nonfinite(double sum, unsigned flags) {
  if (flags == 0) return sum;
  if ((flags & kNaN) || (flags & kPlusInf && flags & kMinusInf)) return NAN;
  return flags & kPlusInf ? INFINITY : -INFINITY;
}

// `count` 64-bit counters in shared memory, each as two 32-bit words: 32-bit
// atomic adds are native there, 64-bit ones a compare-and-swap loop. The low
// word's wrap-arounds carry into the high word, so a pair ends up holding the
// exact 64-bit sum (mod 2^64, so negative values work) whatever the order of
// the additions. Low words first, then high words, so that consecutive
// counters fall in consecutive banks.
struct SharedCounters {
  unsigned* words;  // 2 * count
  int64_t count;

  __device__ void add(int64_t slot, long long q) const {
    if (q == 0) return;
    const auto bits = static_cast<unsigned long long>(q);
    const auto low = static_cast<unsigned>(bits);
    const unsigned old = atomicAdd(words + slot, low);
    const unsigned high = static_cast<unsigned>(bits >> 32) + (old + low < old ? 1u : 0u);
    if (high != 0) atomicAdd(words + count + slot, high);
  }
  __device__ unsigned long long get(int64_t slot) const {
    return static_cast<unsigned long long>(words[count + slot]) << 32 | words[slot];
  }
};

}  // namespace softhist::cuda
