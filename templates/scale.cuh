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

/// Forward: one thread per token, grid-stride over tokens.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_fwd(const __grid_constant__ ScaleFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  const float a_pre = args.alpha[0], a_post = args.alpha[1], a_res = args.alpha[2];
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    const float *H = args.H + m * kMix;
    float h[kMix];
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      h[t] = H[t];
    const float r = Rms<K>(args.ms[m]).r;
#pragma unroll
    for (int t = 0; t < kN; ++t)
      args.pre[m * kN + t] = sigmoid(h[t] * r * a_pre + args.beta[t]) + K::pre_eps;
#pragma unroll
    for (int t = kN; t < 2 * kN; ++t)
      args.post[m * kN + t - kN] = K::post_mult * sigmoid(h[t] * r * a_post + args.beta[t]);
#pragma unroll
    for (int t = 2 * kN; t < kMix; ++t)
      args.logits[m * kN * kN + t - 2 * kN] = h[t] * r * a_res + args.beta[t];
  }
}

/// Backward: one thread per token, grid-stride over tokens. Each thread keeps [dalpha(3),
/// dbeta(N)] of its tokens in registers; the block sums them in a fixed order (butterfly in each
/// warp, warps in index order) into its partial row, summed over blocks in order by reduce_rows.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_bwd(const __grid_constant__ ScaleBwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kRow = 3 + kMix;
  __shared__ float scratch[kThreads / 32 * kRow];
  float acc[kRow]; // dalpha(3), then dbeta(N)
#pragma unroll
  for (int p = 0; p < kRow; ++p)
    acc[p] = 0.0f;
  const float alpha[3] = {args.alpha[0], args.alpha[1], args.alpha[2]};
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    const Rms<K> rms(args.ms[m]);
    double dms = 0.0; // N terms that may cancel: summed in double, one rounding at the end
#pragma unroll
    for (int t = 0; t < kMix; ++t) {
      const int g = mix_group<kN>(t);
      const float a = alpha[g], H = args.H[m * kMix + t];
      float gh;
      if (g == 2) {
        gh = args.dlogits[m * kN * kN + t - 2 * kN];
      } else {
        const float sg = sigmoid(H * rms.r * a + args.beta[t]);
        const float d = g == 0 ? args.dpre[m * kN + t] : args.dpost[m * kN + t - kN] * K::post_mult;
        gh = d * sg * (1.0f - sg);
      }
      args.dH[m * kMix + t] = gh * a * rms.r;
      acc[g] = fmaf(gh * H, rms.r, acc[g]);
      acc[3 + t] += gh;
      dms = fma(double(gh * a), double(H), dms);
    }
    args.dms[m] = rms.dr * float(dms);
  }
  block_sum_to_thread0<kThreads, kRow>(acc, scratch);
  if (threadIdx.x == 0)
#pragma unroll
    for (int p = 0; p < kRow; ++p)
      args.part[i64(blockIdx.x) * kRow + p] = acc[p];
}

} // namespace mhc
