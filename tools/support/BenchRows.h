// mhcjit tool support: rows of `mhc-jit bench` and their per-shape sums over a whole mHC sublayer.
#pragma once

#include "mhcjit/mhcjit.hpp"

#include <vector>

namespace mhcjit {

/// A benchmark shape: M = B * T tokens of hidden size C per stream.
struct BenchShape {
  int64_t B, T, C;
};

/// One op direction timed at one shape.
struct BenchRow {
  BenchShape Shape;
  Op Operation;
  Direction Dir;
  double Milliseconds, Bytes, GBps, SolPercent;
};

/// The ops of one mHC sublayer around attention or MLP as a model runs them: project,
/// scale_sinkhorn (SPEC.md's scale and sinkhorn fused into one kernel a direction) and
/// aggregate before it, expand_combine after it, each run forward and backward.
const std::vector<Op> &sublayerOps();

/// The sublayer at one shape: the sum of its ops' times and minimal bytes in both directions.
struct SublayerTotal {
  BenchShape Shape;
  double Milliseconds = 0, Bytes = 0, SolPercent = 0;
};

/// One total per shape (in the order the shapes first appear) whose rows hold every sublayer op
/// in both directions; shapes missing any of them are left out. SolPercent is against
/// CopyBandwidth (bytes per second). Example: eight rows at (4,8192,7168) summing 10.5 ms and
/// 28.9 GB at 3.0e12 B/s -> 10.5 ms, 91.7% of SOL.
std::vector<SublayerTotal> sublayerTotals(const std::vector<BenchRow> &Rows, double CopyBandwidth);

} // namespace mhcjit
