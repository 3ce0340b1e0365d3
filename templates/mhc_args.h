// mhcjit templates: kernel argument structs, shared verbatim by host code and device templates.
// Plain C++ (no CUDA keywords), so the host fills exactly the layout the kernel reads.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define MHC_HOST_DEVICE __host__ __device__
#else
#define MHC_HOST_DEVICE
#endif

namespace mhc {

/// Row stride (words) of scale's and scale_sinkhorn's staging tiles for rows `width` words wide.
/// A width that is a multiple of 4 is read as 16-byte vectors: the stride is then 4 mod 8, so the
/// 8 lanes of a quarter-warp start their rows 16 bytes apart modulo 128 and no two share a bank.
/// Other widths are read a word at a time: an odd stride puts every lane in its own bank.
/// Examples: 24 (n = 4) -> 28, 12 -> 12, 15 (n = 3) -> 15, 8 (n = 2) -> 12.
MHC_HOST_DEVICE constexpr int scale_staging_stride(int width) {
  return width % 8 == 0 ? width + 4 : width % 4 == 0 ? width : width | 1;
}
/// Static shared memory of scale's and scale_sinkhorn's kernels besides the sinkhorn history:
/// each warp's staging tile (32 rows of the N = n^2 + 2n mix, scale_staging_stride(N) words
/// apart) and, backward, each warp's row of the block's partial sums (3 + N words). A block may
/// have 48 KiB of static shared memory, so at n = 4 at most 13 warps, at n = 8 at most 4.
MHC_HOST_DEVICE constexpr int scale_staging_bytes(int n, int threads, bool backward) {
  return threads / 32 * (32 * scale_staging_stride(n * n + 2 * n) + (backward ? 3 + n * n + 2 * n : 0)) * 4;
}
/// Namespace-scope constants here are inline: NVRTC names one of internal linkage after the
/// compiling process, which would make a kernel's cubin differ from one compile to the next.
inline constexpr int kStaticSharedBytes = 48 * 1024;

/// project forward splits K into this many column ranges, each summed by its own blocks into
/// partials that reduce_rows adds in split order. A function of K alone (SPEC.md: a split of the
/// K reduction may depend on n, C and the arch, never on M): about 3072 columns per split, so
/// 4096 tokens already fill the GPU, and at most 8 splits, so that wide rows keep long blocks
/// (H100, session 30's bench: 8 splits instead of 21 took (1,8192,16384) 407.0 -> 380.4 us, and 8
/// instead of 9 took (1,4096,7168) 113.7 -> 95.4 us).
/// Examples: K = 8192 -> 2 splits; K = 26624 -> 8 of 3328 columns; K = 65536 -> 8 of 8192.
MHC_HOST_DEVICE constexpr int project_fwd_splits(long long K) {
  return K < 6144 ? 1 : K / 3072 < 8 ? int(K / 3072) : 8; // < kReduceBlockRows: summed in order
}
/// Columns per split, a multiple of 64 (the kernel multiplies 64 columns at a time).
MHC_HOST_DEVICE constexpr long long project_fwd_split_cols(long long K) {
  return ((K + project_fwd_splits(K) - 1) / project_fwd_splits(K) + 63) / 64 * 64;
}
/// Columns of a project forward step: 256 bytes of each x row (128 bf16 or fp16 columns, 64
/// fp32) where N <= 24; 64 where N > 24, whose phi tiles (80 rows and more) would crowd shared
/// memory.
MHC_HOST_DEVICE constexpr int project_fwd_step_cols(int n, int elem_bytes) {
  return n * n + 2 * n <= 24 ? 256 / elem_bytes : 64;
}
/// x slots of project forward's ring: about 48 KB of x a block, 2 to 4 steps (bf16 at 64 rows:
/// 3 steps of 16 KB, two of them in flight while one is multiplied).
MHC_HOST_DEVICE constexpr int project_fwd_stages(int n, int elem_bytes, int rows) {
  const int fit = 49152 / (rows * project_fwd_step_cols(n, elem_bytes) * elem_bytes);
  return fit < 2 ? 2 : fit > 4 ? 4 : fit;
}
/// project forward's dynamic shared memory: its ring of x slots (rows tokens, a step's columns
/// each), then two tiles of phi * gamma as TF32 operand words (two parts each in the fp32 mode),
/// N rows rounded up to 8 of the step's columns and 4 words of padding.
MHC_HOST_DEVICE constexpr int project_fwd_shared_bytes(int n, int elem_bytes, int rows, bool tf32) {
  return project_fwd_stages(n, elem_bytes, rows) * rows * project_fwd_step_cols(n, elem_bytes) * elem_bytes +
         2 * (tf32 ? 1 : 2) * ((n * n + 2 * n + 7) / 8 * 8) * (project_fwd_step_cols(n, elem_bytes) + 4) * 4;
}
/// project forward's blocks an SM for its launch bounds (and so its register budget): as many as
/// the shared memory of an H100 SM holds (228 KB, 1 KB reserved a block), at most 512 threads an
/// SM at n <= 4 in tf32 or with a 16-bit stream, else one (the fp32 mode's wider fragments and
/// the larger N need the registers). Example: n = 4, bf16, tf32, 128 threads of 64 rows: 73 KB
/// -> 3 blocks, 170 registers a thread.
MHC_HOST_DEVICE constexpr int project_fwd_min_blocks(int n, int elem_bytes, int rows, bool tf32, int threads) {
  const int fit = 233472 / (project_fwd_shared_bytes(n, elem_bytes, rows, tf32) + 1024);
  const int most = n <= 4 && (tf32 || elem_bytes == 2) ? 512 / threads : 1;
  return fit < 1 ? 1 : fit < most ? fit : most;
}
/// project backward runs on tensor cores while its registers hold all N mixes without spilling
/// (N = n^2 + 2n <= 24, n <= 4; ptxas: 176 registers at n = 4 tf32, 254 in the fp32 mode), else on
/// CUDA cores, a thread per column.
MHC_HOST_DEVICE constexpr bool project_bwd_on_tensor_cores(int n) { return n * n + 2 * n <= 24; }
/// project backward's column blocks: a warp owns 64 columns on tensor cores, a thread one column
/// on CUDA cores.
MHC_HOST_DEVICE constexpr long long project_bwd_column_blocks(long long K, int n, int Threads) {
  return project_bwd_on_tensor_cores(n) ? (K + 64 * (Threads / 32) - 1) / (64 * (Threads / 32))
                                        : (K + Threads - 1) / Threads;
}
/// project backward's blocks an SM for its launch bounds: in tf32 on tensor cores 384 threads an
/// SM (three 128-thread blocks at 168 registers a thread; 0, no bound, past 384 threads), else one.
MHC_HOST_DEVICE constexpr int project_bwd_min_blocks(int n, bool tf32, int threads) {
  return tf32 && project_bwd_on_tensor_cores(n) ? 384 / threads : 1;
}
/// One step of a tensor-core backward warp's pipeline: x of 8 tokens x 64 columns, their dH
/// (8 N floats) and dms (8 floats, 32 bytes).
MHC_HOST_DEVICE constexpr int project_bwd_stage_bytes(int n, int elem_bytes) {
  return 8 * 64 * elem_bytes + 8 * (n * n + 2 * n) * 4 + 32;
}
/// Steps of a tensor-core backward warp's pipeline that 48 KB of static shared memory holds.
MHC_HOST_DEVICE constexpr int project_bwd_static_fit(int n, int elem_bytes, int threads) {
  return kStaticSharedBytes / ((threads / 32) * project_bwd_stage_bytes(n, elem_bytes));
}
/// Whether a tensor-core backward warp's pipeline lives in dynamic shared memory, 4 steps deep:
/// in tf32 where 48 KB of static shared memory holds fewer than 4 steps a warp (256 threads at
/// n = 4, and at n <= 2 with an fp32 stream). Measured (H100, n = 4, bf16, tf32, 256 threads, `mhc-jit bench --op project`,
/// PERF.md session 26): 4 steps (58 KB a block) ran the six bench configs 3.3-5.1% faster than
/// the 3 that the static 48 KB held, and 5, 6 and 8 steps slower than 4. Everything else keeps
/// its static pipeline: the fp32 mode (128 threads, 4 steps either way) measured 2.6-7.6% slower
/// with the dynamic one.
MHC_HOST_DEVICE constexpr bool project_bwd_dynamic_stages(int n, int elem_bytes, int threads, bool tf32) {
  return tf32 && project_bwd_on_tensor_cores(n) && project_bwd_static_fit(n, elem_bytes, threads) < 4;
}
/// Steps in each tensor-core backward warp's pipeline (all but one in flight): 4 where dynamic,
/// else as many as 48 KB of static shared memory holds, at most 4.
MHC_HOST_DEVICE constexpr int project_bwd_stages(int n, int elem_bytes, int threads, bool tf32) {
  const int fit = project_bwd_static_fit(n, elem_bytes, threads);
  return project_bwd_dynamic_stages(n, elem_bytes, threads, tf32) || fit > 4 ? 4 : fit;
}
/// project backward's dynamic shared memory: the pipelines where project_bwd_dynamic_stages,
/// else none.
MHC_HOST_DEVICE constexpr int project_bwd_shared_bytes(int n, int elem_bytes, int threads, bool tf32) {
  return project_bwd_dynamic_stages(n, elem_bytes, threads, tf32)
             ? (threads / 32) * project_bwd_stages(n, elem_bytes, threads, tf32) * project_bwd_stage_bytes(n, elem_bytes)
             : 0;
}

/// aggregate forward: y[m][c] = sum_j pre[m][j] * x[m][j][c].
struct AggregateFwdArgs {
  const void *x;    ///< (M, n, C) stream dtype, in the kernel's layout
  const float *pre; ///< (M, n) fp32
  void *y;          ///< (M, C) stream dtype
  long long M;      ///< tokens
};

/// aggregate backward: dx[m][j][c] = dy[m][c] * pre[m][j]; dpre[m][j] = sum_c dy[m][c] * x[m][j][c].
struct AggregateBwdArgs {
  const void *dy;   ///< (M, C) stream dtype
  const void *x;    ///< (M, n, C) stream dtype
  const float *pre; ///< (M, n) fp32
  void *dx;         ///< (M, n, C): stream dtype, or fp32 added into when the kernel accumulates
  float *dpre;      ///< (M, n) fp32
  long long M;
};

} // namespace mhc

