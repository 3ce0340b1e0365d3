// mhcjit templates: the block boundaries (SPEC.md section 6). expand: x[j][c] = y[c], backward
// dy = sum_j dx[j]; contract: y = (1/n) sum_j x[j], backward dx[j] = dy / n.
#pragma once

#include "mhc_streams.cuh"

namespace mhc {

template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign>
__global__ void __launch_bounds__(kThreads) expand_fwd(const __grid_constant__ StreamMapArgs args) {
  for_each_chunk<kC, kVec, kThreads>(args.M, [&](i64 m, int c0, int count) {
    float v[kVec], xv[kN][kVec];
    load_row<kC, kVec, kPtrAlign>(static_cast<const T *>(args.in) + m * kC, c0, count, v);
#pragma unroll
    for (int j = 0; j < kN; ++j)
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        xv[j][i] = v[i];
    store_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<T *>(args.out), m, c0, count, xv);
  });
}

template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign>
__global__ void __launch_bounds__(kThreads) expand_bwd(const __grid_constant__ StreamMapArgs args) {
  for_each_chunk<kC, kVec, kThreads>(args.M, [&](i64 m, int c0, int count) {
    float xv[kN][kVec], v[kVec];
    load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const T *>(args.in), m, c0, count, xv);
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      v[i] = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j)
        v[i] += xv[j][i];
    }
    store_row<kC, kVec, kPtrAlign>(static_cast<T *>(args.out) + m * kC, c0, count, v);
  });
}

template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign>
__global__ void __launch_bounds__(kThreads) contract_fwd(const __grid_constant__ StreamMapArgs args) {
  for_each_chunk<kC, kVec, kThreads>(args.M, [&](i64 m, int c0, int count) {
    float xv[kN][kVec], v[kVec];
    load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const T *>(args.in), m, c0, count, xv);
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      float s = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j)
        s += xv[j][i];
      v[i] = s / float(kN);
    }
    store_row<kC, kVec, kPtrAlign>(static_cast<T *>(args.out) + m * kC, c0, count, v);
  });
}

template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign, bool kAccumulate>
__global__ void __launch_bounds__(kThreads) contract_bwd(const __grid_constant__ StreamMapArgs args) {
  for_each_chunk<kC, kVec, kThreads>(args.M, [&](i64 m, int c0, int count) {
    float v[kVec], xv[kN][kVec];
    load_row<kC, kVec, kPtrAlign>(static_cast<const T *>(args.in) + m * kC, c0, count, v);
#pragma unroll
    for (int j = 0; j < kN; ++j)
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        xv[j][i] = v[i] / float(kN);
    write_dx<kAccumulate, kN, kC, kLayout, kVec, kPtrAlign, T>(args.out, m, c0, count, xv);
  });
}

} // namespace mhc
