// mhcjit runtime: forcing the tile config of one spec on the current thread (the autotuner's
// way to launch an op with a candidate tile through the ordinary op launch code).
#pragma once

#include "mhcjit/KernelSpec.h"

#include "llvm/ADT/Optional.h"

namespace mhcjit {

/// While alive, every launch on this thread whose base spec equals Base (its tile ignored)
/// uses Tile instead of the tuning DB's or the heuristic's choice: runtimeTile() returns Tile.
/// The base spec is what specFor() gives for the op call (no optional inputs, no dx
/// accumulation, 16-byte alignment); the launch code then adjusts those fields as usual, so
/// every kernel of the call (for example both stages of head backward) runs with Tile.
/// Overrides nest: the innermost one wins; other threads are never affected. Callers keep
/// Tile to a candidate of tileCandidates(Base), so the kernel is known to be runnable.
class ScopedTileOverride {
public:
  ScopedTileOverride(const KernelSpec &Base, const TileConfig &Tile);
  ~ScopedTileOverride();
  ScopedTileOverride(const ScopedTileOverride &) = delete;
  ScopedTileOverride &operator=(const ScopedTileOverride &) = delete;

private:
  KernelSpec Base;
  TileConfig Tile;
  ScopedTileOverride *Outer;
  friend llvm::Optional<TileConfig> forcedTile(const KernelSpec &Spec);
};

/// The tile an active ScopedTileOverride of this thread forces on Spec, if any.
llvm::Optional<TileConfig> forcedTile(const KernelSpec &Spec);

} // namespace mhcjit
