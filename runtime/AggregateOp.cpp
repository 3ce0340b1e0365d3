// mhcjit runtime: aggregate forward and backward launches (SPEC.md section 4).
// Checks every argument before anything is built or launched.
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/LaunchSupport.h"

#include "mhc_args.h"

namespace mhcjit {

namespace {

/// The spec for this call: the config's, with the pointer alignment the arguments allow.
llvm::Expected<KernelSpec> callSpec(const MixConfig &Config, Direction Dir, int Align,
                                    bool AccumulateDx) {
  auto Spec = specFor(Config, Op::Aggregate, Dir);
  if (!Spec)
    return Spec.takeError();
  Spec->AccumulateDx = AccumulateDx;
  // NOTE: a misaligned (but element-aligned) pointer selects a variant with element-wide
  // accesses instead of faulting on a 16-byte vector access.
  Spec->PointerAlign = Align == 16 ? 16 : dtypeSize(Config.StreamType);
  return Spec;
}

} // namespace

llvm::Error aggregateForward(const MixConfig &Config, const AggregateForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  auto Align = checkPointers({{"x", Args.X, Elem}, {"pre", Args.Pre, 4}, {"y", Args.Y, Elem}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Direction::Forward, *Align, false);
  if (!Spec)
    return Spec.takeError();
  auto Kernel = loadKernel(*Spec);
  if (!Kernel)
    return Kernel.takeError();
  mhc::AggregateFwdArgs A{Args.X, Args.Pre, Args.Y, Args.M};
  const int64_t Chunks = (Spec->C + Spec->Tile.Vec - 1) / Spec->Tile.Vec;
  unsigned Blocks = gridBlocks(Args.M * Chunks, Spec->Tile.Threads, Spec->Tile.Threads, Kernel->SmCount);
  return launchKernel(*Kernel, Blocks, Spec->Tile.Threads, &A, Stream);
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
  auto Spec = callSpec(Config, Direction::Backward, *Align, Args.AccumulateDx);
  if (!Spec)
    return Spec.takeError();
  auto Kernel = loadKernel(*Spec);
  if (!Kernel)
    return Kernel.takeError();
  mhc::AggregateBwdArgs A{Args.DY, Args.X, Args.Pre, Args.DX, Args.DPre, Args.M};
  unsigned Blocks = gridBlocks(Args.M, 1, Spec->Tile.Threads, Kernel->SmCount);
  return launchKernel(*Kernel, Blocks, Spec->Tile.Threads, &A, Stream);
}

} // namespace mhcjit
