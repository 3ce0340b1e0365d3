// mhcjit tests: the kernel cache on a cluster: many processes, crashes, corruption, full or
// untrusted caches, read-only layers, locks, pruning and keys, through mhc-jit and buildKernel.
// Tool runs are forked children (stdout and stderr in one pipe) with a scratch cache each.
#include "cache/CacheTestSupport.h"

#include "mhcjit/CacheMaintenance.h"
#include "mhcjit/Compiler.h"
#include "mhcjit/DiskCache.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/KeyLock.h"
#include "mhcjit/mhcjit.hpp"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <future>
#include <map>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char **environ;

using namespace mhcjit;
using namespace mhcjit::testing;
using mhcjit::test::contains;

namespace {

/// How a tool run ended and what it printed (stdout and stderr interleaved).
struct ToolRun {
  int ExitCode = -1; ///< -1 when killed by a signal
  int Signal = 0;
  std::string Output;
};

/// Extra settings of one tool run.
struct RunSettings {
  std::vector<std::string> Env; ///< "NAME=value" added to the environment
  rlim_t FileSizeLimit = RLIM_INFINITY;
  std::string Tool = MHCJIT_TOOL_PATH;
};

/// A started mhc-jit process.
class ToolProcess {
public:
  /// Starts Tool with Args; the environment is ours without MHCJIT_* variables, plus
  /// MHCJIT_CACHE_DIR=DefaultCache (so no run touches a real cache) and Settings.Env.
  ToolProcess(const std::vector<std::string> &Args, const std::string &DefaultCache,
              const RunSettings &Settings = RunSettings()) {
    std::vector<std::string> EnvStrings;
    for (char **E = environ; *E; ++E)
      if (!llvm::StringRef(*E).startswith("MHCJIT_"))
        EnvStrings.push_back(*E);
    EnvStrings.push_back("MHCJIT_CACHE_DIR=" + DefaultCache);
    EnvStrings.insert(EnvStrings.end(), Settings.Env.begin(), Settings.Env.end());
    std::vector<std::string> ArgStrings{Settings.Tool};
    ArgStrings.insert(ArgStrings.end(), Args.begin(), Args.end());
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<char *> Argv, Envp;
    for (std::string &A : ArgStrings)
      Argv.push_back(&A[0]);
    Argv.push_back(nullptr);
    for (std::string &E : EnvStrings)
      Envp.push_back(&E[0]);
    Envp.push_back(nullptr);
    int Pipe[2];
    REQUIRE(::pipe(Pipe) == 0);
    Pid = ::fork();
    REQUIRE(Pid >= 0);
    if (Pid == 0) {
      ::dup2(Pipe[1], 1);
      ::dup2(Pipe[1], 2);
      ::close(Pipe[0]);
      ::close(Pipe[1]);
      if (Settings.FileSizeLimit != RLIM_INFINITY) {
        // A full disk, as a process sees it: writes past the limit fail with EFBIG.
        struct rlimit Limit = {Settings.FileSizeLimit, Settings.FileSizeLimit};
        ::setrlimit(RLIMIT_FSIZE, &Limit);
        ::signal(SIGXFSZ, SIG_IGN); // ignored dispositions survive exec
      }
      ::execve(Argv[0], Argv.data(), Envp.data());
      ::_exit(127);
    }
    ::close(Pipe[1]);
    Fd = Pipe[0];
  }
  ToolProcess(ToolProcess &&Other) noexcept : Pid(Other.Pid), Fd(Other.Fd) { Other.Fd = -1; }
  ~ToolProcess() {
    if (Fd >= 0)
      wait();
  }