namespace mhc {

/// project forward: H[m][t] = sum_k x[m][k] phi[t][k] gamma[k]; ms[m] = sum_k x[m][k]^2 / K.
struct ProjectFwdArgs {
  const void *x;       ///< (M, K) stream dtype; k is the layout's flattened index
  const void *phi;     ///< (N, K) parameter type (fp32 or the stream dtype)
  const void *gamma;   ///< (K) parameter type, or null when the kernel has no norm weight
  float *H;            ///< (M, N)
  float *ms;           ///< (M)
  long long M;
};

/// project backward, blocks own a K slice and a range of tokens.
struct ProjectBwdArgs {
  const void *x;        ///< (M, K)
  const void *phi;      ///< (N, K) parameter type
  const void *gamma;    ///< (K) parameter type, or null
  const float *dH;      ///< (M, N)
  const float *dms;     ///< (M)
  void *dx;             ///< (M, K): stream dtype, or fp32 added into
  float *dphi_part;     ///< (splits, N, K) partial sums over token ranges
  float *dgamma_part;   ///< (splits, K) or null
  long long M;
  long long tokens_per_split;
};

/// scale forward: pre, post, logits from H and ms (SPEC.md section 2).
struct ScaleFwdArgs {
  const float *H;     ///< (M, N)
  const float *ms;    ///< (M)
  const float *alpha; ///< (3)
  const float *beta;  ///< (N)
  float *pre;         ///< (M, n)
  float *post;        ///< (M, n)
  float *logits;      ///< (M, n, n)
  long long M;
};

/// scale backward: dH, dms per token; per-block partial sums of dalpha (3) and dbeta (N).
struct ScaleBwdArgs {
  const float *H, *ms, *alpha, *beta;
  const float *dpre, *dpost, *dlogits;
  float *dH;       ///< (M, N)
  float *dms;      ///< (M)
  float *part;     ///< (gridDim.x, 3 + N): dalpha then dbeta of the block's tokens
  long long M;
};

/// sinkhorn forward and backward (one thread per token, n x n in registers).
struct SinkhornFwdArgs {
  const float *logits; ///< (M, n, n)
  float *res;          ///< (M, n, n)
  long long M;
};
struct SinkhornBwdArgs {
  const float *logits; ///< (M, n, n)
  const float *dres;   ///< (M, n, n)
  float *dlogits;      ///< (M, n, n)
  long long M;
};

/// scale_sinkhorn: scale and sinkhorn fused; the logits stay in registers.
struct ScaleSinkhornFwdArgs {
  const float *H, *ms, *alpha, *beta;
  float *pre;  ///< (M, n)
  float *post; ///< (M, n)
  float *res;  ///< (M, n, n)
  long long M;
};
struct ScaleSinkhornBwdArgs {
  const float *H, *ms, *alpha, *beta;
  const float *dpre, *dpost, *dres;
  float *dH;   ///< (M, N)
  float *dms;  ///< (M)
  float *part; ///< (gridDim.x, 3 + N): dalpha then dbeta of the block's tokens
  long long M;
};

/// expand_combine forward: x'[j][c] = post[j] (f[c] + bias[c]) + sum_i res[i][j] x[i][c].
struct ExpandCombineFwdArgs {
  const void *f;      ///< (M, C)
  const void *bias;   ///< (C) parameter type (fp32 or the stream dtype), or null
  const float *post;  ///< (M, n)
  const void *x;      ///< (M, n, C)
  const float *res;   ///< (M, n, n)
  void *out;          ///< (M, n, C)
  long long M;
};

/// expand_combine backward.
struct ExpandCombineBwdArgs {
  const void *dout;   ///< (M, n, C) the gradient of x'
  const void *f;      ///< (M, C)
  const void *bias;   ///< (C) parameter type, or null
  const float *post;  ///< (M, n)
  const void *x;      ///< (M, n, C)
  const float *res;   ///< (M, n, n)
  void *df;           ///< (M, C) stream dtype
  float *dpost;       ///< (M, n)
  float *dres;        ///< (M, n, n)
  void *dx;           ///< (M, n, C): stream dtype, or fp32 added into
  float *dbias_part;  ///< (gridDim.x, C) or null without bias
  long long M;
};

/// expand: x[j][c] = y[c]; backward dy[c] = sum_j dx[j][c]. contract: y = mean_j x[j];
/// backward dx[j] = dy / n. `in` and `out` name the direction's input and output.
struct StreamMapArgs {
  const void *in;
  void *out; ///< stream dtype, or fp32 added into (contract backward with accumulation)
  long long M;
};

/// head forward (SPEC.md section 6): y = sum_j wgt[j] x[j], wgt from a learned contraction.
struct HeadFwdArgs {
  const void *x;      ///< (M, n, C)
  const float *w;     ///< (n, K)
  const float *scale; ///< (1)
  const float *base;  ///< (n)
  void *y;            ///< (M, C)
  long long M;
};

/// head backward, phase 1 (a block per token): per-token terms and partials of dscale, dbase.
struct HeadBwdTokenArgs {
  const void *x, *dy;
  const float *w, *scale, *base;
  float *wgt;      ///< (M, n) workspace
  float *du;       ///< (M, n) workspace
  float *dms;      ///< (M) workspace
  double *part;    ///< (gridDim.x, 1 + n): dscale then dbase, kept in double (their sums cancel)
  long long M;
};

/// head backward, phase 2 (blocks own a K slice and a token range): dx and partial dw.
struct HeadBwdSliceArgs {
  const void *x, *dy;
  const float *w;
  const float *wgt, *du, *dms; ///< from phase 1
  void *dx;                    ///< (M, n, C): stream dtype, or fp32 added into
  float *dw_part;              ///< (splits, n, K)
  long long M;
  long long tokens_per_split;
  const double *part;          ///< phase 1's partial rows (part_rows, 1 + n)
  long long part_rows;
  float *dscale, *dbase;       ///< finished from part by block 0, in double, rows in order
};

/// reduce_rows gives each column a block up to this many columns, a thread beyond.
inline constexpr long long kReduceBlockColumns = 1024;
/// ... and only with at least this many rows. The choice must not depend on the column count
/// alone: project forward's split sums (rows = splits, a function of K) have M-dependent
/// columns, and a token's H must not depend on M.
inline constexpr long long kReduceBlockRows = 64;

/// out[c] = sum_{r < rows} part[r * stride + c] in a fixed order, for c < cols; columns from
/// split on go to out2[c - split] instead (split = cols: everything in out).
struct ReduceRowsArgs {
  const float *part;
  float *out;
  long long rows;
  long long cols;
  long long stride;
  float *out2;
  long long split;
};

} // namespace mhc
