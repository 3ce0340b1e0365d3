// mhcjit GPU tests: skipping without a GPU, fast random inputs, and Expected unwrapping.
#pragma once

#include "mhcjit/Driver.h"

#include "doctest/doctest.h"
#include "llvm/Support/Error.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace mhcjit {
namespace test {

/// True when a GPU is present; otherwise prints a visible skip line once per test case.
inline bool requireGpu(const char *What) {
  if (gpuAvailable())
    return true;
  std::fprintf(stderr, "SKIPPED (no GPU): %s\n", What);
  MESSAGE("skipped: no GPU on this machine");
  return false;
}

/// Fails the current test with E's message (if any) and returns whether it was success.
inline bool ok(llvm::Error E) {
  if (!E)
    return true;
  FAIL_CHECK(llvm::toString(std::move(E)));
  return false;
}

template <typename T> T take(llvm::Expected<T> V) {
  if (!V) {
    FAIL(llvm::toString(V.takeError()));
  }
  return std::move(*V);
}

/// xoshiro-style generator: fast enough for hundreds of millions of inputs, seeded freshly.
class Random {
public:
  explicit Random(uint64_t Seed) : State(Seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    State ^= State << 13;
    State ^= State >> 7;
    State ^= State << 17;
    return State;
  }
  /// Uniform in [0, 1).
  float uniform() { return float(next() >> 40) * 0x1p-24f; }
  /// Approximately standard normal (sum of 4 uniforms, rescaled: mean 0, variance 1).
  float normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f; }

private:
  uint64_t State;
};

/// A seed that differs on every run (inputs are fresh each time), printed on failure.
uint64_t freshSeed();

} // namespace test
} // namespace mhcjit
