// mhcjit templates: moving the rows of 32 consecutive tokens of a (M, width) fp32 tensor between
// global memory and a warp's shared-memory tile with coalesced accesses (consecutive lanes,
// consecutive words), so that a token's row, a few dozen floats wide, never costs a strided
// access per element. Used by scale and scale_sinkhorn, one lane a token.
#pragma once

#include "mhc_async.cuh"

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

} // namespace mhc
