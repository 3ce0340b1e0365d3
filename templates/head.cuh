// mhcjit templates: head (SPEC.md section 6), the learned contraction before the final norm:
// u = x w^T, r = 1/sqrt(ms + rms_eps), wgt = sigmoid(u r scale + base) + pre_eps, y = sum_j wgt[j] x[j].
#pragma once

#include "mhc_streams.cuh"

namespace mhc {

/// Stream j and column c of the flattened index k (the layout's). Example: n = 4, C = 7168,
/// k = 13: sbcn -> (j, c) = (1, 3); sbnc -> (0, 13).
template <int kN, int kC, Layout kLayout>
__device__ __forceinline__ void split_k(int k, int &j, int &c) {
  if constexpr (kLayout == Layout::kSbcn) {
    j = k % kN;
    c = k / kN;
  } else {
    j = k / kC;
    c = k % kC;
  }
}

/// u[j] = sum_k x[k] w[j][k] and sum_k x[k]^2 of token m, summed over the block (thread 0 gets them)
/// in A (float forward; double backward, whose sums over j and tokens of dz*mix cancel).
/// With dy given, also dwgt[j] = sum_c dy[c] x[j][c] (backward).
template <int kN, int kC, typename T, Layout kLayout, int kThreads, bool kWithDy, typename A>
__device__ __forceinline__ void head_token_sums(const T *x, const T *dy, const float *w, i64 m, A (&v)[2 * kN + 1], A *scratch) {
  constexpr int kK = kN * kC;
#pragma unroll
  for (int p = 0; p < 2 * kN + 1; ++p)
    v[p] = A(0);
  for (int k = threadIdx.x; k < kK; k += kThreads) {
    const A xv = A(to_float(x[m * kK + k]));
#pragma unroll
    for (int j = 0; j < kN; ++j)
      v[j] = fma(xv, A(w[i64(j) * kK + k]), v[j]);
    v[kN] = fma(xv, xv, v[kN]);
    if constexpr (kWithDy) {
      int j, c;
      split_k<kN, kC, kLayout>(k, j, c);
      const A g = A(to_float(dy[m * kC + c])) * xv;
#pragma unroll
      for (int s = 0; s < kN; ++s)
        v[kN + 1 + s] += s == j ? g : A(0);
    }
  }
  block_sum_to_thread0<kThreads, 2 * kN + 1>(v, scratch);
}

/// Forward: a block per token (grid-stride): the sums, then y in a second pass over x.
template <int kN, int kC, typename T, Layout kLayout, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) head_fwd(const __grid_constant__ HeadFwdArgs args) {
  constexpr int kK = kN * kC;
  __shared__ float scratch[kThreads / 32 * (2 * kN + 1)];
  __shared__ float wgt[kN];
  const T *x = static_cast<const T *>(args.x);
  for (i64 m = blockIdx.x; m < args.M; m += gridDim.x) {
    float v[2 * kN + 1];
    head_token_sums<kN, kC, T, kLayout, kThreads, false, float>(x, x, args.w, m, v, scratch);
    if (threadIdx.x == 0) {
      const float r = 1.0f / sqrtf(v[kN] / float(kK) + K::rms_eps);
#pragma unroll
      for (int j = 0; j < kN; ++j)
        wgt[j] = sigmoid(v[j] * r * args.scale[0] + args.base[j]) + K::pre_eps;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < kC; c += kThreads) {
      float y = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j)
        y = fmaf(wgt[j], to_float(x[stream_index<kN, kC, kLayout>(m, j, c)]), y);
      static_cast<T *>(args.y)[m * kC + c] = from_float<T>(y);
    }
    __syncthreads();
  }
}

