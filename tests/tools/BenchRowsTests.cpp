// mhcjit tests: the bench's per-shape sums over a whole mHC sublayer (tools/support/BenchRows).
#include "BenchRows.h"

#include "doctest/doctest.h"

namespace mhcjit {
namespace test {

namespace {

/// Every sublayer op in both directions at Shape: the k-th row takes k ms and moves 1e9 bytes.
std::vector<BenchRow> sublayerRows(BenchShape Shape) {
  std::vector<BenchRow> Rows;
  double Ms = 1;
  for (Op O : sublayerOps())
    for (Direction D : {Direction::Forward, Direction::Backward})
      Rows.push_back(BenchRow{Shape, O, D, Ms++, 1e9, 0, 0});
  return Rows;
}

} // namespace

TEST_CASE("the sublayer is project, scale_sinkhorn, aggregate and expand_combine") {
  // a model runs scale and sinkhorn fused, so the sublayer counts the fused op, not the pair
  const std::vector<Op> Expected = {Op::Project, Op::ScaleSinkhorn, Op::Aggregate, Op::ExpandCombine};
  CHECK(sublayerOps() == Expected);
}

TEST_CASE("the sublayer total sums its four ops in both directions per shape") {
  std::vector<BenchRow> Rows = sublayerRows({4, 8192, 7168});
  std::vector<BenchRow> Second = sublayerRows({1, 4096, 6656});
  Rows.insert(Rows.end(), Second.begin(), Second.end());
  // ops outside the sublayer do not count, the separate scale and sinkhorn rows included (the
  // bench still times them, next to the fused op)
  Rows.push_back(BenchRow{{4, 8192, 7168}, Op::Head, Direction::Forward, 100, 1e12, 0, 0});
  for (Op O : {Op::Scale, Op::Sinkhorn})
    for (Direction D : {Direction::Forward, Direction::Backward})
      Rows.push_back(BenchRow{{4, 8192, 7168}, O, D, 1000, 1e12, 0, 0});
  std::vector<SublayerTotal> T = sublayerTotals(Rows, 2e12);
  REQUIRE(T.size() == 2);
  CHECK(T[0].Shape.C == 7168);
  CHECK(T[1].Shape.C == 6656);
  CHECK(T[0].Milliseconds == doctest::Approx(36.0)); // 1 + 2 + ... + 8
  CHECK(T[0].Bytes == doctest::Approx(8e9));
  // 8e9 bytes at 2e12 B/s is 4 ms of 36 ms
  CHECK(T[0].SolPercent == doctest::Approx(100.0 * 4.0 / 36.0));
}

TEST_CASE("separate scale and sinkhorn rows do not stand in for scale_sinkhorn") {
  std::vector<BenchRow> Rows;
  for (Op O : {Op::Project, Op::Scale, Op::Sinkhorn, Op::Aggregate, Op::ExpandCombine})
    for (Direction D : {Direction::Forward, Direction::Backward})
      Rows.push_back(BenchRow{{4, 8192, 7168}, O, D, 1, 1e9, 0, 0});
  CHECK(sublayerTotals(Rows, 2e12).empty());
}

TEST_CASE("a shape missing one sublayer op direction gets no total") {
  std::vector<BenchRow> Rows = sublayerRows({4, 8192, 7168});
  Rows.pop_back();
  CHECK(sublayerTotals(Rows, 2e12).empty());
  // a repeated row does not stand in for the missing one, nor count twice
  Rows.push_back(Rows.front());
  CHECK(sublayerTotals(Rows, 2e12).empty());
  std::vector<BenchRow> Twice = sublayerRows({4, 8192, 7168});
  Twice.push_back(Twice.front());
  REQUIRE(sublayerTotals(Twice, 2e12).size() == 1);
  CHECK(sublayerTotals(Twice, 2e12)[0].Milliseconds == doctest::Approx(36.0));
}

} // namespace test
} // namespace mhcjit
