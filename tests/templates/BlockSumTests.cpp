// Tests of templates/mhc_common.cuh's block sums, run on the host: the header is compiled
// as C++ with its CUDA built-ins stubbed, and a block is host threads (one per CUDA thread) whose
// __shfl_xor_sync and __syncthreads meet at a barrier. The sums must be bitwise those of the
// documented order: the xor butterfly in each warp (v += shfl_xor(v, o), o = 16 .. 1), then the
// warps in index order.
#include <doctest/doctest.h>

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {

/// Threads meet here twice per shuffle: once after writing their value, once after reading.
class Barrier {
public:
  explicit Barrier(int Count) : Count(Count) {}
  void wait() {
    std::unique_lock<std::mutex> Lock(Mutex);
    const long Gen = Generation;
    if (++Arrived == Count) {
      Arrived = 0;
      ++Generation;
      Wake.notify_all();
    } else {
      Wake.wait(Lock, [&] { return Gen != Generation; });
    }
  }

private:
  std::mutex Mutex;
  std::condition_variable Wake;
  const int Count;
  int Arrived = 0;
  long Generation = 0;
};

Barrier *BlockBarrier = nullptr;
double Exchange[1024]; // one slot a thread, wide enough for float and double
struct Dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local Dim3 threadIdx;

struct uint2 { unsigned x, y; };
struct uint4 { unsigned x, y, z, w; };

float __uint_as_float(unsigned U) {
  float F;
  std::memcpy(&F, &U, sizeof F);
  return F;
}

// Every thread of the emulated block makes the same shuffles, so a block-wide barrier serves.
template <typename V> V __shfl_xor_sync(unsigned, V Value, int LaneMask) {
  Exchange[threadIdx.x] = double(Value); // exact for float and double
  BlockBarrier->wait();
  const V Got = V(Exchange[threadIdx.x ^ unsigned(LaneMask)]);
  BlockBarrier->wait();
  return Got;
}

void __syncthreads() { BlockBarrier->wait(); }

} // namespace

// The header's CUDA-only spellings, for a host compile of its device functions.
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define asm(...)
#include "mhc_common.cuh"
#undef asm

namespace {

/// Runs Body(thread) on Threads host threads that form one emulated block.
template <typename Body> void runBlock(int Threads, Body B) {
  Barrier Bar(Threads);
  BlockBarrier = &Bar;
  std::vector<std::thread> Pool;
  for (int T = 0; T < Threads; ++T)
    Pool.emplace_back([&, T] {
      threadIdx.x = unsigned(T);
      B(T);
    });
  for (std::thread &T : Pool)
    T.join();
  BlockBarrier = nullptr;
}

/// The total the xor butterfly leaves in a warp's lanes, by plain arithmetic on the host.
template <typename V> V butterflyTotal(const V (&Lanes)[32]) {
  V Cur[32];
  std::memcpy(Cur, Lanes, sizeof Cur);
  for (int Offset = 16; Offset > 0; Offset /= 2) {
    V Next[32];
    for (int L = 0; L < 32; ++L)
      Next[L] = Cur[L] + Cur[L ^ Offset];
    std::memcpy(Cur, Next, sizeof Cur);
  }
  return Cur[0];
}

/// Random values whose magnitudes span 10^-4 .. 10^4, so that the order of the sums shows.
template <typename V> V randomValue(std::mt19937_64 &Rng) {
  std::normal_distribution<double> Normal(0.0, 1.0);
  std::uniform_int_distribution<int> Exponent(-4, 4);
  return V(Normal(Rng) * std::pow(10.0, Exponent(Rng)));
}

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
