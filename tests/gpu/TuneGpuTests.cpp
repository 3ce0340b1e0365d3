// mhcjit GPU tests: the autotuner on a real device: every op and direction tuned at one config
// within a stated time, a winner that is one of the candidates, the winner's results against the
// float64 reference, repeated tuning inside the 2% band, and MHCJIT_AUTOTUNE's first-use path.
#include "GpuTestSupport.h"
#include "OpHarness.h"

#include "mhcjit/Autotuner.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/TileOverride.h"
#include "mhcjit/TuningDb.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <chrono>

namespace mhcjit {
namespace test {

namespace {

/// Bound on one op direction's tuning once its candidates are compiled: at most 13 candidates
/// x 28 runs of a kernel that takes well under a millisecond at this size, plus the L2 flushes
/// (256 MiB memsets, about 0.1 ms each) and the scratch fills. It runs in about a second.
constexpr double TuneSecondsBound = 20.0;

/// The index of Tile among Timings' candidates, or Timings.size().
size_t indexOf(const std::vector<CandidateTiming> &Timings, const TileConfig &Tile) {
  for (size_t I = 0; I < Timings.size(); ++I)
    if (Timings[I].Tile == Tile)
      return I;
  return Timings.size();
}

/// Whether candidate I of Timings is within pickWinner's 2% band of the fastest.
bool inBand(const std::vector<CandidateTiming> &Timings, size_t I) {
  return I < Timings.size() && Timings[I].MedianMs <= tieLimitMs(Timings);
}

/// Ops whose backward writes dx (and so has an fp32-accumulating variant).
bool producesDx(Op O) {
  return O != Op::Scale && O != Op::Sinkhorn && O != Op::ScaleSinkhorn && O != Op::Expand;
}

/// Compiles every kernel each candidate tile of Base's op call may launch, on all cores.
void prebuildCandidates(const MixConfig &Config, const KernelSpec &Base) {
  std::vector<KernelSpec> Specs;
  for (const TileConfig &Tile : tileCandidates(Base)) {
    ScopedTileOverride Force(Base, Tile);
    for (const KernelSpec &S : take(kernelsForCall(Config, Base.Operation, Base.Dir)))
      Specs.push_back(S);
  }
  buildAll(Specs);
}

} // namespace

TEST_CASE("tuning each op picks a valid winner in bounded time, matches the reference and repeats") {
  if (!requireGpu("autotuning every op"))
    return;
  MixConfig Config; // n = 4, bf16, te, fp32 projection
  Config.C = 4096;
  const int64_t TuneTokens = DefaultTuningTokens, CheckTokens = 300;
  for (Op O : allOps())
    for (Direction D : {Direction::Forward, Direction::Backward}) {
      KernelSpec Base = take(specFor(Config, O, D));
      INFO(specLabel(Base));
      prebuildCandidates(Config, Base);
      const std::vector<TileConfig> Candidates = tileCandidates(Base);
      TuneResult First = take(tuneSpec(Base, TuneTokens));
      std::fprintf(stderr, "  tuned %-40s %2zu candidates in %5.2f s: threads=%d vec=%d rows=%d %.1f us (default %.1f us)\n",
                   specLabel(Base).c_str(), First.Timings.size(), First.Seconds, First.Entry.Winner.Threads,
                   First.Entry.Winner.Vec, First.Entry.Winner.Rows, First.Timings[First.WinnerIndex].MedianMs * 1e3,
                   First.Timings.front().MedianMs * 1e3);
      CHECK_MESSAGE(First.Seconds <= TuneSecondsBound, "tuning took " << First.Seconds << " s");
      // every candidate timed, in candidate order, with a median inside its own min..max
      REQUIRE(First.Entry.Timings.size() == Candidates.size());
      for (size_t I = 0; I < Candidates.size(); ++I) {
        CHECK((First.Entry.Timings[I].Tile == Candidates[I]));
        const LaunchTiming &T = First.Timings[I];
        CHECK(T.SamplesMs.size() >= 20);
        CHECK((T.MinMs > 0 && T.MinMs <= T.MedianMs && T.MedianMs <= T.MaxMs));
        CHECK(First.Entry.Timings[I].SpreadMs == doctest::Approx(T.MaxMs - T.MinMs));
        CHECK(First.Entry.Timings[I].QuartileSpreadMs == doctest::Approx(T.quartileSpreadMs()));
        CHECK((T.quartileSpreadMs() >= 0 && T.quartileSpreadMs() <= T.spreadMs()));
      }
      // the winner is a candidate and pickWinner's choice; the key is the spec's
      CHECK(First.WinnerIndex == indexOf(First.Entry.Timings, First.Entry.Winner));
      CHECK(First.WinnerIndex == take(pickWinner(First.Entry.Timings)));
      CHECK(First.Entry.Key.Spec == untiledRecord(Base));
      CHECK(First.Entry.Key.MBucket == tuningMBucket(Base, TuneTokens));
      // the winner's results against the float64 reference (forced, as the runtime would use it)
      {
        ScopedTileOverride Force(Base, First.Entry.Winner);
        for (bool Optional : {false, true}) {
          // the second round adds the optional inputs and, where there is a dx, accumulation
          OpDef Def = makeOpDef(O, Config, CheckTokens, Optional, Optional && producesDx(O));
          const uint64_t Seed = freshSeed();
          INFO(Def.Label << " seed " << Seed << " with the tuned tile");
          checkAgainstReference(Def, D, drawInputs(Def, D, Seed), toleranceFor(Config, O));
        }
      }
      // again: the same winner, or one inside the tie band of either run
      TuneResult Second = take(tuneSpec(Base, TuneTokens));
      const bool Same = (First.Entry.Winner == Second.Entry.Winner);
      const bool Banded = inBand(First.Entry.Timings, indexOf(First.Entry.Timings, Second.Entry.Winner)) ||
                          inBand(Second.Entry.Timings, indexOf(Second.Entry.Timings, First.Entry.Winner));
      CHECK_MESSAGE((Same || Banded), "first winner #" << First.WinnerIndex << ", second #" << Second.WinnerIndex
                                                       << ": neither inside the other run's tie band");
      CHECK(Second.Seconds <= TuneSecondsBound);
    }
}

TEST_CASE("MHCJIT_AUTOTUNE tunes on first use on its own buffers, stores the winner and uses it") {
  if (!requireGpu("MHCJIT_AUTOTUNE"))
    return;
  llvm::SmallString<128> Dir;
  REQUIRE(!llvm::sys::fs::createUniqueDirectory("mhcjit-autotune-test", Dir));
  llvm::SmallString<128> DbPath(Dir);
  llvm::sys::path::append(DbPath, "tuning.json");
  const RuntimeOptions Saved = runtimeOptions();
  RuntimeOptions Autotune = Saved;
  Autotune.Autotune = true;
  Autotune.TuningDbPath = std::string(DbPath.str());
  setRuntimeOptions(Autotune);
  MixConfig Config; // a C no other test uses, so no earlier launch memoized its tile
  Config.C = 2304;
  for (Op O : {Op::Aggregate, Op::ExpandCombine})
    for (Direction D : {Direction::Forward, Direction::Backward}) {
      KernelSpec Base = take(specFor(Config, O, D));
      INFO(specLabel(Base));
      prebuildCandidates(Config, Base);
      // the first call tunes (inside the call) and must still compute the caller's outputs:
      // inputs and poisoned outputs are the caller's, the tuner times on scratch tensors
      OpDef Def = makeOpDef(O, Config, 1000, false, false);
      auto Start = std::chrono::steady_clock::now();
      checkAgainstReference(Def, D, drawInputs(Def, D, freshSeed()), toleranceFor(Config, O));
      std::fprintf(stderr, "  first use of %s with MHCJIT_AUTOTUNE=1 (two calls): %.2f s\n", specLabel(Base).c_str(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count());
      TuningDb Db = take(TuningDb::loadStrict(DbPath));
      DeviceIdentity Device = take(currentDeviceIdentity());
      const TuningEntry *Entry = Db.lookup(Base, Device, 1000);
      REQUIRE(Entry != nullptr);
      CHECK(Entry->Key.MBucket == tuningMBucket(Base, 1000));
      CHECK(indexOf(Entry->Timings, Entry->Winner) < Entry->Timings.size());
      CHECK(Entry->Timings.size() == tileCandidates(Base).size());
      // the runtime now launches with the stored winner
      CHECK((runtimeTile(Base, 1000) == Entry->Winner));
    }
  setRuntimeOptions(Saved);
  llvm::sys::fs::remove_directories(Dir);
}

} // namespace test
} // namespace mhcjit
