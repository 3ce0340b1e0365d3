// mhcjit templates: device types, conversions, vector memory access and block reductions.
// Self-contained (no CUDA headers), so NVRTC needs no include path; every op template includes it.
#pragma once

#include "mhc_args.h"

namespace mhc {

using i64 = long long;

/// x[m][c][j] (sbcn, TransformerEngine) or x[m][j][c] (sbnc, DeepSeek and Megatron).
enum class Layout : int { kSbcn = 0, kSbnc = 1 };

/// Storage-only 16-bit types; arithmetic always happens in fp32.
struct bf16_t { unsigned short bits; };
struct fp16_t { unsigned short bits; };

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(bf16_t v) { return __uint_as_float(unsigned(v.bits) << 16); }
__device__ __forceinline__ float to_float(fp16_t v) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
  return f;
}

/// Element i of a parameter tensor (phi, gamma, bias) stored as P (float, or the stream dtype),
/// converted to fp32. Example: P = bf16_t, bits 0x3fc0 at p[i] -> 1.5f.
template <typename P> __device__ __forceinline__ float load_param(const void *p, i64 i) {
  return to_float(static_cast<const P *>(p)[i]);
}

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16_t from_float<bf16_t>(float v) {
  bf16_t r;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.bits) : "f"(v)); // round to nearest even, sm_80+
  return r;
}
template <> __device__ __forceinline__ fp16_t from_float<fp16_t>(float v) {
  fp16_t r;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(v));
  return r;
}

/// Select<c, A, B>::type is A when c holds, else B (no <type_traits> under NVRTC).
template <bool kCond, typename A, typename B> struct Select { using type = A; };
template <typename A, typename B> struct Select<false, A, B> { using type = B; };

__host__ __device__ constexpr int cmin(int a, int b) { return a < b ? a : b; }
__host__ __device__ constexpr int gcd(i64 a, i64 b) { return b == 0 ? int(a) : gcd(b, a % b); }
/// Largest power of two that divides v (v > 0).
__host__ __device__ constexpr int pow2_factor(i64 v) { return int(v & -v); }

/// Bytes per access for a span of kCount elements of T whose first element sits at an element
/// index that is a multiple of kAlignElems, from a base pointer aligned to kPtrAlign bytes.
/// Example: bf16, kCount = 8, kAlignElems = 8, kPtrAlign = 16 -> gcd(16, 16, 16) = 16 (uint4).
///          bf16, kCount = 8, kAlignElems = 7 (C = 7), kPtrAlign = 16 -> 2 (one element at a time).
template <typename T, int kCount, i64 kAlignElems, int kPtrAlign>
__host__ __device__ constexpr int access_bytes() {
  return cmin(16, cmin(pow2_factor(i64(kCount) * sizeof(T)),
                       cmin(pow2_factor(kAlignElems * i64(sizeof(T))), kPtrAlign)));
}

template <int kBytes> struct AccessWord;
template <> struct AccessWord<2> { using type = unsigned short; };
template <> struct AccessWord<4> { using type = unsigned int; };
template <> struct AccessWord<8> { using type = uint2; };
template <> struct AccessWord<16> { using type = uint4; };

/// Loads kCount consecutive elements into fp32 registers with the widest legal accesses.
template <typename T, int kCount, i64 kAlignElems, int kPtrAlign>
__device__ __forceinline__ void load_span(const T *__restrict__ p, float (&out)[kCount]) {
  constexpr int kBytes = access_bytes<T, kCount, kAlignElems, kPtrAlign>();
  using Word = typename AccessWord<kBytes>::type;
  constexpr int kWords = kCount * int(sizeof(T)) / kBytes;
  alignas(16) T raw[kCount];
#pragma unroll
  for (int w = 0; w < kWords; ++w)
    reinterpret_cast<Word *>(raw)[w] = reinterpret_cast<const Word *>(p)[w];
#pragma unroll
  for (int i = 0; i < kCount; ++i)
    out[i] = to_float(raw[i]);
}

