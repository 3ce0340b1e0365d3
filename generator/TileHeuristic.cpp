// mhcjit generator: default tile configs, a pure function of the spec's shape fields.
#include "mhcjit/TileHeuristic.h"

#include "mhc_args.h"

#include <algorithm>

namespace mhcjit {

int widestStreamVec(const KernelSpec &Spec) {
  int Vec = 16 / dtypeSize(Spec.StreamType);
  while (Vec > 1 && Spec.C % Vec != 0)
    Vec /= 2;
  return Vec;
}

namespace {

/// Aggregate backward's wider tile: sbnc, 16-bit streams, C a power of two of at least 2048.
bool sbncPowerOfTwo16(const KernelSpec &Spec) {
  return Spec.StreamLayout == Layout::SBNC && dtypeSize(Spec.StreamType) == 2 && Spec.C >= 2048 &&
         (Spec.C & (Spec.C - 1)) == 0;
}

/// Vec of a stream op, from the widest access down (measured on H100, PERF.md "stream-op
/// heuristic", n = 2, 4, 8, bf16 and fp32, both layouts):
/// - aggregate backward (a block per token) reads 4 bytes per stream a thread (bf16 2, fp32 1):
///   at n = 4, bf16, C = 7168 1497-1544 us against 2317 (sbcn vec 8) and 2937 (sbnc vec 8);
///   in sbnc with 16-bit streams and C a power of two from 2048, 8 bytes (vec 4) with 256
///   threads: n = 4 bf16, M = 16384, C = 2048/4096/16384: 216/426/1703 us against 252/488/1903
///   at vec 2 and 512 threads; the same tile at C = 2560/6656/7168 took 368/986/1066 us against
///   265/690/741 (session 4 tuning; why other C lose is not understood, so the rule is narrow);
/// - in sbcn, where a thread's chunk is one contiguous span of vec * n elements, the span is
///   halved down to 16 bytes (32 for expand_combine backward), keeping at least 4 bytes a
///   stream: n = 4 bf16 -> 2 (expand fwd 875 us against 1659 at vec 8), fp32 -> 1, n = 8 bf16
///   -> 2; expand_combine backward n = 4 bf16 -> 4 (2414 us; vec 2 2635-2927, vec 8 5471);
/// - in sbnc each stream is its own 16-byte access (vec 8 for bf16 measured best or within 2%).
int streamVec(const KernelSpec &Spec) {
  const int Size = dtypeSize(Spec.StreamType);
  const bool Bwd = Spec.Dir == Direction::Backward;
  int Vec = widestStreamVec(Spec);
  if (Spec.Operation == Op::Aggregate && Bwd) {
    const int StreamBytes = sbncPowerOfTwo16(Spec) ? 8 : 4;
    while (Vec > 1 && Vec * Size > StreamBytes)
      Vec /= 2;
  } else if (Spec.StreamLayout == Layout::SBCN) {
    const int Span = Spec.Operation == Op::ExpandCombine && Bwd ? 32 : 16;
    while (Vec > 1 && Vec * Spec.N * Size > Span && Vec * Size > 4)
      Vec /= 2;
  }
  return Vec;
}

/// Threads for a kernel where one block walks one token's chunks: at most Cap, and no more than
/// the token has chunks (rounded up to a warp).
int threadsForChunks(int64_t C, int Vec, int Cap) {
  int64_t Chunks = (C + Vec - 1) / Vec;
  int64_t Threads = std::min<int64_t>(Cap, (Chunks + 31) / 32 * 32);
  return static_cast<int>(std::max<int64_t>(32, Threads));
}

} // namespace

TileConfig defaultTileConfig(const KernelSpec &Spec) {
  TileConfig Tile;
  Tile.Threads = 256;
  Tile.Vec = 1;
  Tile.Rows = 1;
  const bool Bwd = Spec.Dir == Direction::Backward;
  switch (Spec.Operation) {
  case Op::Aggregate:
  case Op::ExpandCombine:
    Tile.Vec = streamVec(Spec);
    // backward: a block per token, at most 512 threads for aggregate (n <= 4; n = 8 with dx
    // accumulation spilled at 512, whose cap is 128 registers a thread; 256 with the wider sbnc
    // tile above) and 256 for expand_combine (128 for n > 4: 3685 against 4113 us at n = 8,
    // C = 4096), except that expand_combine gives a token of at most 512 chunks a thread per
    // chunk (n = 4 bf16 C = 2048: 501 against 561 us; at C = 2560, 640 chunks, 256 threads stay
    // best: 486 against 585 us at 512). In sbnc that thread a chunk holds only where the chunks
    // are a power of two; other counts up to 512 take 128 threads (`mhc-jit tune`, H100, n = 4
    // bf16, M = 16384, C = 2560, 320 chunks: 400.6 us at 128 threads against 431.8 at 320;
    // 256 and 512 chunks: 128 threads within 0.2% and 1.6% of a thread each; PERF.md session 15).
    if (Bwd) {
      const int64_t Chunks = (Spec.C + Tile.Vec - 1) / Tile.Vec;
      const bool PowerOfTwo = (Chunks & (Chunks - 1)) == 0;
      const int Cap = Spec.Operation == Op::Aggregate ? (Spec.N <= 4 && !sbncPowerOfTwo16(Spec) ? 512 : 256)
                      : Spec.N > 4                    ? 128
                      : Chunks > 512                  ? 256
                      : Spec.StreamLayout == Layout::SBNC && !PowerOfTwo ? 128
                                                                         : 512;
      Tile.Threads = threadsForChunks(Spec.C, Tile.Vec, Cap);
    } else if (Spec.Operation == Op::ExpandCombine) {
      // forward: column chunks a lane (templates/expand_combine.cuh). sbnc (a chunk is n
      // 16-byte accesses at bf16): 2, about even with one chunk a thread over the bench's six
      // configs on the H100 (1461.5 against 1477.8 us at n = 4 bf16 C = 7168, 326.0 against 315.9
      // at C = 2048) and 0-2% slower on an H200; sbcn (a chunk is one 16-byte span): 1, where 2
      // and 4 measured 3-4% slower (1593 and 1603 against 1545 us at 128 threads, `mhc-jit tune`).
      // PERF.md sessions 13 and 14.
      Tile.Rows = Tile.Vec * Spec.N * dtypeSize(Spec.StreamType) <= 16 ? 1 : 2;
    }
    break;
  case Op::Expand:
  case Op::Contract:
    Tile.Vec = streamVec(Spec);
    break;
  case Op::Project:
    // Tensor cores in both directions (templates/project.cuh). Forward: warps of 16 tokens
    // sharing each step's phi tile in shared memory (defaultTileChoices). Backward on tensor
    // cores: 8 warps of 64 columns each, a block's warps reading 1 KB of each token's row
    // between them (`mhc-jit tune --op project --dir bwd`, H100: 206.0 against 217.8 us with 4
    // warps at (1,4096,6656), 290.4 against 301.9 at (8,2048,2560), 1468 against 1474 at
    // (4,8192,7168); PERF.md session 16). The fp32 mode (3xTF32, 254 registers a thread) keeps
    // 4 warps: 8 measured 1-5% slower at all six bench configs (2087.5 against 1985.3 us at
    // (4,8192,7168), 279.3 against 268.8 at (1,4096,6656); `mhc-jit bench --op project
    // --precision fp32`, PERF.md session 16). On CUDA cores (n > 4) a thread per column, 128.
    Tile = Bwd ? TileConfig{mhc::project_bwd_on_tensor_cores(Spec.N) && Spec.Prec == Precision::TF32 ? 256 : 128, 1, 1}
               : defaultTileChoices(Spec).front();
    break;
  case Op::Sinkhorn:
    // one token per thread; the backward's per-iteration history (shared memory) fits at 64
    Tile.Threads = Bwd ? 64 : 128;
    break;
  case Op::Scale:
    Tile.Threads = 128; // one token per thread: M = 32768 spreads over 256 blocks
    break;
  case Op::ScaleSinkhorn:
    // one token per thread, 32 tokens a warp staged through shared memory; the backward's
    // history and staging tiles fit at 64 threads
    Tile.Threads = Bwd ? 64 : 128;
    break;
  case Op::Head:
  case Op::ReduceRows:
    break;
  }
  return Tile;
}

std::vector<TileConfig> defaultTileChoices(const KernelSpec &Spec) {
  if (Spec.Operation != Op::Project || Spec.Dir != Direction::Forward)
    return {defaultTileConfig(Spec)};
  // Warps of 16 tokens sharing each step's phi tile. At n <= 4 with a 16-bit stream in tf32,
  // 4 warps (64 tokens) a block fit three blocks an SM and fill the last wave in finer steps;
  // 8 warps (128 tokens, two an SM) where that fills the waves better (defaultTileForGrid).
  // Measured (`mhc-jit tune --op project --dir fwd --precision tf32`, H100, steps of 256 bytes a
  // row, PERF.md session 16): 138.5 / 164.9 us at (8,2048,2560) / (3,8192,2048) with 64 tokens
  // against 146.7 / 174.3 with 128, but 107.6 against 91.5 at (1,4096,6656) and 705.7 against
  // 688.0 at (4,8192,7168), where both fill their waves equally. The fp32 mode (two phi tiles of
  // TF32 parts), fp32 streams and n > 4 (phi tiles of 80 rows and more) keep 128 tokens.
  const TileConfig Wide{256, 1, 128}, Narrow{128, 1, 64};
  if (defaultTileFollowsGrid(Spec))
    return {Narrow, Wide};
  return {Wide};
}

bool defaultTileFollowsGrid(const KernelSpec &Spec) {
  return Spec.Operation == Op::Project && Spec.Dir == Direction::Forward && Spec.N <= 4 &&
         Spec.Prec == Precision::TF32 && dtypeSize(Spec.StreamType) == 2;
}

TileConfig defaultTileForGrid(const KernelSpec &Spec, int64_t M, const SmShape &Sm) {
  if (!defaultTileFollowsGrid(Spec) || M < 1 || Sm.SmCount < 1 || Sm.SharedPerSm < 1)
    return defaultTileConfig(Spec);
  const std::vector<TileConfig> Choices = defaultTileChoices(Spec);
  const int64_t K = int64_t(Spec.N) * Spec.C;
  auto Fill = [&](const TileConfig &T) {
    const int64_t Shared = mhc::project_fwd_shared_bytes(Spec.N, dtypeSize(Spec.StreamType), T.Rows,
                                                         Spec.Prec == Precision::TF32);
    // project_fwd's launch bounds ask for at most 512 threads an SM (project_fwd_min_blocks),
    // and ptxas keeps within the registers that leaves (inspect --show resources)
    const int64_t PerSm = std::min<int64_t>({2048 / T.Threads, 512 / T.Threads,
                                             Sm.SharedPerSm / (Shared + Sm.ReservedPerBlock)});
    const int64_t Resident = std::max<int64_t>(PerSm, 1) * Sm.SmCount;
    const int64_t Blocks = (M + T.Rows - 1) / T.Rows * mhc::project_fwd_splits(K);
    const int64_t Waves = (Blocks + Resident - 1) / Resident;
    return double(Blocks) / double(Waves * Resident);
  };
  // the later (more tokens a block) within 2%: where both fill their waves alike, 128 tokens
  // share each phi tile over more x (688.0 against 705.7 us at (4,8192,7168))
  TileConfig Best = Choices.back();
  double BestFill = Fill(Best);
  for (size_t I = Choices.size() - 1; I-- > 0;)
    if (double F = Fill(Choices[I]); F > BestFill + 0.02) {
      Best = Choices[I];
      BestFill = F;
    }
  return Best;
}

} // namespace mhcjit
