// mhcjit tests: the tuning-database side of mhc-jit (inspect --show config, prewarm --tuning-db,
// tune --export/--import), each run a child process in a clean environment. No GPU needed.
#include "mhcjit/Arch.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/TuningDb.h"

#include "TestSupport.h"
#include "ToolRunner.h"
#include "doctest/doctest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <cstdlib>
#include <string>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

KernelSpec aggregateFwd(int64_t C) {
  KernelSpec S;
  S.C = C;
  S.Tile = defaultTileConfig(S);
  return S;
}

/// A database for a made-up GPU: aggregate forward at C = 4096 and 7168 on sm_90a (winner 128
/// threads, vec 4) and C = 7168 on sm_80 (which prewarm for sm_90a must skip).
std::string writeFakeDb(const std::string &Path) {
  TuningDb Db;
  for (auto [C, Arch] : {std::pair<int64_t, const char *>{4096, "sm_90a"}, {7168, "sm_90a"}, {7168, "sm_80"}}) {
    TuningEntry E;
    E.Key = tuningKey(aggregateFwd(C), DeviceIdentity{"Fake GPU", 132, Arch, nvrtcVersionString(), 13000}, 0);
    E.Winner = TileConfig{128, 4, 1};
    E.Timings = {{defaultTileConfig(aggregateFwd(C)), 1.0, 0.01}, {E.Winner, 0.8, 0.01}};
    E.Timestamp = 1;
    Db.record(E);
  }
  REQUIRE(!failureOf(Db.save(Path)).Failed);
  return Path;
}

const std::vector<std::string> ShowConfig = {"inspect", "--op", "aggregate", "--dir", "fwd", "--n", "4",
                                             "--C", "7168", "--dtype", "bf16", "--show", "config"};

std::vector<std::string> plus(std::vector<std::string> Args, std::initializer_list<std::string> More) {
  Args.insert(Args.end(), More.begin(), More.end());
  return Args;
}

} // namespace

TEST_CASE("inspect --show config says heuristic without a tuning database") {
  TempDir Cache;
  RunResult R = runTool(ShowConfig, Cache.path());
  CAPTURE(R.Out);
  CAPTURE(R.Err);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "tile config: threads=256 vec=2 rows=1"));
  CHECK(contains(R.Out, "why:         heuristic (no tuning DB)"));
}

TEST_CASE("inspect --show config names the tuning database entry it would use") {
  TempDir Cache;
  std::string Db = writeFakeDb(Cache.sub("hand/db.json"));
  RunResult R = runTool(plus(ShowConfig, {"--tuning-db", Db}), Cache.path());
  CAPTURE(R.Out);
  CAPTURE(R.Err);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "tile config: threads=128 vec=4 rows=1"));
  CHECK(contains(R.Out, "why:         tuning DB hit "));
  CHECK(contains(R.Out, "Fake GPU | sm=132 | sm_90a"));
  // the default database (<cache>/tuning/v1.json) is read the same way
  writeFakeDb(TuningDb::defaultPath(Cache.path()));
  RunResult D = runTool(plus(ShowConfig, {"--arch", "sm_80"}), Cache.path());
  CAPTURE(D.Out);
  if (!contains(D.Out, "device:      no GPU"))
    return; // with a GPU the real device's identity is used, which the fake entries miss
  CHECK(contains(D.Out, "tuning DB hit"));
  CHECK(contains(D.Out, "| sm_80 |"));
}

TEST_CASE("prewarm --tuning-db compiles exactly the winners of its arch, then finds them cached") {
  TempDir Cache;
  std::string Db = writeFakeDb(Cache.sub("db.json"));
  RunResult First = runTool({"prewarm", "--tuning-db", Db, "--arch", "sm_90a", "--cache-dir", Cache.sub("kernels")},
                       Cache.path());
  CAPTURE(First.Out);
  CAPTURE(First.Err);
  REQUIRE(First.ExitCode == 0);
  CHECK(contains(First.Out, ": 2 kernels, 2 compiled, 0 already cached, 0 failed"));
  CHECK(contains(First.Err, "threads=128 vec=4"));
  RunResult Second = runTool({"prewarm", "--tuning-db", Db, "--arch", "sm_90a", "--cache-dir", Cache.sub("kernels")},
                        Cache.path());
  CAPTURE(Second.Out);
  CHECK(contains(Second.Out, ": 2 kernels, 0 compiled, 2 already cached, 0 failed"));
  RunResult Missing = runTool({"prewarm", "--tuning-db", Cache.sub("none.json")}, Cache.path());
  CHECK(Missing.ExitCode != 0);
}

