// mhcjit templates: project (SPEC.md section 1): H = x (phi * gamma)^T and ms = mean(x^2) per token;
// backward dx, and dphi / dgamma as partial sums over token ranges (finished by reduce_rows).
#pragma once

#include "mhc_common.cuh"

namespace mhc {

/// tf32 forward on tensor cores: mma.sync m16n8k8 (A = 16 tokens x 8 columns of x, B = 8
/// columns x 8 mixes of phi * gamma, both rounded with cvt.rna.tf32). Each warp owns 16 tokens
/// and every mix; K is staged in tiles of kKTile columns. Each tile's products start from zero
/// and are added to Kahan-compensated totals, so a token's H depends only on its own x.
/// Fragment layout (g = lane / 4, t = lane % 4): a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4],
/// a3 = A[g+8][t+4]; b0 = B[t][g], b1 = B[t+4][g]; c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t],
/// c3 = C[g+8][2t+1].
template <int kN, int kC, typename T, typename P, int kThreads, int kRows, bool kHasGamma>
__device__ __forceinline__ void project_fwd_mma(const ProjectFwdArgs &args) {
  constexpr int kK = kN * kC;
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kTiles = (kMix + 7) / 8; // n-tiles of 8 mixes (zero-padded)
  constexpr int kKTile = 32;
  constexpr int kWarps = kThreads / 32;
  static_assert(kRows == 16 * kWarps, "a warp computes 16 tokens");
  __shared__ float xs[kRows][kKTile + 4];
  __shared__ float ps[kTiles * 8][kKTile + 4];
  const T *x = static_cast<const T *>(args.x);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  for (i64 row0 = i64(blockIdx.x) * kRows; row0 < args.M; row0 += i64(gridDim.x) * kRows) {
    Compensated acc[kTiles][4], sq;
    for (int k0 = 0; k0 < kK; k0 += kKTile) {
      for (int e = threadIdx.x; e < kRows * kKTile; e += kThreads) {
        const int r = e / kKTile, kk = e % kKTile;
        const i64 m = row0 + r;
        const int k = k0 + kk;
        xs[r][kk] = (m < args.M && k < kK) ? to_float(x[m * kK + k]) : 0.0f;
      }
      for (int e = threadIdx.x; e < kTiles * 8 * kKTile; e += kThreads) {
        const int n = e / kKTile, kk = e % kKTile;
        const int k = k0 + kk;
        float v = 0.0f;
        if (n < kMix && k < kK) {
          v = load_param<P>(args.phi, i64(n) * kK + k);
          if constexpr (kHasGamma)
            v *= load_param<P>(args.gamma, k);
        }
        ps[n][kk] = v;
      }
      __syncthreads();
      float c[kTiles][4];
#pragma unroll
      for (int nt = 0; nt < kTiles; ++nt)
        c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
      const int r = warp * 16 + g;
#pragma unroll
      for (int kk = 0; kk < kKTile; kk += 8) {
        const unsigned a0 = __float_as_uint(tf32_round(xs[r][kk + t]));
        const unsigned a1 = __float_as_uint(tf32_round(xs[r + 8][kk + t]));
        const unsigned a2 = __float_as_uint(tf32_round(xs[r][kk + t + 4]));
        const unsigned a3 = __float_as_uint(tf32_round(xs[r + 8][kk + t + 4]));
#pragma unroll
        for (int nt = 0; nt < kTiles; ++nt) {
          const unsigned b0 = __float_as_uint(tf32_round(ps[nt * 8 + g][kk + t]));
          const unsigned b1 = __float_as_uint(tf32_round(ps[nt * 8 + g][kk + t + 4]));
          asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                       "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                       : "+f"(c[nt][0]), "+f"(c[nt][1]), "+f"(c[nt][2]), "+f"(c[nt][3])
                       : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        }
      }
#pragma unroll
      for (int nt = 0; nt < kTiles; ++nt)
#pragma unroll
        for (int q = 0; q < 4; ++q)
          acc[nt][q].add(c[nt][q]);
      if (threadIdx.x < kRows) {
        float a = 0.0f;
#pragma unroll 8
        for (int kk = 0; kk < kKTile; ++kk)
          a = fmaf(xs[threadIdx.x][kk], xs[threadIdx.x][kk], a);
        sq.add(a);
      }
      __syncthreads();
    }
#pragma unroll
    for (int nt = 0; nt < kTiles; ++nt)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const i64 m = row0 + warp * 16 + g + (q >= 2 ? 8 : 0);
        const int n = nt * 8 + 2 * t + (q & 1);
        if (m < args.M && n < kMix)
          args.H[m * kMix + n] = acc[nt][q].sum;
      }
    if (threadIdx.x < kRows && row0 + threadIdx.x < args.M)
      args.ms[row0 + threadIdx.x] = sq.sum / float(kK);
  }
}