  /// Reads the output to its end and reaps the process.
  ToolRun wait() {
    ToolRun R;
    char Buffer[4096];
    for (;;) {
      ssize_t Got = ::read(Fd, Buffer, sizeof Buffer);
      if (Got < 0 && errno == EINTR)
        continue;
      if (Got <= 0)
        break;
      R.Output.append(Buffer, static_cast<size_t>(Got));
    }
    ::close(Fd);
    Fd = -1;
    int Status = 0;
    while (::waitpid(Pid, &Status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(Status))
      R.ExitCode = WEXITSTATUS(Status);
    else if (WIFSIGNALED(Status))
      R.Signal = WTERMSIG(Status);
    return R;
  }

private:
  pid_t Pid = -1;
  int Fd = -1;
};

ToolRun runTool(const std::vector<std::string> &Args, const std::string &DefaultCache,
                const RunSettings &Settings = RunSettings()) {
  return ToolProcess(Args, DefaultCache, Settings).wait();
}

/// prewarm of the forward aggregate kernels n = 1, C in Cs (one kernel each) into Dir.
std::vector<std::string> prewarmArgs(const std::string &Dir, const std::string &Cs,
                                     const std::string &Ns = "1") {
  return {"prewarm", "--op", "aggregate", "--dir", "fwd", "--n", Ns, "--C", Cs,
          "--cache-dir", Dir, "-j", "1"};
}

/// The number before " <What>" in prewarm's summary ("8 kernels, 3 compiled, 5 already
/// cached, 0 failed"); -1 if there is no summary.
int summaryCount(llvm::StringRef Output, llvm::StringRef What) {
  size_t Line = Output.find("prewarm ");
  if (Line == llvm::StringRef::npos)
    return -1;
  llvm::StringRef Summary = Output.drop_front(Line);
  Summary = Summary.take_until([](char C) { return C == '\n'; });
  size_t At = Summary.find(" " + What.str());
  if (At == llvm::StringRef::npos)
    return -1;
  llvm::StringRef Before = Summary.take_front(At);
  llvm::StringRef Digits = Before.drop_front(Before.find_last_not_of("0123456789") + 1);
  int Count = -1;
  return Digits.getAsInteger(10, Count) ? -1 : Count;
}

size_t countLines(llvm::StringRef Text, llvm::StringRef Needle) {
  llvm::SmallVector<llvm::StringRef, 64> Lines;
  Text.split(Lines, '\n');
  return std::count_if(Lines.begin(), Lines.end(),
                       [&](llvm::StringRef L) { return contains(L, Needle); });
}

/// Every entry listed, validated; fails the test if the cache cannot be listed.
std::vector<CacheEntrySummary> entriesOf(const std::string &Root) {
  llvm::Expected<std::vector<CacheEntrySummary>> Entries = DiskCache(Root).list();
  REQUIRE_MESSAGE(static_cast<bool>(Entries), llvm::toString(Entries.takeError()));
  return std::move(*Entries);
}

std::vector<StoredEntry> storedOf(const DiskCache &Cache) {
  llvm::Expected<std::vector<StoredEntry>> Stored = scanEntries(Cache);
  REQUIRE(static_cast<bool>(Stored));
  return std::move(*Stored);
}

std::vector<Temporary> temporariesOf(const std::string &Root) {
  llvm::Expected<std::vector<Temporary>> Found = findTemporaries(DiskCache(Root));
  REQUIRE(static_cast<bool>(Found));
  return std::move(*Found);
}

/// Path -> (size, mtime) of every file under Dir, to show that a lookup changed nothing.
std::map<std::string, std::pair<uint64_t, int64_t>> snapshot(const std::string &Dir) {
  std::map<std::string, std::pair<uint64_t, int64_t>> Files;
  std::error_code EC;
  for (llvm::sys::fs::recursive_directory_iterator It(Dir, EC), End; !EC && It != End;
       It.increment(EC)) {
    llvm::sys::fs::file_status Status;
    if (!llvm::sys::fs::status(It->path(), Status, /*Follow=*/false))
      Files[It->path()] = {Status.getSize(), llvm::sys::toTimeT(Status.getLastModificationTime())};
  }
  return Files;
}

/// The spec that `prewarm --op aggregate --dir fwd --n N --C C` builds.
KernelSpec forwardSpec(int64_t C, int N = 1) {
  MixConfig Config;
  Config.N = N;
  Config.C = C;
  auto Spec = specFor(Config, Op::Aggregate, Direction::Forward);
  REQUIRE(static_cast<bool>(Spec));
  return *Spec;
}

std::string keyOf(const KernelSpec &Spec) {
  auto Keyed = keyKernel(Spec, "sm_90a");
  REQUIRE(static_cast<bool>(Keyed));
  return Keyed->Key;
}

/// Runtime options for in-process builds into Cache, collecting warnings.
RuntimeOptions optionsFor(const std::string &Cache, std::vector<std::string> &Warnings) {
  RuntimeOptions Options;
  Options.CacheDir = Cache;
  Options.Warn = [&Warnings](llvm::StringRef W) { Warnings.push_back(W.str()); };
  return Options;
}

#define CAPTURE_OUTPUT(R)                                                                          \
  const std::string RunOutput = (R).Output;                                                        \
  CAPTURE(RunOutput)

} // namespace

// ---- many processes, one cache ----

TEST_CASE("sixteen processes pre-warming one empty cache all succeed and compile each kernel once") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  // n in {1, 2} x C in {8, 16, 24, 32}: 8 forward kernels.
  const std::vector<std::string> Args = prewarmArgs(Dir, "8,16,24,32", "1,2");
  std::vector<ToolProcess> Processes;
  for (int I = 0; I < 16; ++I)
    Processes.emplace_back(Args, Scratch.path());
  int Compiled = 0, Cached = 0;
  for (ToolProcess &P : Processes) {
    ToolRun R = P.wait();
    CAPTURE_OUTPUT(R);
    CHECK(R.ExitCode == 0);
    CHECK(contains(R.Output, "8 kernels"));
    CHECK(summaryCount(R.Output, "failed") == 0);
    CHECK_FALSE(contains(R.Output, "warning"));
    Compiled += summaryCount(R.Output, "compiled");
    Cached += summaryCount(R.Output, "already cached");
  }
  CHECK(Compiled == 8);
  CHECK(Cached == 15 * 8);

