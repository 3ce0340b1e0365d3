// mhcjit templates: project (SPEC.md section 1): H = x (phi * gamma)^T and ms = mean(x^2) per token;
// backward dx, and dphi / dgamma as partial sums over token ranges (finished by reduce_rows).
// Both directions multiply on tensor cores (mma.sync m16n8k8, TF32 operands; the fp32 mode splits
// every operand into two TF32 parts, 3xTF32), and every thread moves 8 consecutive columns of x
// with 16-byte accesses where the alignment allows.
#pragma once

#include "mhc_async.cuh"
#include "mhc_mma.cuh"

namespace mhc {

/// Eight consecutive columns c..c+7 of row `row` of a (rows, kK) matrix as fp32; columns past kK
/// and rows past `rows` read as zero. Full spans use the widest aligned accesses.
template <typename T, int kK, int kPtrAlign>
__device__ __forceinline__ void load_cols8(const T *p, i64 row, i64 rows, int c, float (&v)[8]) {
  if (row < rows && c + 8 <= kK) {
    load_span<T, 8, kK, kPtrAlign>(p + row * kK + c, v);
    return;
  }
#pragma unroll
  for (int e = 0; e < 8; ++e)
    v[e] = (row < rows && c + e < kK) ? to_float(p[row * kK + c + e]) : 0.0f;
}

/// Stores (or, with kAccumulate, adds into fp32) eight consecutive columns of row `row`.
template <typename T, int kK, int kPtrAlign, bool kAccumulate>
__device__ __forceinline__ void store_cols8(void *dst, i64 row, int c, const float (&v)[8]) {
  if constexpr (kAccumulate) {
    float *p = static_cast<float *>(dst) + row * kK + c;
    if (c + 8 <= kK) {
      float old[8], sum[8];
      load_span<float, 8, kK, kPtrAlign>(p, old);
#pragma unroll
      for (int e = 0; e < 8; ++e)
        sum[e] = old[e] + v[e];
      store_span<float, 8, kK, kPtrAlign>(p, sum);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e)
        if (c + e < kK)
          p[e] += v[e];
    }
  } else {
    T *p = static_cast<T *>(dst) + row * kK + c;
    if (c + 8 <= kK) {
      store_span<T, 8, kK, kPtrAlign>(p, v);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e)
        if (c + e < kK)
          p[e] = from_float<T>(v[e]);
    }
  }
}

/// Eight consecutive elements of a row as stored (8 * sizeof(T) bytes, one or two 16-byte
/// shared-memory reads), converted on use.
template <typename T> struct RawCols8 {
  alignas(16) T v[8];
};

/// The address of 16-byte chunk `chunk` of row `row` in a tile of rows of kRowChunks chunks, chunk
/// j of row r stored at j ^ (r & 1) kFlip: the 16-byte reads of a quarter warp that takes rows 2i
/// and 2i + 1 at the chunks of t = 0..3 hit distinct banks (kFlip 4 where each thread reads one
/// chunk, 16-bit x; 1 where it reads two consecutive ones, fp32 x).
template <int kRowChunks, int kFlip> __device__ __forceinline__ unsigned char *swizzled_chunk(unsigned char *tile, int row, int chunk) {
  return tile + (row * kRowChunks + (chunk ^ ((row & 1) * kFlip))) * 16;
}

/// Eight consecutive columns col..col+7 (col a multiple of 8) of row `row` of a swizzled tile of
/// x rows of kRowChunks chunks, as fp32.
template <typename T, int kRowChunks> __device__ __forceinline__ void read_swizzled8(unsigned char *tile, int row, int col, float (&v)[8]) {
  constexpr int kChunk = 16 / int(sizeof(T));
  RawCols8<T> r;
#pragma unroll
  for (int q = 0; q < 8 / kChunk; ++q)
    reinterpret_cast<uint4 *>(r.v)[q] = *reinterpret_cast<const uint4 *>(
        swizzled_chunk<kRowChunks, sizeof(T) == 2 ? 4 : 1>(tile, row, col / kChunk + q));
#pragma unroll
  for (int e = 0; e < 8; ++e)
    v[e] = to_float(r.v[e]);
}

/// The 16 bytes at p (16-byte aligned) as 16 / sizeof(P) parameter values in fp32. The load is
/// asm volatile, so it stays where it is written (ahead of the multiplies whose time it hides).
template <typename P> __device__ __forceinline__ void load_param16(const P *p, float (&v)[16 / sizeof(P)]) {
  constexpr int kChunk = 16 / int(sizeof(P));
  alignas(16) P raw[kChunk];
  uint4 &w = *reinterpret_cast<uint4 *>(raw);
  asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(w.x), "=r"(w.y), "=r"(w.z), "=r"(w.w) : "l"(p));
#pragma unroll
  for (int e = 0; e < kChunk; ++e)
    v[e] = to_float(raw[e]);
}

/// 16 bytes' worth of parameter columns col.. of row `row` of a (rows, kK) matrix of P, as fp32;
/// columns at or past `end` and rows at or past `rows` read as zero.
template <typename P, int kK, int kPtrAlign>
__device__ __forceinline__ void load_param16(const P *p, int row, int rows, int col, int end, float (&v)[16 / sizeof(P)]) {
  constexpr int kChunk = 16 / int(sizeof(P));
  constexpr bool kVector = kPtrAlign >= 16 && (i64(kK) * sizeof(P)) % 16 == 0;
  if (kVector && row < rows && col + kChunk <= end) {
    load_param16(p + i64(row) * kK + col, v);
    return;
  }
#pragma unroll
  for (int e = 0; e < kChunk; ++e)
    v[e] = row < rows && col + e < end ? to_float(p[i64(row) * kK + col + e]) : 0.0f;
}

