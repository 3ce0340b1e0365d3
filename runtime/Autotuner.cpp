// mhcjit runtime: the autotuner: every candidate tile timed through the op's own launch code on
// scratch tensors, the winner picked with the 2% tie band, and MHCJIT_AUTOTUNE's first-use path.
#include "mhcjit/Autotuner.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/ScratchLaunch.h"
#include "mhcjit/TileOverride.h"
#include "mhcjit/TuningDb.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

namespace mhcjit {

namespace {

/// The op call configuration a base spec was made from (specFor's inverse).
MixConfig mixConfigOf(const KernelSpec &Base) {
  MixConfig Config;
  Config.N = Base.N;
  Config.C = Base.C;
  Config.StreamType = Base.StreamType;
  Config.Contract = Base.Contract;
  Config.StreamLayout = Base.StreamLayout;
  Config.Prec = Base.Prec;
  return Config;
}

std::string tileText(const TileConfig &T) {
  return "threads=" + std::to_string(T.Threads) + " vec=" + std::to_string(T.Vec) +
         " rows=" + std::to_string(T.Rows);
}

/// Compiles (or finds in a cache) every kernel any candidate launches, on all cores, so that the
/// timing loop does not compile them one after another (NVRTC takes about a second a kernel).
llvm::Error buildCandidates(const MixConfig &Config, const KernelSpec &CallBase, Op Operation, Direction Dir,
                            const std::vector<TileConfig> &Candidates) {
  std::vector<KernelSpec> Specs;
  for (const TileConfig &Tile : Candidates) {
    ScopedTileOverride Force(CallBase, Tile); // the override is per thread: collect here
    auto Kernels = kernelsForCall(Config, Operation, Dir);
    if (!Kernels)
      return Kernels.takeError();
    for (KernelSpec &K : *Kernels)
      if (std::find(Specs.begin(), Specs.end(), K) == Specs.end())
        Specs.push_back(std::move(K));
  }
  auto Arch = currentDeviceArch();
  if (!Arch)
    return Arch.takeError();
  const RuntimeOptions Options = runtimeOptions(); // one copy for all threads
  std::vector<std::string> Failures(Specs.size());
  {
    llvm::ThreadPool Pool(llvm::hardware_concurrency());
    for (size_t I = 0; I < Specs.size(); ++I)
      Pool.async([&, I] {
        if (auto Built = buildKernel(Specs[I], *Arch, Options); !Built)
          Failures[I] = llvm::toString(Built.takeError());
      });
    Pool.wait();
  }
  for (const std::string &F : Failures)
    if (!F.empty())
      return makeError(Errc::CompileFailed, "tuning " + specLabel(CallBase) + ": " + F);
  return llvm::Error::success();
}

} // namespace

llvm::Expected<TuneResult> tuneSpec(const KernelSpec &Base, int64_t M, TimingPlan Plan) {
  const auto Begin = std::chrono::steady_clock::now();
  if (M < 1)
    return makeError(Errc::InvalidArgument, "tuning needs M >= 1 tokens, got " + llvm::Twine(M));
  if (Base.Operation == Op::ReduceRows)
    return makeError(Errc::InvalidArgument, "reduce_rows is a helper kernel; tune the op that launches it");
  const MixConfig Config = mixConfigOf(Base);
  // the spec a call makes, so the override below matches the one the launch code asks for
  auto CallBase = specFor(Config, Base.Operation, Base.Dir);
  if (!CallBase)
    return CallBase.takeError();
  auto Device = currentDeviceIdentity();
  if (!Device)
    return Device.takeError();
  const DriverApi &Api = *driverApi();
  // never time a caller's queued work
  if (llvm::Error E = checkCuda(Api.cuCtxSynchronize(), "cuCtxSynchronize"))
    return std::move(E);
  std::vector<TileConfig> Candidates = tileCandidates(*CallBase);
  if (Candidates.empty())
    return makeError(Errc::InvalidArgument, "no tile candidates for " + specLabel(*CallBase));
  // The tile an untuned call with M tokens runs goes first: the default that ties go to and
  // the tables compare against (project forward picks its default by M, defaultTileForGrid).
  auto Untuned = std::find(Candidates.begin(), Candidates.end(), untunedTile(*CallBase, M));
  if (Untuned != Candidates.end())
    std::rotate(Candidates.begin(), Untuned, Untuned + 1);
  if (llvm::Error E = buildCandidates(Config, *CallBase, Base.Operation, Base.Dir, Candidates))
    return std::move(E);
  TuneResult R;
  R.M = M;
  {
    ScratchTensors Scratch; // freed before the result is returned
    auto Launch = scratchLaunch(Config, Base.Operation, Base.Dir, M, Scratch);
    if (!Launch)
      return Launch.takeError();
    auto Timer = LaunchTimer::create(Plan);
    if (!Timer)
      return Timer.takeError();
    for (const TileConfig &Tile : Candidates) {
      ScopedTileOverride Force(*CallBase, Tile);
      auto T = Timer->time(Launch->Launch);
      if (!T)
        return makeError(Errc::CudaFailed, "tuning " + specLabel(*CallBase) + ": candidate " + tileText(Tile) +
                                                " failed: " + llvm::toString(T.takeError()));
      R.Entry.Timings.push_back(CandidateTiming{Tile, T->MedianMs, T->spreadMs(), T->quartileSpreadMs()});
      R.Timings.push_back(std::move(*T));
    }
  }
  auto Winner = pickWinner(R.Entry.Timings);
  if (!Winner)
    return Winner.takeError();
  R.WinnerIndex = *Winner;
  R.Entry.Key = tuningKey(*CallBase, *Device, M);
  R.Entry.Winner = R.Entry.Timings[*Winner].Tile;
  R.Entry.Timestamp = static_cast<int64_t>(std::time(nullptr));
  R.Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Begin).count();
  return std::move(R);
}