  std::vector<CacheEntrySummary> Entries = entriesOf(Dir);
  CHECK(Entries.size() == 8);
  for (const CacheEntrySummary &E : Entries)
    CHECK_MESSAGE(E.Valid, E.Problem);
  CHECK(namesStartingWith(Dir, ".").empty()); // no temporaries
  for (const std::string &Path : namesStartingWith(Dir, ""))
    CHECK_FALSE(llvm::StringRef(Path).endswith(".lock")); // no lock on the cache filesystem
  for (const CacheEntrySummary &E : Entries) // and none left in the node-local directory
    CHECK_FALSE(llvm::sys::fs::exists(KeyLock::defaultDirectory() + "/" + E.Key + ".lock"));
}

TEST_CASE("a build that waits for another process's lock uses the entry that process published") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Scratch.sub("cache"), Warnings);
  Options.LockDir = Scratch.sub("locks");
  const KernelSpec Spec = forwardSpec(1032);
  auto Keyed = keyKernel(Spec, "sm_90a");
  REQUIRE(static_cast<bool>(Keyed));

  // The "other process": takes the lock, compiles, publishes a little later, releases.
  std::promise<void> Locked;
  std::thread Other([&] {
    llvm::Expected<KeyLock> Lock = KeyLock::acquire(Options.LockDir, Keyed->Key,
                                                    std::chrono::milliseconds(0));
    Locked.set_value();
    REQUIRE(static_cast<bool>(Lock));
    auto Compiled = compileCubin(Keyed->Kernel, "sm_90a");
    REQUIRE(static_cast<bool>(Compiled));
    // Long enough for the build below to find no entry and queue on the lock, even on a
    // loaded machine.
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    CacheEntry Entry;
    Entry.Key = Keyed->Key;
    Entry.Record = Keyed->Record;
    Entry.Cubin = Compiled->Binary;
    Entry.Source = Keyed->Kernel.Source;
    Entry.LoweredName = Compiled->LoweredName;
    Entry.CompileLog = "published by the other process";
    llvm::Error E = DiskCache(Options.CacheDir).publish(Entry);
    REQUIRE(!E);
  });
  Locked.get_future().wait();
  ProviderStats Before = providerStats();
  auto Built = buildKernel(Spec, "sm_90a", Options);
  Other.join();
  REQUIRE_MESSAGE(static_cast<bool>(Built), llvm::toString(Built.takeError()));
  CHECK(Built->Origin == KernelOrigin::Disk);
  CHECK(Built->Entry->CompileLog == "published by the other process");
  ProviderStats After = providerStats();
  CHECK(After.Compiles == Before.Compiles);
  CHECK(After.LockWaits == Before.LockWaits + 1);
  CHECK(After.LockTimeouts == Before.LockTimeouts);
  CHECK(Warnings.empty());
  CHECK(namesStartingWith(Options.LockDir, "").empty());
}

TEST_CASE("a kernel whose lock is held past the bounded wait is compiled anyway, with one warning") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Scratch.sub("cache"), Warnings);
  Options.LockDir = Scratch.sub("locks");
  Options.LockTimeout = std::chrono::milliseconds(300);
  const KernelSpec Spec = forwardSpec(1040);
  llvm::Expected<KeyLock> Held =
      KeyLock::acquire(Options.LockDir, keyOf(Spec), std::chrono::milliseconds(0));
  REQUIRE(static_cast<bool>(Held));

  ProviderStats Before = providerStats();
  auto Start = std::chrono::steady_clock::now();
  auto Built = buildKernel(Spec, "sm_90a", Options);
  REQUIRE_MESSAGE(static_cast<bool>(Built), llvm::toString(Built.takeError()));
  CHECK(std::chrono::steady_clock::now() - Start >= std::chrono::milliseconds(300));
  CHECK(Built->Origin == KernelOrigin::Compiled);
  ProviderStats After = providerStats();
  CHECK(After.Compiles == Before.Compiles + 1);
  CHECK(After.LockTimeouts == Before.LockTimeouts + 1);
  REQUIRE(Warnings.size() == 1);
  CHECK(contains(Warnings[0], "gave up waiting after 300 ms"));
  CHECK(contains(Warnings[0], "MHCJIT_CACHE_LOCK_TIMEOUT"));
  CHECK(DiskCache(Options.CacheDir).lookup(keyOf(Spec)).Entry.hasValue());
}

