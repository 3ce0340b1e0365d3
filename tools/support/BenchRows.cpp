// mhcjit tool support: per-shape sums of `mhc-jit bench` rows over a whole mHC sublayer.
#include "BenchRows.h"

#include <algorithm>

namespace mhcjit {

const std::vector<Op> &sublayerOps() {
  static const std::vector<Op> Ops = {Op::Project, Op::Scale, Op::Sinkhorn, Op::Aggregate, Op::ExpandCombine};
  return Ops;
}

std::vector<SublayerTotal> sublayerTotals(const std::vector<BenchRow> &Rows, double CopyBandwidth) {
  auto Same = [](const BenchShape &A, const BenchShape &B) { return A.B == B.B && A.T == B.T && A.C == B.C; };
  std::vector<SublayerTotal> Totals;
  std::vector<std::vector<std::pair<Op, Direction>>> Seen; // per shape, each op direction once
  for (const BenchRow &R : Rows) {
    if (std::find(sublayerOps().begin(), sublayerOps().end(), R.Operation) == sublayerOps().end())
      continue;
    auto It = std::find_if(Totals.begin(), Totals.end(), [&](const SublayerTotal &T) { return Same(T.Shape, R.Shape); });
    if (It == Totals.end()) {
      Totals.push_back(SublayerTotal{R.Shape});
      Seen.emplace_back();
      It = Totals.end() - 1;
    }
    auto &Dirs = Seen[It - Totals.begin()];
    if (std::find(Dirs.begin(), Dirs.end(), std::make_pair(R.Operation, R.Dir)) != Dirs.end())
      continue;
    Dirs.emplace_back(R.Operation, R.Dir);
    It->Milliseconds += R.Milliseconds;
    It->Bytes += R.Bytes;
  }
  std::vector<SublayerTotal> Complete;
  for (size_t I = 0; I < Totals.size(); ++I) {
    if (Seen[I].size() != 2 * sublayerOps().size() || Totals[I].Milliseconds <= 0)
      continue;
    SublayerTotal T = Totals[I];
    T.SolPercent = 100.0 * (T.Bytes / CopyBandwidth) / (T.Milliseconds * 1e-3);
    Complete.push_back(T);
  }
  return Complete;
}

} // namespace mhcjit