/// Forward. Block b computes kRows tokens over one K split (project_fwd_splits: a function of K
/// alone, so a token's sums never depend on M); blocks of one split are adjacent, so they share
/// that split's slice of phi in L2. Each warp owns 16 * kMT tokens and every mix.
/// A step covers project_fwd_step_cols() columns: 256 bytes of each x row where N <= 24, for
/// DRAM (a warp that reads 128 bytes a row a step, the next 128 a step later, reaches about 92%
/// of the copy bandwidth on an H100; 256 bytes 97-99%, PERF.md session 16). Each warp's x rows
/// stream through a ring of project_fwd_stages() slots in (dynamic) shared memory, filled by
/// cp.async that many steps minus one ahead. phi * gamma goes the other way: the block loads the
/// next step's tile into registers while it multiplies this one, then stores it, rounded to TF32
/// operands (both parts in the fp32 mode, 3xTF32), into one of two tiles (row stride
/// project_fwd_phi_stride() words: the 16-byte reads of a quarter warp hit 8 distinct 4-bank
/// groups). So the rounding happens once a block, not once a warp. A step needs one barrier: it
/// makes the step's x and phi tile visible to every warp and frees the x slot and phi tile of the
/// step before.
/// Within a step the warp multiplies 64 columns at a time: each thread takes columns c..c+7 and
/// c+32..c+39 (c = k0 + 8t) of rows g and g+8 of each of its 16-token tiles, and the same columns
/// of mix g of each n-tile of 8 mixes. The k-step s of an mma maps k = t to column c + 2s and
/// k = t + 4 to column c + 2s + 1, and phi's fragment uses the same map. Each 64 columns' products
/// start from zero and are then added to the running sums on CUDA cores (round to nearest), so
/// the tensor core's accumulation covers 64 columns only. With one split the kernel writes H and
/// ms; with several, split s writes its partial H (M, N) at args.H + s M (N + 1) and its partial
/// ms (M) at args.ms + s M (N + 1).
template <int kN, int kC, typename T, typename P, int kThreads, int kRows, bool kTf32, bool kHasGamma, int kPtrAlign>
__global__ void __launch_bounds__(kThreads, project_fwd_min_blocks(kN, sizeof(T), kRows, kTf32, kThreads))
    project_fwd(const __grid_constant__ ProjectFwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  constexpr int kK = kN * kC;
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kTiles = (kMix + 7) / 8; // n-tiles of 8 mixes (zero-padded)
  constexpr int kWarps = kThreads / 32;
  constexpr int kMT = kRows / (16 * kWarps);
  static_assert(kMT >= 1 && kRows == 16 * kMT * kWarps, "a warp computes whole 16-token tiles");
  constexpr long long kSplitCols = project_fwd_split_cols(kK);
  constexpr bool kExactX = sizeof(T) == 2; // bf16 and fp16 values are exact in TF32
  constexpr int kCols = project_fwd_step_cols(kN, sizeof(T));
  constexpr int kStages = project_fwd_stages(kN, sizeof(T), kRows);
  constexpr int kParts = kTf32 ? 1 : 2;
  constexpr int kPhiStride = kCols + 4;
  constexpr int kWarpRows = 16 * kMT;
  constexpr int kXChunk = 16 / int(sizeof(T)), kXRowChunks = kCols / kXChunk;
  constexpr int kPChunk = 16 / int(sizeof(P)), kPRowChunks = kCols / kPChunk;
  constexpr int kXWarpBytes = kWarpRows * kCols * int(sizeof(T));
  constexpr int kXSlotBytes = kWarps * kXWarpBytes;
  static_assert(kStages >= 2, "the ring holds the step in use and one in flight");
  static_assert(kStages * kXSlotBytes + 2 * kParts * kTiles * 8 * kPhiStride * 4 ==
                    project_fwd_shared_bytes(kN, sizeof(T), kRows, kTf32),
                "host and device agree on the shared memory");
  constexpr bool kAsyncX = kPtrAlign >= 16 && (i64(kK) * sizeof(T)) % 16 == 0;
  using XOp = Operand<kTf32, kExactX>;
  using POp = Operand<kTf32, false>;
  extern __shared__ __align__(16) unsigned char shared[];

  const T *x = static_cast<const T *>(args.x);
  const P *phi = static_cast<const P *>(args.phi), *gamma = static_cast<const P *>(args.gamma);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const i64 token_blocks = (args.M + kRows - 1) / kRows;
  const int split = int(i64(blockIdx.x) / token_blocks);
  const i64 row0 = (i64(blockIdx.x) % token_blocks) * kRows + warp * kWarpRows;
  const int k_begin = int(split * kSplitCols);
  const int k_end = int(k_begin + kSplitCols < kK ? k_begin + kSplitCols : kK);
  const int steps = k_end > k_begin ? (k_end - k_begin + kCols - 1) / kCols : 0;

  auto x_tile = [&](int stage) { return shared + stage * kXSlotBytes + warp * kXWarpBytes; };
  // phi * gamma as TF32 operand words: [tile][part][mix][column]
  auto phi_tiles = reinterpret_cast<unsigned(*)[kParts][kTiles * 8][kPhiStride]>(shared + kStages * kXSlotBytes);

  // The x copies follow a per-lane plan made once, so that a step's fill adds offsets only: a
  // lane keeps one column chunk (lane % kXRowChunks) and takes the rows lane / kXRowChunks +
  // j kXRowStep, j < kXCopies. The row step is even, so all rows of a plan share one swizzle
  // (row & 1) and the shared addresses are a base plus constants. Example (bf16 x, 16 rows a
  // warp, 128-column steps): lane 21 copies chunk 5 of rows 1, 3, .., 15.
  constexpr int kXRowStep = 32 / kXRowChunks, kXCopies = kWarpRows / kXRowStep;
  static_assert(kXRowStep % 2 == 0 && kWarpRows % kXRowStep == 0 && kXCopies <= 32, "x plan: whole rows, one swizzle");
  const int x_chunk = lane % kXRowChunks, x_row = lane / kXRowChunks;
  const T *x_src = x + (row0 + x_row) * kK + k_begin + x_chunk * kXChunk; // step 0's chunk of row j = 0
  const unsigned x_dst = shared_address(swizzled_chunk<kXRowChunks, sizeof(T) == 2 ? 4 : 1>(x_tile(0), x_row, x_chunk));
  unsigned x_rows_in = 0; // bit j: row j of the plan is a token
#pragma unroll
  for (int j = 0; j < kXCopies; ++j)
    x_rows_in |= (row0 + x_row + j * kXRowStep < args.M ? 1u : 0u) << j;
  const unsigned long long policy = stream_policy();

  // Issues the copies of the warp's x rows of step `step` (columns k0..k0+kCols-1,
  // k0 = k_begin + kCols step) into a slot. Rows past M and columns past the split read as zero
  // (the last step may be short).
  // The shared address of the slot the next fill_x writes, one register advanced a slot a fill
  // (steps are filled in order). Written as stage * kXSlotBytes added to x_dst, ptxas moved the
  // slot offset into a uniform register, and the copies it then encoded with a uniform offset and
  // the L2 policy failed with an illegal instruction on the H100 (with gamma, 2 slots).
  unsigned x_fill_dst = x_dst;
  auto fill_x = [&](int stage, int step) {
    const int k0 = k_begin + kCols * step;
    if constexpr (kAsyncX) {
      const unsigned dst = x_fill_dst;
      x_fill_dst = x_fill_dst + kXSlotBytes == x_dst + kStages * kXSlotBytes ? x_dst : x_fill_dst + kXSlotBytes;
      const T *src = x_src + i64(kCols) * step;
      const bool col_in = k0 + x_chunk * kXChunk < k_end;
#pragma unroll
      for (int j = 0; j < kXCopies; ++j) {
        const bool in = col_in && (x_rows_in >> j & 1u);
        copy16_async_stream(dst + j * kXRowStep * kXRowChunks * 16, in ? src + i64(j) * kXRowStep * kK : x, in ? 16 : 0,
                            policy);
      }
    } else {
      unsigned char *xs = x_tile(stage);
      for (int i = lane; i < kWarpRows * kCols; i += 32) {
        const int row = i / kCols, cc = i % kCols, col = k0 + cc;
        const T v = row0 + row < args.M && col < k_end ? x[(row0 + row) * kK + col] : T{};
        reinterpret_cast<T *>(swizzled_chunk<kXRowChunks, sizeof(T) == 2 ? 4 : 1>(xs, row, cc / kXChunk))[cc % kXChunk] = v;
      }
    }
  };

  // phi's plan: thread keeps column chunk threadIdx.x % kPRowChunks and takes the mix rows
  // threadIdx.x / kPRowChunks + j kPRowStep, j < kPLoads (rows past N, up to the n-tiles' 8
  // kTiles, are zeros), with gamma's chunk of the same columns. Example (fp32 phi, 128 threads,
  // 128-column steps, N = 24): thread 37 loads chunk 5 (columns 20..23) of mixes 1, 5, .., 21.
  constexpr int kPRowStep = kThreads / kPRowChunks;
  static_assert(kThreads % kPRowChunks == 0, "phi plan: whole rows");
  constexpr int kPLoads = (kTiles * 8 + kPRowStep - 1) / kPRowStep;
  const int p_chunk = threadIdx.x % kPRowChunks, p_row = threadIdx.x / kPRowChunks;
  float pv[kPLoads][kPChunk], gv[kPChunk];
  __builtin_assume(p_row < kPRowStep); // so rows below N need no test
  constexpr bool kVectorP = kPtrAlign >= 16 && (i64(kK) * sizeof(P)) % 16 == 0;
  auto load_phi = [&](int step) {
    const int k0 = k_begin + kCols * step, col = k0 + p_chunk * kPChunk;
    if (kVectorP && k0 + kCols <= k_end) { // a whole step: 16-byte loads, rows past N zero
      if constexpr (kHasGamma)
        load_param16(gamma + col, gv);
#pragma unroll
      for (int j = 0; j < kPLoads; ++j) {
        if (p_row + j * kPRowStep < kMix) {
          load_param16(phi + i64(p_row + j * kPRowStep) * kK + col, pv[j]);
        } else {
#pragma unroll
          for (int e = 0; e < kPChunk; ++e)
            pv[j][e] = 0.0f;
        }
      }
    } else {
#pragma unroll
      for (int j = 0; j < kPLoads; ++j)
        load_param16<P, kK, kPtrAlign>(phi, p_row + j * kPRowStep, kMix, col, k_end, pv[j]);
      if constexpr (kHasGamma)
        load_param16<P, kK, kPtrAlign>(gamma, 0, 1, col, k_end, gv);
    }
  };
  auto store_phi = [&](int tile) {
#pragma unroll
    for (int j = 0; j < kPLoads; ++j) {
      const int row = p_row + j * kPRowStep;
      if (row < kTiles * 8) {
        unsigned hi[kPChunk], lo[kPChunk];
#pragma unroll
        for (int e = 0; e < kPChunk; ++e) {
          const POp o(kHasGamma ? pv[j][e] * gv[e] : pv[j][e]);
          hi[e] = o.hi;
          lo[e] = o.lo;
        }
#pragma unroll
        for (int q = 0; q < kPChunk / 4; ++q) {
          *reinterpret_cast<uint4 *>(&phi_tiles[tile][0][row][p_chunk * kPChunk + 4 * q]) =
              make_uint4(hi[4 * q], hi[4 * q + 1], hi[4 * q + 2], hi[4 * q + 3]);
          if constexpr (!kTf32)
            *reinterpret_cast<uint4 *>(&phi_tiles[tile][1][row][p_chunk * kPChunk + 4 * q]) =
                make_uint4(lo[4 * q], lo[4 * q + 1], lo[4 * q + 2], lo[4 * q + 3]);
        }
      }
    }
  };

  float acc[kMT][kTiles][4];
  float sq[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    sq[mt][0] = sq[mt][1] = 0.0f;
#pragma unroll
    for (int nt = 0; nt < kTiles; ++nt)
      acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;
  }

#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < steps)
      fill_x(st, st);
    commit_async();
  }
  if (steps > 0) {
    load_phi(0);
    store_phi(0);
  }
  for (int i = 0; i < steps; ++i) {
    wait_async<kStages - 2>(); // this thread's copies of step i have landed
    __syncthreads();           // ... every thread's, and phi tile i % 2; every warp is done with step i - 1
    // The x slot refilled here is step i - 1's.
    if (i + kStages - 1 < steps)
      fill_x((i + kStages - 1) % kStages, i + kStages - 1);
    commit_async();
    const bool phi_next = i + 1 < steps;
    if (phi_next)
      load_phi(i + 1);
    unsigned char *xs = x_tile(i % kStages);
    const int k_step = k_begin + kCols * i;
#pragma unroll
    for (int half = 0; half < kCols / 64; ++half) {
      if (half > 0 && k_step + 64 * half >= k_end)
        break; // the split's last step ends here
      float xv[kMT][2][2][8];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int grp = 0; grp < 2; ++grp)
            read_swizzled8<T, kXRowChunks>(xs, mt * 16 + h * 8 + g, 64 * half + grp * 32 + t * 8, xv[mt][h][grp]);
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float s = 0.0f;
#pragma unroll
          for (int grp = 0; grp < 2; ++grp)
#pragma unroll
            for (int e = 0; e < 8; ++e)
              s = fmaf(xv[mt][h][grp][e], xv[mt][h][grp][e], s);
          sq[mt][h] += s; // blocked summation: these 64 columns' squares first
        }
      float step[kMT][kTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kTiles; ++nt)
          step[mt][nt][0] = step[mt][nt][1] = step[mt][nt][2] = step[mt][nt][3] = 0.0f;
