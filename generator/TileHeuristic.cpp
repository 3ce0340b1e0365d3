// mhcjit generator: default tile configs, a pure function of the spec's shape fields.
#include "mhcjit/TileHeuristic.h"

#include <algorithm>

namespace mhcjit {

TileConfig defaultTileConfig(const KernelSpec &Spec) {
  TileConfig Tile;
  // Widest power of two <= 16 bytes that divides C, so every chunk but none is a tail and
  // every access is aligned. Example: bf16, C = 7168 -> 8; C = 1000 -> 8; C = 7 -> 1.
  int Vec = 16 / dtypeSize(Spec.StreamType);
  while (Vec > 1 && Spec.C % Vec != 0)
    Vec /= 2;
  Tile.Vec = Vec;
  Tile.Threads = 256;
  if (Spec.Dir == Direction::Backward) {
    // One block walks one token: do not launch more threads than the token has chunks.
    int64_t Chunks = (Spec.C + Vec - 1) / Vec;
    int64_t Threads = std::min<int64_t>(256, (Chunks + 31) / 32 * 32);
    Tile.Threads = static_cast<int>(std::max<int64_t>(32, Threads));
  }
  return Tile;
}

} // namespace mhcjit
