// mhcjit runtime: argument checks, grid sizing and the launch call shared by every op.
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/TuningDb.h"

#include "mhc_args.h"

#include "llvm/ADT/StringExtras.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>

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

unsigned gridBlocks(int64_t Work, int64_t ItemsPerBlock, int Threads, const LoadedKernel &Kernel) {
  int64_t Needed = (Work + ItemsPerBlock - 1) / ItemsPerBlock;
  // NOTE: 2048 / Threads overstated it where registers or shared memory allow fewer blocks
  // (aggregate backward, 512 threads: 3 an SM, not 4), and the surplus blocks ran as a second,
  // mostly empty wave.
  const int PerSm = Kernel.BlocksPerSm > 0 ? Kernel.BlocksPerSm : std::max(1, 2048 / Threads);
  int64_t Resident = int64_t(std::max(Kernel.SmCount, 1)) * PerSm;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(Needed, Resident)));
}

llvm::Error launchKernel(const LoadedKernel &Kernel, unsigned Blocks, int Threads, void *Args,
                         CUstream Stream, bool AfterPrevious) {
  const DriverApi &Api = *driverApi(); // loadKernel() already succeeded, so the driver is there
  void *Params[] = {Args};
  if (AfterPrevious && Kernel.DependentLaunch) {
    CUlaunchAttribute Attribute{};
    Attribute.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    Attribute.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig Config{};
    Config.gridDimX = Blocks;
    Config.gridDimY = Config.gridDimZ = 1;
    Config.blockDimX = static_cast<unsigned>(Threads);
    Config.blockDimY = Config.blockDimZ = 1;
    Config.sharedMemBytes = static_cast<unsigned>(Kernel.SharedBytes);
    Config.hStream = Stream;
    Config.attrs = &Attribute;
    Config.numAttrs = 1;
    return checkCuda(Api.cuLaunchKernelEx(&Config, Kernel.Function, Params, nullptr),
                     "cuLaunchKernelEx(" + Kernel.Entry->LoweredName + ", programmatic)");
  }
  return checkCuda(Api.cuLaunchKernel(Kernel.Function, Blocks, 1, 1, static_cast<unsigned>(Threads),
                                      1, 1, static_cast<unsigned>(Kernel.SharedBytes), Stream, Params, nullptr),
                   "cuLaunchKernel(" + Kernel.Entry->LoweredName + ")");
}

llvm::Error launchOver(const KernelSpec &Spec, int64_t Work, int64_t ItemsPerBlock, void *Args,
                       CUstream Stream, bool AfterPrevious) {
  auto Kernel = loadKernel(Spec);
  if (!Kernel)
    return Kernel.takeError();
  unsigned Blocks = gridBlocks(Work, ItemsPerBlock, Spec.Tile.Threads, *Kernel);
  return launchKernel(*Kernel, Blocks, Spec.Tile.Threads, Args, Stream, AfterPrevious);
}

namespace {

/// The base spec of a call with M tokens (M < 1: unknown), its tile from runtimeTile().
llvm::Expected<KernelSpec> specForTokens(const MixConfig &Config, Op Operation, Direction Dir, int64_t M) {
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
  // NOTE: resolved on the base spec (no gamma, no bias), which the tuning DB is keyed by; the
  // ops resolve it again once they know whether the optional inputs are given.
  S.Params = effectiveParams(S, Config.Params);
  if (llvm::Error E = validateSpec(S))
    return std::move(E);
  // NOTE: checked before the tuning DB is consulted, so a bad config never touches a device.
  S.Tile = runtimeTile(S, M);
  return S;
}

} // namespace

llvm::Expected<KernelSpec> callSpec(const MixConfig &Config, Op Operation, Direction Dir, int Align,
                                    bool AccumulateDx, int64_t M) {
  auto Spec = specForTokens(Config, Operation, Dir, M);
  if (!Spec)
    return Spec.takeError();
  Spec->AccumulateDx = AccumulateDx;
  // NOTE: a misaligned (but element-aligned) pointer selects a variant with element-wide
  // accesses instead of faulting on a 16-byte vector access.
  Spec->PointerAlign = Align == 16 ? 16 : dtypeSize(Config.StreamType);
  return Spec;
}

llvm::Error reduceRows(const float *Part, int64_t Rows, int64_t Cols, int64_t Stride, float *Out,
                       CUstream Stream) {
  return reduceRowsSplit(Part, Rows, Cols, Stride, Out, Cols, nullptr, Stream);
}

llvm::Error reduceRowsSplit(const float *Part, int64_t Rows, int64_t Cols, int64_t Stride, float *Out,
                            int64_t Split, float *Out2, CUstream Stream) {
  KernelSpec Spec;
  Spec.Operation = Op::ReduceRows;
  Spec.C = 1;
  Spec.Tile = defaultTileConfig(Spec);
  mhc::ReduceRowsArgs Args{Part, Out, Rows, Cols, Stride, Out2, Split};
  const int64_t ColumnsPerBlock = Cols <= mhc::kReduceBlockColumns && Rows >= mhc::kReduceBlockRows ? 1 : Spec.Tile.Threads;
  // reduce_rows always follows the kernel that wrote its partials, and waits for it in-kernel
  return launchOver(Spec, Cols, ColumnsPerBlock, &Args, Stream, /*AfterPrevious=*/true);
}

llvm::Expected<SmShape> currentSmShape() {
  auto CurrentDevice = currentDevice();
  if (!CurrentDevice)
    return CurrentDevice.takeError();
  const CUdevice Device = *CurrentDevice;
  const DriverApi &Api = *driverApi();
  static std::mutex Lock;
  static std::map<CUdevice, SmShape> Known;
  {
    std::lock_guard<std::mutex> Guard(Lock);
    auto It = Known.find(Device);
    if (It != Known.end())
      return It->second;
  }
  SmShape Shape;
  const std::pair<CUdevice_attribute, int *> Wanted[] = {
      {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, &Shape.SmCount},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, &Shape.SharedPerSm},
      {CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, &Shape.ReservedPerBlock}};
  for (const auto &[Attribute, Value] : Wanted)
    if (llvm::Error E = checkCuda(Api.cuDeviceGetAttribute(Value, Attribute, Device),
                                  "cuDeviceGetAttribute(" + llvm::Twine(int(Attribute)) + ")"))
      return std::move(E);
  std::lock_guard<std::mutex> Guard(Lock);
  Known.emplace(Device, Shape);
  return Shape;
}

llvm::Expected<KernelSpec> specFor(const MixConfig &Config, Op Operation, Direction Dir) {
  return specForTokens(Config, Operation, Dir, /*M=*/0);
}

} // namespace mhcjit
