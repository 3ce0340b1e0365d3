// mhcjit tool support: a blocking parallel loop over [0, N) for host-side reference work.
#pragma once

#include <cstdint>
#include <functional>

namespace mhcjit {

/// Calls Body(Begin, End) on disjoint chunks covering [0, N), on all cores, and waits. A chunk
/// holds at least Grain items. Chunk boundaries depend only on N and Grain (so per-chunk
/// partial results are reproducible).
void parallelFor(int64_t N, const std::function<void(int64_t Begin, int64_t End)> &Body,
                 int64_t Grain = 1 << 14);

/// The chunk count parallelFor uses for N and Grain (for per-chunk partial results).
int64_t parallelChunks(int64_t N, int64_t Grain = 1 << 14);

} // namespace mhcjit
