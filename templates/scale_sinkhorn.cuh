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

/// Forward: pre, post, res from H and ms (scale_rows_forward with the sinkhorn on each token's
/// logits).
template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) scale_sinkhorn_fwd(const __grid_constant__ ScaleSinkhornFwdArgs args) {
  constexpr int kMix = kN * kN + 2 * kN;
  __shared__ alignas(16) float tiles[kThreads / 32][32 * kStagingStride<kMix>];
  static_assert(sizeof(tiles) == scale_staging_bytes(kN, kThreads, false), "host and device agree on the tiles");
  scale_rows_forward<kN, kThreads, K>(args.H, args.ms, args.alpha, args.beta, args.pre, args.post, args.res, args.M,
                                      tiles[threadIdx.x / 32], [](float (&out)[kMix]) {
                                        float L[kN][kN], R[kN][kN];
                                        mix_to_matrix<kN>(out, L);
                                        sinkhorn_forward_token<kN, kThreads, K>(L, R);
                                        matrix_to_mix<kN>(R, out);
                                      });
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
  scale_rows_backward<kN, kThreads, K>(
      args.H, args.ms, args.alpha, args.beta, args.dpre, args.dpost, args.dres, args.dH, args.dms, args.part, args.M,
      tiles[threadIdx.x / 32], scratch,
      [&](const float (&H)[kMix], const Rms<K> &rms, const float (&alpha)[3], const float (&beta)[kMix],
          const OwnRowGradients<kMix, kStride> &gradients, float (&d)[kMix]) {
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