/// Backward stage 0: a block per token computes wgt, du[j] = dz[j] scale r and dms, and keeps
/// dscale and dbase of its tokens in thread 0's registers; one partial row [dscale, dbase] per
/// block, in double (stage 1's block 0 finishes them).
template <int kN, int kC, typename T, Layout kLayout, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) head_bwd_token(const __grid_constant__ HeadBwdTokenArgs args) {
  constexpr int kK = kN * kC;
  __shared__ double scratch[kThreads / 32 * (2 * kN + 1)];
  double dscale = 0.0, dbase[kN];
#pragma unroll
  for (int j = 0; j < kN; ++j)
    dbase[j] = 0.0;
  const float scale = args.scale[0];
  for (i64 m = blockIdx.x; m < args.M; m += gridDim.x) {
    double v[2 * kN + 1];
    head_token_sums<kN, kC, T, kLayout, kThreads, true, double>(static_cast<const T *>(args.x), static_cast<const T *>(args.dy),
                                                        args.w, m, v, scratch);
    if (threadIdx.x == 0) {
      // NOTE: the per-token sums and the scalar chain run in double: dscale and dms are sums over j
      // (and tokens) that can cancel, so fp32 errors of u and dwgt were amplified past 1e-5.
      const double ms = v[kN] / kK;
      const double r = 1.0 / sqrt(ms + double(K::rms_eps));
      double dms = 0.0;
#pragma unroll
      for (int j = 0; j < kN; ++j) {
        const double mix = v[j] * r;
        const double s = 1.0 / (1.0 + exp(-(mix * scale + double(args.base[j]))));
        const double dz = v[kN + 1 + j] * s * (1.0 - s);
        dbase[j] += dz;
        dscale += dz * mix;
        args.wgt[m * kN + j] = float(s + double(K::pre_eps));
        args.du[m * kN + j] = float(dz * scale * r);
        dms += dz * scale * v[j];
      }
      args.dms[m] = float(-0.5 * r * r * r * dms);
    }
  }
  if (threadIdx.x == 0) {
    double *row = args.part + i64(blockIdx.x) * (1 + kN);
    row[0] = dscale;
#pragma unroll
    for (int j = 0; j < kN; ++j)
      row[1 + j] = dbase[j];
  }
}

/// Backward stage 1: blocks own a K slice (a thread per k) and a token range, as project_bwd:
/// dx[j][c] = wgt[j] dy[c] + sum_t du[t] w[t][k] + dms 2 x[j][c] / K, and partial dw[t][k].
template <int kN, int kC, typename T, Layout kLayout, int kThreads, bool kAccumulate>
__global__ void __launch_bounds__(kThreads) head_bwd_slice(const __grid_constant__ HeadBwdSliceArgs args) {
  constexpr int kK = kN * kC;
  constexpr int kSlices = (kK + kThreads - 1) / kThreads;
  const int slice = blockIdx.x % kSlices, split = blockIdx.x / kSlices;
  if (blockIdx.x == 0 && threadIdx.x <= kN) {
    // dscale (column 0) and dbase: phase 1's rows summed in order, in double, rounded once
    double sum = 0.0;
    for (i64 r = 0; r < args.part_rows; ++r)
      sum += args.part[r * (1 + kN) + threadIdx.x];
    if (threadIdx.x == 0)
      args.dscale[0] = float(sum);
    else
      args.dbase[threadIdx.x - 1] = float(sum);
  }
  const int k = slice * kThreads + threadIdx.x;
  if (k >= kK)
    return;
  int j, c;
  split_k<kN, kC, kLayout>(k, j, c);
  const T *x = static_cast<const T *>(args.x);
  const T *dy = static_cast<const T *>(args.dy);
  float w[kN], S[kN];
#pragma unroll
  for (int t = 0; t < kN; ++t) {
    w[t] = args.w[i64(t) * kK + k];
    S[t] = 0.0f;
  }
  const i64 m0 = split * args.tokens_per_split;
  const i64 m1 = m0 + args.tokens_per_split < args.M ? m0 + args.tokens_per_split : args.M;
  for (i64 m = m0; m < m1; ++m) {
    const float xv = to_float(x[m * kK + k]);
    float dx = args.wgt[m * kN + j] * to_float(dy[m * kC + c]) + args.dms[m] * 2.0f * xv / float(kK);
#pragma unroll
    for (int t = 0; t < kN; ++t) {
      const float du = args.du[m * kN + t];
      dx = fmaf(du, w[t], dx);
      S[t] = fmaf(du, xv, S[t]);
    }
    if constexpr (kAccumulate)
      static_cast<float *>(args.dx)[m * kK + k] += dx;
    else
      static_cast<T *>(args.dx)[m * kK + k] = from_float<T>(dx);
  }
#pragma unroll
  for (int t = 0; t < kN; ++t)
    args.dw_part[(i64(split) * kN + t) * kK + k] = S[t];
}

} // namespace mhc
