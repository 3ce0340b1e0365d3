// mhcjit templates: scale (SPEC.md section 2): h = H r a(t) + beta; pre = sigmoid + pre_eps,
// post = post_mult sigmoid, logits = h. Backward: dH, dms per token; dalpha, dbeta as partial rows.
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

/// Forward: one thread per (token, mix entry), grid-stride over M * N.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_fwd(const __grid_constant__ ScaleFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  for (i64 item = i64(blockIdx.x) * kThreads + threadIdx.x; item < args.M * kMix; item += i64(gridDim.x) * kThreads) {
    const i64 m = item / kMix;
    const int t = int(item - m * kMix);
    const int g = mix_group<kN>(t);
    const float h = args.H[item] * Rms<K>(args.ms[m]).r * args.alpha[g] + args.beta[t];
    if (g == 0)
      args.pre[m * kN + t] = sigmoid(h) + K::pre_eps;
    else if (g == 1)
      args.post[m * kN + t - kN] = K::post_mult * sigmoid(h);
    else
      args.logits[m * kN * kN + t - 2 * kN] = h;
  }
}

/// Backward: one warp per token (lane t, t+32, ... of its mix), grid-stride over tokens. Each lane
/// keeps its dbeta entries and dalpha in registers; the block writes one partial row
/// [dalpha(3), dbeta(N)], summed over blocks in order by reduce_rows.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_bwd(const __grid_constant__ ScaleBwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kSlots = (kMix + 31) / 32;
  constexpr int kWarps = kThreads / 32;
  __shared__ float rows[kWarps][3 + kMix];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float dalpha[3] = {0.0f, 0.0f, 0.0f}, dbeta[kSlots];
#pragma unroll
  for (int s = 0; s < kSlots; ++s)
    dbeta[s] = 0.0f;
  for (i64 m = i64(blockIdx.x) * kWarps + warp; m < args.M; m += i64(gridDim.x) * kWarps) {
    const Rms<K> rms(args.ms[m]);
    float dms = 0.0f;
#pragma unroll
    for (int s = 0; s < kSlots; ++s) {
      const int t = lane + 32 * s;
      if (t < kMix) {
        const int g = mix_group<kN>(t);
        const float H = args.H[m * kMix + t], a = args.alpha[g];
        const float h = H * rms.r * a + args.beta[t];
        float gh;
        if (g == 0) {
          const float sg = sigmoid(h);
          gh = args.dpre[m * kN + t] * sg * (1.0f - sg);
        } else if (g == 1) {
          const float sg = sigmoid(h);
          gh = args.dpost[m * kN + t - kN] * K::post_mult * sg * (1.0f - sg);
        } else {
          gh = args.dlogits[m * kN * kN + t - 2 * kN];
        }
        args.dH[m * kMix + t] = gh * a * rms.r;
        const float da = gh * H * rms.r;
        dalpha[0] += g == 0 ? da : 0.0f;
        dalpha[1] += g == 1 ? da : 0.0f;
        dalpha[2] += g == 2 ? da : 0.0f;
        dbeta[s] += gh;
        dms = fmaf(gh * a, H, dms);
      }
    }
    dms = warp_sum(dms);
    if (lane == 0)
      args.dms[m] = rms.dr * dms;
  }
#pragma unroll
  for (int g = 0; g < 3; ++g) {
    const float total = warp_sum(dalpha[g]);
    if (lane == 0)
      rows[warp][g] = total;
  }
#pragma unroll
  for (int s = 0; s < kSlots; ++s)
    if (lane + 32 * s < kMix)
      rows[warp][3 + lane + 32 * s] = dbeta[s];
  __syncthreads();
  for (int p = threadIdx.x; p < 3 + kMix; p += kThreads) {
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      total += rows[w][p];
    args.part[i64(blockIdx.x) * (3 + kMix) + p] = total;
  }
}

} // namespace mhc