// ---- crashes ----

TEST_CASE("a pre-warm killed at any stage of publishing leaves no entry a reader rejects, and the next run succeeds") {
  const std::vector<std::string> Stages = {"tmp-created", "cubin-partial", "cubin-written",
                                           "files-written", "before-rename", "after-rename",
                                           "invalid-moved-aside"};
  const std::string Key = keyOf(forwardSpec(40));
  for (const std::string &Stage : Stages) {
    CAPTURE(Stage);
    ScratchDir Scratch;
    REQUIRE(Scratch.ok());
    const std::string Dir = Scratch.sub("cache");
    const std::vector<std::string> Args = prewarmArgs(Dir, "40");
    if (Stage == "invalid-moved-aside") { // a bad entry in place, which the writer replaces
      REQUIRE(runTool(Args, Scratch.path()).ExitCode == 0);
      REQUIRE(::truncate((DiskCache(Dir).entryPath(Key) + "/kernel.cubin").c_str(), 10) == 0);
    }
    RunSettings Crash;
    Crash.Env = {"MHCJIT_TEST_CRASH_AT=" + Stage};
    ToolRun Killed = runTool(Args, Scratch.path(), Crash);
    CAPTURE(Killed.Output);
    CHECK(Killed.Signal == SIGKILL);

    // Whatever is left: every entry validates; before the rename there is none.
    std::vector<CacheEntrySummary> Entries = entriesOf(Dir);
    CHECK(Entries.size() == (Stage == "after-rename" ? 1u : 0u));
    for (const CacheEntrySummary &E : Entries)
      CHECK_MESSAGE(E.Valid, E.Problem);
    CacheLookup Found = DiskCache(Dir).lookup(Key);
    CHECK(Found.Entry.hasValue() == (Stage == "after-rename"));
    CHECK(Found.Rejected.empty());

    // The crashed writer's temporaries, once stale, go with the next publish into the shard.
    std::vector<Temporary> Left = temporariesOf(Dir);
    CHECK(Left.empty() == (Stage == "after-rename"));
    for (const Temporary &T : Left)
      setTimes(T.Path, std::time(nullptr) - 7200, std::time(nullptr) - 7200);
    ToolRun Next = runTool(Args, Scratch.path());
    CAPTURE(Next.Output);
    CHECK(Next.ExitCode == 0);
    CHECK(summaryCount(Next.Output, "compiled") == (Stage == "after-rename" ? 0 : 1));
    CHECK(summaryCount(Next.Output, "failed") == 0);
    Entries = entriesOf(Dir);
    REQUIRE(Entries.size() == 1);
    CHECK_MESSAGE(Entries[0].Valid, Entries[0].Problem);
    CHECK(temporariesOf(Dir).empty());
    ToolRun Verify = runTool({"cache", "verify", "--cache-dir", Dir}, Scratch.path());
    CAPTURE(Verify.Output);
    CHECK(Verify.ExitCode == 0);
  }
}

// ---- corruption ----

TEST_CASE("cache verify finds a truncated cubin, a flipped byte, a garbage manifest and a foreign entry; --repair removes them") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  const std::vector<std::string> Args = prewarmArgs(Dir, "48,56,64,72,80");
  REQUIRE(runTool(Args, Scratch.path()).ExitCode == 0);
  DiskCache Cache(Dir);
  auto EntryDir = [&](int64_t C) { return Cache.entryPath(keyOf(forwardSpec(C))); };
  {
    std::string Cubin = EntryDir(48) + "/kernel.cubin";
    REQUIRE(::truncate(Cubin.c_str(), 100) == 0);
    Cubin = EntryDir(56) + "/kernel.cubin";
    std::string Bytes = readFile(Cubin);
    Bytes[Bytes.size() / 2] ^= 0x01;
    writeFile(Cubin, Bytes);
    writeFile(EntryDir(64) + "/manifest.json", std::string("\0\xff garbage", 10));
    for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json"})
      writeFile(EntryDir(72) + "/" + Name, readFile(EntryDir(80) + "/" + Name));
  }

  ToolRun Verify = runTool({"cache", "verify", "--cache-dir", Dir}, Scratch.path());
  {
    CAPTURE_OUTPUT(Verify);
    CHECK(Verify.ExitCode == 1);
    CHECK(countLines(Verify.Output, "BAD  ") == 4);
    CHECK(countLines(Verify.Output, EntryDir(48) + ": kernel.cubin has 100 bytes") == 1);
    CHECK(countLines(Verify.Output, EntryDir(56) + ": kernel.cubin sha256 differs") == 1);
    CHECK(countLines(Verify.Output, EntryDir(64) + ": garbled manifest.json") == 1);
    CHECK(countLines(Verify.Output, EntryDir(72) + ": manifest is for key " + keyOf(forwardSpec(80))) == 1);
    CHECK(contains(Verify.Output, "verified 5 entries in " + Dir + ": 4 bad"));
    CHECK(contains(Verify.Output, "cache verify --repair"));
  }
  ToolRun Repair = runTool({"cache", "verify", "--repair", "--cache-dir", Dir}, Scratch.path());
  {
    CAPTURE_OUTPUT(Repair);
    CHECK(Repair.ExitCode == 0);
    CHECK(contains(Repair.Output, "4 bad (4 removed)"));
  }
  CHECK(entriesOf(Dir).size() == 1);
  CHECK(runTool({"cache", "verify", "--cache-dir", Dir}, Scratch.path()).ExitCode == 0);
  ToolRun Rebuild = runTool(Args, Scratch.path());
  CAPTURE_OUTPUT(Rebuild);
  CHECK(contains(Rebuild.Output, "5 kernels, 4 compiled, 1 already cached, 0 failed"));
  for (const CacheEntrySummary &E : entriesOf(Dir))
    CHECK_MESSAGE(E.Valid, E.Problem);
}

