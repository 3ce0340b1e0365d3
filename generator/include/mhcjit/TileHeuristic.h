// mhcjit generator: the default tile config of a kernel when no tuning result exists.
#pragma once

#include "mhcjit/KernelSpec.h"

namespace mhcjit {

/// The documented heuristic (README "Tile configs"). Stream ops (aggregate, expand_combine, expand,
/// contract): vec = the widest access of at most 16 bytes whose element count divides C, 256
/// threads (block-per-token backwards: no more threads than a token has chunks, at least 32).
/// project: 256 threads, 32 tokens per block forward. sinkhorn: 128 threads. Others: 256.
/// Depends only on (op, direction, n, C, dtype), never on M.
TileConfig defaultTileConfig(const KernelSpec &Spec);

} // namespace mhcjit
