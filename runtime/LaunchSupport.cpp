// mhcjit runtime: argument checks, grid sizing and the launch call shared by every op.
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/TileHeuristic.h"

#include "llvm/ADT/StringExtras.h"

#include <algorithm>
#include <cstdint>

namespace mhcjit {

llvm::Error checkTokens(int64_t M) {
  const int64_t MaxTokens = int64_t(1) << 40;
  if (M < 1 || M > MaxTokens)
    return makeError(Errc::InvalidArgument, "M = " + llvm::Twine(M) +
                                                " tokens is outside the supported range 1..2^40");
  return llvm::Error::success();
}

llvm::Expected<int> checkPointers(llvm::ArrayRef<PointerArg> Pointers) {
  bool All16 = true;
  for (const PointerArg &P : Pointers) {
    auto Address = reinterpret_cast<uintptr_t>(P.Pointer);
    if (!P.Pointer)
      return makeError(Errc::InvalidArgument, llvm::Twine("pointer '") + P.Name + "' is null");
    if (Address % P.ElementBytes != 0)
      return makeError(Errc::InvalidArgument,
                       llvm::Twine("pointer '") + P.Name + "' = " +
                           "0x" + llvm::utohexstr(Address) + " is not aligned to its " +
                           llvm::Twine(P.ElementBytes) + "-byte elements");
    All16 &= Address % 16 == 0;
  }
  return All16 ? 16 : 0;
}

unsigned gridBlocks(int64_t Work, int64_t ItemsPerBlock, int Threads, int SmCount) {
  int64_t Needed = (Work + ItemsPerBlock - 1) / ItemsPerBlock;
  int64_t Resident = int64_t(std::max(SmCount, 1)) * std::max(1, 2048 / Threads);
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(Needed, Resident)));
}

llvm::Error launchKernel(const LoadedKernel &Kernel, unsigned Blocks, int Threads, void *Args,
                         CUstream Stream) {
  const DriverApi &Api = *driverApi(); // loadKernel() already succeeded, so the driver is there
  void *Params[] = {Args};
  return checkCuda(Api.cuLaunchKernel(Kernel.Function, Blocks, 1, 1, static_cast<unsigned>(Threads),
                                      1, 1, 0, Stream, Params, nullptr),
                   "cuLaunchKernel(" + Kernel.Entry->LoweredName + ")");
}

llvm::Expected<KernelSpec> specFor(const MixConfig &Config, Op Operation, Direction Dir) {
  KernelSpec S;
  S.Operation = Operation;
  S.Dir = Dir;
  S.N = Config.N;
  S.C = Config.C;
  S.StreamType = Config.StreamType;
  S.StreamLayout = Config.layout();
  S.Contract = Config.Contract;
  S.Prec = Config.Prec;
  S.Tile = defaultTileConfig(S);
  if (llvm::Error E = validateSpec(S))
    return std::move(E);
  return S;
}

} // namespace mhcjit
