// mhcjit templates: aggregate (F_pre, SPEC.md section 4), forward and backward.
// y[m][c] = sum_j pre[m][j] * x[m][j][c]; bwd: dx = dy * pre[j], dpre[j] = sum_c dy * x[j].
#pragma once

#include "mhc_streams.cuh"

namespace mhc {

/// Forward: every (token, column chunk) is independent.
template <int kN, int kC, typename T, Layout kLayout, int kThreads, int kVec, int kPtrAlign>
__global__ void __launch_bounds__(kThreads) aggregate_fwd(const __grid_constant__ AggregateFwdArgs args) {
  static_assert(kN >= 1 && kN <= 8, "n must be in 1..8");
  static_assert(kVec >= 1 && kVec * sizeof(T) <= 16, "one 16-byte access per stream at most");
  for_each_chunk<kC, kVec, kThreads>(args.M, [&](i64 m, int c0, int count) {
    float w[kN], xv[kN][kVec], acc[kVec];
#pragma unroll
    for (int j = 0; j < kN; ++j)
      w[j] = args.pre[m * kN + j];
    load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const T *>(args.x), m, c0, count, xv);
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      acc[i] = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j)
        acc[i] = fmaf(w[j], xv[j][i], acc[i]);
    }
    store_row<kC, kVec, kPtrAlign>(static_cast<T *>(args.y) + m * kC, c0, count, acc);
  });
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
      float g[kVec], xv[kN][kVec], dxv[kN][kVec];
      load_row<kC, kVec, kPtrAlign>(dy + m * kC, c0, count, g);
      load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(x, m, c0, count, xv);
#pragma unroll
      for (int j = 0; j < kN; ++j)
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          part[j] = fmaf(g[i], xv[j][i], part[j]);
          dxv[j][i] = g[i] * w[j];
        }
      write_dx<kAccumulate, kN, kC, kLayout, kVec, kPtrAlign, T>(args.dx, m, c0, count, dxv);
    }
    block_sum_to_thread0<kThreads, kN>(part, scratch);
    if (threadIdx.x == 0)
#pragma unroll
      for (int j = 0; j < kN; ++j)
        args.dpre[m * kN + j] = part[j];
  }
}

} // namespace mhc
