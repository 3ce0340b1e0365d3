// mhcjit tool support: parallelFor with fixed chunking over std::thread workers.
#include "Parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace mhcjit {

namespace {
constexpr int64_t MaxChunks = 1024;
} // namespace

int64_t parallelChunks(int64_t N, int64_t Grain) {
  return std::max<int64_t>(1, std::min<int64_t>(MaxChunks, N / std::max<int64_t>(Grain, 1)));
}

void parallelFor(int64_t N, const std::function<void(int64_t, int64_t)> &Body, int64_t Grain) {
  const int64_t Chunks = parallelChunks(N, Grain);
  if (Chunks == 1) {
    Body(0, N);
    return;
  }
  std::atomic<int64_t> Next{0};
  auto Worker = [&] {
    for (int64_t K; (K = Next++) < Chunks;)
      Body(N * K / Chunks, N * (K + 1) / Chunks);
  };
  unsigned Threads =
      std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), unsigned(Chunks)));
  std::vector<std::thread> Pool;
  for (unsigned T = 1; T < Threads; ++T)
    Pool.emplace_back(Worker);
  Worker();
  for (std::thread &T : Pool)
    T.join();
}

} // namespace mhcjit
