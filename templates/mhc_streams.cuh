// mhcjit templates: moving one column chunk of the n streams of a token between memory and registers.
// Hides the two layouts (sbcn, sbnc) behind xv[j][i] = x[m][j][c0 + i].
#pragma once

#include "mhc_common.cuh"

namespace mhc {

/// Token m's row of a (M, kCount) fp32 mix tensor (pre, post, res) with the widest accesses its
/// alignment allows: fp32 tensors are 4-byte aligned at least, 16-byte aligned when kPtrAlign is.
/// Example (kCount = 16, res at n = 4, kPtrAlign = 16): four 16-byte loads instead of 16 words.
template <int kCount, int kPtrAlign>
__device__ __forceinline__ void load_mix_row(const float *mix, i64 m, float (&v)[kCount]) {
  load_span<float, kCount, kCount, (kPtrAlign < 4 ? 4 : kPtrAlign)>(mix + m * kCount, v);
}

/// Element index of x[m][j][c] in a stream tensor of n = kN streams of kC columns.
/// Example (kN = 4, kC = 7168): sbcn (m=1, j=2, c=3) -> (1*7168 + 3)*4 + 2 = 28686;
///                              sbnc (m=1, j=2, c=3) -> (1*4 + 2)*7168 + 3 = 43011.
template <int kN, int kC, Layout kLayout>
__device__ __forceinline__ i64 stream_index(i64 m, int j, int c) {
  return kLayout == Layout::kSbcn ? (m * kC + c) * kN + j : (m * kN + j) * i64(kC) + c;
}

/// Loads the full chunk xv[j][i] = x[m][j][c0 + i], i < kVec; c0 is a multiple of kVec.
/// sbnc reads kN spans of kVec elements; sbcn reads one contiguous span of kVec*kN elements.
template <int kN, int kC, Layout kLayout, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void load_streams(const T *x, i64 m, int c0, float (&xv)[kN][kVec]) {
  if constexpr (kLayout == Layout::kSbnc) {
#pragma unroll
    for (int j = 0; j < kN; ++j)
      load_span<T, kVec, gcd(kC, kVec), kPtrAlign>(x + stream_index<kN, kC, kLayout>(m, j, c0), xv[j]);
  } else {
    float flat[kVec * kN];
    load_span<T, kVec * kN, i64(kN) * gcd(kC, kVec), kPtrAlign>(x + stream_index<kN, kC, kLayout>(m, 0, c0), flat);
#pragma unroll
    for (int i = 0; i < kVec; ++i)
#pragma unroll
      for (int j = 0; j < kN; ++j)
        xv[j][i] = flat[i * kN + j];
  }
}

/// Stores the full chunk x[m][j][c0 + i] = xv[j][i] (the mirror of load_streams).
template <int kN, int kC, Layout kLayout, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void store_streams(T *x, i64 m, int c0, const float (&xv)[kN][kVec]) {
  if constexpr (kLayout == Layout::kSbnc) {
#pragma unroll
    for (int j = 0; j < kN; ++j)
      store_span<T, kVec, gcd(kC, kVec), kPtrAlign>(x + stream_index<kN, kC, kLayout>(m, j, c0), xv[j]);
  } else {
    float flat[kVec * kN];
#pragma unroll
    for (int i = 0; i < kVec; ++i)
#pragma unroll
      for (int j = 0; j < kN; ++j)
        flat[i * kN + j] = xv[j][i];
    store_span<T, kVec * kN, i64(kN) * gcd(kC, kVec), kPtrAlign>(x + stream_index<kN, kC, kLayout>(m, 0, c0), flat);
  }
}

/// The tail chunk: only columns c0 .. c0+count-1 exist (count < kVec); the rest read as 0.
template <int kN, int kC, Layout kLayout, int kVec, typename T>
__device__ __forceinline__ void load_streams_tail(const T *x, i64 m, int c0, int count, float (&xv)[kN][kVec]) {
#pragma unroll
  for (int j = 0; j < kN; ++j)
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      xv[j][i] = i < count ? to_float(x[stream_index<kN, kC, kLayout>(m, j, c0 + i)]) : 0.0f;
}

template <int kN, int kC, Layout kLayout, int kVec, typename T>
__device__ __forceinline__ void store_streams_tail(T *x, i64 m, int c0, int count, const float (&xv)[kN][kVec]) {
#pragma unroll
  for (int j = 0; j < kN; ++j)
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      if (i < count)
        x[stream_index<kN, kC, kLayout>(m, j, c0 + i)] = from_float<T>(xv[j][i]);
}

/// Calls body(m, c0, count) for every (token, column chunk) of M tokens, grid-stride, so any
/// M fits in a small persistent grid (no 65535 limit). count < kVec only for C's tail chunk.
/// Example (kC = 7168, kVec = 8): 896 chunks per token; item 1000 -> m = 1, c0 = (1000-896)*8 = 832.
template <int kC, int kVec, int kThreads, typename Body>
__device__ __forceinline__ void for_each_chunk(i64 M, Body body) {
  constexpr int kChunks = (kC + kVec - 1) / kVec;
  for (i64 item = i64(blockIdx.x) * kThreads + threadIdx.x; item < M * kChunks; item += i64(gridDim.x) * kThreads) {
    const i64 m = item / kChunks;
    const int c0 = int(item - m * kChunks) * kVec;
    body(m, c0, cmin(kVec, kC - c0));
  }
}

/// Calls body(m, first) for every warp span of M tokens, grid-stride over warps: a span is 32 * kRep
/// consecutive column chunks of one token (the last span of a token padded past its chunks),
/// and lane l owns chunks first, first + 32, ..., first + 32 * (kRep - 1) of it (span_chunk), so
/// each of a lane's loads is one coalesced access of the warp and a lane may keep kRep chunks'
/// loads in flight. The loop counts a lane's first chunk over the padded spans, so kRep = 1 with
/// whole spans is for_each_chunk's loop.
/// Example (kC = 7168, kVec = 2, kRep = 4): 3584 chunks, 28 spans a token; lane 5 of the warp on
/// span 30 of the grid (token 1, its span 2) owns chunks 261, 293, 325 and 357 of token 1.
template <int kC, int kVec, int kThreads, int kRep, typename Body>
__device__ __forceinline__ void for_each_warp_span(i64 M, Body body) {
  static_assert(kThreads % 32 == 0, "whole warps");
  constexpr int kChunks = (kC + kVec - 1) / kVec;
  constexpr int kSpan = 32 * kRep;
  constexpr int kPadded = (kChunks + kSpan - 1) / kSpan * kSpan; // a token's chunks, spans padded
  // warp w of block b starts at span b * kWarps + w: chunk (b * kWarps + w) * kSpan + lane
  const i64 start = (i64(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32) * kSpan + threadIdx.x % 32;
  for (i64 item = start; item < M * kPadded; item += i64(gridDim.x) * kThreads * kRep) {
    const i64 m = item / kPadded;
    body(m, int(item - m * kPadded));
  }
}

/// Whether every chunk of every span of kRep * 32 chunks holds kVec columns (no padded span).
template <int kC, int kVec, int kRep>
constexpr bool kSpanWhole = kC % kVec == 0 && (kC / kVec) % (32 * kRep) == 0;

/// Chunk r of a lane's span (for_each_warp_span): its first column c0 and its column count,
/// 0 where the chunk lies past the token's last column; the constant kVec where kSpanWhole.
template <int kC, int kVec, int kRep>
__device__ __forceinline__ int span_chunk(int first, int r, int &c0) {
  const int chunk = first + 32 * r;
  c0 = chunk * kVec;
  if constexpr (kSpanWhole<kC, kVec, kRep>)
    return kVec;
  return chunk < (kC + kVec - 1) / kVec ? cmin(kVec, kC - c0) : 0;
}

/// A chunk of count (<= kVec) columns: the vector path when the chunk is full, else the tail.
template <int kN, int kC, Layout kLayout, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void load_chunk(const T *x, i64 m, int c0, int count, float (&xv)[kN][kVec]) {
  if (kC % kVec == 0 || count == kVec)
    load_streams<kN, kC, kLayout, kVec, kPtrAlign>(x, m, c0, xv);
  else
    load_streams_tail<kN, kC, kLayout, kVec>(x, m, c0, count, xv);
}

template <int kN, int kC, Layout kLayout, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void store_chunk(T *x, i64 m, int c0, int count, const float (&xv)[kN][kVec]) {
  if (kC % kVec == 0 || count == kVec)
    store_streams<kN, kC, kLayout, kVec, kPtrAlign>(x, m, c0, xv);
  else
    store_streams_tail<kN, kC, kLayout, kVec>(x, m, c0, count, xv);
}

/// Writes xv in the stream dtype, or adds it into an fp32 buffer (gradient accumulation).
template <bool kAccumulate, int kN, int kC, Layout kLayout, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void write_dx(void *dx, i64 m, int c0, int count, float (&xv)[kN][kVec]) {
  if constexpr (kAccumulate) {
    float old[kN][kVec];
    load_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<const float *>(dx), m, c0, count, old);
#pragma unroll
    for (int j = 0; j < kN; ++j)
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        xv[j][i] += old[j][i];
    store_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<float *>(dx), m, c0, count, xv);
  } else {
    store_chunk<kN, kC, kLayout, kVec, kPtrAlign>(static_cast<T *>(dx), m, c0, count, xv);
  }
}

/// One token's row of C values (f, y, dy: shape (M, C)): the chunk c0 .. c0+kVec-1.
template <int kC, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void load_row(const T *row, int c0, int count, float (&v)[kVec]) {
  if (count == kVec) {
    load_span<T, kVec, gcd(kC, kVec), kPtrAlign>(row + c0, v);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      v[i] = i < count ? to_float(row[c0 + i]) : 0.0f;
  }
}

template <int kC, int kVec, int kPtrAlign, typename T>
__device__ __forceinline__ void store_row(T *row, int c0, int count, const float (&v)[kVec]) {
  if (count == kVec) {
    store_span<T, kVec, gcd(kC, kVec), kPtrAlign>(row + c0, v);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      if (i < count)
        row[c0 + i] = from_float<T>(v[i]);
  }
}

} // namespace mhc
