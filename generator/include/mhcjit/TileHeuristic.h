// mhcjit generator: the default tile config of a kernel when no tuning result exists.
#pragma once

#include "mhcjit/KernelSpec.h"

namespace mhcjit {

/// The documented heuristic (README "Tile configs"): vec = the widest 16-byte access that divides
/// C, threads = 256 (backward: fewer when a token has fewer column chunks, at least 32).
/// Depends only on (op, direction, n, C, dtype), never on M.
TileConfig defaultTileConfig(const KernelSpec &Spec);

} // namespace mhcjit
