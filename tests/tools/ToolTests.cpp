// mhcjit tests: the mhc-jit command as users run it (inspect, prewarm, cache ls, demo).
// Each run is a child process with its output captured in files and its cache in a scratch dir.
#include "mhcjit/DiskCache.h"
#include "mhcjit/Driver.h"
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/mhcjit.hpp"

#include "TestSupport.h"
#include "ToolRunner.h"
#include "doctest/doctest.h"

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <algorithm>
#include <cstdio>
#include <unistd.h>
#include <string>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

/// The text after "Prefix" on the first line that starts with it ("" if none).
std::string lineValue(llvm::StringRef Text, llvm::StringRef Prefix) {
  llvm::SmallVector<llvm::StringRef, 64> Lines;
  Text.split(Lines, '\n');
  for (llvm::StringRef L : Lines)
    if (L.startswith(Prefix))
      return L.drop_front(Prefix.size()).trim().str();
  return {};
}

size_t countLinesContaining(llvm::StringRef Text, llvm::StringRef Needle) {
  llvm::SmallVector<llvm::StringRef, 64> Lines;
  Text.split(Lines, '\n');
  return std::count_if(Lines.begin(), Lines.end(), [&](llvm::StringRef L) { return contains(L, Needle); });
}

const std::vector<std::string> InspectFwd = {"inspect", "--op", "aggregate", "--dir", "fwd",
                                             "--n", "4", "--C", "7168", "--dtype", "bf16"};

std::vector<std::string> with(std::vector<std::string> Args, std::initializer_list<std::string> More) {
  Args.insert(Args.end(), More.begin(), More.end());
  return Args;
}

/// Logs a run's outputs when one of its checks fails.
#define CAPTURE_RUN(R)                                                                              \
  const std::string RunOut = (R).Out, RunErr = (R).Err;                                             \
  CAPTURE(RunOut);                                                                                  \
  CAPTURE(RunErr)

} // namespace

// ---- inspect ----

TEST_CASE("inspect prints the translation unit, the name expression and the embedded templates") {
  TempDir Cache;
  RunResult R = runTool(InspectFwd, Cache.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "mhc::aggregate_fwd<4, 7168, mhc::bf16_t, mhc::Layout::kSbcn, 256, 2, 16>"));
  CHECK(contains(R.Out, "#include \"aggregate.cuh\""));
  CHECK(contains(R.Out, "--gpu-architecture=sm_90a"));
  for (const EmbeddedTemplate &T : embeddedTemplates()) {
    const std::string Name = T.Name;
    CAPTURE(Name);
    CHECK(contains(R.Out, T.Text));
  }
  CHECK(R.Err.empty());
}

TEST_CASE("inspect with --layout sbnc or the deepseek contract renders the sbnc kernel") {
  TempDir Cache;
  RunResult Sbnc = runTool(with(InspectFwd, {"--layout", "sbnc"}), Cache.path());
  REQUIRE(Sbnc.ExitCode == 0);
  CHECK(contains(Sbnc.Out, "mhc::aggregate_fwd<4, 7168, mhc::bf16_t, mhc::Layout::kSbnc, 256, 8, 16>"));
  CHECK_FALSE(contains(lineValue(Sbnc.Out, "// name expression:"), "kSbcn"));
  RunResult DeepSeek = runTool(with(InspectFwd, {"--contract", "deepseek"}), Cache.path());
  REQUIRE(DeepSeek.ExitCode == 0);
  CHECK(contains(DeepSeek.Out, "mhc::Layout::kSbnc"));
  CHECK(contains(DeepSeek.Out, "contract=deepseek"));
}