TEST_CASE("cache verify and prune reject options of other actions and malformed values with status 2") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  for (const std::vector<std::string> &Args :
       {std::vector<std::string>{"cache", "ls", "--repair", "--cache-dir", Dir},
        std::vector<std::string>{"cache", "verify", "--max-size", "1G", "--cache-dir", Dir},
        std::vector<std::string>{"cache", "prune", "--max-size", "5X", "--cache-dir", Dir},
        std::vector<std::string>{"cache", "prune", "--max-age", "1y", "--cache-dir", Dir},
        std::vector<std::string>{"cache", "verify", "--stale-after", "soon", "--cache-dir", Dir},
        std::vector<std::string>{"cache", "frobnicate", "--cache-dir", Dir}}) {
    ToolRun R = runTool(Args, Scratch.path());
    CAPTURE_OUTPUT(R);
    CHECK(R.ExitCode == 2);
  }
  ToolRun Size = runTool({"cache", "prune", "--max-size", "5X", "--cache-dir", Dir}, Scratch.path());
  CHECK(contains(Size.Output, "'5X' is not a size"));
  CHECK_FALSE(llvm::sys::fs::exists(Dir));
}

// ---- write failures and untrusted caches ----

TEST_CASE("a cache directory under a regular file never fails a build: kernels compile and one warning says why") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Blocker = Scratch.sub("a-file");
  writeFile(Blocker, "not a directory");
  ToolRun R = runTool(prewarmArgs(Blocker + "/cache", "8,16,24"), Scratch.path());
  CAPTURE_OUTPUT(R);
  CHECK(R.ExitCode == 0);
  CHECK(contains(R.Output, "3 kernels, 3 compiled, 0 already cached, 0 failed"));
  CHECK(countLines(R.Output, "mhcjit: warning:") == 1);
  CHECK(countLines(R.Output, "mhcjit: warning: the kernel cache at " + Blocker + "/cache") == 1);
  CHECK(contains(R.Output, "Not a directory"));
}

TEST_CASE("a full disk never fails a build: kernels compile, one warning says why, nothing is left") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  RunSettings Full;
  Full.FileSizeLimit = 2048; // a cubin is several KiB
  ToolRun R = runTool(prewarmArgs(Dir, "8,16,24"), Scratch.path(), Full);
  CAPTURE_OUTPUT(R);
  CHECK(R.ExitCode == 0);
  CHECK(contains(R.Output, "3 kernels, 3 compiled, 0 already cached, 0 failed"));
  CHECK(countLines(R.Output, "mhcjit: warning:") == 1);
  CHECK(contains(R.Output, "the kernel cache at " + Dir + " is skipped"));
  CHECK(contains(R.Output, "File too large"));
  CHECK(entriesOf(Dir).empty());
  CHECK(temporariesOf(Dir).empty());
}