#pragma unroll
      for (int grp = 0; grp < 2; ++grp) {
#pragma unroll
        for (int nt = 0; nt < kTiles; ++nt) {
          // this thread's eight columns of mix nt * 8 + g, times gamma, as TF32 operands
          unsigned b[2][8];
#pragma unroll
          for (int part = 0; part < kParts; ++part) {
            const uint4 *src = reinterpret_cast<const uint4 *>(&phi_tiles[i % 2][part][nt * 8 + g][64 * half + grp * 32 + t * 8]);
            const uint4 lo4 = src[0], hi4 = src[1];
            b[part][0] = lo4.x, b[part][1] = lo4.y, b[part][2] = lo4.z, b[part][3] = lo4.w;
            b[part][4] = hi4.x, b[part][5] = hi4.y, b[part][6] = hi4.z, b[part][7] = hi4.w;
          }
#pragma unroll
          for (int s = 0; s < 4; ++s)
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) {
              const XOp a0(xv[mt][0][grp][2 * s]), a1(xv[mt][1][grp][2 * s]);
              const XOp a2(xv[mt][0][grp][2 * s + 1]), a3(xv[mt][1][grp][2 * s + 1]);
              if constexpr (!kTf32) {
                if constexpr (!kExactX)
                  mma_tf32(step[mt][nt], a0.lo, a1.lo, a2.lo, a3.lo, b[0][2 * s], b[0][2 * s + 1]);
                mma_tf32(step[mt][nt], a0.hi, a1.hi, a2.hi, a3.hi, b[1][2 * s], b[1][2 * s + 1]);
              }
              mma_tf32(step[mt][nt], a0.hi, a1.hi, a2.hi, a3.hi, b[0][2 * s], b[0][2 * s + 1]);
            }
        }
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kTiles; ++nt)
#pragma unroll
          for (int q = 0; q < 4; ++q)
            acc[mt][nt][q] += step[mt][nt][q];
    }
    if (phi_next)
      store_phi((i + 1) % 2); // that tile was last read in step i - 1
  }

  // split s's partials: (M, N) H then (M) ms, M (N + 1) floats a split (one reduce_rows finishes both)
  float *H = args.H + i64(split) * args.M * (kMix + 1);
  float *ms = args.ms + i64(split) * args.M * (kMix + 1);
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int nt = 0; nt < kTiles; ++nt)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const i64 m = row0 + mt * 16 + g + (q >= 2 ? 8 : 0);
        const int n = nt * 8 + 2 * t + (q & 1);
        if (m < args.M && n < kMix)
          H[m * kMix + n] = acc[mt][nt][q];
      }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // The four lanes of a row hold interleaved columns; a fixed butterfly adds them.
      float s = sq[mt][h];
      s += __shfl_xor_sync(0xffffffffu, s, 1);
      s += __shfl_xor_sync(0xffffffffu, s, 2);
      const i64 m = row0 + mt * 16 + h * 8 + g;
      if (t == 0 && m < args.M)
        ms[m] = s / float(kK);
    }
  }
}

