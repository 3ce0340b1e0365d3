// mhcjit generator: the default tile config of a kernel when no tuning result exists.
#pragma once

#include "mhcjit/KernelSpec.h"

namespace mhcjit {

/// The documented heuristic (README "Tile configs"; the measurements behind it in PERF.md).
/// Stream ops (aggregate, expand_combine, expand, contract): vec from widestStreamVec down, to
/// 16-byte spans of vec * n elements in sbcn (32 for expand_combine backward), 4 bytes a stream
/// for aggregate backward; 256 threads, the block-per-token backwards up to 512 (aggregate) or
/// 256 (expand_combine). project: tensor cores, 256 threads and 128 tokens a block forward, 128
/// threads backward. sinkhorn, scale: a thread per token. Others: 256 threads.
/// Depends only on (op, direction, n, C, dtype, layout), never on M.
TileConfig defaultTileConfig(const KernelSpec &Spec);

/// The widest power of two of stream elements within 16 bytes that divides C, so every chunk is
/// full and every access aligned. Example: bf16, C = 7168 -> 8; C = 1000 -> 8; C = 7 -> 1.
int widestStreamVec(const KernelSpec &Spec);

} // namespace mhcjit
