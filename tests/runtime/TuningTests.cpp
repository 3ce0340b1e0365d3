// mhcjit tests: the tuning database (round trip, merge on save, corrupt files) and the choice of
// a tile from it (pickWinner's band and tie-break, M buckets, identity wildcards). No GPU.
#include "mhcjit/Arch.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/TuningDb.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

/// A scratch directory, removed at the end of the test.
struct ScratchDir {
  llvm::SmallString<128> Path;
  ScratchDir() { REQUIRE(!llvm::sys::fs::createUniqueDirectory("mhcjit-tuning-test", Path)); }
  ~ScratchDir() { llvm::sys::fs::remove_directories(Path); }
  std::string file(llvm::StringRef Name) const {
    llvm::SmallString<128> P(Path);
    llvm::sys::path::append(P, Name);
    return std::string(P.str());
  }
};

DeviceIdentity fakeGpu() {
  return DeviceIdentity{"Fake GPU 80GB", 132, "sm_90a", nvrtcVersionString(), 13000};
}

TuningEntry entryFor(const KernelSpec &Spec, int64_t M, TileConfig Winner, int64_t Stamp = 100) {
  TuningEntry E;
  E.Key = tuningKey(Spec, fakeGpu(), M);
  E.Winner = Winner;
  E.Timings = {{defaultTileConfig(Spec), 1.0, 0.01, 0.004}, {Winner, 0.5, 0.02, 0.008}};
  E.Timestamp = Stamp;
  return E;
}

std::vector<CandidateTiming> medians(std::initializer_list<double> Ms, double QuartileSpread = 0.0) {
  std::vector<CandidateTiming> T;
  for (double M : Ms)
    T.push_back({TileConfig{}, M, 0.0, QuartileSpread});
  return T;
}

} // namespace

TEST_CASE("pickWinner takes the fastest, and the first in candidate order within 2%") {
  CHECK(*pickWinner(medians({1.00, 0.90, 0.95})) == 1);
  CHECK(*pickWinner(medians({1.01, 1.00})) == 0);        // tied: candidate order decides
  CHECK(*pickWinner(medians({1.03, 1.00})) == 1);        // 3% slower is not tied
  CHECK(*pickWinner(medians({1.00, 1.00, 1.00})) == 0);
  auto None = pickWinner(std::vector<CandidateTiming>{});
  CHECK(failureOf(None).Code == int(Errc::InvalidArgument));
  CHECK(tieLimitMs({}) == 0);
}

TEST_CASE("pickWinner widens the tie band to the fastest candidate's quartile spread") {
  // 3% apart, with runs of the fastest spread over 4% between its quartiles: tied
  CHECK(tieLimitMs(medians({1.03, 1.00}, 0.04)) == doctest::Approx(1.04));
  CHECK(*pickWinner(medians({1.03, 1.00}, 0.04)) == 0);
  // a quartile spread under 2% leaves the 2% band
  CHECK(tieLimitMs(medians({1.03, 1.00}, 0.01)) == doctest::Approx(1.02));
  CHECK(*pickWinner(medians({1.03, 1.00}, 0.01)) == 1);
  // only the fastest candidate's spread counts: a noisy slow one does not pull itself in
  std::vector<CandidateTiming> T = medians({1.10, 1.00}, 0.0);
  T[0].QuartileSpreadMs = 0.5;
  CHECK(*pickWinner(T) == 1);
}

TEST_CASE("M buckets are powers of two, and 0 for tiles that must not depend on M") {
  KernelSpec Fwd = aggregateSpec(Direction::Forward, Layout::SBCN);
  KernelSpec Bwd = aggregateSpec(Direction::Backward, Layout::SBCN);
  CHECK(tuningMBucket(Fwd, 3000) == 4096);
  CHECK(tuningMBucket(Fwd, 4096) == 4096);
  CHECK(tuningMBucket(Fwd, 1) == 1);
  CHECK(tuningMBucket(Fwd, 0) == 0);
  CHECK(tuningMBucket(Bwd, 3000) == 0);
}

TEST_CASE("a tuning database survives a save and a load unchanged") {
  ScratchDir Dir;
  const std::string Path = TuningDb::defaultPath(Dir.file("cache"));
  CHECK(llvm::StringRef(Path).endswith("tuning/v1.json"));
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN);
  TuningDb Db;
  Db.record(entryFor(S, 4096, TileConfig{128, 8, 1}));
  Failure Saved = failureOf(Db.save(Path));
  REQUIRE_MESSAGE(!Saved.Failed, Saved.Message);
  auto Back = TuningDb::loadStrict(Path);
  REQUIRE(!failureOf(Back).Failed);
  CHECK(Back->toJson() == Db.toJson());
  const TuningEntry *E = Back->lookup(S, fakeGpu(), 3000);
  REQUIRE(E);
  CHECK(E->Winner.Threads == 128);
  CHECK(E->Timings.size() == 2);
  CHECK(E->Timings[1].MedianMs == 0.5);
  CHECK(E->Timings[1].QuartileSpreadMs == 0.008);
  CHECK(E->Timestamp == 100);
  CHECK(!Back->lookup(S, fakeGpu(), 8192));      // another M bucket
  DeviceIdentity Other = fakeGpu();
  Other.GpuName = "Other GPU";
  CHECK(!Back->lookup(S, Other, 3000));          // another GPU
  DeviceIdentity AnyOfArch{"", 0, "sm_90a", nvrtcVersionString(), 0};
  CHECK(Back->lookup(S, AnyOfArch, 3000));       // wildcards: arch and NVRTC only
}