/// Backward. Each warp owns 64 columns of K and walks one token range (blocks: column block
/// fastest, then token range). Thread (g, t) holds columns c..c+7 (c = warp's first + 8g) of
/// tokens m+t and m+t+4 for every 8 tokens m; both products map those registers straight into
/// mma fragments, with rows of a 16-row tile being the column pairs (c+2p, c+2p+1):
///   dx^T (64 columns x 8 tokens) = (phi*gamma)^T (64 x N) * dH^T (N x 8 tokens), the token of
///     n-index j being m + j/2 + 4(j%2), so thread (g, t) gets exactly its own 16 dx values;
///   S^T (64 columns x N) += x^T (64 x 8 tokens) * dH (8 tokens x N), k = t and t + 4 being the
///     tokens m+t and m+t+4.
/// S stays in registers for the whole range; the warp ends by writing its partial
/// dphi = gamma S and dgamma = sum_t phi S. No atomics.
/// Inputs stream through a pipeline of kStages steps per warp in shared memory: each step's x
/// (8 tokens x 64 columns), dH (8 tokens x N) and dms arrive by cp.async kStages - 1 steps ahead
/// (element loads where x's rows or the pointers are not 16-byte aligned), so the registers hold
/// only the step being multiplied. A warp's stages are its own: __syncwarp orders their reuse.
template <int kN, int kC, typename T, typename P, int kThreads, bool kTf32, bool kHasGamma, bool kAccumulate, int kPtrAlign>
__device__ __forceinline__ void project_bwd_mma(const ProjectBwdArgs &args) {
  constexpr int kK = kN * kC;
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kTiles = (kMix + 7) / 8; // k-steps of dx, n-tiles of S (zero-padded mixes)
  constexpr int kWarps = kThreads / 32;
  constexpr int kColBlocks = (kK + 64 * kWarps - 1) / (64 * kWarps);
  constexpr bool kExactX = sizeof(T) == 2;
  using XOp = Operand<kTf32, kExactX>;
  using FOp = Operand<kTf32, false>;
  static_assert(kColBlocks == project_bwd_column_blocks(kK, kN, kThreads), "host and device agree");

  const T *x = static_cast<const T *>(args.x);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const int col_block = int(blockIdx.x % kColBlocks);
  const i64 split = blockIdx.x / kColBlocks;
  const int c = (col_block * kWarps + warp) * 64 + g * 8;
  const float two_over_k = 2.0f / float(kK);

  // (phi * gamma)^T fragments for dx, fixed for the whole walk: pa[s][h][e] = phi*gamma at mix
  // 8s + t + 4h, column c + e.
  float gm[8];
  if constexpr (kHasGamma)
    load_cols8<P, kK, kPtrAlign>(static_cast<const P *>(args.gamma), 0, 1, c, gm);
  else
#pragma unroll
    for (int e = 0; e < 8; ++e)
      gm[e] = 1.0f;
  float pa[kTiles][2][8];
#pragma unroll
  for (int s = 0; s < kTiles; ++s)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      load_cols8<P, kK, kPtrAlign>(static_cast<const P *>(args.phi), 8 * s + t + 4 * h, kMix, c, pa[s][h]);
#pragma unroll
      for (int e = 0; e < 8; ++e)
        pa[s][h][e] = kTf32 ? tf32_round(pa[s][h][e] * gm[e]) : pa[s][h][e] * gm[e]; // rounded once
    }

  float S[4][kTiles][4];