/// Stores kCount fp32 values as T with the widest legal accesses.
template <typename T, int kCount, i64 kAlignElems, int kPtrAlign>
__device__ __forceinline__ void store_span(T *__restrict__ p, const float (&in)[kCount]) {
  constexpr int kBytes = access_bytes<T, kCount, kAlignElems, kPtrAlign>();
  using Word = typename AccessWord<kBytes>::type;
  constexpr int kWords = kCount * int(sizeof(T)) / kBytes;
  alignas(16) T raw[kCount];
#pragma unroll
  for (int i = 0; i < kCount; ++i)
    raw[i] = from_float<T>(in[i]);
#pragma unroll
  for (int w = 0; w < kWords; ++w)
    reinterpret_cast<Word *>(p)[w] = reinterpret_cast<const Word *>(raw)[w];
}

/// The logistic function, with the accurate expf (no fast math anywhere in mhcjit) and a
/// reciprocal within 1 ulp (rcp.approx.ftz) instead of a division: the divisor 1 + e^-h lies in
/// [1, inf], where the flush-to-zero form errs only on results below 2^-126 (h < -87, flushed to
/// 0) and 1/inf = 0. A division compiles to a slow-path branch per call, which ptxas does not
/// overlap with the next call's: scale's 2n sigmoids ran as that many serial chains.
__device__ __forceinline__ float sigmoid(float h) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + expf(-h)));
  return r;
}

/// v rounded to TF32 (10 mantissa bits), round to nearest with ties away (cvt.rna).
__device__ __forceinline__ float tf32_round(float v) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
  return __uint_as_float(r);
}

/// Operand rounding of the precision mode: identity for fp32, TF32 for tf32.
template <bool kTf32> __device__ __forceinline__ float operand(float v) {
  if constexpr (kTf32)
    return tf32_round(v);
  else
    return v;
}

/// A Kahan-compensated running sum (deterministic: a fixed sequence of fp32 operations).
struct Compensated {
  float sum = 0.0f, carry = 0.0f;
  __device__ __forceinline__ void add(float v) {
    const float y = v - carry;
    const float t = sum + y;
    carry = (t - sum) - y;
    sum = t;
  }
};

/// Waits until the grids launched before this one on its stream have finished and their writes
/// are visible (griddepcontrol.wait). A kernel launched with programmatic stream serialization
/// (launchKernel's AfterPrevious) may start before its predecessor ends and must call this before
/// it reads what the predecessor wrote; launched normally it returns at once. sm_90 and later.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// Lets the kernel launched after this one with programmatic stream serialization (a
/// reduce_rows of this kernel's partials) be scheduled now rather than at this grid's end; it
/// still waits in wait_for_previous_grid for this grid to finish. Without such a successor it
/// does nothing. sm_90 and later.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

/// Sum over the 32 lanes of a warp in a fixed butterfly order; every lane gets the total.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// Sums v[0..kCount) over the block in a fixed order (butterfly in each warp, then warps in
/// index order), so the result is bitwise reproducible. Thread 0 receives the totals.
/// `scratch` holds kThreads/32 * kCount values of type V; the call ends with a barrier so it may be reused.
template <int kThreads, int kCount, typename V>
__device__ __forceinline__ void block_sum_to_thread0(V (&v)[kCount], V *scratch) {
  constexpr int kWarps = kThreads / 32;
#pragma unroll
  for (int i = 0; i < kCount; ++i)
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
      v[i] += __shfl_xor_sync(0xffffffffu, v[i], offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (kWarps > 1) {
    if (lane == 0)
#pragma unroll
      for (int i = 0; i < kCount; ++i)
        scratch[warp * kCount + i] = v[i];
    __syncthreads();
    if (threadIdx.x == 0)
#pragma unroll
      for (int i = 0; i < kCount; ++i) {
        V s = scratch[i];
        for (int w = 1; w < kWarps; ++w)
          s += scratch[w * kCount + i];
        v[i] = s;
      }
  }
  __syncthreads();
}

} // namespace mhc
