// mhcjit runtime: expand_combine forward and backward (SPEC.md section 5); dbias through
// per-block partial rows summed in order by reduce_rows.
#include "mhcjit/Errors.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Workspace.h"

#include "mhc_args.h"

#include <algorithm>

namespace mhcjit {

namespace {

/// Bytes per bias element: the stream dtype's with params = stream, else fp32's (an fp32 stream
/// has fp32 parameters either way).
int biasBytes(const MixConfig &Config) {
  return Config.Params == ParamType::Stream ? dtypeSize(Config.StreamType) : 4;
}

} // namespace

llvm::Error expandCombineForward(const MixConfig &Config, const ExpandCombineForwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  std::vector<PointerArg> Pointers = {{"f", Args.F, Elem}, {"post", Args.Post, 4}, {"x", Args.X, Elem},
                                      {"res", Args.Res, 4}, {"out", Args.Out, Elem}};
  if (Args.Bias)
    Pointers.push_back({"bias", Args.Bias, biasBytes(Config)});
  auto Align = checkPointers(Pointers);
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::ExpandCombine, Direction::Forward, *Align, false, Args.M);
  if (!Spec)
    return Spec.takeError();
  Spec->HasBias = Args.Bias != nullptr;
  Spec->Params = effectiveParams(*Spec, Config.Params);
  mhc::ExpandCombineFwdArgs A{Args.F, Args.Bias, Args.Post, Args.X, Args.Res, Args.Out, Args.M};
  // a warp per span of 32 * rows chunks of a token (templates/expand_combine.cuh)
  const int64_t Chunks = (Spec->C + Spec->Tile.Vec - 1) / Spec->Tile.Vec;
  const int64_t Span = 32 * int64_t(Spec->Tile.Rows);
  return launchOver(*Spec, Args.M * ((Chunks + Span - 1) / Span), Spec->Tile.Threads / 32, &A, Stream);
}

llvm::Error expandCombineBackward(const MixConfig &Config, const ExpandCombineBackwardArgs &Args, CUstream Stream) {
  if (llvm::Error E = checkTokens(Args.M))
    return E;
  const int Elem = dtypeSize(Config.StreamType);
  std::vector<PointerArg> Pointers = {{"dout", Args.DOut, Elem}, {"f", Args.F, Elem},
                                      {"post", Args.Post, 4},     {"x", Args.X, Elem},
                                      {"res", Args.Res, 4},       {"df", Args.DF, Elem},
                                      {"dpost", Args.DPost, 4},   {"dres", Args.DRes, 4},
                                      {"dx", Args.DX, Args.AccumulateDx ? 4 : Elem}};
  if (Args.Bias || Args.DBias) {
    Pointers.push_back({"bias", Args.Bias, biasBytes(Config)});
    Pointers.push_back({"dbias", Args.DBias, 4});
  }
  auto Align = checkPointers(Pointers);
  if (!Align)
    return Align.takeError();
  auto Spec = callSpec(Config, Op::ExpandCombine, Direction::Backward, *Align, Args.AccumulateDx, Args.M);
  if (!Spec)
    return Spec.takeError();
  Spec->HasBias = Args.Bias != nullptr;
  Spec->Params = effectiveParams(*Spec, Config.Params);
  auto Kernel = loadKernel(*Spec);
  if (!Kernel)
    return Kernel.takeError();
  // NOTE: as many blocks as are resident (each walks its tokens), except where a thread has more
  // than 8 chunks of a token: there at most two an SM. H100, n = 4 bf16, te: all resident took
  // C = 2560 from 487 to 408 us (two an SM had held it at 25% occupancy, 72% of DRAM bandwidth),
  // C = 4096 from 1426 to 1333, C = 6656 from 295 to 277; at C = 16384 (16 chunks a thread) it
  // went from 1363 to 1610 us. The dbias partials are rows x C floats, a few rows an SM.
  const int64_t ChunksPerThread = ((Config.C + Spec->Tile.Vec - 1) / Spec->Tile.Vec + Spec->Tile.Threads - 1) /
                                  Spec->Tile.Threads;
  unsigned Blocks = gridBlocks(Args.M, 1, Spec->Tile.Threads, *Kernel);
  if (ChunksPerThread > 8)
    Blocks = std::min<unsigned>(Blocks, unsigned(2 * std::max(Kernel->SmCount, 1)));
  float *Part = nullptr;
  if (Spec->HasBias) {
    auto Workspace = streamWorkspace(Stream, size_t(Blocks) * Config.C * sizeof(float));
    if (!Workspace)
      return Workspace.takeError();
    Part = *Workspace;
  }
  mhc::ExpandCombineBwdArgs A{Args.DOut, Args.F, Args.Bias, Args.Post, Args.X, Args.Res, Args.DF,
                              Args.DPost, Args.DRes, Args.DX, Part, Args.M};
  if (llvm::Error E = launchKernel(*Kernel, Blocks, Spec->Tile.Threads, &A, Stream))
    return E;
  if (!Spec->HasBias)
    return llvm::Error::success();
  return reduceRows(Part, Blocks, Config.C, Config.C, Args.DBias, Stream);
}

} // namespace mhcjit