TEST_CASE("inspect of a backward kernel names the accumulate flag") {
  TempDir Cache;
  std::vector<std::string> Bwd = {"inspect", "--op", "aggregate", "--dir", "bwd", "--n", "4",
                                  "--C", "7168", "--dtype", "fp16"};
  RunResult Write = runTool(Bwd, Cache.path());
  REQUIRE(Write.ExitCode == 0);
  CHECK(contains(Write.Out, "mhc::aggregate_bwd<4, 7168, mhc::fp16_t, mhc::Layout::kSbcn, 512, 2, 16, false>"));
  RunResult Add = runTool(with(Bwd, {"--accumulate-dx"}), Cache.path());
  REQUIRE(Add.ExitCode == 0);
  CHECK(contains(Add.Out, "mhc::aggregate_bwd<4, 7168, mhc::fp16_t, mhc::Layout::kSbcn, 512, 2, 16, true>"));
}

TEST_CASE("inspect --show key prints the library's key and an entry path under the cache dir") {
  TempDir Cache;
  const std::string Dir = Cache.sub("explicit");
  RunResult R = runTool(with(InspectFwd, {"--show", "key", "--cache-dir", Dir}), Cache.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  const std::string Key = lineValue(R.Out, "key:");
  CHECK(isLowerHex64(Key));
  const std::string Entry = lineValue(R.Out, "entry:");
  CHECK(llvm::StringRef(Entry).startswith(Dir + "/"));
  CHECK(llvm::StringRef(Entry).endswith("/" + Key));
  CHECK(Entry == DiskCache(Dir).entryPath(Key));
  CHECK(contains(R.Out, "arch=sm_90a"));

  // the same key this process computes for the spec the runtime would launch
  MixConfig Config;
  Config.N = 4;
  Config.C = 7168;
  Config.StreamType = DType::BF16;
  auto Spec = specFor(Config, Op::Aggregate, Direction::Forward);
  REQUIRE(static_cast<bool>(Spec));
  auto Keyed = keyKernel(*Spec, "sm_90a");
  REQUIRE(static_cast<bool>(Keyed));
  CHECK(Key == Keyed->Key);

  // without --cache-dir the entry lies under MHCJIT_CACHE_DIR
  RunResult Default = runTool(with(InspectFwd, {"--show", "key"}), Cache.path());
  REQUIRE(Default.ExitCode == 0);
  CHECK(lineValue(Default.Out, "key:") == Key);
  CHECK(llvm::StringRef(lineValue(Default.Out, "entry:")).startswith(Cache.path() + "/"));

  // another arch, another key
  RunResult Sm80 = runTool(with(InspectFwd, {"--show", "key", "--arch", "sm_80"}), Cache.path());
  REQUIRE(Sm80.ExitCode == 0);
  CHECK(lineValue(Sm80.Out, "key:") != Key);
  CHECK(isLowerHex64(lineValue(Sm80.Out, "key:")));
}

TEST_CASE("inspect --show resources compiles the kernel and prints registers and spills") {
  TempDir Cache;
  RunResult R = runTool(with(InspectFwd, {"--show", "resources", "--cache-dir", Cache.path()}), Cache.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "registers:"));
  CHECK(contains(R.Out, "spill stores:  0 bytes"));
  CHECK(contains(R.Out, "stack frame:   0 bytes"));
  CHECK(contains(R.Out, "arch:          sm_90a"));
  const std::string Registers = lineValue(R.Out, "registers:");
  CHECK_FALSE(llvm::StringRef(Registers).startswith("-1"));
  CHECK_FALSE(llvm::StringRef(Registers).startswith("0 "));
}

TEST_CASE("inspect --show ptx prints PTX with an entry for sm_90a") {
  TempDir Cache;
  RunResult R = runTool(with(InspectFwd, {"--show", "ptx"}), Cache.path());
  CAPTURE(R.Err);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, ".entry"));
  CHECK(contains(R.Out, ".target sm_90a"));
  CHECK(contains(R.Out, "aggregate_fwd"));
}

