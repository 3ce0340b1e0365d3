// mhcjit templates: TF32 tensor-core products (mma.sync m16n8k8) and the operand splits of the two
// precision modes: `tf32` rounds each operand once (cvt.rna), `fp32` splits each operand into a
// TF32 high part and a TF32 low part and sums three products (3xTF32), which keeps the product
// about as accurate as an IEEE fp32 multiply.
#pragma once

#include "mhc_common.cuh"

namespace mhc {

/// Fragment layout of m16n8k8 (g = lane / 4, t = lane % 4):
///   a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4]   (A is 16 x 8, row major)
///   b0 = B[t][g], b1 = B[t+4][g]                                     (B is 8 x 8)
///   c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t], c3 = C[g+8][2t+1]
/// The k index of A's columns and B's rows only has to agree between A and B, so kernels map
/// k = t and k = t + 4 to whichever two columns a thread already holds in registers.
__device__ __forceinline__ void mma_tf32(float (&c)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/// An operand as the tensor core sees it: `hi` always, `lo` (v - hi, rounded to TF32) only in
/// the fp32 mode. kExact marks values that TF32 represents exactly (bf16 and fp16 inputs), whose
/// low part is zero and whose rounding is skipped.
template <bool kTf32, bool kExact> struct Operand {
  unsigned hi, lo;
  __device__ __forceinline__ explicit Operand(float v) {
    if constexpr (kExact) {
      hi = __float_as_uint(v);
      lo = 0u;
    } else {
      const float h = tf32_round(v);
      hi = __float_as_uint(h);
      lo = kTf32 ? 0u : __float_as_uint(tf32_round(v - h));
    }
  }
};

/// Does the fp32 mode need the product of A's low part? Not when A is exact in TF32.
/// c += A * B in the precision mode: one product (tf32), or lo*hi + hi*lo + hi*hi (3xTF32, the
/// small terms first; a term whose low operand is exactly zero is skipped at compile time).
template <bool kTf32, bool kExactA, bool kExactB>
__device__ __forceinline__ void mma_mode(float (&c)[4], const Operand<kTf32, kExactA> &a0, const Operand<kTf32, kExactA> &a1,
                                         const Operand<kTf32, kExactA> &a2, const Operand<kTf32, kExactA> &a3,
                                         const Operand<kTf32, kExactB> &b0, const Operand<kTf32, kExactB> &b1) {
  if constexpr (!kTf32) {
    if constexpr (!kExactA)
      mma_tf32(c, a0.lo, a1.lo, a2.lo, a3.lo, b0.hi, b1.hi);
    if constexpr (!kExactB)
      mma_tf32(c, a0.hi, a1.hi, a2.hi, a3.hi, b0.lo, b1.lo);
  }
  mma_tf32(c, a0.hi, a1.hi, a2.hi, a3.hi, b0.hi, b1.hi);
}

} // namespace mhc
