// mhcjit runtime: the thread's stack of forced tile configs (ScopedTileOverride).
#include "mhcjit/TileOverride.h"

namespace mhcjit {

namespace {

thread_local ScopedTileOverride *Innermost = nullptr;

KernelSpec untiled(KernelSpec Spec) {
  Spec.Tile = TileConfig{0, 0, 0};
  return Spec;
}

} // namespace

ScopedTileOverride::ScopedTileOverride(const KernelSpec &Base, const TileConfig &Tile)
    : Base(untiled(Base)), Tile(Tile), Outer(Innermost) {
  Innermost = this;
}

ScopedTileOverride::~ScopedTileOverride() { Innermost = Outer; }

llvm::Optional<TileConfig> forcedTile(const KernelSpec &Spec) {
  if (!Innermost)
    return llvm::None;
  const KernelSpec Key = untiled(Spec);
  for (const ScopedTileOverride *O = Innermost; O; O = O->Outer)
    if (O->Base == Key)
      return O->Tile;
  return llvm::None;
}

} // namespace mhcjit
