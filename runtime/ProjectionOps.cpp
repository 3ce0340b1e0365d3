// mhcjit runtime: project and head (SPEC.md sections 1 and 6), the ops that reduce over all of
// K = n*C. Their backwards walk tokens in K-slice blocks; weight gradients are partial rows per
// token range, summed in order by reduce_rows.
#include "mhcjit/Errors.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Workspace.h"

#include "mhc_args.h"

#include <algorithm>

namespace mhcjit {

namespace {

/// Token ranges for a K-slice backward: enough blocks to fill the GPU about four times over.
/// Example: K = 28672 (112 slices of 256), 132 SMs, M = 32768 -> 5 splits of 6554 tokens.
struct TokenSplit {
  int64_t Splits, TokensPerSplit;
};
TokenSplit splitTokens(int64_t M, int64_t Slices, int SmCount) {
  int64_t Splits = std::max<int64_t>(1, std::min<int64_t>(M, (int64_t(SmCount) * 4 + Slices - 1) / Slices));
  int64_t Per = (M + Splits - 1) / Splits;
  return {(M + Per - 1) / Per, Per};
}

} // namespace

llvm::Error projectForward(const MixConfig &Config, const ProjectForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Spec = callSpec(Config, Op::Project, Direction::Forward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  Spec->HasGamma = Args.Gamma != nullptr;
  Spec->Params = effectiveParams(*Spec, Config.Params);
  const int Param = paramBytes(*Spec);
  std::vector<PointerArg> Pointers = {{"x", Args.X, dtypeSize(Config.StreamType)},
                                      {"phi", Args.Phi, Param}, {"H", Args.H, 4}, {"ms", Args.Ms, 4}};
  if (Args.Gamma)
    Pointers.push_back({"gamma", Args.Gamma, Param});
  auto Align = checkPointers(Pointers);
  if (!Align)
    return Align.takeError();
  mhc::ProjectFwdArgs A{Args.X, Args.Phi, Args.Gamma, Args.H, Args.Ms, Args.M};
  return launchOver(*Spec, Args.M, Spec->Tile.Rows, &A, Stream);
}

llvm::Error projectBackward(const MixConfig &Config, const ProjectBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Spec = callSpec(Config, Op::Project, Direction::Backward, 16, Args.AccumulateDx, Args.M);
  if (!Spec)
    return Spec.takeError();
  Spec->HasGamma = Args.Gamma != nullptr;
  Spec->Params = effectiveParams(*Spec, Config.Params);
  const int Elem = dtypeSize(Config.StreamType), Param = paramBytes(*Spec);
  std::vector<PointerArg> Pointers = {{"x", Args.X, Elem},     {"phi", Args.Phi, Param},
                                      {"dH", Args.DH, 4},      {"dms", Args.DMs, 4},
                                      {"dx", Args.DX, Args.AccumulateDx ? 4 : Elem},
                                      {"dphi", Args.DPhi, 4}};
  if (Args.Gamma || Args.DGamma) {
    Pointers.push_back({"gamma", Args.Gamma, Param});
    Pointers.push_back({"dgamma", Args.DGamma, 4});
  }
  auto Align = checkPointers(Pointers);
  if (!Align)
    return Align.takeError();
  auto Kernel = loadKernel(*Spec);
  if (!Kernel)
    return Kernel.takeError();
  const int64_t K = Config.N * Config.C, Mix = int64_t(Config.N) * Config.N + 2 * Config.N;
  const int64_t Slices = (K + Spec->Tile.Threads - 1) / Spec->Tile.Threads;
  const TokenSplit Split = splitTokens(Args.M, Slices, Kernel->SmCount);
  auto Part = streamWorkspace(Stream, size_t(Split.Splits) * (Mix + 1) * K * sizeof(float));
  if (!Part)
    return Part.takeError();
  float *DGammaPart = *Part + Split.Splits * Mix * K;
  mhc::ProjectBwdArgs A{Args.X,  Args.Phi, Args.Gamma, Args.DH, Args.DMs, Args.DX,
                        *Part, DGammaPart, Args.M, Split.TokensPerSplit};
  if (llvm::Error E = launchKernel(*Kernel, unsigned(Slices * Split.Splits), Spec->Tile.Threads, &A, Stream))
    return E;
  if (llvm::Error E = reduceRows(*Part, Split.Splits, Mix * K, Mix * K, Args.DPhi, Stream))
    return E;
  if (!Args.Gamma)
    return llvm::Error::success();
  return reduceRows(DGammaPart, Split.Splits, K, K, Args.DGamma, Stream);
}

llvm::Error headForward(const MixConfig &Config, const HeadForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  auto Align = checkPointers({{"x", Args.X, Elem}, {"w", Args.W, 4}, {"scale", Args.Scale, 4},
                              {"base", Args.Base, 4}, {"y", Args.Y, Elem}});
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::Head, Direction::Forward, 16, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  mhc::HeadFwdArgs A{Args.X, Args.W, Args.Scale, Args.Base, Args.Y, Args.M};
  return launchOver(*Spec, Args.M, 1, &A, Stream);
}

llvm::Error headBackward(const MixConfig &Config, const HeadBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  auto Align = checkPointers({{"x", Args.X, Elem}, {"w", Args.W, 4}, {"scale", Args.Scale, 4},
                              {"base", Args.Base, 4}, {"dy", Args.DY, Elem},
                              {"dx", Args.DX, Args.AccumulateDx ? 4 : Elem}, {"dw", Args.DW, 4},
                              {"dscale", Args.DScale, 4}, {"dbase", Args.DBase, 4}});
  if (!Align)
    return Align.takeError();
  auto TokenSpec = callSpec(Config, Op::Head, Direction::Backward, 16, false, Args.M);
  if (!TokenSpec)
    return TokenSpec.takeError();
  KernelSpec SliceSpec = *TokenSpec;
  SliceSpec.Stage = 1;
  SliceSpec.AccumulateDx = Args.AccumulateDx;
  auto TokenKernel = loadKernel(*TokenSpec);
  if (!TokenKernel)
    return TokenKernel.takeError();
  auto SliceKernel = loadKernel(SliceSpec);
  if (!SliceKernel)
    return SliceKernel.takeError();
  const int64_t N = Config.N, K = N * Config.C;
  const unsigned TokenBlocks = gridBlocks(Args.M, 1, TokenSpec->Tile.Threads, TokenKernel->SmCount);
  const int64_t Slices = (K + SliceSpec.Tile.Threads - 1) / SliceSpec.Tile.Threads;
  const TokenSplit Split = splitTokens(Args.M, Slices, SliceKernel->SmCount);
  // Workspace: wgt (M n), du (M n), dms (M), token partial rows (blocks x (1 + n)), dw partials.
  const size_t PerToken = size_t(Args.M) * (2 * N + 1), Rows = size_t(TokenBlocks) * (1 + N);
  auto Work = streamWorkspace(Stream, (PerToken + Rows + size_t(Split.Splits) * N * K) * sizeof(float));
  if (!Work)
    return Work.takeError();
  float *Wgt = *Work, *Du = Wgt + Args.M * N, *Dms = Du + Args.M * N, *Part = Dms + Args.M;
  float *DwPart = Part + Rows;
  mhc::HeadBwdTokenArgs T{Args.X, Args.DY, Args.W, Args.Scale, Args.Base, Wgt, Du, Dms, Part, Args.M};
  if (llvm::Error E = launchKernel(*TokenKernel, TokenBlocks, TokenSpec->Tile.Threads, &T, Stream))
    return E;
  mhc::HeadBwdSliceArgs S{Args.X, Args.DY, Args.W, Wgt, Du, Dms, Args.DX, DwPart, Args.M, Split.TokensPerSplit};
  if (llvm::Error E = launchKernel(*SliceKernel, unsigned(Slices * Split.Splits), SliceSpec.Tile.Threads, &S, Stream))
    return E;
  if (llvm::Error E = reduceRows(DwPart, Split.Splits, N * K, N * K, Args.DW, Stream))
    return E;
  if (llvm::Error E = reduceRows(Part, TokenBlocks, 1, 1 + N, Args.DScale, Stream))
    return E;
  return reduceRows(Part + 1, TokenBlocks, N, 1 + N, Args.DBase, Stream);
}

} // namespace mhcjit
