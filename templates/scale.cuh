// mhcjit templates: scale (SPEC.md section 2): h = H r a(t) + beta; pre = sigmoid + pre_eps,
// post = post_mult sigmoid, logits = h. One thread per token (its N mix entries in registers);
// each warp takes 32 consecutive tokens at a time, grid-stride, and moves their rows through a
// shared-memory tile (mhc_staging.cuh). Backward: dH, dms per token; dalpha, dbeta summed in
// registers, then over the block in a fixed order into one partial row per block. The row loops
// here serve scale_sinkhorn too, with the sinkhorn step between (scale_sinkhorn.cuh).
#pragma once

#include "mhc_staging.cuh"

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
template <int kN, typename K, typename Beta>
__device__ __forceinline__ void scale_forward_token(const float (&H)[kN * kN + 2 * kN], float r, const float (&alpha)[3],
                                                    const Beta &beta, float (&out)[kN * kN + 2 * kN]) {
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
                                                      const Rms<K> &rms, const float (&alpha)[3],
                                                      const float (&beta)[kN * kN + 2 * kN],
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

/// Forward over warps of 32 consecutive tokens: the warp stages their H rows into its tile,
/// each lane turns its row into pre, post and logits, `block(out)` may then replace the logits
/// (scale_sinkhorn's sinkhorn), and the warp writes pre, post and the n x n block to their
/// tensors. A lane reading its own row a word at a time instead makes 32-way strided loads that
/// all miss L1 at once when the compiler issues them together (PERF.md session 15).
template <int kN, int kThreads, typename K, typename Block>
__device__ __forceinline__ void scale_rows_forward(const float *H, const float *ms, const float *alpha_in, const float *beta,
                                                   float *pre, float *post, float *block_out, i64 M, float *tile,
                                                   Block block) {
  constexpr int kMix = kN * kN + 2 * kN, kStride = kStagingStride<kMix>, kWarps = kThreads / 32;
  const int lane = threadIdx.x % 32;
  for (i64 first = (i64(blockIdx.x) * kWarps + threadIdx.x / 32) * 32; first < M; first += i64(gridDim.x) * kWarps * 32) {
    // ms ahead of the copies: written after them, its load was scheduled after their wait, a
    // second DRAM round trip on every warp's path (H100 SASS)
    const float token_ms = first + lane < M ? ms[first + lane] : 1.0f;
    const float alpha[3] = {alpha_in[0], alpha_in[1], alpha_in[2]};
    float beta_r[kMix]; // with ms, ahead of the copies (loaded before the loop, they held it up)
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      beta_r[t] = beta[t];
    stage_rows_in<kMix, kStride>(H, first, M, tile, lane);
    finish_staging();
    float h[kMix], out[kMix];
    read_row<kMix, kStride>(tile, lane, h);
    scale_forward_token<kN, K>(h, Rms<K>(token_ms).r, alpha, beta_r, out);
    block(out);
    write_row<kMix, kStride>(tile, lane, out);
    __syncwarp();
    stage_rows_out<kN, kStride, 0>(pre, first, M, tile, lane);
    stage_rows_out<kN, kStride, kN>(post, first, M, tile, lane);
    stage_rows_out<kN * kN, kStride, 2 * kN>(block_out, first, M, tile, lane);
    __syncwarp(); // the next tokens overwrite the tile
  }
}

/// A lane's gradients in scale_rows_backward: calling it waits for the lane's own-row copies
/// and reads them into d.
template <int kMix, int kStride> struct OwnRowGradients {
  const float *tile;
  int lane;
  float (&d)[kMix];
  __device__ __forceinline__ void operator()() const { finish_own_row<kMix, kStride>(tile, lane, d); }
};

/// Backward over warps of 32 consecutive tokens: the warp stages H into its tile; each lane
/// then copies its own token's dpre, dpost and block gradient (dlogits, or scale_sinkhorn's dres)
/// into its row of the tile, and those copies fly while `block_grad(H, rms, alpha, gradients,
/// d)` recomputes what it needs: it calls `gradients()` (once, from any branch: the lane waits
/// for its own copies only) to get them into d, and may turn d's block into dlogits
/// (scale_sinkhorn's sinkhorn backward). Each lane then runs scale's backward on its token,
/// keeps its [dalpha(3), dbeta(N)] terms in registers and writes dms; the warp writes dH. The
/// block sums the terms in a fixed order (butterfly in each warp, warps in index order) into its
/// partial row of part, summed over blocks in order by reduce_rows.
template <int kN, int kThreads, typename K, typename BlockGrad>
__device__ __forceinline__ void scale_rows_backward(const float *H_in, const float *ms, const float *alpha_in,
                                                    const float *beta, const float *dpre, const float *dpost,
                                                    const float *dblock, float *dH_out, float *dms_out, float *part,
                                                    i64 M, float *tile, float *scratch, BlockGrad block_grad) {
  constexpr int kMix = kN * kN + 2 * kN, kStride = kStagingStride<kMix>, kWarps = kThreads / 32;
  constexpr int kRow = 3 + kMix;
  const int lane = threadIdx.x % 32;
  float acc[kRow]; // dalpha(3), then dbeta(N)
#pragma unroll
  for (int p = 0; p < kRow; ++p)
    acc[p] = 0.0f;
  for (i64 first = (i64(blockIdx.x) * kWarps + threadIdx.x / 32) * 32; first < M; first += i64(gridDim.x) * kWarps * 32) {
    const i64 m = first + lane;
    const float token_ms = m < M ? ms[m] : 1.0f;
    const float alpha[3] = {alpha_in[0], alpha_in[1], alpha_in[2]};
    float beta_r[kMix]; // for block_grad's recompute and the token's backward, loaded in the loop as forward's
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      beta_r[t] = beta[t];
    float H[kMix], d[kMix];
    stage_rows_in<kMix, kStride>(H_in, first, M, tile, lane);
    finish_staging();
    read_row<kMix, kStride>(tile, lane, H);
    __syncwarp(); // every lane has its H row before the rows take the gradients
    stage_own_row_in<kN, kStride, 0>(dpre, m, M, tile, lane);
    stage_own_row_in<kN, kStride, kN>(dpost, m, M, tile, lane);
    stage_own_row_in<kN * kN, kStride, 2 * kN>(dblock, m, M, tile, lane);
    commit_async();
    const Rms<K> rms(token_ms);
    block_grad(H, rms, alpha, beta_r, OwnRowGradients<kMix, kStride>{tile, lane, d}, d);
    float dH[kMix], token_acc[kRow];
#pragma unroll
    for (int p = 0; p < kRow; ++p)
      token_acc[p] = 0.0f;
    const float dms = scale_backward_token<kN, K>(H, d, rms, alpha, beta_r, dH, token_acc);
    if (m < M) {
#pragma unroll
      for (int p = 0; p < kRow; ++p)
        acc[p] += token_acc[p];
      dms_out[m] = dms;
    }
    write_row<kMix, kStride>(tile, lane, dH);
    __syncwarp();
    stage_rows_out<kMix, kStride>(dH_out, first, M, tile, lane);
    __syncwarp();
  }
  store_block_partial<kThreads, kRow>(acc, scratch, part);
}

template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_fwd(const __grid_constant__ ScaleFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  __shared__ alignas(16) float tiles[kThreads / 32][32 * kStagingStride<kMix>];
  static_assert(sizeof(tiles) == scale_staging_bytes(kN, kThreads, false), "host and device agree on the tiles");
  scale_rows_forward<kN, kThreads, K>(args.H, args.ms, args.alpha, args.beta, args.pre, args.post, args.logits, args.M,
                                      tiles[threadIdx.x / 32], [](float (&)[kMix]) {});
}

template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_bwd(const __grid_constant__ ScaleBwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  constexpr int kMix = kN * kN + 2 * kN;
  __shared__ alignas(16) float tiles[kThreads / 32][32 * kStagingStride<kMix>];
  __shared__ float scratch[kThreads / 32 * (3 + kMix)];
  static_assert(sizeof(tiles) + sizeof(scratch) == scale_staging_bytes(kN, kThreads, true),
                "host and device agree on the tiles");
  scale_rows_backward<kN, kThreads, K>(
      args.H, args.ms, args.alpha, args.beta, args.dpre, args.dpost, args.dlogits, args.dH, args.dms, args.part, args.M,
      tiles[threadIdx.x / 32], scratch,
      [](const float (&)[kMix], const Rms<K> &, const float (&)[3], const float (&)[kMix],
         const OwnRowGradients<kMix, kStagingStride<kMix>> &gradients, float (&)[kMix]) { gradients(); });
}

} // namespace mhc
