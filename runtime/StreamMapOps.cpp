// mhcjit runtime: expand and contract, the block boundaries (SPEC.md section 6).
#include "mhcjit/LaunchSupport.h"

#include "mhc_args.h"

namespace mhcjit {

namespace {

/// Shared by the four directions: checks, spec, and a grid over every (token, chunk).
llvm::Error launchStreamMap(const MixConfig &Config, Op Operation, Direction Dir, int64_t M,
                            PointerArg In, PointerArg Out, bool Accumulate, CUstream Stream) {
  if (llvm::Error E = checkTokens(M))
    return E;
  auto Align = checkPointers({In, Out});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Operation, Dir, *Align, Accumulate, M);
  if (!Spec)
    return Spec.takeError();
  mhc::StreamMapArgs A{In.Pointer, const_cast<void *>(Out.Pointer), M};
  const int64_t Chunks = (Spec->C + Spec->Tile.Vec - 1) / Spec->Tile.Vec;
  return launchOver(*Spec, M * Chunks, Spec->Tile.Threads, &A, Stream);
}

} // namespace

llvm::Error expandForward(const MixConfig &Config, const ExpandForwardArgs &Args, CUstream Stream) {
  const int Elem = dtypeSize(Config.StreamType);
  return launchStreamMap(Config, Op::Expand, Direction::Forward, Args.M, {"y", Args.Y, Elem},
                         {"x", Args.X, Elem}, false, Stream);
}

llvm::Error expandBackward(const MixConfig &Config, const ExpandBackwardArgs &Args, CUstream Stream) {
  const int Elem = dtypeSize(Config.StreamType);
  return launchStreamMap(Config, Op::Expand, Direction::Backward, Args.M, {"dx", Args.DX, Elem},
                         {"dy", Args.DY, Elem}, false, Stream);
}

llvm::Error contractForward(const MixConfig &Config, const ContractForwardArgs &Args, CUstream Stream) {
  const int Elem = dtypeSize(Config.StreamType);
  return launchStreamMap(Config, Op::Contract, Direction::Forward, Args.M, {"x", Args.X, Elem},
                         {"y", Args.Y, Elem}, false, Stream);
}

llvm::Error contractBackward(const MixConfig &Config, const ContractBackwardArgs &Args, CUstream Stream) {
  const int Elem = dtypeSize(Config.StreamType);
  return launchStreamMap(Config, Op::Contract, Direction::Backward, Args.M, {"dy", Args.DY, Elem},
                         {"dx", Args.DX, Args.AccumulateDx ? 4 : Elem}, Args.AccumulateDx, Stream);
}

} // namespace mhcjit