TEST_CASE("inspect rejects n = 9 with the allowed range on stderr") {
  TempDir Cache;
  RunResult R = runTool({"inspect", "--op", "aggregate", "--dir", "fwd", "--n", "9", "--C", "7168",
                         "--dtype", "bf16"},
                        Cache.path());
  CAPTURE_RUN(R);
  CHECK(R.ExitCode != 0);
  CHECK(contains(R.Err, "n = 9"));
  CHECK(contains(R.Err, "1..8"));
  CHECK_FALSE(contains(R.Out, "aggregate_fwd<"));
}

TEST_CASE("inspect rejects an unknown dtype on stderr") {
  TempDir Cache;
  RunResult R = runTool({"inspect", "--op", "aggregate", "--dir", "fwd", "--n", "4", "--C", "7168",
                         "--dtype", "int8"},
                        Cache.path());
  CAPTURE_RUN(R);
  CHECK(R.ExitCode != 0);
  CHECK(contains(R.Err, "--dtype=int8"));
}

TEST_CASE("inspect without --C says that --C is required") {
  TempDir Cache;
  RunResult R = runTool({"inspect", "--op", "aggregate", "--dir", "fwd", "--n", "4"}, Cache.path());
  CAPTURE_RUN(R);
  CHECK(R.ExitCode != 0);
  CHECK(contains(R.Err, "--C is required"));
}

TEST_CASE("inspect rejects two values where it needs one, and an unsupported arch") {
  TempDir Cache;
  RunResult Two = runTool({"inspect", "--op", "aggregate", "--n", "4", "--C", "64,128"}, Cache.path());
  CHECK(Two.ExitCode != 0);
  CHECK(contains(Two.Err, "--C takes one value"));
  RunResult Arch = runTool(with(InspectFwd, {"--arch", "sm_91"}), Cache.path());
  CHECK(Arch.ExitCode != 0);
  CHECK(contains(Arch.Err, "'sm_91'"));
}

// ---- prewarm and cache ls ----

TEST_CASE("prewarm compiles every named kernel once, then finds them all cached") {
  TempDir Scratch;
  const std::string Dir = Scratch.sub("cache");
  const std::vector<std::string> Args = {"prewarm", "--arch", "sm_90a", "--op", "aggregate",
                                         "--dir", "fwd,bwd", "--n", "4", "--C", "64,100",
                                         "--dtype", "bf16", "--cache-dir", Dir, "-j", "2"};
  {
    RunResult R = runTool(Args, Scratch.path());
    CAPTURE_RUN(R);
    REQUIRE(R.ExitCode == 0);
    // 2 forward + 2 backward + 2 accumulating backward
    CHECK(contains(R.Out, "6 kernels, 6 compiled, 0 already cached, 0 failed"));
    CHECK(contains(R.Out, "prewarm sm_90a into " + Dir));
  }
  {
    RunResult R = runTool(Args, Scratch.path());
    CAPTURE_RUN(R);
    REQUIRE(R.ExitCode == 0);
    CHECK(contains(R.Out, "6 kernels, 0 compiled, 6 already cached, 0 failed"));
  }
  {
    RunResult R = runTool({"cache", "ls", "--cache-dir", Dir}, Scratch.path());
    CAPTURE_RUN(R);
    REQUIRE(R.ExitCode == 0);
    CHECK(contains(R.Out, "6 entries"));
    CHECK(contains(R.Out, "in " + Dir));
    CHECK(countLinesContaining(R.Out, "sm_90a") == 6);
    CHECK(countLinesContaining(R.Out, "aggregate.fwd n=4") == 2);
    CHECK(countLinesContaining(R.Out, "aggregate.bwd n=4") == 4);
    CHECK(countLinesContaining(R.Out, "accumulate") == 2);
    CHECK(countLinesContaining(R.Out, "C=64 ") == 3);
    CHECK(countLinesContaining(R.Out, "C=100 ") == 3);
    CHECK_FALSE(contains(R.Out, "INVALID"));
  }
  // nothing went to the default cache
  auto Default = DiskCache(Scratch.path()).list();
  REQUIRE(static_cast<bool>(Default));
  CHECK(Default->empty());
}

