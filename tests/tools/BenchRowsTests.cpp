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

TEST_CASE("the sublayer total sums its five ops in both directions per shape") {
  std::vector<BenchRow> Rows = sublayerRows({4, 8192, 7168});
  std::vector<BenchRow> Second = sublayerRows({1, 4096, 6656});
  Rows.insert(Rows.end(), Second.begin(), Second.end());
  // ops outside the sublayer do not count
  Rows.push_back(BenchRow{{4, 8192, 7168}, Op::Head, Direction::Forward, 100, 1e12, 0, 0});
  std::vector<SublayerTotal> T = sublayerTotals(Rows, 2e12);
  REQUIRE(T.size() == 2);
  CHECK(T[0].Shape.C == 7168);
  CHECK(T[1].Shape.C == 6656);
  CHECK(T[0].Milliseconds == doctest::Approx(55.0)); // 1 + 2 + ... + 10
  CHECK(T[0].Bytes == doctest::Approx(1e10));
  // 1e10 bytes at 2e12 B/s is 5 ms of 55 ms
  CHECK(T[0].SolPercent == doctest::Approx(100.0 * 5.0 / 55.0));
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
  CHECK(sublayerTotals(Twice, 2e12)[0].Milliseconds == doctest::Approx(55.0));
}

} // namespace test
} // namespace mhcjit