TEST_CASE("a database from before quartile spreads loads with none, and a negative one is corrupt") {
  ScratchDir Dir;
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN);
  TuningDb Db;
  Db.record(entryFor(S, 4096, TileConfig{128, 8, 1}));
  const std::string Json = Db.toJson();
  auto Rewrite = [&](llvm::StringRef Name, const std::string &From, const std::string &To) {
    std::string Text = Json;
    for (size_t At = Text.find(From); At != std::string::npos; At = Text.find(From, At + To.size()))
      Text.replace(At, From.size(), To);
    const std::string Path = Dir.file(Name);
    std::error_code EC;
    llvm::raw_fd_ostream OS(Path, EC);
    REQUIRE(!EC);
    OS << Text;
    return Path;
  };
  REQUIRE(contains(Json, "\"quartile_spread_ms\": 0.008"));
  auto Old = TuningDb::loadStrict(Rewrite("old.json", "\"quartile_spread_ms\"", "\"unused\""));
  REQUIRE(!failureOf(Old).Failed);
  const TuningEntry *E = Old->lookup(S, fakeGpu(), 4096);
  REQUIRE(E);
  CHECK(E->Timings[1].QuartileSpreadMs == 0.0);
  CHECK(E->Timings[1].MedianMs == 0.5);
  auto Negative = TuningDb::loadStrict(Rewrite("negative.json", "\"quartile_spread_ms\": 0.008", "\"quartile_spread_ms\": -1"));
  CHECK(failureOf(Negative).Failed);
}

TEST_CASE("two writers saving different entries to one file lose nothing") {
  ScratchDir Dir;
  const std::string Path = Dir.file("tuning/v1.json");
  KernelSpec A = aggregateSpec(Direction::Forward, Layout::SBCN);
  KernelSpec B = aggregateSpec(Direction::Backward, Layout::SBCN);
  TuningDb First, Second;
  First.record(entryFor(A, 0, TileConfig{128, 8, 1}));
  Second.record(entryFor(B, 0, TileConfig{128, 8, 1}));
  REQUIRE(!failureOf(First.save(Path)).Failed);
  REQUIRE(!failureOf(Second.save(Path)).Failed); // read, merged, renamed over
  auto OnDisk = TuningDb::loadStrict(Path);
  REQUIRE(!failureOf(OnDisk).Failed);
  CHECK(OnDisk->size() == 2);
  CHECK(OnDisk->lookup(A, fakeGpu(), 0));
  CHECK(OnDisk->lookup(B, fakeGpu(), 0));
  // the same key: the newer measurement wins whichever process saves last
  TuningDb Older;
  Older.record(entryFor(A, 0, TileConfig{512, 8, 1}, /*Stamp=*/50));
  Older.merge(*OnDisk);
  CHECK(Older.lookup(A, fakeGpu(), 0)->Winner.Threads == 128);
}

TEST_CASE("a corrupt tuning database is ignored with one warning") {
  ScratchDir Dir;
  const std::string Path = Dir.file("v1.json");
  {
    std::error_code EC;
    llvm::raw_fd_ostream OS(Path, EC);
    REQUIRE(!EC);
    OS << "{\"schema\": 1, \"entries\": [{\"spec\": 3}";
  }
  std::vector<std::string> Warnings;
  TuningDb Db = TuningDb::load(Path, [&](llvm::StringRef W) { Warnings.push_back(W.str()); });
  CHECK(Db.empty());
  REQUIRE(Warnings.size() == 1);
  CHECK(contains(Warnings[0], "tuning database ignored"));
  auto Strict = TuningDb::loadStrict(Path);
  CHECK(failureOf(Strict).Failed);
  Warnings.clear();
  CHECK(TuningDb::load(Dir.file("missing.json"), [&](llvm::StringRef W) { Warnings.push_back(W.str()); }).empty());
  CHECK(Warnings.empty()); // a missing file is simply no database
}

TEST_CASE("chooseTile uses the database's winner, else the heuristic, and says which") {
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN);
  TuningDb Db;
  auto None = chooseTile(Db, S, fakeGpu(), 4096);
  REQUIRE(!failureOf(None).Failed);
  CHECK(!None->FromDb);
  CHECK(contains(None->Reason, "heuristic"));
  CHECK(None->Tile.Threads == defaultTileConfig(S).Threads);
  Db.record(entryFor(S, 4096, TileConfig{128, 4, 1}));
  auto Hit = chooseTile(Db, S, fakeGpu(), 4000);
  REQUIRE(!failureOf(Hit).Failed);
  CHECK(Hit->FromDb);
  CHECK(contains(Hit->Reason, "tuning DB hit"));
  CHECK(Hit->Tile.Vec == 4);
  // a winner that is no longer a candidate (an older mhcjit's) falls back to the heuristic
  KernelSpec P = S;
  P.C = 4096;
  Db.record(entryFor(P, 0, TileConfig{96, 8, 1}));
  auto Stale = chooseTile(Db, P, fakeGpu(), 0);
  REQUIRE(!failureOf(Stale).Failed);
  CHECK(!Stale->FromDb);
  CHECK(contains(Stale->Reason, "not a candidate"));
}

TEST_CASE("without a tuning database the runtime's tile is the heuristic's") {
  // test binaries run without MHCJIT_TUNING_DB; the default file lives in the user cache and
  // is absent on CI machines, so the default launch behaviour is unchanged
  KernelSpec S = aggregateSpec(Direction::Backward, Layout::SBNC);
  if (runtimeTuningDb().empty()) {
    TileConfig T = runtimeTile(S, 4096);
    CHECK(T.Threads == defaultTileConfig(S).Threads);
    CHECK(T.Vec == defaultTileConfig(S).Vec);
  }
}