TEST_CASE("a cache every user can write is refused with a clear message, and kernels are built in memory") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  REQUIRE(!llvm::sys::fs::create_directories(Dir));
  REQUIRE(::chmod(Dir.c_str(), 0777) == 0);
  for (const char *Shared : {"MHCJIT_CACHE_SHARED=0", "MHCJIT_CACHE_SHARED=1"}) {
    CAPTURE(Shared);
    RunSettings Settings;
    Settings.Env = {Shared};
    ToolRun R = runTool(prewarmArgs(Dir, "8,16"), Scratch.path(), Settings);
    CAPTURE_OUTPUT(R);
    CHECK(R.ExitCode == 0);
    CHECK(contains(R.Output, "2 kernels, 2 compiled"));
    CHECK(countLines(R.Output, "mhcjit: warning:") == 1);
    CHECK(contains(R.Output, "refusing the kernel cache directory '" + Dir + "'"));
    CHECK(contains(R.Output, "chmod o-w " + Dir));
    CHECK_FALSE(llvm::sys::fs::exists(Dir + "/v1"));
  }
  ToolRun Verify = runTool({"cache", "verify", "--cache-dir", Dir}, Scratch.path());
  CAPTURE_OUTPUT(Verify);
  CHECK(Verify.ExitCode == 1);
  CHECK(contains(Verify.Output, "REFUSED"));
}

// ---- layers ----

TEST_CASE("read-only caches are searched first, in order, and a lookup creates or touches nothing") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string L1 = Scratch.sub("layer1"), L2 = Scratch.sub("layer2"),
                    Writable = Scratch.sub("writable");
  REQUIRE(runTool(prewarmArgs(L1, "1096"), Scratch.path()).ExitCode == 0);
  REQUIRE(runTool(prewarmArgs(L2, "1096,1104"), Scratch.path()).ExitCode == 0);
  // Layer 1's copy of the first kernel is damaged: it is skipped (with a warning) for layer 2's.
  const std::string BadCubin = DiskCache(L1).entryPath(keyOf(forwardSpec(1096))) + "/kernel.cubin";
  REQUIRE(::truncate(BadCubin.c_str(), 10) == 0);
  auto Before1 = snapshot(L1), Before2 = snapshot(L2);

  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Writable, Warnings);
  Options.ReadOnlyCacheDirs = {L1, L2};
  Options.NoJit = true;
  ProviderStats Before = providerStats();
  for (int64_t C : {1096, 1104}) {
    CAPTURE(C);
    auto Built = buildKernel(forwardSpec(C), "sm_90a", Options);
    REQUIRE_MESSAGE(static_cast<bool>(Built), llvm::toString(Built.takeError()));
    CHECK(Built->Origin == KernelOrigin::Disk);
  }
  CHECK(providerStats().DiskHits == Before.DiskHits + 2);
  REQUIRE(Warnings.size() == 1);
  CHECK(contains(Warnings[0], "skipping the bad entry " + llvm::sys::path::parent_path(BadCubin).str()));
  CHECK(snapshot(L1) == Before1);
  CHECK(snapshot(L2) == Before2);
  CHECK_FALSE(llvm::sys::fs::exists(Writable));

  // A kernel in no layer: with NoJit, an error naming it, every searched directory and the fix.
  auto Missing = buildKernel(forwardSpec(1112), "sm_90a", Options);
  test::Failure F = test::failureOf(Missing);
  REQUIRE(F.Failed);
  CAPTURE(F.Message);
  CHECK(F.Code == static_cast<int>(Errc::NoJit));
  CHECK(contains(F.Message, specLabel(forwardSpec(1112))));
  CHECK(contains(F.Message, "searched: " + L1 + " (read-only), " + L2 + " (read-only), " + Writable));
  CHECK(contains(F.Message, "mhc-jit prewarm --arch sm_90a --op aggregate --dir fwd --n 1 --C 1112"));
  CHECK_FALSE(llvm::sys::fs::exists(Writable));

  // Without NoJit it is compiled into the writable cache; the layers stay as they were.
  Options.NoJit = false;
  auto Compiled = buildKernel(forwardSpec(1112), "sm_90a", Options);
  REQUIRE_MESSAGE(static_cast<bool>(Compiled), llvm::toString(Compiled.takeError()));
  CHECK(Compiled->Origin == KernelOrigin::Compiled);
  CHECK(entriesOf(Writable).size() == 1);
  CHECK(snapshot(L1) == Before1);
  CHECK(snapshot(L2) == Before2);
}

