// mhcjit templates: scale_sinkhorn, scale (SPEC.md 2) and sinkhorn (SPEC.md 3) fused into one
// kernel a direction: the logits and their gradient stay in registers. One thread per token;
// each warp takes 32 consecutive tokens at a time and moves their rows between global memory
// and a shared-memory tile with coalesced accesses (consecutive lanes, consecutive words), so
// that a token's row, a few dozen floats wide, never costs a strided access per element.
// Backward: dalpha, dbeta summed in registers, then over the block in a fixed order into one
// partial row per block (finished by reduce_rows), as in scale_bwd.
#pragma once

#include "scale.cuh"
#include "sinkhorn.cuh"

namespace mhc {

/// The n x n block of a mix vector that starts at 2n (logits, res and their gradients).
template <int kN> __device__ __forceinline__ void mix_to_matrix(const float *mix, float (&A)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      A[i][j] = mix[2 * kN + i * kN + j];
}

template <int kN> __device__ __forceinline__ void matrix_to_mix(const float (&A)[kN][kN], float *mix) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      mix[2 * kN + i * kN + j] = A[i][j];
}

/// Forward with a token on n lanes (kLanesPerRow): each warp stages the H rows of 32 / n tokens;
/// lane i of a token's group computes pre[i], post[i] and row i of the logits, runs the sinkhorn
/// with its group (sinkhorn_forward_rows, the block's rows in the tile's block columns), and
/// puts its entries back into the tile, which the warp writes out as scale_rows_forward does.
template <int kN, int kThreads, typename K>
__device__ __forceinline__ void scale_sinkhorn_rows_forward(const ScaleSinkhornFwdArgs &args, float *tile) {
  constexpr int kMix = kN * kN + 2 * kN, kStride = kStagingStride<kMix>, kWarps = kThreads / 32, kTokens = 32 / kN;
  const int lane = threadIdx.x % 32;
  const TokenGroup<kN> group(lane);
  const int i = group.row;
  float *row = tile + (lane / kN) * kStride;
  const float alpha[3] = {args.alpha[0], args.alpha[1], args.alpha[2]};
  const float *beta = args.beta;
  for (i64 first = (i64(blockIdx.x) * kWarps + threadIdx.x / 32) * kTokens; first < args.M;
       first += i64(gridDim.x) * kWarps * kTokens) {
    stage_rows_in<kMix, kStride, 0, kTokens>(args.H, first, args.M, tile, lane);
    const i64 m = first + lane / kN;
    const float token_ms = m < args.M ? args.ms[m] : 1.0f;
    finish_staging();
    // scale_forward_token's arithmetic for the lane's entries
    const float r = Rms<K>(token_ms).r;
    const float pre = sigmoid(row[i] * r * alpha[0] + beta[i]) + K::pre_eps;
    const float post = K::post_mult * sigmoid(row[kN + i] * r * alpha[1] + beta[kN + i]);
    float Li[kN], Ri[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j)
      Li[j] = row[2 * kN + i * kN + j] * r * alpha[2] + beta[2 * kN + i * kN + j];
    sinkhorn_forward_rows<kN, K>(Li, row + 2 * kN, group, Ri);
    __syncwarp(); // every lane has read its group's columns
    row[i] = pre;
    row[kN + i] = post;
#pragma unroll
    for (int j = 0; j < kN; ++j)
      row[2 * kN + i * kN + j] = Ri[j];
    __syncwarp();
    stage_rows_out<kN, kStride, 0, kTokens>(args.pre, first, args.M, tile, lane);
    stage_rows_out<kN, kStride, kN, kTokens>(args.post, first, args.M, tile, lane);
    stage_rows_out<kN * kN, kStride, 2 * kN, kTokens>(args.res, first, args.M, tile, lane);
    __syncwarp(); // the next tokens overwrite the tile
  }
}

/// Forward: pre, post, res from H and ms, a token on n lanes where n allows it
/// (scale_sinkhorn_rows_forward), else scale_rows_forward with the sinkhorn on each lane's token.
/// With a token on n lanes the kernel needs n times the threads: M = 32768 at n = 4 is 31 warps
/// an SM, resident at once only at 64 registers a thread (1024 threads an SM); n = 8 keeps 128
/// registers (at 64 its rows spill).
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads, kLanesPerRow<kN> ? (kN == 8 ? 512 : 1024) / kThreads : 1)
    scale_sinkhorn_fwd(const __grid_constant__ ScaleSinkhornFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  __shared__ alignas(16) float tiles[kThreads / 32][32 * kStagingStride<kMix>];
  static_assert(sizeof(tiles) == scale_staging_bytes(kN, kThreads, false), "host and device agree on the tiles");
  if constexpr (kLanesPerRow<kN>) {
    scale_sinkhorn_rows_forward<kN, kThreads, K>(args, tiles[threadIdx.x / 32]);
  } else {
    scale_rows_forward<kN, kThreads, K>(args.H, args.ms, args.alpha, args.beta, args.pre, args.post, args.res, args.M,
                                        tiles[threadIdx.x / 32], [](float (&out)[kMix]) {
                                          float L[kN][kN], R[kN][kN];
                                          mix_to_matrix<kN>(out, L);
                                          sinkhorn_forward_token<kN, kThreads, K>(L, R);
                                          matrix_to_mix<kN>(R, out);
                                        });
  }
}

/// Backward: scale_rows_backward, whose block gradient step recomputes the logits from H and ms
/// and runs the sinkhorn backward on dres (history in shared memory where it fits beside the
/// staging tiles); the sinkhorn fetches dres once its forward iterations are done, so the
/// gradients' copies fly meanwhile.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_sinkhorn_bwd(const __grid_constant__ ScaleSinkhornBwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  constexpr int kMix = kN * kN + 2 * kN, kStride = kStagingStride<kMix>, kWarps = kThreads / 32;
  constexpr int kRow = 3 + kMix;
  constexpr int kTileBytes = kWarps * 32 * kStride * 4, kScratchBytes = kWarps * kRow * 4;
  using History = SinkhornHistory<kN, kThreads, K, kTileBytes + kScratchBytes>;
  __shared__ alignas(16) float hist_storage[History::kFits ? History::kFloats : 1];
  __shared__ alignas(16) float tiles[kWarps][32 * kStride];
  __shared__ float scratch[kWarps * kRow];
  static_assert(kTileBytes + kScratchBytes == scale_staging_bytes(kN, kThreads, true), "host and device agree on the tiles");
  const float *beta = args.beta;
  scale_rows_backward<kN, kThreads, K>(
      args.H, args.ms, args.alpha, args.beta, args.dpre, args.dpost, args.dres, args.dH, args.dms, args.part, args.M,
      tiles[threadIdx.x / 32], scratch,
      [&](const float (&H)[kMix], const Rms<K> &rms, const float (&alpha)[3], const OwnRowGradients<kMix, kStride> &gradients,
          float (&d)[kMix]) {
        float h[kMix], L[kN][kN], dL[kN][kN];
        scale_forward_token<kN, K>(H, rms.r, alpha, beta, h);
        mix_to_matrix<kN>(h, L);
        sinkhorn_backward_token<kN, kThreads, K, History::kFits, History::kKeepsA>(
            L,
            [&](float (&G)[kN][kN]) {
              gradients();
              mix_to_matrix<kN>(d, G);
            },
            dL, hist_storage);
        matrix_to_mix<kN>(dL, d);
      });
}

} // namespace mhc