#pragma unroll
  for (int p = 0; p < 4; ++p)
#pragma unroll
    for (int q = 0; q < kTiles; ++q)
      S[p][q][0] = S[p][q][1] = S[p][q][2] = S[p][q][3] = 0.0f;

  const i64 m_begin = split * args.tokens_per_split; // a multiple of 8 (host: projectTokenSplit)
  const i64 m_end = m_begin + args.tokens_per_split < args.M ? m_begin + args.tokens_per_split : args.M;

  // One stage: x rows of 64 columns in 16-byte chunks, chunk j of row r stored at chunk j ^ swz(r)
  // so the 16-byte reads of a quarter warp (rows t, chunks of g) hit distinct banks; then dH of
  // the 8 tokens (8N floats, as in global memory) and their dms.
  constexpr int kChunkElems = 16 / int(sizeof(T));
  constexpr int kRowChunks = 64 / kChunkElems; // 8 (bf16, fp16) or 16 (fp32)
  constexpr int kXBytes = 8 * 64 * int(sizeof(T));
  constexpr int kDHBytes = 8 * kMix * 4;        // a multiple of 32
  constexpr int kStageBytes = kXBytes + kDHBytes + 32;
  constexpr int kStages = project_bwd_stages(kN, sizeof(T), kThreads, kTf32);
  constexpr bool kDynamic = project_bwd_dynamic_stages(kN, sizeof(T), kThreads, kTf32);
  static_assert(kStages >= 2, "two stages per warp fit the static shared memory");
  static_assert(kStageBytes == project_bwd_stage_bytes(kN, sizeof(T)) &&
                    (kDynamic ? kWarps * kStages * kStageBytes : 0) == project_bwd_shared_bytes(kN, sizeof(T), kThreads, kTf32),
                "host and device agree on the shared memory");
  constexpr bool kAsyncX = kPtrAlign >= 16 && (i64(kK) * sizeof(T)) % 16 == 0;
  constexpr bool kAsyncDH = kPtrAlign >= 16;
  unsigned char(*stages)[kStages][kStageBytes];
  if constexpr (kDynamic) {
    extern __shared__ __align__(16) unsigned char shared[]; // project_bwd_shared_bytes
    stages = reinterpret_cast<unsigned char(*)[kStages][kStageBytes]>(shared);
  } else {
    __shared__ __align__(16) unsigned char fixed[kWarps][kStages][kStageBytes];
    stages = fixed;
  }
  auto swz = [](int r) { return kRowChunks == 8 ? (r & 3) << 1 : (r & 1) | ((r & 2) << 1); };
  auto x_chunk = [&](int stage, int row, int chunk) {
    return &stages[warp][stage][(row * kRowChunks + (chunk ^ swz(row))) * 16];
  };
  auto dH_stage = [&](int stage) { return reinterpret_cast<float *>(&stages[warp][stage][kXBytes]); };
  auto dms_stage = [&](int stage) { return reinterpret_cast<float *>(&stages[warp][stage][kXBytes + kDHBytes]); };
  const int cw = c - g * 8; // the warp's first column

  // The async copies follow per-lane plans made once (as in the forward): a lane's x chunks keep
  // one column chunk (lane % kRowChunks) and take rows lane / kRowChunks + j kXRowStep; its dH
  // chunks are 16-byte chunks lane + 32 j of the step's 8N floats. Example (bf16): lane 13 copies
  // chunk 5 of rows 1 and 5, and dH floats 52..55 and 180..183 of the step's 192 (n = 4).
  constexpr int kXRowStep = 32 / kRowChunks, kXCopies = 8 / kXRowStep;
  constexpr int kDHCopies = (2 * kMix + 31) / 32;
  const int x_col = lane % kRowChunks, x_row0 = lane / kRowChunks;
  const bool x_col_in = cw + x_col * kChunkElems < kK;
  const T *x_src = x + (m_begin + x_row0) * kK + cw + x_col * kChunkElems; // step 0, row j = 0
  unsigned x_dst[kXCopies]; // stage 0
