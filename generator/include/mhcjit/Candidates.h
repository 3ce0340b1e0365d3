// mhcjit generator: the tile configs the autotuner may try for a spec, pruned to what runs.
// Pure functions of the spec (never of M); the order of a list is the autotuner's tie-break order.
#pragma once

#include "mhcjit/KernelSpec.h"

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mhcjit {

/// The tile configs worth timing for Spec (its tile is ignored), at most about 12: each passes
/// validateSpec and what a GPU can run (threads <= 1024, vec * element size <= 16, project
/// forward's static shared memory <= 48 KiB, tf32 project rows == 16 * warps). The first one is
/// always defaultTileConfig(Spec); the rest follow in a fixed order, which breaks timing ties.
/// Per op, what each field means:
///   stream ops (aggregate, expand_combine, expand, contract): Threads per block, Vec elements of
///     C per access (a power of two dividing C, so every access is whole and aligned);
///   project forward: Threads, Rows tokens per block; project backward: Threads = K columns per
///     block; scale, sinkhorn, head, reduce_rows: Threads.
std::vector<TileConfig> tileCandidates(const KernelSpec &Spec);

/// Whether the autotuner may pick Spec's tile per M bucket. True only where no tile field changes
/// the order of a per-token reduction (batch invariance, SPEC.md):
///   may depend on M: project forward (K is tiled by a fixed 64/32; Threads and Rows only place
///     tokens and outputs on threads), scale, sinkhorn (a thread or warp per token), the
///     elementwise stream forwards (aggregate, expand_combine, expand, contract) and expand
///     backward, reduce_rows (a thread per column, rows in order);
///   never: aggregate and expand_combine backward (Threads and Vec split the sum over C of dpre,
///     dpost, dres), contract backward, head (block sums over K), project backward (Threads sets
///     the K slices of the parameter-gradient partials).
bool tileMayDependOnM(const KernelSpec &Spec);

/// canonicalRecord(Spec) with threads, vec and rows normalised to 0: the spec without its tile,
/// which keys the tuning database.
std::string untiledRecord(const KernelSpec &Spec);

/// Parses untiledRecord()'s output and gives the spec Tile. Errors name the bad field.
llvm::Expected<KernelSpec> specFromUntiledRecord(llvm::StringRef Record, const TileConfig &Tile);

} // namespace mhcjit