TEST_CASE("prewarm rebuilds a cache entry whose cubin was truncated or whose manifest was garbled") {
  TempDir Scratch;
  const std::string Dir = Scratch.sub("cache");
  const std::vector<std::string> Args = {"prewarm", "--arch", "sm_90a", "--op", "aggregate",
                                         "--dir", "fwd", "--n", "4", "--C", "96,160",
                                         "--dtype", "bf16", "--cache-dir", Dir};
  REQUIRE(runTool(Args, Scratch.path()).ExitCode == 0);
  auto Entries = DiskCache(Dir).list();
  REQUIRE(static_cast<bool>(Entries));
  REQUIRE(Entries->size() == 2);
  // Damage both entries: cut the first cubin in half, overwrite the second manifest.
  {
    std::string Cubin = (*Entries)[0].Path + "/kernel.cubin";
    uint64_t Size = 0;
    REQUIRE(!llvm::sys::fs::file_size(Cubin, Size));
    REQUIRE(::truncate(Cubin.c_str(), static_cast<off_t>(Size / 2)) == 0);
    std::string Manifest = (*Entries)[1].Path + "/manifest.json";
    FILE *F = std::fopen(Manifest.c_str(), "w");
    REQUIRE(F);
    std::fputs("{ not json", F);
    std::fclose(F);
  }
  {
    RunResult R = runTool({"cache", "ls", "--cache-dir", Dir}, Scratch.path());
    CAPTURE_RUN(R);
    CHECK(countLinesContaining(R.Out, "INVALID") == 2);
  }
  RunResult R = runTool(Args, Scratch.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "2 kernels, 2 compiled, 0 already cached, 0 failed"));
  CHECK(countLinesContaining(R.Err, "rebuilding the bad cache entry") == 2);
  auto After = DiskCache(Dir).list();
  REQUIRE(static_cast<bool>(After));
  REQUIRE(After->size() == 2);
  for (const CacheEntrySummary &E : *After)
    CHECK_MESSAGE(E.Valid, E.Problem);
}

TEST_CASE("cache ls of an empty cache lists no entries") {
  TempDir Scratch;
  RunResult R = runTool({"cache", "ls", "--cache-dir", Scratch.sub("never-created")}, Scratch.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "0 entries"));
}

TEST_CASE("prewarm for an unsupported arch fails") {
  TempDir Scratch;
  RunResult R = runTool({"prewarm", "--arch", "sm_91", "--op", "aggregate", "--dir", "fwd", "--n",
                         "4", "--C", "64", "--cache-dir", Scratch.sub("cache")},
                        Scratch.path());
  CAPTURE_RUN(R);
  CHECK(R.ExitCode != 0);
  CHECK(contains(R.Err, "sm_91"));
  CHECK(contains(R.Out + R.Err, "0 compiled"));
}

TEST_CASE("prewarm with a bad spec option fails before compiling anything") {
  TempDir Scratch;
  RunResult R = runTool({"prewarm", "--op", "aggregate", "--n", "4", "--C", "64,0", "--cache-dir",
                         Scratch.sub("cache")},
                        Scratch.path());
  CAPTURE_RUN(R);
  CHECK(R.ExitCode != 0);
  CHECK(contains(R.Err, "C = 0"));
  CHECK_FALSE(llvm::sys::fs::exists(Scratch.sub("cache")));
}

// ---- scale_sinkhorn, the fused op ----

