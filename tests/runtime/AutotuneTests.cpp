// mhcjit tests: what of the autotuner runs without a GPU: the forced-tile override reaching the
// launch spec of every op, MHCJIT_AUTOTUNE parsing, and clean errors where a GPU is needed.
#include "mhcjit/Autotuner.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/LaunchTimer.h"
#include "mhcjit/ScratchLaunch.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/TileOverride.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

MixConfig config(int64_t C) {
  MixConfig Config;
  Config.C = C;
  return Config;
}

/// The tile a launch of Op/Dir with Config would use (callSpec, as the op code calls it).
TileConfig launchTile(const MixConfig &Config, Op O, Direction D, bool Accumulate = false, int64_t M = 4096) {
  auto Spec = callSpec(Config, O, D, /*Align=*/16, Accumulate, M);
  Failure F = failureOf(Spec);
  REQUIRE_MESSAGE(!F.Failed, F.Message);
  return Spec->Tile;
}

} // namespace

TEST_CASE("a tile override forces every candidate of every op onto the launch spec, and only there") {
  const MixConfig Config = config(7168);
  for (Op O : allOps())
    for (Direction D : {Direction::Forward, Direction::Backward}) {
      KernelSpec Base = *specFor(Config, O, D);
      const TileConfig Heuristic = defaultTileConfig(Base);
      CAPTURE(specLabel(Base));
      for (const TileConfig &Tile : tileCandidates(Base)) {
        {
          ScopedTileOverride Force(Base, Tile);
          CHECK((launchTile(Config, O, D) == Tile));
          // the variants the launch code derives (dx accumulation, other M) keep the forced tile
          CHECK((launchTile(Config, O, D, /*Accumulate=*/true, /*M=*/1) == Tile));
          CHECK((specFor(Config, O, D)->Tile == Tile));
          // another C is another spec: untouched
          CHECK((launchTile(config(4096), O, D) == defaultTileConfig(*specFor(config(4096), O, D))));
        }
        CHECK((launchTile(Config, O, D) == Heuristic)); // the scope ended
      }
    }
}

TEST_CASE("tile overrides nest, and never reach another thread") {
  const MixConfig Config = config(4096);
  KernelSpec Base = *specFor(Config, Op::Aggregate, Direction::Forward);
  const TileConfig Outer{128, 4, 1}, Inner{64, 8, 1};
  ScopedTileOverride First(Base, Outer);
  CHECK((launchTile(Config, Op::Aggregate, Direction::Forward) == Outer));
  {
    ScopedTileOverride Second(Base, Inner);
    CHECK((launchTile(Config, Op::Aggregate, Direction::Forward) == Inner));
    llvm::Optional<TileConfig> OtherThread = Outer;
    std::thread([&] { OtherThread = forcedTile(Base); }).join();
    CHECK(!OtherThread);
  }
  CHECK((launchTile(Config, Op::Aggregate, Direction::Forward) == Outer));
  // the backward of the same config is another spec
  CHECK(!forcedTile(*specFor(Config, Op::Aggregate, Direction::Backward)));
}

TEST_CASE("MHCJIT_AUTOTUNE is read from the environment, off by default") {
  const char *Saved = std::getenv("MHCJIT_AUTOTUNE");
  std::string Restore = Saved ? Saved : "";
  unsetenv("MHCJIT_AUTOTUNE");
  CHECK(!RuntimeOptions::fromEnvironment().Autotune);
  setenv("MHCJIT_AUTOTUNE", "1", 1);
  CHECK(RuntimeOptions::fromEnvironment().Autotune);
  setenv("MHCJIT_AUTOTUNE", "0", 1);
  CHECK(!RuntimeOptions::fromEnvironment().Autotune);
  if (Saved)
    setenv("MHCJIT_AUTOTUNE", Restore.c_str(), 1);
  else
    unsetenv("MHCJIT_AUTOTUNE");
}

TEST_CASE("timing helpers reject bad arguments before touching a device") {
  ScratchTensors Scratch;
  auto NoTokens = scratchLaunch(config(64), Op::Aggregate, Direction::Forward, 0, Scratch);
  CHECK(failureOf(NoTokens.takeError()).Code == int(Errc::InvalidArgument));
  auto Helper = scratchLaunch(config(64), Op::ReduceRows, Direction::Forward, 8, Scratch);
  CHECK(failureOf(Helper.takeError()).Code == int(Errc::InvalidArgument));
  CHECK(Scratch.allocatedBytes() == 0);
  KernelSpec Base = *specFor(config(64), Op::Aggregate, Direction::Forward);
  CHECK(failureOf(tuneSpec(Base, 0).takeError()).Code == int(Errc::InvalidArgument));
  TimingPlan None;
  None.Repeats = 0;
  CHECK(failureOf(LaunchTimer::create(None).takeError()).Code == int(Errc::InvalidArgument));
}

TEST_CASE("without a GPU, tuning fails with NoDevice and MHCJIT_AUTOTUNE keeps the heuristic") {
  if (gpuAvailable()) {
    MESSAGE("skipped: this case checks the no-GPU path (the GPU tests cover tuning)");
    return;
  }
  KernelSpec Base = *specFor(config(7168), Op::Aggregate, Direction::Forward);
  CHECK(failureOf(tuneSpec(Base, 4096).takeError()).Code == int(Errc::NoDevice));
  CHECK(failureOf(LaunchTimer::create().takeError()).Code == int(Errc::NoDevice));
  ScratchTensors Scratch;
  auto Launch = scratchLaunch(config(64), Op::Aggregate, Direction::Forward, 8, Scratch);
  CHECK(failureOf(Launch.takeError()).Code == int(Errc::NoDevice));
  RuntimeOptions Saved = runtimeOptions();
  RuntimeOptions Autotune = Saved;
  Autotune.Autotune = true;
  setRuntimeOptions(Autotune);
  TileConfig Tile = runtimeTile(Base, 4096);
  setRuntimeOptions(Saved);
  CHECK((Tile == defaultTileConfig(Base)));
}

TEST_CASE("an untuned project forward in tf32 picks among its default tiles, all of them pre-warmed") {
  MixConfig Config = config(6656);
  Config.Prec = Precision::TF32;
  const KernelSpec Base = *specFor(Config, Op::Project, Direction::Forward);
  const std::vector<TileConfig> Choices = defaultTileChoices(Base);
  REQUIRE(Choices.size() == 2);
  auto Specs = kernelsForCall(Config, Op::Project, Direction::Forward);
  REQUIRE_MESSAGE(static_cast<bool>(Specs), failureOf(Specs).Message);
  for (const TileConfig &Tile : Choices)
    for (bool Gamma : {false, true}) {
      CAPTURE(Tile.Rows);
      CAPTURE(Gamma);
      CHECK(std::any_of(Specs->begin(), Specs->end(), [&](const KernelSpec &S) {
        return S.Operation == Op::Project && S.Tile == Tile && S.HasGamma == Gamma;
      }));
    }
  for (int64_t M : {1, 4096, 16384, 32768}) {
    const TileConfig Tile = launchTile(Config, Op::Project, Direction::Forward, false, M);
    CAPTURE(M);
    if (gpuAvailable())
      CHECK(std::find(Choices.begin(), Choices.end(), Tile) != Choices.end());
    else
      CHECK((Tile == Choices.front())); // no device shape: the default
  }
}
