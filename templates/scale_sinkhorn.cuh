// mhcjit templates: scale_sinkhorn, scale (SPEC.md 2) and sinkhorn (SPEC.md 3) fused into one
// kernel a direction: the logits and their gradient stay in registers. One thread per token;
// each warp takes 32 consecutive tokens at a time and moves their rows between global memory
// and a shared-memory tile with coalesced accesses (consecutive lanes, consecutive words), so
// that a token's row, a few dozen floats wide, never costs a strided access per element.
// Backward: dalpha, dbeta summed in registers, then over the block in a fixed order into one
// partial row per block (finished by reduce_rows), as in scale_bwd.
#pragma once

#include "mhc_async.cuh"
#include "scale.cuh"
#include "sinkhorn.cuh"

namespace mhc {

/// Row stride of a staging tile: odd, so that lane l reading word t of row l hits bank
/// (l * stride + t) % 32, a different bank for every lane.
template <int kWidth> constexpr int kStagingStride = kWidth | 1;

/// The rows [first, first + 32) of a (M, kWidth) fp32 tensor into tile columns [0, kWidth) of
/// rows 0..31 (row stride kStride); rows at or past M read as 0. Lane l moves words l, l + 32, ...
/// of the 32 rows' contiguous span, so each copy instruction of the warp reads 128 bytes. The
/// copies are asynchronous (cp.async): they stay in flight together whatever registers the rest
/// of the kernel needs (loads through registers were once compiled to wait for one another, one
/// DRAM round trip each; PERF.md session 14). finish_staging() makes them visible to the warp.
template <int kWidth, int kStride>
__device__ __forceinline__ void stage_rows_in(const float *src, i64 first, i64 M, float *tile, int lane) {
  const i64 valid = (M - first < 32 ? M - first : 32) * kWidth;
  const float *base = src + first * kWidth;
  const unsigned dst = shared_address(tile);
#pragma unroll
  for (int e = lane; e < 32 * kWidth; e += 32) {
    const int row = e / kWidth;
    const bool in = e < valid;
    copy4_async(dst + 4 * (row * kStride + e - row * kWidth), in ? base + e : src, in ? 4 : 0);
  }
}

/// Waits for this lane's stage_rows_in copies, then for the warp's, so that every lane may read
/// any row of the tile.
__device__ __forceinline__ void finish_staging() {
  commit_async();
  wait_async<0>();
  __syncwarp();
}

/// The inverse of stage_rows_in: tile rows to the rows [first, first + 32) below M of dst.
template <int kWidth, int kStride>
__device__ __forceinline__ void stage_rows_out(float *dst, i64 first, i64 M, const float *tile, int lane) {
  const i64 valid = (M - first < 32 ? M - first : 32) * kWidth;
  float *base = dst + first * kWidth;
#pragma unroll
  for (int e = lane; e < 32 * kWidth; e += 32) {
    const int row = e / kWidth;
    if (e < valid)
      base[e] = tile[row * kStride + e - row * kWidth];
  }
}

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

/// Forward: pre, post, res from H and ms. Each warp stages 32 tokens' H rows, each lane turns
/// its row into pre, post and res in place, and the warp writes the three outputs back.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_sinkhorn_fwd(const __grid_constant__ ScaleSinkhornFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN, kStride = kStagingStride<kMix>, kWarps = kThreads / 32;
  __shared__ float tiles[kWarps][32 * kStride];
  const int lane = threadIdx.x % 32;
  float *tile = tiles[threadIdx.x / 32], *row = tile + lane * kStride;
  const float alpha[3] = {args.alpha[0], args.alpha[1], args.alpha[2]};
  for (i64 first = (i64(blockIdx.x) * kWarps + threadIdx.x / 32) * 32; first < args.M;
       first += i64(gridDim.x) * kWarps * 32) {
    stage_rows_in<kMix, kStride>(args.H, first, args.M, tile, lane);
    const float ms = first + lane < args.M ? args.ms[first + lane] : 1.0f;
    finish_staging();
    float H[kMix], out[kMix];
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      H[t] = row[t];
    scale_forward_token<kN, K>(H, Rms<K>(ms).r, alpha, args.beta, out);
    float L[kN][kN], R[kN][kN];
    mix_to_matrix<kN>(out, L);
    sinkhorn_forward_token<kN, kThreads, K>(L, R);
    matrix_to_mix<kN>(R, out);
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      row[t] = out[t];
    __syncwarp();
    stage_rows_out<kN, kStride>(args.pre, first, args.M, tile, lane);
    stage_rows_out<kN, kStride>(args.post, first, args.M, tile + kN, lane);
    stage_rows_out<kN * kN, kStride>(args.res, first, args.M, tile + 2 * kN, lane);
    __syncwarp(); // the next tokens overwrite the tile
  }
}