TEST_CASE("inspect --op scale_sinkhorn shows the fused kernel's source in both directions") {
  TempDir Cache;
  for (const char *Contract : {"te", "deepseek"})
    for (const char *Dir : {"fwd", "bwd"}) {
      RunResult R = runTool({"inspect", "--op", "scale_sinkhorn", "--dir", Dir, "--n", "4", "--C", "7168",
                             "--contract", Contract, "--show", "source"},
                            Cache.path());
      CAPTURE_RUN(R);
      REQUIRE(R.ExitCode == 0);
      const std::string D = Dir, Threads = D == "fwd" ? "128" : "64"; // the heuristic's tiles
      CHECK(lineValue(R.Out, "// name expression:") ==
            "mhc::scale_sinkhorn_" + D + "<4, " + Threads + ", mhcjit_contract>");
      CHECK(contains(R.Out, "#include \"scale_sinkhorn.cuh\""));
      CHECK(contains(R.Out, "op=scale_sinkhorn dir=" + D + " "));
      CHECK(contains(R.Out, std::string("contract=") + Contract));
      // the fused template is embedded and shown, with the two it builds on
      for (const char *Template : {"scale_sinkhorn.cuh", "scale.cuh", "sinkhorn.cuh"})
        CHECK_MESSAGE(contains(R.Out, std::string("// ---- ") + Template + " (embedded template) ----"),
                      Template);
      CHECK(R.Err.empty());
    }
}

TEST_CASE("prewarm --op scale_sinkhorn compiles the fused kernels for sm_90a, then finds them cached") {
  TempDir Scratch;
  const std::string Dir = Scratch.sub("cache");
  // te (log) and deepseek (softmax_eps) at n = 4: fwd and bwd each, and the reduce_rows that
  // finishes dalpha and dbeta (one kernel for both: it reads no contract)
  const std::vector<std::string> Args = {"prewarm", "--arch", "sm_90a", "--op", "scale_sinkhorn",
                                         "--dir", "fwd,bwd", "--n", "4", "--C", "7168",
                                         "--contract", "te,deepseek", "--cache-dir", Dir, "-j", "2"};
  {
    RunResult R = runTool(Args, Scratch.path());
    CAPTURE_RUN(R);
    REQUIRE(R.ExitCode == 0);
    CHECK(contains(R.Out, "5 kernels, 5 compiled, 0 already cached, 0 failed"));
  }
  {
    RunResult R = runTool(Args, Scratch.path());
    CAPTURE_RUN(R);
    REQUIRE(R.ExitCode == 0);
    CHECK(contains(R.Out, "5 kernels, 0 compiled, 5 already cached, 0 failed"));
  }
  RunResult Ls = runTool({"cache", "ls", "--cache-dir", Dir}, Scratch.path());
  CAPTURE_RUN(Ls);
  REQUIRE(Ls.ExitCode == 0);
  CHECK(countLinesContaining(Ls.Out, "sm_90a") == 5);
  CHECK(countLinesContaining(Ls.Out, "scale_sinkhorn.fwd n=4") == 2);
  CHECK(countLinesContaining(Ls.Out, "scale_sinkhorn.bwd n=4") == 2);
  CHECK(countLinesContaining(Ls.Out, "reduce_rows.fwd") == 1);
  CHECK_FALSE(contains(Ls.Out, "INVALID"));
}

// ---- demo ----

TEST_CASE("demo without a GPU pre-warms, shows a source and lists the cache") {
  if (gpuAvailable()) {
    MESSAGE("skipped: a GPU is present, so demo runs the GPU path (covered by the GPU tests)");
    return;
  }
  TempDir Scratch;
  const std::string Dir = Scratch.sub("demo-cache");
  RunResult R = runTool({"demo", "--cache-dir", Dir}, Scratch.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, "No GPU here"));
  CHECK(contains(R.Out, "#include \"aggregate.cuh\""));
  CHECK(contains(R.Out, "Cache listing:"));
  // te and deepseek, fwd and bwd, C = 4096 and 7168
  CHECK(contains(R.Out, "8 compiled, 0 already cached"));
  CHECK(contains(R.Out, "8 entries"));
  CHECK(contains(R.Out, "in " + Dir));
}