#pragma unroll
  for (int j = 0; j < kXCopies; ++j)
    x_dst[j] = shared_address(x_chunk(0, x_row0 + j * kXRowStep, x_col));
  const unsigned dH_dst = shared_address(dH_stage(0) + 4 * lane), dms_dst = shared_address(dms_stage(0) + 4 * lane);

  // Issues the copies of step `step` (the 8 tokens from m = m_begin + 8 step) into a stage;
  // tokens past m_end read as zero. `full` (all 8 tokens in range) is a constant where fill
  // calls it, so the steps before the last need no bounds arithmetic.
  auto fill_tokens = [&](int stage, i64 step, bool full) {
    const i64 m = m_begin + 8 * step;
    if constexpr (kAsyncX) {
#pragma unroll
      for (int j = 0; j < kXCopies; ++j) {
        const bool in = x_col_in && (full || m + x_row0 + j * kXRowStep < m_end);
        copy16_async<false>(x_dst[j] + stage * kStageBytes, in ? x_src + (8 * step + j * kXRowStep) * kK : x, in ? 16 : 0);
      }
    } else {
      for (int i = lane; i < 8 * 64; i += 32) {
        const int row = i / 64, cc = i % 64, col = cw + cc;
        const T v = m + row < m_end && col < kK ? x[(m + row) * kK + col] : T{};
        reinterpret_cast<T *>(x_chunk(stage, row, cc / kChunkElems))[cc % kChunkElems] = v;
      }
    }
    const i64 valid = (m_end - m < 8 ? m_end - m : 8) * kMix; // dH floats of tokens in range
    if constexpr (kAsyncDH) {
#pragma unroll
      for (int j = 0; j < kDHCopies; ++j) {
        const int i = lane + 32 * j;
        if (j + 1 < kDHCopies || i < 2 * kMix) {
          const i64 left = valid - 4 * i;
          const int bytes = full || left >= 4 ? 16 : left > 0 ? int(left) * 4 : 0;
          copy16_async<true>(dH_dst + stage * kStageBytes + 16 * 32 * j, bytes ? args.dH + m * kMix + 4 * i : args.dH, bytes);
        }
      }
      if (lane < 2) {
        const i64 left = (m_end - m) - 4 * lane;
        const int bytes = full || left >= 4 ? 16 : left > 0 ? int(left) * 4 : 0;
        copy16_async<true>(dms_dst + stage * kStageBytes, bytes ? args.dms + m + 4 * lane : args.dms, bytes);
      }
    } else {
      for (int i = lane; i < 8 * kMix; i += 32)
        dH_stage(stage)[i] = i < valid ? args.dH[m * kMix + i] : 0.0f;
      if (lane < 8)
        dms_stage(stage)[lane] = m + lane < m_end ? args.dms[m + lane] : 0.0f;
    }
  };
  auto fill = [&](int stage, i64 step) {
    if (m_begin + 8 * step + 8 <= m_end)
      fill_tokens(stage, step, true);
    else
      fill_tokens(stage, step, false);
  };

  struct Step {
    float xa[8], xb[8];             // columns c..c+7 of tokens m+t and m+t+4
    float bx[kTiles][2], bs[kTiles][2]; // dH fragments of the dx and the S products
    float ca, cb;                   // dms * 2 / K of tokens m+t and m+t+4
  };
  auto load_step = [&](int stage, Step &d) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      RawCols8<T> r;
#pragma unroll
      for (int q = 0; q < 8 / kChunkElems; ++q)
        reinterpret_cast<uint4 *>(r.v)[q] =
            *reinterpret_cast<const uint4 *>(x_chunk(stage, t + 4 * h, g * (8 / kChunkElems) + q));
