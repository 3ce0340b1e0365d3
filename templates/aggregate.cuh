// mhcjit templates: aggregate (F_pre, SPEC.md section 4), forward and backward.
// y[m][c] = sum_j pre[m][j] * x[m][j][c]; bwd: dx = dy * pre[j], dpre[j] = sum_c dy * x[j].
#pragma once

#include "mhc_streams.cuh"

namespace mhc {

/// Forward. Work item = (token m, column chunk); a grid-stride loop covers M * ceil(C/kVec) items,
/// so any M fits in a small persistent grid (no 65535 limit).
/// Example (kC = 7168, kVec = 8): 896 chunks per token; item 1000 -> m = 1, c0 = (1000-896)*8 = 832.
template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign>
__global__ void __launch_bounds__(kThreads) aggregate_fwd(const __grid_constant__ AggregateFwdArgs args) {
  static_assert(kN >= 1 && kN <= 8, "n must be in 1..8");
  static_assert(kVec >= 1 && kVec * sizeof(T) <= 16, "one 16-byte access per stream at most");
  constexpr int kChunks = (kC + kVec - 1) / kVec;
  const T *x = static_cast<const T *>(args.x);
  T *y = static_cast<T *>(args.y);
  const i64 total = args.M * kChunks;
  for (i64 item = i64(blockIdx.x) * kThreads + threadIdx.x; item < total; item += i64(gridDim.x) * kThreads) {
    const i64 m = item / kChunks;
    const int c0 = int(item - m * kChunks) * kVec;
    const int count = cmin(kVec, kC - c0);
    float w[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j)
      w[j] = args.pre[m * kN + j];
    float xv[kN][kVec];
    if (kC % kVec == 0 || count == kVec)
      load_streams<kN, kC, kLayout, kVec, kPtrAlign>(x, m, c0, xv);
    else
      load_streams_tail<kN, kC, kLayout, kVec>(x, m, c0, count, xv);
    float acc[kVec];
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      acc[i] = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j)
        acc[i] = fmaf(w[j], xv[j][i], acc[i]);
    }
    store_row<kC, kVec, kPtrAlign>(y + m * kC, c0, count, acc);
  }
}

/// Backward. One block per token at a time (grid-stride over tokens): threads walk the column
/// chunks, write dx, and keep partial dpre[j] in registers; a fixed-order block sum finishes dpre.
/// The split of the C reduction depends only on (kC, kThreads, kVec), never on M.
template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign, bool kAccumulate>
__global__ void __launch_bounds__(kThreads) aggregate_bwd(const __grid_constant__ AggregateBwdArgs args) {
  static_assert(kN >= 1 && kN <= 8, "n must be in 1..8");
  static_assert(kVec >= 1 && kVec * sizeof(T) <= 16, "one 16-byte access per stream at most");
  constexpr int kChunks = (kC + kVec - 1) / kVec;
  __shared__ float scratch[kThreads / 32 * kN];
  const T *dy = static_cast<const T *>(args.dy);
  const T *x = static_cast<const T *>(args.x);
  for (i64 m = blockIdx.x; m < args.M; m += gridDim.x) {
    float w[kN], part[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      w[j] = args.pre[m * kN + j];
      part[j] = 0.0f;
    }
    for (int chunk = threadIdx.x; chunk < kChunks; chunk += kThreads) {
      const int c0 = chunk * kVec;
      const int count = cmin(kVec, kC - c0);
      const bool full = kC % kVec == 0 || count == kVec;
      float g[kVec], xv[kN][kVec], dxv[kN][kVec];
      load_row<kC, kVec, kPtrAlign>(dy + m * kC, c0, count, g);
      if (full)
        load_streams<kN, kC, kLayout, kVec, kPtrAlign>(x, m, c0, xv);
      else
        load_streams_tail<kN, kC, kLayout, kVec>(x, m, c0, count, xv);
      if constexpr (kAccumulate) {
        float *dx = static_cast<float *>(args.dx);
        if (full)
          load_streams<kN, kC, kLayout, kVec, kPtrAlign>(dx, m, c0, dxv);
        else
          load_streams_tail<kN, kC, kLayout, kVec>(dx, m, c0, count, dxv);
      }
#pragma unroll
      for (int j = 0; j < kN; ++j)
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          part[j] = fmaf(g[i], xv[j][i], part[j]);
          dxv[j][i] = kAccumulate ? fmaf(g[i], w[j], dxv[j][i]) : g[i] * w[j];
        }
      using DxT = typename Select<kAccumulate, float, T>::type;
      DxT *dx = static_cast<DxT *>(args.dx);
      if (full)
        store_streams<kN, kC, kLayout, kVec, kPtrAlign>(dx, m, c0, dxv);
      else
        store_streams_tail<kN, kC, kLayout, kVec>(dx, m, c0, count, dxv);
    }
    block_sum_to_thread0<kThreads, kN>(part, scratch);
    if (threadIdx.x == 0)
#pragma unroll
      for (int j = 0; j < kN; ++j)
        args.dpre[m * kN + j] = part[j];
  }
}

} // namespace mhc