/// Forward. A block computes kRows tokens at a time: K is walked in tiles of kKTile columns, the
/// x tile and the (phi * gamma) tile are staged in shared memory, and each thread accumulates
/// some of the kRows x N outputs over k in order. A token's sums do not depend on M or on the
/// other tokens of its block (batch invariance). tf32: both operands rounded with cvt.rna.tf32,
/// products exact in fp32, fp32 sums.
template <int kN, int kC, typename T, typename P, int kThreads, int kRows, bool kTf32, bool kHasGamma>
__global__ void __launch_bounds__(kThreads) project_fwd(const __grid_constant__ ProjectFwdArgs args) {
  if constexpr (kTf32) {
    project_fwd_mma<kN, kC, T, P, kThreads, kRows, kHasGamma>(args);
    return;
  }
  constexpr int kK = kN * kC;
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kKTile = 64;
  constexpr int kOut = kRows * kMix;
  constexpr int kPer = (kOut + kThreads - 1) / kThreads;
  static_assert(kRows <= kThreads, "a thread per row sums the squares");
  __shared__ float xs[kRows][kKTile + 1];   // raw x (for ms)
  __shared__ float xo[kRows][kKTile + 1];   // x as a product operand
  __shared__ float ps[kMix][kKTile + 1];    // phi * gamma as a product operand
  const T *x = static_cast<const T *>(args.x);
  for (i64 row0 = i64(blockIdx.x) * kRows; row0 < args.M; row0 += i64(gridDim.x) * kRows) {
    // NOTE: each tile's dot product starts from zero and is added to the running total with
    // Kahan compensation: K reaches 65536, and a plain running sum of that many positive
    // squares (ms) loses about 1e-5 relative accuracy in fp32.
    Compensated acc[kPer], sq;
    for (int k0 = 0; k0 < kK; k0 += kKTile) {
      for (int e = threadIdx.x; e < kRows * kKTile; e += kThreads) {
        const int r = e / kKTile, kk = e % kKTile;
        const i64 m = row0 + r;
        const int k = k0 + kk;
        const float v = (m < args.M && k < kK) ? to_float(x[m * kK + k]) : 0.0f;
        xs[r][kk] = v;
        xo[r][kk] = operand<kTf32>(v);
      }
      for (int e = threadIdx.x; e < kMix * kKTile; e += kThreads) {
        const int t = e / kKTile, kk = e % kKTile;
        const int k = k0 + kk;
        float v = 0.0f;
        if (k < kK) {
          v = load_param<P>(args.phi, i64(t) * kK + k);
          if constexpr (kHasGamma)
            v *= load_param<P>(args.gamma, k);
        }
        ps[t][kk] = operand<kTf32>(v);
      }
      __syncthreads();
#pragma unroll
      for (int p = 0; p < kPer; ++p) {
        const int o = threadIdx.x + p * kThreads;
        if (o < kOut) {
          const int r = o / kMix, t = o % kMix;
          float a = 0.0f;
#pragma unroll 8
          for (int kk = 0; kk < kKTile; ++kk)
            a = fmaf(xo[r][kk], ps[t][kk], a);
          acc[p].add(a);
        }
      }
      if (threadIdx.x < kRows) {
        float a = 0.0f;
#pragma unroll 8
        for (int kk = 0; kk < kKTile; ++kk)
          a = fmaf(xs[threadIdx.x][kk], xs[threadIdx.x][kk], a);
        sq.add(a);
      }
      __syncthreads();
    }
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int o = threadIdx.x + p * kThreads;
      if (o < kOut && row0 + o / kMix < args.M)
        args.H[(row0 + o / kMix) * kMix + o % kMix] = acc[p].sum;
    }
    if (threadIdx.x < kRows && row0 + threadIdx.x < args.M)
      args.ms[row0 + threadIdx.x] = sq.sum / float(kK);
  }
}

/// Backward. Block b owns columns k of one K slice (a thread per k) and one range of tokens
/// (blockIdx.x / slices). Walking its tokens it writes dx[m][k] and sums
/// S[t] = sum_m dH[m][t] x[m][k] in registers; it ends by writing its partial dphi = gamma S and
/// dgamma = sum_t phi S. No atomics; the token ranges depend on M only through their count.
template <int kN, int kC, typename T, typename P, int kThreads, bool kTf32, bool kHasGamma, bool kAccumulate>
__global__ void __launch_bounds__(kThreads) project_bwd(const __grid_constant__ ProjectBwdArgs args) {
  constexpr int kK = kN * kC;
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kSlices = (kK + kThreads - 1) / kThreads;
  const int slice = blockIdx.x % kSlices, split = blockIdx.x / kSlices;
  const int k = slice * kThreads + threadIdx.x;
  const bool valid = k < kK;
  const T *x = static_cast<const T *>(args.x);
  float phi[kMix], S[kMix];
  const float g = (kHasGamma && valid) ? load_param<P>(args.gamma, k) : 1.0f;
#pragma unroll
  for (int t = 0; t < kMix; ++t) {
    phi[t] = valid ? load_param<P>(args.phi, i64(t) * kK + k) : 0.0f;
    S[t] = 0.0f;
  }
  const i64 m0 = split * args.tokens_per_split;
  const i64 m1 = m0 + args.tokens_per_split < args.M ? m0 + args.tokens_per_split : args.M;
  for (i64 m = m0; m < m1; ++m) {
    const float xv = valid ? to_float(x[m * kK + k]) : 0.0f;
    const float *dH = args.dH + m * kMix;
    float d = 0.0f;
#pragma unroll
    for (int t = 0; t < kMix; ++t) {
      const float dh = operand<kTf32>(dH[t]);
      d = fmaf(dh, operand<kTf32>(phi[t]), d);
      S[t] = fmaf(dh, operand<kTf32>(xv), S[t]);
    }
    if (valid) {
      float dx = g * d + args.dms[m] * 2.0f * xv / float(kK);
      if constexpr (kAccumulate) {
        float *out = static_cast<float *>(args.dx) + m * kK + k;
        *out += dx;
      } else {
        static_cast<T *>(args.dx)[m * kK + k] = from_float<T>(dx);
      }
    }
  }
  if (valid) {
    float dg = 0.0f;
#pragma unroll
    for (int t = 0; t < kMix; ++t) {
      args.dphi_part[(i64(split) * kMix + t) * kK + k] = g * S[t];
      dg = fmaf(phi[t], S[t], dg);
    }
    if constexpr (kHasGamma)
      args.dgamma_part[i64(split) * kK + k] = dg;
  }
}

} // namespace mhc
