// Tests of templates/mhc_common.cuh's block sums, run on the host: the header is compiled
// as C++ with its CUDA built-ins stubbed, and a block is host threads (one per CUDA thread) whose
// __shfl_xor_sync and __syncthreads meet at a barrier. The sums must be bitwise those of the
// documented order: the xor butterfly in each warp (v += shfl_xor(v, o), o = 16 .. 1), then the
// warps in index order.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "HostCuda.h"

namespace {

template <int kThreads, int kCount> void checkBlockSum(std::mt19937_64 &Rng) {
  CAPTURE(kThreads);
  CAPTURE(kCount);
  constexpr int kWarps = kThreads / 32;
  static float In[kThreads][kCount], Out[kThreads][kCount];
  static float Scratch[kWarps * kCount];
  for (auto &Row : In)
    for (float &X : Row)
      X = randomValue<float>(Rng);
  std::memcpy(Out, In, sizeof In);
  runBlock(kThreads, [&](int) { mhc::block_sum_to_thread0<kThreads, kCount>(Out[threadIdx.x], Scratch); });
  for (int I = 0; I < kCount; ++I) {
    CAPTURE(I);
    float Want = 0.0f;
    for (int W = 0; W < kWarps; ++W) {
      float Column[32];
      for (int L = 0; L < 32; ++L)
        Column[L] = In[W * 32 + L][I];
      const float Total = butterflyTotal(Column);
      Want = W == 0 ? Total : Want + Total;
    }
    CHECK(std::memcmp(&Want, &Out[0][I], sizeof Want) == 0);
  }
}

} // namespace

TEST_CASE("block_sum_to_thread0 gives thread 0 the butterfly's totals added over warps in index order") {
  std::mt19937_64 Rng(61206);
  for (int Rep = 0; Rep < 4; ++Rep) {
    checkBlockSum<64, 27>(Rng);  // scale_sinkhorn backward at n = 4
    checkBlockSum<128, 20>(Rng); // expand_combine backward at n = 4
    checkBlockSum<128, 4>(Rng);  // aggregate backward at n = 4
    checkBlockSum<32, 9>(Rng);   // one warp
  }
}
