// mhcjit runtime: scale and sinkhorn (SPEC.md sections 2 and 3), the per-token mixing math, as
// two ops and fused (scale_sinkhorn). One thread per token in every kernel. The backwards'
// dalpha and dbeta come from per-block partial rows summed by reduce_rows.
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Workspace.h"

#include "mhc_args.h"

#include <algorithm>

namespace mhcjit {

namespace {

int64_t mixWidth(const MixConfig &Config) { return int64_t(Config.N) * Config.N + 2 * Config.N; }

/// Launches a backward of a thread per token whose blocks write [dalpha(3), dbeta(N)] partial
/// rows into A.part (at most BlocksPerSm blocks an SM where that is > 0), then reduce_rows
/// finishes them into DAlpha and DBeta.
template <typename DeviceArgs>
llvm::Error launchWithMixPartials(const KernelSpec &Spec, const MixConfig &Config, int64_t M, int BlocksPerSm,
                                  DeviceArgs A, float *DAlpha, float *DBeta, CUstream Stream) {
  auto Kernel = loadKernel(Spec);
  if (!Kernel)
    return Kernel.takeError();
  unsigned Blocks = gridBlocks(M, Spec.Tile.Threads, Spec.Tile.Threads, *Kernel);
  if (BlocksPerSm > 0)
    Blocks = std::min<unsigned>(Blocks, unsigned(BlocksPerSm * std::max(Kernel->SmCount, 1)));
  const int64_t Row = 3 + mixWidth(Config);
  auto Part = streamWorkspace(Stream, size_t(Blocks) * Row * sizeof(float));
  if (!Part)
    return Part.takeError();
  A.part = *Part;
  if (llvm::Error E = launchKernel(*Kernel, Blocks, Spec.Tile.Threads, &A, Stream))
    return E;
  return reduceRowsSplit(*Part, Blocks, Row, Row, DAlpha, 3, DBeta, Stream);
}

} // namespace

llvm::Error scaleForward(const MixConfig &Config, const ScaleForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Align = checkPointers({{"H", Args.H, 4}, {"ms", Args.Ms, 4}, {"alpha", Args.Alpha, 4},
                              {"beta", Args.Beta, 4}, {"pre", Args.Pre, 4}, {"post", Args.Post, 4},
                              {"logits", Args.Logits, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Scale, Direction::Forward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::ScaleFwdArgs A{Args.H, Args.Ms, Args.Alpha, Args.Beta, Args.Pre, Args.Post, Args.Logits, Args.M};
  return launchOver(*Spec, Args.M, Spec->Tile.Threads, &A, Stream);
}

llvm::Error scaleBackward(const MixConfig &Config, const ScaleBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Align = checkPointers({{"H", Args.H, 4}, {"ms", Args.Ms, 4}, {"alpha", Args.Alpha, 4},
                              {"beta", Args.Beta, 4}, {"dpre", Args.DPre, 4}, {"dpost", Args.DPost, 4},
                              {"dlogits", Args.DLogits, 4}, {"dH", Args.DH, 4}, {"dms", Args.DMs, 4},
                              {"dalpha", Args.DAlpha, 4}, {"dbeta", Args.DBeta, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Scale, Direction::Backward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  // NOTE: few partial rows keep reduce_rows short; two blocks per SM still cover M = 32768 in
  // one token per thread.
  mhc::ScaleBwdArgs A{Args.H,       Args.Ms, Args.Alpha, Args.Beta, Args.DPre, Args.DPost,
                      Args.DLogits, Args.DH, Args.DMs,   nullptr,   Args.M};
  return launchWithMixPartials(*Spec, Config, Args.M, /*BlocksPerSm=*/2, A, Args.DAlpha, Args.DBeta, Stream);
}

llvm::Error sinkhornForward(const MixConfig &Config, const SinkhornForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Align = checkPointers({{"logits", Args.Logits, 4}, {"res", Args.Res, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Sinkhorn, Direction::Forward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::SinkhornFwdArgs A{Args.Logits, Args.Res, Args.M};
  return launchOver(*Spec, Args.M, Spec->Tile.Threads, &A, Stream);
}

llvm::Error sinkhornBackward(const MixConfig &Config, const SinkhornBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Align = checkPointers({{"logits", Args.Logits, 4}, {"dres", Args.DRes, 4}, {"dlogits", Args.DLogits, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Sinkhorn, Direction::Backward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::SinkhornBwdArgs A{Args.Logits, Args.DRes, Args.DLogits, Args.M};
  return launchOver(*Spec, Args.M, Spec->Tile.Threads, &A, Stream);
}

llvm::Error scaleSinkhornForward(const MixConfig &Config, const ScaleSinkhornForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Align = checkPointers({{"H", Args.H, 4}, {"ms", Args.Ms, 4}, {"alpha", Args.Alpha, 4},
                              {"beta", Args.Beta, 4}, {"pre", Args.Pre, 4}, {"post", Args.Post, 4},
                              {"res", Args.Res, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::ScaleSinkhorn, Direction::Forward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::ScaleSinkhornFwdArgs A{Args.H, Args.Ms, Args.Alpha, Args.Beta, Args.Pre, Args.Post, Args.Res, Args.M};
  return launchOver(*Spec, Args.M, Spec->Tile.Threads, &A, Stream);
}

llvm::Error scaleSinkhornBackward(const MixConfig &Config, const ScaleSinkhornBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Align = checkPointers({{"H", Args.H, 4}, {"ms", Args.Ms, 4}, {"alpha", Args.Alpha, 4},
                              {"beta", Args.Beta, 4}, {"dpre", Args.DPre, 4}, {"dpost", Args.DPost, 4},
                              {"dres", Args.DRes, 4}, {"dH", Args.DH, 4}, {"dms", Args.DMs, 4},
                              {"dalpha", Args.DAlpha, 4}, {"dbeta", Args.DBeta, 4}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::ScaleSinkhorn, Direction::Backward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  // NOTE: a thread per token in one wave: the sinkhorn backward is a long dependent chain, so
  // a thread that took two tokens would double the kernel's time; the partial rows stay few
  // (M / threads, at most what is resident).
  mhc::ScaleSinkhornBwdArgs A{Args.H,    Args.Ms, Args.Alpha, Args.Beta, Args.DPre, Args.DPost,
                              Args.DRes, Args.DH, Args.DMs,   nullptr,   Args.M};
  return launchWithMixPartials(*Spec, Config, Args.M, /*BlocksPerSm=*/0, A, Args.DAlpha, Args.DBeta, Stream);
}

} // namespace mhcjit
