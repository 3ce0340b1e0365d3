// mhcjit runtime: aggregate forward and backward launches (SPEC.md section 4).
// Checks every argument before anything is built or launched.
#include "mhcjit/LaunchSupport.h"

#include "mhc_args.h"

namespace mhcjit {

llvm::Error aggregateForward(const MixConfig &Config, const AggregateForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  auto Align = checkPointers({{"x", Args.X, Elem}, {"pre", Args.Pre, 4}, {"y", Args.Y, Elem}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Aggregate, Direction::Forward, *Align, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::AggregateFwdArgs A{Args.X, Args.Pre, Args.Y, Args.M};
  const int64_t Chunks = (Spec->C + Spec->Tile.Vec - 1) / Spec->Tile.Vec;
  return launchOver(*Spec, Args.M * Chunks, Spec->Tile.Threads, &A, Stream);
}

llvm::Error aggregateBackward(const MixConfig &Config, const AggregateBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  auto Align = checkPointers({{"dy", Args.DY, Elem},
                              {"x", Args.X, Elem},
                              {"pre", Args.Pre, 4},
                              {"dx", Args.DX, Args.AccumulateDx ? 4 : Elem},
                              {"dpre", Args.DPre, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Aggregate, Direction::Backward, *Align, Args.AccumulateDx, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::AggregateBwdArgs A{Args.DY, Args.X, Args.Pre, Args.DX, Args.DPre, Args.M};
  return launchOver(*Spec, Args.M, 1, &A, Stream);
}

} // namespace mhcjit