#pragma unroll
      for (int e = 0; e < 8; ++e)
        (h ? d.xb : d.xa)[e] = to_float(r.v[e]);
    }
    const float *dH = dH_stage(stage);
    auto at = [&](int token, int mix) { return mix < kMix ? dH[token * kMix + mix] : 0.0f; };
    const int tok = g / 2 + 4 * (g % 2); // the token of n-index g in the dx product
#pragma unroll
    for (int s = 0; s < kTiles; ++s) {
      d.bx[s][0] = at(tok, 8 * s + t);
      d.bx[s][1] = at(tok, 8 * s + t + 4);
      d.bs[s][0] = at(t, 8 * s + g);
      d.bs[s][1] = at(t + 4, 8 * s + g);
    }
    d.ca = dms_stage(stage)[t] * two_over_k;
    d.cb = dms_stage(stage)[t + 4] * two_over_k;
  };
  auto run_step = [&](i64 m, const Step &d) {
    const i64 ta = m + t, tb = m + t + 4;
    float dxa[8], dxb[8];
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int s = 0; s < kTiles; ++s) {
        using AOp = Operand<kTf32, kTf32>; // tf32: pa is already rounded
        const AOp a0(pa[s][0][2 * p]), a1(pa[s][0][2 * p + 1]), a2(pa[s][1][2 * p]), a3(pa[s][1][2 * p + 1]);
        const FOp b0(d.bx[s][0]), b1(d.bx[s][1]);
        mma_mode<kTf32, kTf32, false>(acc, a0, a1, a2, a3, b0, b1);
      }
      dxa[2 * p] = fmaf(d.ca, d.xa[2 * p], acc[0]);
      dxb[2 * p] = fmaf(d.cb, d.xb[2 * p], acc[1]);
      dxa[2 * p + 1] = fmaf(d.ca, d.xa[2 * p + 1], acc[2]);
      dxb[2 * p + 1] = fmaf(d.cb, d.xb[2 * p + 1], acc[3]);
    }
    if (ta < m_end)
      store_cols8<T, kK, kPtrAlign, kAccumulate>(args.dx, ta, c, dxa);
    if (tb < m_end)
      store_cols8<T, kK, kPtrAlign, kAccumulate>(args.dx, tb, c, dxb);
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const XOp a0(d.xa[2 * p]), a1(d.xa[2 * p + 1]), a2(d.xb[2 * p]), a3(d.xb[2 * p + 1]);
#pragma unroll
      for (int q = 0; q < kTiles; ++q) {
        const FOp b0(d.bs[q][0]), b1(d.bs[q][1]);
        if constexpr (kTf32) {
          mma_mode<kTf32, kExactX, false>(S[p][q], a0, a1, a2, a3, b0, b1);
        } else {
          // fp32 precision: each step's product starts from zero and is added on the CUDA cores,
          // as in the forward; the tensor cores' own accumulation over a whole token range lost
          // more than 1e-5 of cancelling parameter gradients (dgamma at n = 1, C = 1, M = 4096).
          float step[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          mma_mode<kTf32, kExactX, false>(step, a0, a1, a2, a3, b0, b1);
#pragma unroll
          for (int e = 0; e < 4; ++e)
            S[p][q][e] += step[e];
        }
      }
    }
  };
  const i64 steps = (m_end - m_begin + 7) / 8;
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < steps)
      fill(st, st);
    commit_async();
  }
  // stage = i % kStages, as an int counter where the pipeline is dynamic (the form measured
  // there), as the 64-bit remainder elsewhere (the form measured in the fp32 mode)
  int stage = 0;
  for (i64 i = 0; i < steps; ++i, stage = stage + 1 == kStages ? 0 : stage + 1) {
    // The stage filled here, (i - 1) % kStages, was read in step i - 1, before its closing
    // __syncwarp.
    if (i + kStages - 1 < steps)
      fill(kDynamic ? (stage == 0 ? kStages - 1 : stage - 1) : int((i + kStages - 1) % kStages), i + kStages - 1);
    commit_async();
    wait_async<kStages - 1>(); // step i's copies have landed
    __syncwarp();              // ... every lane's
    Step d;
    load_step(kDynamic ? stage : int(i % kStages), d);
    __syncwarp();
    run_step(m_begin + 8 * i, d);
  }

  // S[p][q] holds columns c+2p (e = 0, 1) and c+2p+1 (e = 2, 3) at mixes 8q+2t and 8q+2t+1.
  // The partial dphi rows leave through the warp's stages, idle now, a tile of 8 mixes x 64
  // columns at a time, so that the warp writes each mix's 64 columns as contiguous 16-byte
  // stores. Written straight from the fragments, each store instruction touched 32 sectors (8
  // columns 32 bytes apart in 4 rows), and every block of a wave did so at the same moment.
  wait_async<0>();
  __syncwarp(); // every lane is done with the stages
  constexpr int kTileStride = 64 + 4; // floats a mix row of the tile
  static_assert(8 * kTileStride * 4 <= kStages * kStageBytes, "a tile of 8 mixes fits the warp's stages");
  float *tile = reinterpret_cast<float *>(&stages[warp][0][0]);
  float *dphi_rows = args.dphi_part + split * kMix * kK;
  float dg[4][2] = {}; // dgamma terms sum_mix phi S of columns c+2p+h, in mix order as each tile passes
