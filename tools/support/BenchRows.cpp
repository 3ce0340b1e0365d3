// mhcjit tool support: per-shape sums of `mhc-jit bench` rows over a whole mHC sublayer.
#include "BenchRows.h"

#include <algorithm>

namespace mhcjit {

const std::vector<Op> &sublayerOps() {
  // scale_sinkhorn, not scale and sinkhorn: a model runs the fused op, so the sublayer's time
  // and bytes are the fused kernels' (no logits through global memory)
  static const std::vector<Op> Ops = {Op::Project, Op::ScaleSinkhorn, Op::Aggregate, Op::ExpandCombine};
  return Ops;
}

std::vector<SublayerTotal> sublayerTotals(const std::vector<BenchRow> &Rows, double CopyBandwidth) {
  struct Shape {
    SublayerTotal Total;
    std::vector<std::pair<Op, Direction>> Seen; // each op direction counted once
  };
  std::vector<Shape> Shapes;
  for (const BenchRow &R : Rows) {
    if (std::find(sublayerOps().begin(), sublayerOps().end(), R.Operation) == sublayerOps().end())
      continue;
    auto It = std::find_if(Shapes.begin(), Shapes.end(), [&](const Shape &S) {
      return S.Total.Shape.B == R.Shape.B && S.Total.Shape.T == R.Shape.T && S.Total.Shape.C == R.Shape.C;
    });
    if (It == Shapes.end())
      It = Shapes.insert(Shapes.end(), Shape{SublayerTotal{R.Shape}, {}});
    if (std::find(It->Seen.begin(), It->Seen.end(), std::make_pair(R.Operation, R.Dir)) != It->Seen.end())
      continue;
    It->Seen.emplace_back(R.Operation, R.Dir);
    It->Total.Milliseconds += R.Milliseconds;
    It->Total.Bytes += R.Bytes;
  }
  std::vector<SublayerTotal> Complete;
  for (Shape &S : Shapes)
    if (S.Seen.size() == 2 * sublayerOps().size() && S.Total.Milliseconds > 0) {
      S.Total.SolPercent = 100.0 * (S.Total.Bytes / CopyBandwidth) / (S.Total.Milliseconds * 1e-3);
      Complete.push_back(S.Total);
    }
  return Complete;
}

} // namespace mhcjit