/// Backward: recomputes the logits from H and ms, runs the sinkhorn backward (history in shared
/// memory where it fits beside the staging tiles) and then scale's backward on its dlogits.
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_sinkhorn_bwd(const __grid_constant__ ScaleSinkhornBwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  constexpr int kMix = kN * kN + 2 * kN, kStride = kStagingStride<kMix>, kWarps = kThreads / 32;
  constexpr int kRow = 3 + kMix;
  constexpr int kTileBytes = kWarps * 32 * kStride * 4, kScratchBytes = kWarps * kRow * 4;
  using History = SinkhornHistory<kN, kThreads, K, kTileBytes + kScratchBytes>;
  __shared__ float hist_storage[History::kFits ? History::kFloats : 1];
  __shared__ float tiles[kWarps][32 * kStride];
  __shared__ float scratch[kWarps * kRow];
  const int lane = threadIdx.x % 32;
  float *tile = tiles[threadIdx.x / 32], *row = tile + lane * kStride;
  float acc[kRow]; // dalpha(3), then dbeta(N)
#pragma unroll
  for (int p = 0; p < kRow; ++p)
    acc[p] = 0.0f;
  const float alpha[3] = {args.alpha[0], args.alpha[1], args.alpha[2]};
  for (i64 first = (i64(blockIdx.x) * kWarps + threadIdx.x / 32) * 32; first < args.M;
       first += i64(gridDim.x) * kWarps * 32) {
    const i64 m = first + lane;
    const float ms = m < args.M ? args.ms[m] : 1.0f;
    float H[kMix], d[kMix];
    stage_rows_in<kMix, kStride>(args.H, first, args.M, tile, lane);
    finish_staging();
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      H[t] = row[t];
    __syncwarp();
    stage_rows_in<kN, kStride>(args.dpre, first, args.M, tile, lane);
    stage_rows_in<kN, kStride>(args.dpost, first, args.M, tile + kN, lane);
    stage_rows_in<kN * kN, kStride>(args.dres, first, args.M, tile + 2 * kN, lane);
    finish_staging();
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      d[t] = row[t];
    const Rms<K> rms(ms);
    float h[kMix], L[kN][kN], G[kN][kN], dL[kN][kN];
    scale_forward_token<kN, K>(H, rms.r, alpha, args.beta, h);
    mix_to_matrix<kN>(h, L);
    mix_to_matrix<kN>(d, G);
    sinkhorn_backward_token<kN, kThreads, K, History::kFits, History::kKeepsA>(L, G, dL, hist_storage);
    matrix_to_mix<kN>(dL, d);
    float dH[kMix], token_acc[kRow];
#pragma unroll
    for (int p = 0; p < kRow; ++p)
      token_acc[p] = 0.0f;
    const float dms = scale_backward_token<kN, K>(H, d, rms, alpha, args.beta, dH, token_acc);
    if (m < args.M) {
#pragma unroll
      for (int p = 0; p < kRow; ++p)
        acc[p] += token_acc[p];
      args.dms[m] = dms;
    }
#pragma unroll
    for (int t = 0; t < kMix; ++t)
      row[t] = dH[t];
    __syncwarp();
    stage_rows_out<kMix, kStride>(args.dH, first, args.M, tile, lane);
    __syncwarp();
  }
  store_block_partial<kThreads, kRow>(acc, scratch, args.part);
}

} // namespace mhc
