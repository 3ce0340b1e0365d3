// Tests of templates/reduce_rows.cuh run on the host (HostCuda.h): the kernel's two paths must
// give every column bitwise the sum of its documented order, write each column exactly once
// (to out below args.split, to out2 from it), and cover every column whatever the grid.
// - a column a thread (wide, or fewer than kReduceBlockRows rows): rows 0, 1, 2, ... in order;
// - a column a block (at most kReduceBlockColumns columns of at least kReduceBlockRows rows):
//   thread t adds rows t, t + 256, ... in order, then block_sum_to_thread0's order (each warp's
//   xor butterfly, then the warps in index order).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "HostCuda.h"
#include "reduce_rows.cuh"

namespace {

constexpr int kThreads = 256;

/// The kernel's documented choice of path (templates/mhc_args.h, kReduceBlockColumns).
bool columnABlock(long long Cols, long long Rows) {
  return Cols <= mhc::kReduceBlockColumns && Rows >= mhc::kReduceBlockRows;
}

/// Column C's sum in the order the kernel documents for its path.
float expectedSum(const std::vector<float> &Part, long long Rows, long long Stride, long long C, bool ByBlock) {
  if (!ByBlock) {
    float S = 0.0f;
    for (long long R = 0; R < Rows; ++R)
      S += Part[R * Stride + C];
    return S;
  }
  float Thread[kThreads] = {};
  for (int T = 0; T < kThreads; ++T)
    for (long long R = T; R < Rows; R += kThreads)
      Thread[T] += Part[R * Stride + C];
  float Total = 0.0f;
  for (int W = 0; W < kThreads / 32; ++W) {
    float Lanes[32];
    std::memcpy(Lanes, Thread + 32 * W, sizeof Lanes);
    Total = W == 0 ? butterflyTotal(Lanes) : Total + butterflyTotal(Lanes);
  }
  return Total;
}

/// One launch of reduce_rows<256> on Blocks emulated blocks, checked column by column.
void checkReduce(long long Rows, long long Cols, long long Stride, long long Split, unsigned Blocks, std::mt19937_64 &Rng) {
  CAPTURE(Rows);
  CAPTURE(Cols);
  CAPTURE(Stride);
  CAPTURE(Split);
  CAPTURE(Blocks);
  std::vector<float> Part(size_t(Rows * Stride));
  for (float &X : Part)
    X = randomValue<float>(Rng);
  const float Poison = std::numeric_limits<float>::quiet_NaN();
  // one guard element past each output: a write beyond the columns shows there
  std::vector<float> Out(size_t(Split) + 1, Poison), Out2(size_t(Cols - Split) + 1, Poison);
  const mhc::ReduceRowsArgs Args{Part.data(), Out.data(), Rows, Cols, Stride, Out2.data(), Split};
  runGrid(Blocks, kThreads, [&] { mhc::reduce_rows<kThreads>(Args); });
  const bool ByBlock = columnABlock(Cols, Rows);
  for (long long C = 0; C < Cols; ++C) {
    CAPTURE(C);
    const float Want = expectedSum(Part, Rows, Stride, C, ByBlock);
    const float Got = C < Split ? Out[size_t(C)] : Out2[size_t(C - Split)];
    CHECK(std::memcmp(&Want, &Got, sizeof Want) == 0);
  }
  CHECK(std::isnan(Out[size_t(Split)]));
  CHECK(std::isnan(Out2[size_t(Cols - Split)]));
}

} // namespace

TEST_CASE("reduce_rows gives each column its documented order's sum, bitwise, on either path") {
  std::mt19937_64 Rng(7);
  // a column a thread: few rows (project backward's token ranges), wide rows, a grid smaller
  // than the columns (grid-stride), a stride past the columns and a second output
  checkReduce(5, 1000, 1000, 1000, 4, Rng);
  checkReduce(63, 700, 709, 300, 2, Rng);
  checkReduce(3, 2000, 2000, 1, 3, Rng);
  checkReduce(200, 1025, 1025, 1025, 5, Rng);
  // a column a block: dalpha / dbeta shapes, rows not a multiple of the block, one block for
  // several columns (grid-stride), out2 from column 3 (scale backward's dalpha | dbeta)
  checkReduce(64, 27, 27, 3, 27, Rng);
  checkReduce(1000, 27, 30, 3, 9, Rng);
  checkReduce(513, 40, 40, 40, 16, Rng);
  checkReduce(300, 1, 1, 1, 1, Rng);
}
