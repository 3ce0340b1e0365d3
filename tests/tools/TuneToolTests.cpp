// mhcjit tests: the tuning-database side of mhc-jit (inspect --show config, prewarm --tuning-db,
// tune --export/--import), each run a child process in a clean environment. No GPU needed.
#include "mhcjit/Arch.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/TuningDb.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <string>
#include <vector>

extern char **environ;

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

struct Scratch {
  llvm::SmallString<128> Path;
  Scratch() { REQUIRE(!llvm::sys::fs::createUniqueDirectory("mhcjit-tune-tool", Path)); }
  ~Scratch() { llvm::sys::fs::remove_directories(Path); }
  std::string path() const { return std::string(Path.str()); }
  std::string sub(llvm::StringRef Name) const {
    llvm::SmallString<128> P(Path);
    llvm::sys::path::append(P, Name);
    return std::string(P.str());
  }
};

struct ToolRun {
  int ExitCode = -1;
  std::string Out, Err;
};

/// mhc-jit with Args, every MHCJIT_* variable removed and the cache (so the default tuning DB)
/// in Cache.
ToolRun tool(const std::vector<std::string> &Args, const std::string &Cache) {
  Scratch Capture;
  const std::string OutPath = Capture.sub("out"), ErrPath = Capture.sub("err");
  std::vector<std::string> EnvStrings;
  for (char **E = environ; *E; ++E)
    if (!llvm::StringRef(*E).startswith("MHCJIT_"))
      EnvStrings.push_back(*E);
  EnvStrings.push_back("MHCJIT_CACHE_DIR=" + Cache);
  std::vector<llvm::StringRef> Env(EnvStrings.begin(), EnvStrings.end());
  std::vector<llvm::StringRef> Argv{MHCJIT_TOOL_PATH};
  for (const std::string &A : Args)
    Argv.push_back(A);
  llvm::Optional<llvm::StringRef> Redirects[] = {llvm::StringRef(""), llvm::StringRef(OutPath),
                                                 llvm::StringRef(ErrPath)};
  std::string ErrMsg;
  ToolRun R;
  R.ExitCode = llvm::sys::ExecuteAndWait(MHCJIT_TOOL_PATH, Argv, llvm::makeArrayRef(Env), Redirects,
                                         120, 0, &ErrMsg);
  auto Read = [](const std::string &P) {
    auto B = llvm::MemoryBuffer::getFile(P);
    return B ? (*B)->getBuffer().str() : std::string();
  };
  R.Out = Read(OutPath);
  R.Err = Read(ErrPath);
  return R;
}

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
  Scratch Cache;
  ToolRun R = tool(ShowConfig, Cache.path());
  CAPTURE(R.Out);
  CAPTURE(R.Err);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "tile config: threads=256 vec=8 rows=1"));
  CHECK(contains(R.Out, "why:         heuristic (no tuning DB)"));
}

TEST_CASE("inspect --show config names the tuning database entry it would use") {
  Scratch Cache;
  std::string Db = writeFakeDb(Cache.sub("hand/db.json"));
  ToolRun R = tool(plus(ShowConfig, {"--tuning-db", Db}), Cache.path());
  CAPTURE(R.Out);
  CAPTURE(R.Err);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "tile config: threads=128 vec=4 rows=1"));
  CHECK(contains(R.Out, "why:         tuning DB hit "));
  CHECK(contains(R.Out, "Fake GPU | sm=132 | sm_90a"));
  // the default database (<cache>/tuning/v1.json) is read the same way
  writeFakeDb(TuningDb::defaultPath(Cache.path()));
  ToolRun D = tool(plus(ShowConfig, {"--arch", "sm_80"}), Cache.path());
  CAPTURE(D.Out);
  if (!contains(D.Out, "device:      no GPU"))
    return; // with a GPU the real device's identity is used, which the fake entries miss
  CHECK(contains(D.Out, "tuning DB hit"));
  CHECK(contains(D.Out, "| sm_80 |"));
}

TEST_CASE("prewarm --tuning-db compiles exactly the winners of its arch, then finds them cached") {
  Scratch Cache;
  std::string Db = writeFakeDb(Cache.sub("db.json"));
  ToolRun First = tool({"prewarm", "--tuning-db", Db, "--arch", "sm_90a", "--cache-dir", Cache.sub("kernels")},
                       Cache.path());
  CAPTURE(First.Out);
  CAPTURE(First.Err);
  REQUIRE(First.ExitCode == 0);
  CHECK(contains(First.Out, ": 2 kernels, 2 compiled, 0 already cached, 0 failed"));
  CHECK(contains(First.Err, "threads=128 vec=4"));
  ToolRun Second = tool({"prewarm", "--tuning-db", Db, "--arch", "sm_90a", "--cache-dir", Cache.sub("kernels")},
                        Cache.path());
  CAPTURE(Second.Out);
  CHECK(contains(Second.Out, ": 2 kernels, 0 compiled, 2 already cached, 0 failed"));
  ToolRun Missing = tool({"prewarm", "--tuning-db", Cache.sub("none.json")}, Cache.path());
  CHECK(Missing.ExitCode != 0);
}

TEST_CASE("tune --export and --import carry a database to another cache") {
  Scratch From, To;
  writeFakeDb(TuningDb::defaultPath(From.path()));
  std::string File = From.sub("export.json");
  ToolRun Export = tool({"tune", "--export", File}, From.path());
  CAPTURE(Export.Err);
  REQUIRE(Export.ExitCode == 0);
  CHECK(contains(Export.Out, "exported 3 entries"));
  ToolRun Import = tool({"tune", "--import", File}, To.path());
  CAPTURE(Import.Err);
  REQUIRE(Import.ExitCode == 0);
  CHECK(contains(Import.Out, "imported 3 entries"));
  auto Imported = TuningDb::loadStrict(TuningDb::defaultPath(To.path()));
  REQUIRE(!failureOf(Imported).Failed);
  CHECK(Imported->size() == 3);
  ToolRun Neither = tool({"tune"}, To.path());
  CHECK(Neither.ExitCode != 0);
  CHECK(contains(Neither.Err, "not implemented yet"));
}
