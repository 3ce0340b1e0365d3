// mhcjit generator: the default tile config of a kernel when no tuning result exists.
#pragma once

#include "mhcjit/KernelSpec.h"

#include <cstdint>
#include <vector>

namespace mhcjit {

/// The documented heuristic (README "Tile configs"; the measurements behind it in PERF.md).
/// Stream ops (aggregate, expand_combine, expand, contract): vec from widestStreamVec down, to
/// 16-byte spans of vec * n elements in sbcn (32 for expand_combine backward), 4 bytes a stream
/// for aggregate backward; 256 threads, the block-per-token backwards up to 512 (aggregate) or
/// 256 (expand_combine). project: tensor cores, 256 threads and 128 tokens a block forward, 128
/// threads backward (forward at n <= 4 with a 16-bit stream in tf32: 128 threads and 64 tokens,
/// the first of defaultTileChoices). sinkhorn, scale: a thread per token. Others: 256 threads.
/// Depends only on (op, direction, n, C, dtype, layout, precision), never on M.
TileConfig defaultTileConfig(const KernelSpec &Spec);

/// What a call's grid sizing knows of the device: SMs, shared memory per SM and the part of it
/// reserved per block (cuDeviceGetAttribute).
struct SmShape {
  int SmCount = 0;
  int SharedPerSm = 0;
  int ReservedPerBlock = 0;
};

/// The untuned tiles a call chooses among by its grid; the first is defaultTileConfig(Spec).
/// One tile for every spec but project forward at n <= 4 with a 16-bit stream in tf32, which
/// runs 64 tokens (128 threads) or 128 tokens (256 threads) a block.
std::vector<TileConfig> defaultTileChoices(const KernelSpec &Spec);

/// Whether Spec has more than one of defaultTileChoices (so an untuned call's tile depends on
/// its grid); cheap, for the launch path.
bool defaultTileFollowsGrid(const KernelSpec &Spec);

/// The untuned tile of a call with M >= 1 tokens on a device of shape Sm: of defaultTileChoices,
/// the one whose grid fills its waves of resident blocks best (the later within 2%).
/// Resident blocks per SM are estimated from the kernel's threads, its launch bounds and its
/// shared memory. Example (project forward, n = 4, bf16, tf32, 132 SMs of 228 KB): M = 16384,
/// C = 2560 (3 K splits) -> 64 tokens: 768 blocks in 1.94 waves of 396, against 384 in 1.45 waves
/// of 264; M = 4096, C = 6656 (8 splits) -> 128 tokens: 256 blocks in 0.97 waves of 264, against
/// 512 in 1.29 waves of 396.
TileConfig defaultTileForGrid(const KernelSpec &Spec, int64_t M, const SmShape &Sm);

/// The widest power of two of stream elements within 16 bytes that divides C, so every chunk is
/// full and every access aligned. Example: bf16, C = 7168 -> 8; C = 1000 -> 8; C = 7 -> 1.
int widestStreamVec(const KernelSpec &Spec);

} // namespace mhcjit