#pragma unroll
  for (int q = 0; q < kTiles; ++q) {
#pragma unroll
    for (int p = 0; p < 4; ++p)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int odd = 0; odd < 2; ++odd) {
          const float v = S[p][q][2 * h + odd];
          tile[(2 * t + odd) * kTileStride + 8 * g + 2 * p + h] = gm[2 * p + h] * v;
          const int col = c + 2 * p + h, mix = 8 * q + 2 * t + odd;
          if (kHasGamma && col < kK && mix < kMix)
            dg[p][h] = fmaf(load_param<P>(args.phi, i64(mix) * kK + col), v, dg[p][h]);
        }
    __syncwarp();
    if constexpr (kK % 4 == 0) {
      // 8 mixes x 16 chunks of 4 columns, 4 chunks a lane
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int i = lane + 32 * j, row = i / 16, chunk = i % 16, col = cw + 4 * chunk;
        if (8 * q + row < kMix && col < kK)
          *reinterpret_cast<float4 *>(&dphi_rows[i64(8 * q + row) * kK + col]) =
              *reinterpret_cast<const float4 *>(&tile[row * kTileStride + 4 * chunk]);
      }
    } else {
#pragma unroll
      for (int row = 0; row < 8; ++row)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int col = cw + lane + 32 * h;
          if (8 * q + row < kMix && col < kK)
            dphi_rows[i64(8 * q + row) * kK + col] = tile[row * kTileStride + lane + 32 * h];
        }
    }
    __syncwarp(); // the next tile overwrites this one
  }
  if constexpr (kHasGamma) {
#pragma unroll
    for (int p = 0; p < 4; ++p)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = c + 2 * p + h;
        float d = dg[p][h];
        d += __shfl_xor_sync(0xffffffffu, d, 1);
        d += __shfl_xor_sync(0xffffffffu, d, 2);
        if (t == 0 && col < kK)
          args.dgamma_part[split * kK + col] = d;
      }
  }
}

/// Backward on CUDA cores for n > 4, whose N mixes do not fit the tensor-core kernel's registers.
/// Block b owns kThreads columns (a thread per column) and one token range; walking its tokens it
/// writes dx[m][k] and sums S[t] = sum_m dH[m][t] x[m][k] in registers.
template <int kN, int kC, typename T, typename P, int kThreads, bool kTf32, bool kHasGamma, bool kAccumulate>
__device__ __forceinline__ void project_bwd_by_column(const ProjectBwdArgs &args) {
  constexpr int kK = kN * kC;
  constexpr int kMix = kN * kN + 2 * kN;
  constexpr int kColBlocks = (kK + kThreads - 1) / kThreads;
  static_assert(kColBlocks == project_bwd_column_blocks(kK, kN, kThreads), "host and device agree");
  const int k = int(blockIdx.x % kColBlocks) * kThreads + threadIdx.x;
  const i64 split = blockIdx.x / kColBlocks;
  const bool valid = k < kK;
  const T *x = static_cast<const T *>(args.x);
  float phi[kMix], S[kMix];
  const float g = (kHasGamma && valid) ? load_param<P>(args.gamma, k) : 1.0f;
#pragma unroll
  for (int t = 0; t < kMix; ++t) {
    phi[t] = valid ? operand<kTf32>(load_param<P>(args.phi, i64(t) * kK + k) * g) : 0.0f;
    S[t] = 0.0f;
  }
  const i64 m0 = split * args.tokens_per_split;
  const i64 m1 = m0 + args.tokens_per_split < args.M ? m0 + args.tokens_per_split : args.M;
  for (i64 m = m0; m < m1; ++m) {
    const float xv = valid ? to_float(x[m * kK + k]) : 0.0f;
    const float xo = operand<kTf32>(xv);
    const float *dH = args.dH + m * kMix;
    float d = 0.0f;
#pragma unroll
    for (int t = 0; t < kMix; ++t) {
      const float dh = operand<kTf32>(dH[t]);
      d = fmaf(dh, phi[t], d);
      S[t] = fmaf(dh, xo, S[t]);
    }
    if (valid) {
      const float dx = fmaf(args.dms[m] * 2.0f / float(kK), xv, d);
      if constexpr (kAccumulate)
        static_cast<float *>(args.dx)[m * kK + k] += dx;
      else
        static_cast<T *>(args.dx)[m * kK + k] = from_float<T>(dx);
    }
  }
  if (valid) {
    float dg = 0.0f;
#pragma unroll
    for (int t = 0; t < kMix; ++t) {
      args.dphi_part[(split * kMix + t) * kK + k] = g * S[t];
      if constexpr (kHasGamma)
        dg = fmaf(load_param<P>(args.phi, i64(t) * kK + k), S[t], dg);
    }
    if constexpr (kHasGamma)
      args.dgamma_part[split * kK + k] = dg;
  }
}

/// In tf32 the tensor-core backward is held to 168 registers a thread (ptxas: 192 unbounded at n = 4
/// bf16), so three 128-thread blocks share an SM without spills; the fp32 mode needs more.
template <int kN, int kC, typename T, typename P, int kThreads, bool kTf32, bool kHasGamma, bool kAccumulate, int kPtrAlign>
__global__ void __launch_bounds__(kThreads, project_bwd_min_blocks(kN, kTf32, kThreads)) project_bwd(const __grid_constant__ ProjectBwdArgs args) {
  allow_dependent_launch(); // its reduce_rows may be scheduled at once
  if constexpr (project_bwd_on_tensor_cores(kN))
    project_bwd_mma<kN, kC, T, P, kThreads, kTf32, kHasGamma, kAccumulate, kPtrAlign>(args);
  else
    project_bwd_by_column<kN, kC, T, P, kThreads, kTf32, kHasGamma, kAccumulate>(args);
}

} // namespace mhc
