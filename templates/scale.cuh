// mhcjit templates: scale (SPEC.md section 2): h = H r a(t) + beta; pre = sigmoid + pre_eps,
// post = post_mult sigmoid, logits = h. One thread per token (its N mix entries in registers),
// grid-stride. Backward: dH, dms per token; dalpha, dbeta summed in registers, then over the
// block in a fixed order into one partial row per block.
#pragma once

#include "mhc_common.cuh"

namespace mhc {

/// r and dr/dms of the contract's RMS form. Example: inside, ms = 3, eps = 1 -> r = 0.5,
/// dr/dms = -0.5 * 4^-1.5 = -0.0625. Outside at ms = 0: dr/dms is taken as 0 (x is 0 there too).
template <typename K> struct Rms {
  float r, dr;
  __device__ __forceinline__ explicit Rms(float ms) {
    if constexpr (K::rms_outside) {
      const float root = sqrtf(ms);
      r = 1.0f / (root + K::rms_eps);
      dr = ms > 0.0f ? -r * r / (2.0f * root) : 0.0f;
    } else {
      r = 1.0f / sqrtf(ms + K::rms_eps);
      dr = -0.5f * r * r * r;
    }
  }
};

/// 0 for pre (t < n), 1 for post (n <= t < 2n), 2 for res.
template <int kN> __device__ __forceinline__ int mix_group(int t) { return t < kN ? 0 : (t < 2 * kN ? 1 : 2); }

/// Token forward: h[t] = H[t] r a(t) + beta[t] into out in mix order: pre, post, then logits.
template <int kN, typename K>
__device__ __forceinline__ void scale_forward_token(const float (&H)[kN * kN + 2 * kN], float r, const float (&alpha)[3],
                                                    const float *beta, float (&out)[kN * kN + 2 * kN]) {
#pragma unroll
  for (int t = 0; t < kN; ++t)
    out[t] = sigmoid(H[t] * r * alpha[0] + beta[t]) + K::pre_eps;
#pragma unroll
  for (int t = kN; t < 2 * kN; ++t)
    out[t] = K::post_mult * sigmoid(H[t] * r * alpha[1] + beta[t]);
#pragma unroll
  for (int t = 2 * kN; t < kN * kN + 2 * kN; ++t)
    out[t] = H[t] * r * alpha[2] + beta[t];
}

/// Token backward. d holds dpre, dpost, dlogits in mix order; writes dH, adds the token's
/// dalpha(3) and dbeta(N) terms to acc and returns dms.
template <int kN, typename K>
__device__ __forceinline__ float scale_backward_token(const float (&H)[kN * kN + 2 * kN], const float (&d)[kN * kN + 2 * kN],
                                                      const Rms<K> &rms, const float (&alpha)[3], const float *beta,
                                                      float (&dH)[kN * kN + 2 * kN], float (&acc)[3 + kN * kN + 2 * kN]) {
  double dms = 0.0; // N terms that may cancel: summed in double, one rounding at the end
#pragma unroll
  for (int t = 0; t < kN * kN + 2 * kN; ++t) {
    const int g = mix_group<kN>(t);
    const float a = alpha[g];
    float gh = d[t];
    if (g != 2) {
      const float sg = sigmoid(H[t] * rms.r * a + beta[t]);
      gh = (g == 0 ? gh : gh * K::post_mult) * sg * (1.0f - sg);
    }
    dH[t] = gh * a * rms.r;
    acc[g] = fmaf(gh * H[t], rms.r, acc[g]);
    acc[3 + t] += gh;
    dms = fma(double(gh * a), double(H[t]), dms);
  }
  return rms.dr * float(dms);
}

/// Sums the block's [dalpha(3), dbeta(N)] accumulators in a fixed order (butterfly in each warp,
/// warps in index order) into the block's partial row of part, which reduce_rows finishes.
template <int kThreads, int kRow>
__device__ __forceinline__ void store_block_partial(float (&acc)[kRow], float *scratch, float *part) {
  block_sum_to_thread0<kThreads, kRow>(acc, scratch);
  if (threadIdx.x == 0)
#pragma unroll
    for (int p = 0; p < kRow; ++p)
      part[i64(blockIdx.x) * kRow + p] = acc[p];
}

/// Forward: one thread per token, grid-stride over tokens.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_fwd(const __grid_constant__ ScaleFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  const float alpha[3] = {args.alpha[0], args.alpha[1], args.alpha[2]};
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    float h[kMix], out[kMix];
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      h[t] = args.H[m * kMix + t];
    scale_forward_token<kN, K>(h, Rms<K>(args.ms[m]).r, alpha, args.beta, out);
#pragma unroll
    for (int t = 0; t < kN; ++t) {
      args.pre[m * kN + t] = out[t];
      args.post[m * kN + t] = out[kN + t];
    }
#pragma unroll
    for (int t = 2 * kN; t < kMix; ++t)
      args.logits[m * kN * kN + t - 2 * kN] = out[t];
  }
}

/// Backward: one thread per token, grid-stride over tokens. Each thread keeps [dalpha(3),
/// dbeta(N)] of its tokens in registers; the block sums them in a fixed order (butterfly in each
/// warp, warps in index order) into its partial row, summed over blocks in order by reduce_rows.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_bwd(const __grid_constant__ ScaleBwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kRow = 3 + kMix;
  __shared__ float scratch[kThreads / 32 * kRow];
  float acc[kRow]; // dalpha(3), then dbeta(N)
#pragma unroll
  for (int p = 0; p < kRow; ++p)
    acc[p] = 0.0f;
  const float alpha[3] = {args.alpha[0], args.alpha[1], args.alpha[2]};
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    float H[kMix], d[kMix], dH[kMix];
#pragma unroll
    for (int t = 0; t < kMix; ++t) {
      H[t] = args.H[m * kMix + t];
      d[t] = t < kN ? args.dpre[m * kN + t]
                    : (t < 2 * kN ? args.dpost[m * kN + t - kN] : args.dlogits[m * kN * kN + t - 2 * kN]);
    }
    args.dms[m] = scale_backward_token<kN, K>(H, d, Rms<K>(args.ms[m]), alpha, args.beta, dH, acc);
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      args.dH[m * kMix + t] = dH[t];
  }
  store_block_partial<kThreads, kRow>(acc, scratch, args.part);
}

} // namespace mhc
