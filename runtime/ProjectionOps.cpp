// mhcjit runtime: project and head (SPEC.md sections 1 and 6), the ops that reduce over all of
// K = n*C. Their backwards walk tokens in K-slice blocks; weight gradients are partial rows per
// token range, summed in order by reduce_rows.
#include "mhcjit/Errors.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Workspace.h"

#include "mhc_args.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>

namespace mhcjit {

namespace {

/// Token ranges of project backward, each a multiple of 8 tokens. The split is the one that
/// minimises modelled bytes: waves of resident blocks, each moving its x and dx and writing its
/// partial rows (a short last wave costs a whole one), plus the reduction of the partial rows;
/// at least 256 tokens a range, at most 8 ranges per wave-full of column blocks. Example:
/// K = 28672 (112 blocks of 256 columns), bf16, 396 resident blocks, M = 32768 -> 7 ranges of
/// 4688 tokens (784 blocks in two waves of 396): 1.03x the bytes of x and dx alone.
struct TokenSplit {
  int64_t Splits, TokensPerSplit;
};
struct ProjectBwdShape {
  int64_t M, K, Mix, ColumnBlocks, BlockColumns, StreamBytes;
};
TokenSplit projectTokenSplit(const ProjectBwdShape &S, int64_t Resident) {
  Resident = std::max<int64_t>(Resident, 1);
  auto SplitOf = [&](int64_t Wanted) {
    const int64_t Per = ((S.M + Wanted - 1) / Wanted + 7) / 8 * 8;
    return TokenSplit{(S.M + Per - 1) / Per, Per};
  };
  auto Bytes = [&](const TokenSplit &T) {
    const int64_t Blocks = S.ColumnBlocks * T.Splits, Waves = (Blocks + Resident - 1) / Resident;
    const double Block = double(T.TokensPerSplit) * S.BlockColumns * 2 * S.StreamBytes +
                         double(S.Mix + 1) * S.BlockColumns * 4;
    return double(Waves * Resident) * Block + double(T.Splits) * (S.Mix + 1) * S.K * 4 * 2;
  };
  const int64_t MostSplits = std::max<int64_t>(
      1, std::min((S.M + 255) / 256, 8 * ((Resident + S.ColumnBlocks - 1) / S.ColumnBlocks)));
  TokenSplit Best = SplitOf(1);
  for (int64_t Wanted = 2; Wanted <= MostSplits; ++Wanted)
    if (Bytes(SplitOf(Wanted)) < Bytes(Best))
      Best = SplitOf(Wanted);
  return Best;
}

/// Token ranges for head's K-slice backward: enough blocks to fill the GPU about four times over.
/// Example: K = 28672 (112 slices of 256), 132 SMs, M = 32768 -> 5 splits of 6554 tokens.
TokenSplit splitTokens(int64_t M, int64_t Slices, int SmCount) {
  int64_t Splits = std::max<int64_t>(1, std::min<int64_t>(M, (int64_t(SmCount) * 4 + Slices - 1) / Slices));
  int64_t Per = (M + Splits - 1) / Splits;
  return {(M + Per - 1) / Per, Per};
}

llvm::Error checkGrid(int64_t Blocks, llvm::StringRef What) {
  if (Blocks > int64_t(0x7fffffff))
    return makeError(Errc::InvalidArgument, What + " needs " + llvm::Twine(Blocks) +
                                                " blocks, past the grid limit of 2^31 - 1");
  return llvm::Error::success();
}

} // namespace

/// The spec of a project call: gamma and the parameter dtype from the call, and the pointer
/// alignment of all its tensors (element-wide accesses unless every pointer is 16-byte aligned).
/// Pointers(ParamBytes) lists the call's tensors, phi and gamma with elements of ParamBytes.
llvm::Expected<KernelSpec> projectSpec(const MixConfig &Config, Direction Dir, bool AccumulateDx, bool HasGamma,
                                       int64_t M, llvm::function_ref<std::vector<PointerArg>(int)> Pointers) {
  auto Spec = callSpec(Config, Op::Project, Dir, 16, AccumulateDx, M);
  if (!Spec)
    return Spec.takeError();
  Spec->HasGamma = HasGamma;
  Spec->Params = effectiveParams(*Spec, Config.Params);
  auto Align = checkPointers(Pointers(paramBytes(*Spec)));
  if (!Align)
    return Align.takeError();
  Spec->PointerAlign = *Align == 16 ? 16 : dtypeSize(Config.StreamType);
  return Spec;
}

llvm::Error projectForward(const MixConfig &Config, const ProjectForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  auto Pointers = [&](int Param) {
    std::vector<PointerArg> P = {{"x", Args.X, dtypeSize(Config.StreamType)},
                                 {"phi", Args.Phi, Param}, {"H", Args.H, 4}, {"ms", Args.Ms, 4}};
    if (Args.Gamma)
      P.push_back({"gamma", Args.Gamma, Param});
    return P;
  };
  auto Spec = projectSpec(Config, Direction::Forward, false, Args.Gamma != nullptr, Args.M, Pointers);
  if (!Spec)
    return Spec.takeError();
  const int64_t K = int64_t(Config.N) * Config.C, Mix = int64_t(Config.N) * Config.N + 2 * Config.N;
  const int64_t Splits = mhc::project_fwd_splits(K);
  const int64_t TokenBlocks = (Args.M + Spec->Tile.Rows - 1) / Spec->Tile.Rows;
  if (llvm::Error E = checkGrid(TokenBlocks * Splits, "project forward"))
    return E;
  auto Kernel = loadKernel(*Spec);
  if (!Kernel)
    return Kernel.takeError();
  if (Splits == 1) {
    mhc::ProjectFwdArgs A{Args.X, Args.Phi, Args.Gamma, Args.H, Args.Ms, Args.M};
    return launchKernel(*Kernel, unsigned(TokenBlocks), Spec->Tile.Threads, &A, Stream);
  }
  // Several K splits: a row of partials per split, H (M, N) then ms (M), summed in split order
  // by one reduce_rows whose first M N columns go to H and the rest to ms.
  const int64_t Row = Args.M * (Mix + 1);
  auto Part = streamWorkspace(Stream, size_t(Splits * Row) * sizeof(float));
  if (!Part)
    return Part.takeError();
  mhc::ProjectFwdArgs A{Args.X, Args.Phi, Args.Gamma, *Part, *Part + Args.M * Mix, Args.M};
  if (llvm::Error E = launchKernel(*Kernel, unsigned(TokenBlocks * Splits), Spec->Tile.Threads, &A, Stream))
    return E;
  return reduceRowsSplit(*Part, Splits, Row, Row, Args.H, Args.M * Mix, Args.Ms, Stream);
}

llvm::Error projectBackward(const MixConfig &Config, const ProjectBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  auto Pointers = [&](int Param) {
    std::vector<PointerArg> P = {{"x", Args.X, Elem},     {"phi", Args.Phi, Param},
                                 {"dH", Args.DH, 4},      {"dms", Args.DMs, 4},
                                 {"dx", Args.DX, Args.AccumulateDx ? 4 : Elem},
                                 {"dphi", Args.DPhi, 4}};
    if (Args.Gamma || Args.DGamma) {
      P.push_back({"gamma", Args.Gamma, Param});
      P.push_back({"dgamma", Args.DGamma, 4});
    }
    return P;
  };
  auto Spec = projectSpec(Config, Direction::Backward, Args.AccumulateDx, Args.Gamma != nullptr, Args.M, Pointers);
  if (!Spec)
    return Spec.takeError();
  auto Kernel = loadKernel(*Spec);
  if (!Kernel)
    return Kernel.takeError();
  const int64_t K = int64_t(Config.N) * Config.C, Mix = int64_t(Config.N) * Config.N + 2 * Config.N;
  const int64_t ColumnBlocks = mhc::project_bwd_column_blocks(K, Config.N, Spec->Tile.Threads);
  const int64_t Resident = int64_t(Kernel->SmCount) * std::max(Kernel->BlocksPerSm, 1);
  const int64_t BlockColumns = mhc::project_bwd_on_tensor_cores(Config.N) ? 64 * (Spec->Tile.Threads / 32)
                                                                          : Spec->Tile.Threads;
  const TokenSplit Split =
      projectTokenSplit({Args.M, K, Mix, ColumnBlocks, BlockColumns, Elem}, Resident);
  if (llvm::Error E = checkGrid(ColumnBlocks * Split.Splits, "project backward"))
    return E;
  auto Part = streamWorkspace(Stream, size_t(Split.Splits) * (Mix + 1) * K * sizeof(float));
  if (!Part)
    return Part.takeError();
  float *DGammaPart = *Part + Split.Splits * Mix * K;
  mhc::ProjectBwdArgs A{Args.X,  Args.Phi, Args.Gamma, Args.DH, Args.DMs, Args.DX,
                        *Part, DGammaPart, Args.M, Split.TokensPerSplit};
  if (llvm::Error E = launchKernel(*Kernel, unsigned(ColumnBlocks * Split.Splits), Spec->Tile.Threads, &A, Stream))
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
  const unsigned TokenBlocks = gridBlocks(Args.M, 1, TokenSpec->Tile.Threads, *TokenKernel);
  const int64_t Slices = (K + SliceSpec.Tile.Threads - 1) / SliceSpec.Tile.Threads;
  const TokenSplit Split = splitTokens(Args.M, Slices, SliceKernel->SmCount);
  // Workspace: the token partial rows (blocks x (1 + n) doubles, first: 8-byte aligned), then
  // wgt (M n), du (M n), dms (M) and the dw partials in fp32.
  const size_t Rows = size_t(TokenBlocks) * (1 + N), PerToken = size_t(Args.M) * (2 * N + 1);
  auto Work = streamWorkspace(Stream, Rows * sizeof(double) + (PerToken + size_t(Split.Splits) * N * K) * sizeof(float));
  if (!Work)
    return Work.takeError();
  double *Part = reinterpret_cast<double *>(*Work);
  float *Wgt = reinterpret_cast<float *>(Part + Rows), *Du = Wgt + Args.M * N, *Dms = Du + Args.M * N;
  float *DwPart = Dms + Args.M;
  mhc::HeadBwdTokenArgs T{Args.X, Args.DY, Args.W, Args.Scale, Args.Base, Wgt, Du, Dms, Part, Args.M};
  if (llvm::Error E = launchKernel(*TokenKernel, TokenBlocks, TokenSpec->Tile.Threads, &T, Stream))
    return E;
  mhc::HeadBwdSliceArgs S{Args.X,  Args.DY, Args.W, Wgt, Du, Dms, Args.DX, DwPart, Args.M, Split.TokensPerSplit,
                          Part, int64_t(TokenBlocks), Args.DScale, Args.DBase};
  if (llvm::Error E = launchKernel(*SliceKernel, unsigned(Slices * Split.Splits), SliceSpec.Tile.Threads, &S, Stream))
    return E;
  return reduceRows(DwPart, Split.Splits, N * K, N * K, Args.DW, Stream);
}

} // namespace mhcjit