TEST_CASE("tune --export and --import carry a database to another cache") {
  TempDir From, To;
  writeFakeDb(TuningDb::defaultPath(From.path()));
  std::string File = From.sub("export.json");
  RunResult Export = runTool({"tune", "--export", File}, From.path());
  CAPTURE(Export.Err);
  REQUIRE(Export.ExitCode == 0);
  CHECK(contains(Export.Out, "exported 3 entries"));
  RunResult Import = runTool({"tune", "--import", File}, To.path());
  CAPTURE(Import.Err);
  REQUIRE(Import.ExitCode == 0);
  CHECK(contains(Import.Out, "imported 3 entries"));
  auto Imported = TuningDb::loadStrict(TuningDb::defaultPath(To.path()));
  REQUIRE(!failureOf(Imported).Failed);
  CHECK(Imported->size() == 3);
  RunResult Neither = runTool({"tune"}, To.path());
  CHECK(Neither.ExitCode != 0);
  CHECK(contains(Neither.Err, "--op is required"));
  CHECK(contains(Neither.Err, "--export FILE | --import FILE"));
  RunResult Both = runTool({"tune", "--export", File, "--import", File}, To.path());
  CHECK(Both.ExitCode != 0);
  CHECK(contains(Both.Err, "not both"));
}

namespace {

/// mhc-jit tune in a clean environment with every GPU hidden (CUDA_VISIBLE_DEVICES is empty),
/// so the run is the same on CI machines and on GPU machines.
RunResult runTuneWithoutGpu(std::vector<std::string> Args, const std::string &Cache) {
  const char *Saved = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string Restore = Saved ? Saved : "";
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  Args.insert(Args.begin(), "tune");
  RunResult R = runTool(Args, Cache);
  if (Saved)
    setenv("CUDA_VISIBLE_DEVICES", Restore.c_str(), 1);
  else
    unsetenv("CUDA_VISIBLE_DEVICES");
  return R;
}

} // namespace

TEST_CASE("tune --op checks its options before it looks for a GPU") {
  TempDir Cache;
  struct Bad {
    std::vector<std::string> Args;
    const char *Message;
  };
  const std::vector<Bad> Cases = {
      {{"--op", "aggregate"}, "--C is required"},
      {{"--op", "nosuchop", "--C", "64"}, "--op=nosuchop is not a valid value"},
      {{"--op", "aggregate,expand", "--C", "64"}, "--op takes one value here"},
      {{"--op", "aggregate", "--C", "64,128"}, "--C takes one value here"},
      {{"--op", "aggregate", "--C", "64", "--dir", "sideways"}, "--dir=sideways is not a valid value"},
      {{"--op", "aggregate", "--C", "64", "--M", "0"}, "--M: M = 0 tokens is outside"},
      {{"--op", "aggregate", "--C", "64", "--repeats", "5"}, "--repeats must be at least 20"},
      {{"--op", "aggregate", "--C", "64", "--n", "9"}, "n = 9 is outside the supported range"},
  };
  for (const Bad &B : Cases) {
    RunResult R = runTuneWithoutGpu(B.Args, Cache.path());
    CAPTURE(R.Err);
    CHECK(R.ExitCode == 1);
    CHECK(contains(R.Err, B.Message));
    CHECK(!contains(R.Err, "needs a GPU"));
  }
  CHECK(!llvm::sys::fs::exists(TuningDb::defaultPath(Cache.path())));
}

TEST_CASE("tune --op without a GPU fails with a clear message and writes nothing") {
  TempDir Cache;
  for (const char *Dir : {"fwd", "bwd", "both"}) {
    RunResult R = runTuneWithoutGpu({"--op", "aggregate", "--dir", Dir, "--n", "4", "--C", "7168", "--dtype",
                                     "bf16", "--M", "4096"},
                                    Cache.path());
    CAPTURE(R.Err);
    CHECK(R.ExitCode == 1);
    CHECK(contains(R.Err, "mhc-jit tune: needs a GPU to time candidates"));
    CHECK(R.Out.empty());
  }
  CHECK(!llvm::sys::fs::exists(TuningDb::defaultPath(Cache.path())));
}

TEST_CASE("tune --op scale_sinkhorn is accepted: without a GPU it stops only at the GPU check") {
  TempDir Cache;
  for (const char *Dir : {"fwd", "bwd", "both"})
    for (const char *Contract : {"te", "deepseek"}) {
      RunResult R = runTuneWithoutGpu({"--op", "scale_sinkhorn", "--dir", Dir, "--n", "4", "--C", "7168",
                                       "--contract", Contract, "--M", "32768"},
                                      Cache.path());
      CAPTURE(R.Err);
      CHECK(R.ExitCode == 1);
      CHECK(contains(R.Err, "mhc-jit tune: needs a GPU to time candidates"));
      CHECK(!contains(R.Err, "is not a valid value"));
      CHECK(R.Out.empty());
    }
  CHECK(!llvm::sys::fs::exists(TuningDb::defaultPath(Cache.path())));
}
