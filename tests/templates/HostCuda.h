// Host emulation of the CUDA built-ins that templates/ device code uses, for tests that compile
// a template as C++ and run it on the CPU: a block is host threads (one per CUDA thread) whose
// __shfl_xor_sync and __syncthreads meet at a barrier, and a grid is its blocks one after
// another (runGrid), so __shared__ (a function-local static here) belongs to one block at a time.
// It includes templates/mhc_common.cuh; include other templates after it. butterflyTotal gives
// the warp sum's documented order by plain arithmetic, for the tests' expected values, and
// randomValue inputs whose magnitudes are far apart, so that a change of order shows.
#pragma once

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
Dim3 blockIdx, gridDim; // set by runGrid before each block's threads start

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
#define __shared__ static
#define __grid_constant__
#define __launch_bounds__(...)
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

/// Runs Body() as Blocks blocks of Threads threads, block 0 first, each block's threads at once.
template <typename Body> void runGrid(unsigned Blocks, int Threads, Body B) {
  gridDim.x = Blocks;
  for (unsigned Block = 0; Block < Blocks; ++Block) {
    blockIdx.x = Block;
    runBlock(Threads, [&](int) { B(); });
  }
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

} // namespace
