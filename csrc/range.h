// Range resolution, one definition for every device: the host runs it for
// the CPU and for explicit ranges, CUDA kernels for a range taken from data
// on the device (so that it never needs a host sync). Plain C++, no torch types.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace softhist {

// What resolution needs besides the data's range, after the host's checks.
struct RangeArgs {
  double min, max;   // the range asked for; min == max: take the data's
  int64_t bins;
  bool has_kappa;
  double kappa;      // kappa if given, else the default kappa * bin width
  bool open_ends;
};

// The narrowest bin taken: 1 / width and the default kappa (at most 8 / width)
// stay finite (a subnormal width would make them infinite, and every mass 0).
inline constexpr double kMinBinWidth = 0x1p-1020;

// The sharpest kernel taken, kappa * bin width: past it the kernel is the
// hard one to within rounding, and float math (kappa^3 in a double backward)
// would overflow.
inline constexpr double kMaxSharpness = 1e12;

// Whether [lo, hi] splits into bins of `width` whose edges are representable:
// an explicit range must (the host checks), one from the data is widened.
SOFTHIST_HD bool splittable(double lo, double hi, double width) {
  return width >= kMinBinWidth && lo + width > lo && hi - width < hi;  // false for NaN
}

// Writes params [lo, hi, kappa, open] from the finite samples' range
// [data_lo, data_hi] (empty: data_lo > data_hi). An explicit range is kept
// (the host has checked it). A range from the data follows torch.histc (a
// point is widened by 1 on each side); where it can't be split into `bins`
// representable bins, torch.histc still counts, so it is widened rather than
// refused: clipped to +-2^1022 when its span overflows, and widened about its
// midpoint to bins of 2^-50 of its magnitude (at least kMinBinWidth) when
// they are too narrow. Returns false where a given kappa is sharper than
// kMaxSharpness over the data's bins: the host raises; a device, which can't,
// caps it there (the values are the hard kernel's to within rounding either way).
SOFTHIST_HD bool resolve_range(const RangeArgs& a, double data_lo, double data_hi, double* out) {
  double lo = a.min, hi = a.max;
  if (lo == hi) {
    if (data_lo <= data_hi) {
      lo = data_lo;
      hi = data_hi;
    }
    if (lo == hi) {
      lo -= 1;
      hi += 1;
    }
    const double bins = static_cast<double>(a.bins);
    const double span = (hi - lo) / bins;
    if (!(span - span == 0)) {  // not finite
      lo = lo > -0x1p1022 ? lo : -0x1p1022;
      hi = hi < 0x1p1022 ? hi : 0x1p1022;
    }
    const double width = (hi - lo) / bins;
    if (!splittable(lo, hi, width)) {
      const double magnitude = (lo < 0 ? -lo : lo) > (hi < 0 ? -hi : hi) ? (lo < 0 ? -lo : lo)
                                                                          : (hi < 0 ? -hi : hi);
      const double step = magnitude * 0x1p-50 > kMinBinWidth ? magnitude * 0x1p-50 : kMinBinWidth;
#if defined(__CUDA_ARCH__)  // (no multiply-adds: the host's rounding)
      const double mid = __dadd_rn(0.5 * lo, 0.5 * hi), half = __dmul_rn(0.5 * bins, step);
#else
      const double mid = 0.5 * lo + 0.5 * hi, half = 0.5 * bins * step;
#endif
      lo = mid - half;
      hi = mid + half;
    }
  }
  const double width = (hi - lo) / static_cast<double>(a.bins);
  const bool sharp = a.has_kappa && a.kappa * width > kMaxSharpness;
  out[0] = lo;
  out[1] = hi;
  out[2] = !a.has_kappa ? a.kappa * static_cast<double>(a.bins) / (hi - lo)
           : sharp      ? kMaxSharpness / width
                        : a.kappa;
  out[3] = a.open_ends ? 1.0 : 0.0;
  return !sharp;
}

}  // namespace softhist
