// mhcjit templates: moving the rows of 32 consecutive tokens of a (M, width) fp32 tensor between
// global memory and a warp's shared-memory tile with coalesced accesses (consecutive lanes,
// consecutive chunks), so that a token's row, a few dozen floats wide, never costs a strided
// access per element. Used by scale and scale_sinkhorn, one lane a token.
//
// Chunks are 16 bytes (8 where the widths allow only that) when the tensor's pointer is aligned
// to them and the warp's 32 rows are all below M: a lane then moves a handful of chunks at fixed
// offsets from one address. Otherwise (a misaligned pointer, the grid's last partial warp, odd
// widths) a chunk is one word. A lane reads and writes its own row of the tile in the same
// chunks (read_row / write_row).
#pragma once

#include "mhc_async.cuh"

namespace mhc {

/// Row stride of a staging tile of kWidth-word rows (scale_staging_stride).
template <int kWidth> constexpr int kStagingStride = scale_staging_stride(kWidth);

/// Words per chunk for a tensor kWidth words wide whose rows sit at tile column kCol, in a tile
/// of row stride kStride: 4 or 2 where all three allow it (aligned chunks in global memory and
/// in the tile), else 1. Examples: (24, 0, 28) -> 4; (4, 4, 28) -> 4; (2, 2, 12) -> 2; (3, 0, 15) -> 1.
template <int kWidth, int kCol, int kStride>
constexpr int kChunkWords = kWidth % 4 == 0 && kCol % 4 == 0 && kStride % 4 == 0   ? 4
                            : kWidth % 2 == 0 && kCol % 2 == 0 && kStride % 2 == 0 ? 2
                                                                                   : 1;

/// Whether the warp's 32 rows from `first` may move in kWords-word chunks: all below M, and the
/// tensor's pointer aligned to a chunk (uniform across the warp).
template <int kWords> __device__ __forceinline__ bool whole_chunks(const void *p, i64 first, i64 M) {
  return kWords > 1 && first + 32 <= M && (reinterpret_cast<unsigned long long>(p) % (4 * kWords)) == 0;
}

/// The rows [first, first + 32) of a (M, kWidth) fp32 tensor into tile columns [kCol, kCol +
/// kWidth) of rows 0..31 (row stride kStride); rows at or past M read as 0. Lane l moves chunks
/// l, l + 32, ... of the 32 rows' contiguous span, so each copy instruction of the warp reads
/// consecutive bytes. The copies are asynchronous (cp.async): they stay in flight together
/// whatever registers the rest of the kernel needs (loads through registers were once compiled
/// to wait for one another, one DRAM round trip each; PERF.md session 14). finish_staging()
/// makes them visible to the warp.
template <int kWidth, int kStride, int kCol = 0>
__device__ __forceinline__ void stage_rows_in(const float *src, i64 first, i64 M, float *tile, int lane) {
  constexpr int kWords = kChunkWords<kWidth, kCol, kStride>;
  const float *base = src + first * kWidth;
  const unsigned dst = shared_address(tile + kCol);
  if (whole_chunks<kWords>(src, first, M)) {
    constexpr int kRowChunks = kWidth / kWords;
#pragma unroll
    for (int c = lane; c < 32 * kRowChunks; c += 32) {
      const int row = c / kRowChunks, chunk = c - row * kRowChunks;
      const unsigned to = dst + 4 * (row * kStride + chunk * kWords);
      if constexpr (kWords == 4)
        copy16_async<true>(to, base + 4 * c, 16);
      else
        copy8_async(to, base + kWords * c, 8);
    }
    return;
  }
  // the fallback stays rolled: unrolled, its per-copy offsets were hoisted out of the caller's
  // token loop and computed before the first copy of either path (about 230 instructions ahead
  // of every warp's first load in scale_sinkhorn forward at n = 4, H100 SASS)
  const i64 valid = (M - first < 32 ? M - first : 32) * kWidth;
#pragma unroll 1
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

/// The inverse of stage_rows_in: tile columns [kCol, kCol + kWidth) of rows 0..31 to the rows
/// [first, first + 32) below M of dst.
template <int kWidth, int kStride, int kCol = 0>
__device__ __forceinline__ void stage_rows_out(float *dst, i64 first, i64 M, const float *tile, int lane) {
  constexpr int kWords = kChunkWords<kWidth, kCol, kStride>;
  float *base = dst + first * kWidth;
  const float *from = tile + kCol;
  if (whole_chunks<kWords>(dst, first, M)) {
    constexpr int kRowChunks = kWidth / kWords;
#pragma unroll
    for (int c = lane; c < 32 * kRowChunks; c += 32) {
      const int row = c / kRowChunks, chunk = c - row * kRowChunks;
      const float *p = from + row * kStride + chunk * kWords;
      if constexpr (kWords == 4)
        *reinterpret_cast<float4 *>(base + 4 * c) = *reinterpret_cast<const float4 *>(p);
      else
        *reinterpret_cast<float2 *>(base + 2 * c) = *reinterpret_cast<const float2 *>(p);
    }
    return;
  }
  const i64 valid = (M - first < 32 ? M - first : 32) * kWidth;
#pragma unroll 1 // as in stage_rows_in
  for (int e = lane; e < 32 * kWidth; e += 32) {
    const int row = e / kWidth;
    if (e < valid)
      base[e] = from[row * kStride + e - row * kWidth];
  }
}

/// Row m of a (M, kWidth) fp32 tensor into tile columns [kCol, kCol + kWidth) of this lane's row,
/// copied by this lane alone (zeros where m >= M), so that finish_own_row needs no other lane:
/// it may be called from divergent code. The warp's copies of one chunk index are 32 rows
/// kWidth words apart (for kWidth = 4, 512 consecutive bytes).
template <int kWidth, int kStride, int kCol>
__device__ __forceinline__ void stage_own_row_in(const float *src, i64 m, i64 M, float *tile, int lane) {
  constexpr int kWords = kChunkWords<kWidth, kCol, kStride>;
  const unsigned dst = shared_address(tile + lane * kStride + kCol);
  const bool in = m < M;
  const float *row = in ? src + m * kWidth : src;
  if (kWords > 1 && reinterpret_cast<unsigned long long>(src) % (4 * kWords) == 0) {
#pragma unroll
    for (int w = 0; w < kWidth; w += kWords) {
      if constexpr (kWords == 4)
        copy16_async<true>(dst + 4 * w, row + w, in ? 16 : 0);
      else
        copy8_async(dst + 4 * w, row + w, in ? 8 : 0);
    }
    return;
  }
#pragma unroll
  for (int w = 0; w < kWidth; ++w)
    copy4_async(dst + 4 * w, in ? row + w : src, in ? 4 : 0);
}

/// This lane's tile row, words [0, kWidth), into v: 16-byte reads where the stride allows
/// (conflict-free, scale_staging_stride), else word by word.
template <int kWidth, int kStride>
__device__ __forceinline__ void read_row(const float *tile, int lane, float (&v)[kWidth]) {
  const float *row = tile + lane * kStride;
  if constexpr (kWidth % 4 == 0 && kStride % 4 == 0) {
#pragma unroll
    for (int t = 0; t < kWidth; t += 4) {
      const float4 q = *reinterpret_cast<const float4 *>(row + t);
      v[t] = q.x;
      v[t + 1] = q.y;
      v[t + 2] = q.z;
      v[t + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int t = 0; t < kWidth; ++t)
      v[t] = row[t];
  }
}

/// v into this lane's tile row, the inverse of read_row.
template <int kWidth, int kStride>
__device__ __forceinline__ void write_row(float *tile, int lane, const float (&v)[kWidth]) {
  float *row = tile + lane * kStride;
  if constexpr (kWidth % 4 == 0 && kStride % 4 == 0) {
#pragma unroll
    for (int t = 0; t < kWidth; t += 4)
      *reinterpret_cast<float4 *>(row + t) = make_float4(v[t], v[t + 1], v[t + 2], v[t + 3]);
  } else {
#pragma unroll
    for (int t = 0; t < kWidth; ++t)
      row[t] = v[t];
  }
}

/// Waits for this lane's own-row copies (stage_own_row_in, committed), then reads its row.
template <int kWidth, int kStride>
__device__ __forceinline__ void finish_own_row(const float *tile, int lane, float (&v)[kWidth]) {
  wait_async<0>();
  read_row<kWidth, kStride>(tile, lane, v);
}

} // namespace mhc
