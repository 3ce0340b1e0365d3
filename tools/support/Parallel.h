// mhcjit tool support: a blocking parallel loop over [0, N) for host-side reference work.
#pragma once

#include <cstdint>
#include <functional>

namespace mhcjit {

/// Calls Body(Begin, End) on disjoint chunks covering [0, N), on all cores, and waits.
/// Chunk boundaries depend only on N (so any per-chunk result is reproducible).
void parallelFor(int64_t N, const std::function<void(int64_t Begin, int64_t End)> &Body);

/// The chunk count parallelFor uses for N (for per-chunk partial results).
int64_t parallelChunks(int64_t N);

} // namespace mhcjit
