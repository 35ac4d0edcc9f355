// The hard kernel on any number of axes: each sample's bin, as torch.histc
// finds it, counted or read.
#pragma once

#include <array>

#include "layout.h"

namespace softhist::cpu {
namespace {

// The hard kernel: exact counts, as torch.histc counts each coordinate.
template <int D, typename T>
bool hard_offset(const std::array<const T*, D>& x, int64_t i, const Window* win,
                 const Layout<D>& lay, int64_t& offset) {
  offset = 0;
  for (int a = 0; a < D; ++a) {
    int64_t b;
    if (!win[a].template bin_of<T>(static_cast<double>(x[a][i]), b)) return false;
    offset += b * lay.stride[a];
  }
  return true;
}

template <int D, typename T>
void scatter_chunk_hard(const std::array<const T*, D>& x, const T* w, int64_t n,
                        const Window* win, const Layout<D>& lay, double* acc) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t o;
    if (hard_offset<D>(x, i, win, lay, o)) acc[o] += w ? static_cast<double>(w[i]) : 1.0;
  }
}

template <int D, typename T, typename C>
void gather_chunk_hard(const std::array<const T*, D>& x, const C* h, int64_t n,
                       const Window* win, const Layout<D>& lay, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t o;
    out[i] = static_cast<T>(hard_offset<D>(x, i, win, lay, o) ? h[o] : C(0));
  }
}

}  // namespace
}  // namespace softhist::cpu
