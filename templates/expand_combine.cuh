// mhcjit templates: expand_combine (F_post, SPEC.md section 5), forward and backward.
// x'[j][c] = post[j] (f[c] + bias[c]) + sum_i res[i][j] x[i][c]: res is contracted over its FIRST index.
#pragma once

#include "mhc_streams.cuh"

namespace mhc {

/// f[c] + bias[c] for one chunk (bias absent: f alone); bias is stored as P.
template <int kC, int kVec, int kPtrAlign, bool kHasBias, typename P, typename T>
__device__ __forceinline__ void load_f_plus_bias(const T *f_row, const void *bias, int c0, int count, float (&fb)[kVec]) {
  load_row<kC, kVec, kPtrAlign>(f_row, c0, count, fb);
  if constexpr (kHasBias) {
    float b[kVec];
    load_row<kC, kVec, kPtrAlign>(static_cast<const P *>(bias), c0, count, b);
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      fb[i] += b[i];
  }
}

/// Forward. A warp takes kRep * 32 chunks of one token (for_each_warp_span): a lane loads f and x
/// of all its kRep chunks before it combines any, and the token's post and res once.
template <int kN, int kC, typename T, typename P, Layout kLayout, int kThreads, int kVec, int kPtrAlign, bool kHasBias,
          int kRep>
__global__ void __launch_bounds__(kThreads) expand_combine_fwd(const __grid_constant__ ExpandCombineFwdArgs args) {
  static_assert(kN >= 1 && kN <= 8, "n must be in 1..8");
  static_assert(kRep == 1 || kRep == 2 || kRep == 4, "1, 2 or 4 chunks a lane");
  for_each_warp_span<kC, kVec, kThreads, kRep>(args.M, [&](i64 m, int first) {
    float fb[kRep][kVec], xv[kRep][kN][kVec];
    int c0[kRep], count[kRep];
#pragma unroll
    for (int r = 0; r < kRep; ++r) {
      count[r] = span_chunk<kC, kVec, kRep>(first, r, c0[r]);
      if (count[r] > 0) {
        load_f_plus_bias<kC, kVec, kPtrAlign, kHasBias, P>(static_cast<const T *>(args.f) + m * kC, args.bias, c0[r],
                                                           count[r], fb[r]);
        load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const T *>(args.x), m, c0[r], count[r], xv[r]);
      }
    }
    float post[kN], res[kN * kN];
    load_mix_row<kN, kPtrAlign>(args.post, m, post);
    load_mix_row<kN * kN, kPtrAlign>(args.res, m, res);
#pragma unroll
    for (int r = 0; r < kRep; ++r) {
      if (count[r] == 0)
        continue;
      float out[kN][kVec];
#pragma unroll
      for (int j = 0; j < kN; ++j) {
#pragma unroll
        for (int i = 0; i < kVec; ++i)
          out[j][i] = post[j] * fb[r][i];
#pragma unroll
        for (int s = 0; s < kN; ++s) {
          const float w = res[s * kN + j]; // res[s][j]: first index contracted with x[s]
#pragma unroll
          for (int i = 0; i < kVec; ++i)
            out[j][i] = fmaf(w, xv[r][s][i], out[j][i]);
        }
      }
      store_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<T *>(args.out), m, c0[r], count[r], out);
    }
  });
}

/// Backward. A block walks one token at a time; each thread owns the same column chunks for every
/// token, so its dbias partial stays in registers and the block writes one partial row of C.
/// dpost (n) and dres (n*n) are per-token sums over C, finished by a fixed-order block sum.
template <int kN, int kC, typename T, typename P, Layout kLayout, int kThreads, int kVec, int kPtrAlign, bool kHasBias, bool kAccumulate>
__global__ void __launch_bounds__(kThreads) expand_combine_bwd(const __grid_constant__ ExpandCombineBwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  static_assert(kN >= 1 && kN <= 8, "n must be in 1..8");
  constexpr int kChunks = (kC + kVec - 1) / kVec;
  constexpr int kPerThread = (kChunks + kThreads - 1) / kThreads;
  constexpr int kSums = kN + kN * kN; // dpost[j], then dres[i][j]
  __shared__ float scratch[kThreads / 32 * kSums];
  float dbias[kHasBias ? kPerThread : 1][kVec];
#pragma unroll
  for (int q = 0; q < (kHasBias ? kPerThread : 1); ++q)
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      dbias[q][i] = 0.0f;
  for (i64 m = blockIdx.x; m < args.M; m += gridDim.x) {
    float post[kN], res[kN][kN], part[kSums];
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      post[j] = args.post[m * kN + j];
#pragma unroll
      for (int s = 0; s < kN; ++s)
        res[s][j] = args.res[(m * kN + s) * kN + j];
    }
#pragma unroll
    for (int p = 0; p < kSums; ++p)
      part[p] = 0.0f;
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      const int chunk = threadIdx.x + q * kThreads;
      if (chunk < kChunks) {
        const int c0 = chunk * kVec;
        const int count = cmin(kVec, kC - c0);
        float g[kN][kVec], xv[kN][kVec], fb[kVec], df[kVec], dx[kN][kVec];
        load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const T *>(args.dout), m, c0, count, g);
        load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const T *>(args.x), m, c0, count, xv);
        load_f_plus_bias<kC, kVec, kPtrAlign, kHasBias, P>(static_cast<const T *>(args.f) + m * kC, args.bias, c0, count, fb);
#pragma unroll
        for (int i = 0; i < kVec; ++i) {
          df[i] = 0.0f;
#pragma unroll
          for (int j = 0; j < kN; ++j)
            df[i] = fmaf(g[j][i], post[j], df[i]);
          if constexpr (kHasBias)
            dbias[q][i] += df[i];
        }
        store_row<kC, kVec, kPtrAlign>(static_cast<T *>(args.df) + m * kC, c0, count, df);
#pragma unroll
        for (int j = 0; j < kN; ++j)
#pragma unroll
          for (int i = 0; i < kVec; ++i)
            part[j] = fmaf(g[j][i], fb[i], part[j]);
#pragma unroll
        for (int s = 0; s < kN; ++s)
#pragma unroll
          for (int j = 0; j < kN; ++j)
#pragma unroll
            for (int i = 0; i < kVec; ++i)
              part[kN + s * kN + j] = fmaf(xv[s][i], g[j][i], part[kN + s * kN + j]);
#pragma unroll
        for (int s = 0; s < kN; ++s)
#pragma unroll
          for (int i = 0; i < kVec; ++i) {
            float v = 0.0f;
#pragma unroll
            for (int j = 0; j < kN; ++j)
              v = fmaf(res[s][j], g[j][i], v);
            dx[s][i] = v;
          }
        write_dx<kAccumulate, kN, kC, kLayout, kVec, kPtrAlign, T>(args.dx, m, c0, count, dx);
      }
    }
    block_sum_to_thread0<kThreads, kSums>(part, scratch);
    if (threadIdx.x == 0) {
#pragma unroll
      for (int j = 0; j < kN; ++j)
        args.dpost[m * kN + j] = part[j];
#pragma unroll
      for (int p = 0; p < kN * kN; ++p)
        args.dres[m * kN * kN + p] = part[kN + p];
    }
  }
  if constexpr (kHasBias) {
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      const int chunk = threadIdx.x + q * kThreads;
      if (chunk < kChunks) {
        const int c0 = chunk * kVec;
        store_row<kC, kVec, kPtrAlign>(args.dbias_part + i64(blockIdx.x) * kC, c0, cmin(kVec, kC - c0), dbias[q]);
      }
    }
  }
}

} // namespace mhc
