// mhcjit generator: default tile configs, a pure function of the spec's shape fields.
#include "mhcjit/TileHeuristic.h"

#include <algorithm>

namespace mhcjit {

namespace {

/// Widest power of two <= 16 bytes that divides C, so every chunk is full and every access
/// aligned. Example: bf16, C = 7168 -> 8; C = 1000 -> 8; C = 7 -> 1.
int widestVec(const KernelSpec &Spec) {
  int Vec = 16 / dtypeSize(Spec.StreamType);
  while (Vec > 1 && Spec.C % Vec != 0)
    Vec /= 2;
  return Vec;
}

/// Threads for a kernel where one block walks one token's chunks: no more than it has chunks.
int threadsForChunks(int64_t C, int Vec) {
  int64_t Chunks = (C + Vec - 1) / Vec;
  int64_t Threads = std::min<int64_t>(256, (Chunks + 31) / 32 * 32);
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
    Tile.Vec = widestVec(Spec);
    if (Bwd)
      Tile.Threads = threadsForChunks(Spec.C, Tile.Vec);
    break;
  case Op::Expand:
  case Op::Contract:
    Tile.Vec = widestVec(Spec);
    break;
  case Op::Project:
    // Tensor cores in both directions: forward 8 warps of 16 tokens each, sharing each step's
    // phi tile in shared memory; backward 4 warps of 64 columns each (templates/project.cuh).
    Tile.Threads = Bwd ? 128 : 256;
    Tile.Rows = Bwd ? 1 : 128;
    break;
  case Op::Sinkhorn:
    // one token per thread; the backward's per-iteration history (shared memory) fits at 64
    Tile.Threads = Bwd ? 64 : 128;
    break;
  case Op::Scale:
    Tile.Threads = 128; // one token per thread: M = 32768 spreads over 256 blocks
    break;
  case Op::Head:
  case Op::ReduceRows:
    break;
  }
  return Tile;
}

} // namespace mhcjit