TEST_CASE("the cache variables of the environment reach the runtime options") {
  EnvironmentGuard Guard({"MHCJIT_CACHE_PATH", "MHCJIT_CACHE_SHARED", "MHCJIT_CACHE_MAX_SIZE",
                          "MHCJIT_CACHE_LOCK_DIR", "MHCJIT_CACHE_LOCK_TIMEOUT", "MHCJIT_NO_JIT",
                          "MHCJIT_CACHE_DIR"});
  ::setenv("MHCJIT_CACHE_PATH", "/site/mhcjit::/opt/mhcjit:", 1);
  ::setenv("MHCJIT_CACHE_SHARED", "1", 1);
  ::setenv("MHCJIT_CACHE_MAX_SIZE", "2G", 1);
  ::setenv("MHCJIT_CACHE_LOCK_DIR", "/dev/shm/elsewhere", 1);
  ::setenv("MHCJIT_CACHE_LOCK_TIMEOUT", "5s", 1);
  ::setenv("MHCJIT_NO_JIT", "1", 1);
  ::setenv("MHCJIT_CACHE_DIR", "/scratch/kernels", 1);
  RuntimeOptions O = RuntimeOptions::fromEnvironment();
  CHECK(O.ReadOnlyCacheDirs == std::vector<std::string>{"/site/mhcjit", "/opt/mhcjit"});
  CHECK(O.SharedCache);
  CHECK(O.CacheMaxBytes == 2ull << 30);
  CHECK(O.LockDir == "/dev/shm/elsewhere");
  CHECK(O.LockTimeout == std::chrono::seconds(5));
  CHECK(O.NoJit);
  CHECK(O.CacheDir == "/scratch/kernels");

  ::unsetenv("MHCJIT_CACHE_PATH");
  ::setenv("MHCJIT_CACHE_SHARED", "0", 1);
  ::setenv("MHCJIT_CACHE_MAX_SIZE", "lots", 1); // ignored, with a warning on stderr
  ::unsetenv("MHCJIT_CACHE_LOCK_TIMEOUT");
  O = RuntimeOptions::fromEnvironment();
  CHECK(O.ReadOnlyCacheDirs.empty());
  CHECK_FALSE(O.SharedCache);
  CHECK(O.CacheMaxBytes == 0);
  CHECK(O.LockTimeout == std::chrono::seconds(60));
}

// ---- pruning and stats ----

TEST_CASE("cache prune drops entries unused past --max-age, then the least recently used down to --max-size") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  REQUIRE(runTool(prewarmArgs(Dir, "136,144,152,160"), Scratch.path()).ExitCode == 0);
  DiskCache Cache(Dir);
  std::vector<std::string> Keys;
  int64_t Now = std::time(nullptr);
  const std::vector<int64_t> Ages = {40 * 86400, 10 * 86400, 5 * 86400, 0};
  for (size_t I = 0; I < Ages.size(); ++I) {
    Keys.push_back(keyOf(forwardSpec(136 + 8 * static_cast<int64_t>(I))));
    // The stamp says how long ago it was used; atime (reversed) must not matter.
    setTimes(Cache.entryPath(Keys[I]) + "/last-used", Now - Ages[Ages.size() - 1 - I], Now - Ages[I]);
  }
  // A crashed writer's temporary of two hours ago goes too; a live writer's (just now) stays.
  const std::string Shard = llvm::sys::path::parent_path(Cache.entryPath(Keys[0])).str();
  const std::string Crashed = Shard + "/.tmp-" + Keys[0] + "-1-dead", Live = Shard + "/.tmp-x-2-live";
  REQUIRE(!llvm::sys::fs::create_directories(Crashed));
  REQUIRE(!llvm::sys::fs::create_directories(Live));
  setTimes(Crashed, Now - 7200, Now - 7200);
  ToolRun Age = runTool({"cache", "prune", "--max-age", "30d", "--cache-dir", Dir}, Scratch.path());
  {
    CAPTURE_OUTPUT(Age);
    CHECK(Age.ExitCode == 0);
    CHECK(contains(Age.Output, "pruned 1 entries"));
    CHECK(contains(Age.Output, "3 entries"));
    CHECK(contains(Age.Output, "1 stale temporaries removed"));
  }
  CHECK_FALSE(llvm::sys::fs::exists(Cache.entryPath(Keys[0])));
  CHECK_FALSE(llvm::sys::fs::exists(Crashed));
  CHECK(llvm::sys::fs::exists(Live));
  REQUIRE(!llvm::sys::fs::remove(Live));

  // Room for the two most recently used entries only.
  uint64_t Room = 0;
  for (const StoredEntry &E : storedOf(Cache))
    if (E.Key == Keys[2] || E.Key == Keys[3])
      Room += E.Bytes;
  ToolRun Size = runTool({"cache", "prune", "--max-size", std::to_string(Room + 100), "--cache-dir", Dir},
                         Scratch.path());
  CAPTURE_OUTPUT(Size);
  CHECK(Size.ExitCode == 0);
  CHECK(contains(Size.Output, "pruned 1 entries"));
  CHECK(contains(Size.Output, "2 entries, " + std::to_string(Room) + " bytes"));
  CHECK_FALSE(llvm::sys::fs::exists(Cache.entryPath(Keys[1])));
  CHECK(Cache.lookup(Keys[2]).Entry.hasValue());
  CHECK(Cache.lookup(Keys[3]).Entry.hasValue());
}