llvm::Expected<TileConfig> autotuneOnFirstUse(const KernelSpec &Base, const DeviceIdentity &Device, int64_t M) {
  // NOTE: one tuning at a time per process: two threads tuning at once would time each other.
  static std::mutex TuneLock;
  static std::map<std::string, TileConfig> Tuned; // by key: each spec and bucket tuned once
  const std::string Key = tuningKey(Base, Device, M).str();
  std::lock_guard<std::mutex> Guard(TuneLock);
  auto It = Tuned.find(Key);
  if (It != Tuned.end())
    return It->second;
  const int64_t Bucket = tuningMBucket(Base, M);
  const int64_t TimedM = Bucket ? std::min(Bucket, DefaultTuningTokens) : DefaultTuningTokens;
  auto Result = tuneSpec(Base, TimedM);
  if (!Result)
    return Result.takeError();
  // the entry serves the call's bucket even where fewer tokens were timed (the GPU is full)
  Result->Entry.Key = tuningKey(Base, Device, M);
  const RuntimeOptions &Options = runtimeOptions();
  const std::string Path = runtimeTuningDbPath(Options);
  std::string Stored;
  if (Path.empty()) {
    Stored = "not stored: no cache directory or MHCJIT_TUNING_DB; this process only";
  } else {
    TuningDb Fresh;
    Fresh.record(Result->Entry);
    if (llvm::Error E = Fresh.save(Path))
      Stored = "not stored (" + llvm::toString(std::move(E)) + "); this process only";
    else
      Stored = "stored in " + Path;
  }
  if (Options.Warn) {
    std::string Line;
    llvm::raw_string_ostream(Line) << "MHCJIT_AUTOTUNE: tuned " << specLabel(Base) << " at M=" << TimedM << " ("
                                   << Result->Timings.size() << " candidates, "
                                   << llvm::format("%.1f", Result->Seconds) << " s): "
                                   << tileText(Result->Entry.Winner) << ", " << Stored;
    Options.Warn(Line);
  }
  Tuned[Key] = Result->Entry.Winner;
  return Result->Entry.Winner;
}

} // namespace mhcjit