TEST_CASE("MHCJIT_CACHE_MAX_SIZE prunes the least recently used entries after a publish") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache");
  REQUIRE(runTool(prewarmArgs(Dir, "168,176,184"), Scratch.path()).ExitCode == 0);
  DiskCache Cache(Dir);
  int64_t Old = std::time(nullptr) - 1000;
  uint64_t Three = 0;
  for (int64_t C : {168, 176, 184}) {
    setTimes(Cache.entryPath(keyOf(forwardSpec(C))) + "/last-used", Old + C, Old + C);
    for (const StoredEntry &E : storedOf(Cache))
      if (E.Key == keyOf(forwardSpec(C)))
        Three += E.Bytes;
  }
  RunSettings Limited;
  Limited.Env = {"MHCJIT_CACHE_MAX_SIZE=" + std::to_string(Three + 1000)}; // about 3 entries
  ToolRun R = runTool(prewarmArgs(Dir, "192,200"), Scratch.path(), Limited);
  CAPTURE_OUTPUT(R);
  CHECK(R.ExitCode == 0);
  CHECK(contains(R.Output, "2 kernels, 2 compiled"));
  uint64_t Total = 0;
  for (const StoredEntry &E : storedOf(Cache))
    Total += E.Bytes;
  CHECK(Total <= Three + 1000);
  CHECK(Cache.lookup(keyOf(forwardSpec(192))).Entry.hasValue());
  CHECK(Cache.lookup(keyOf(forwardSpec(200))).Entry.hasValue());
  CHECK_FALSE(llvm::sys::fs::exists(Cache.entryPath(keyOf(forwardSpec(168))))); // the oldest
  CHECK(temporariesOf(Dir).empty());
}

TEST_CASE("cache stats prints the disk totals of the cache and its read-only layers and this process's counters") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("cache"), Layer = Scratch.sub("layer");
  REQUIRE(runTool(prewarmArgs(Dir, "208,216"), Scratch.path()).ExitCode == 0);
  REQUIRE(runTool(prewarmArgs(Layer, "224"), Scratch.path()).ExitCode == 0);
  uint64_t Bytes = 0;
  for (const StoredEntry &E : storedOf(DiskCache(Dir)))
    Bytes += E.Bytes;
  RunSettings Settings;
  Settings.Env = {"MHCJIT_CACHE_PATH=" + Layer, "MHCJIT_CACHE_MAX_SIZE=1G"};
  ToolRun R = runTool({"cache", "stats", "--cache-dir", Dir}, Scratch.path(), Settings);
  CAPTURE_OUTPUT(R);
  CHECK(R.ExitCode == 0);
  CHECK(contains(R.Output, "cache " + Dir + ": 2 entries, " + std::to_string(Bytes) + " bytes"));
  CHECK(contains(R.Output, "read-only " + Layer + ": 1 entries"));
  CHECK(contains(R.Output, "size limit (MHCJIT_CACHE_MAX_SIZE): 1073741824 bytes"));
  CHECK(contains(R.Output, "this process: 0 memory hits, 0 disk hits, 0 compiles"));
}

// ---- keys ----

TEST_CASE("two installs in different directories and two processes give the same key for a spec") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  std::vector<std::string> Outputs;
  for (const char *Install : {"a/bin", "b/opt/mhcjit/bin"}) {
    const std::string Tool = Scratch.sub(Install) + "/mhc-jit";
    REQUIRE(!llvm::sys::fs::create_directories(Scratch.sub(Install)));
    REQUIRE(!llvm::sys::fs::copy_file(MHCJIT_TOOL_PATH, Tool));
    REQUIRE(::chmod(Tool.c_str(), 0755) == 0);
    RunSettings Settings;
    Settings.Tool = Tool;
    ToolRun R = runTool({"inspect", "--op", "aggregate", "--dir", "bwd", "--n", "4", "--C", "7168",
                         "--show", "key"},
                        Scratch.sub("cache"), Settings);
    CAPTURE_OUTPUT(R);
    REQUIRE(R.ExitCode == 0);
    Outputs.push_back(R.Output);
  }
  CHECK(Outputs[0] == Outputs[1]); // key, record and entry path alike
  MixConfig Config;
  Config.N = 4;
  Config.C = 7168;
  auto Spec = specFor(Config, Op::Aggregate, Direction::Backward);
  REQUIRE(static_cast<bool>(Spec));
  CHECK(contains(Outputs[0], "key:   " + keyOf(*Spec) + "\n")); // and this process's key
  CHECK_FALSE(contains(Outputs[0], Scratch.path() + "/a")); // no install path in the record
}
