// mhcjit runtime: RuntimeOptions from the environment, held once per process.
// A malformed value is ignored with a warning (through Warn), never an abort.
#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/CacheMaintenance.h"
#include "mhcjit/DiskCache.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <memory>
#include <mutex>

namespace mhcjit {

namespace {

bool envFlag(const char *Name) {
  const char *V = std::getenv(Name);
  return V && *V && llvm::StringRef(V) != "0";
}

std::mutex OptionsLock;
std::unique_ptr<RuntimeOptions> Current;

} // namespace

RuntimeOptions RuntimeOptions::fromEnvironment() {
  RuntimeOptions O;
  O.Warn = [](llvm::StringRef Message) {
    // one write of the whole line under a lock: compile threads warn at the same time (two
    // prewarm threads rebuilding bad entries interleaved their lines on unbuffered stderr)
    static std::mutex WarnLock;
    const std::string Line = ("mhcjit: warning: " + Message + "\n").str();
    std::lock_guard<std::mutex> Guard(WarnLock);
    llvm::errs() << Line;
    llvm::errs().flush();
  };
  O.CacheDir = DiskCache::defaultRoot();
  O.DiskCache = !envFlag("MHCJIT_DISABLE_DISK_CACHE");
  O.NoJit = envFlag("MHCJIT_NO_JIT");
  O.SharedCache = envFlag("MHCJIT_CACHE_SHARED");
  if (const char *Path = std::getenv("MHCJIT_CACHE_PATH")) {
    // Example: "/shared/mhcjit:/opt/site/mhcjit" -> two read-only layers, in that order.
    llvm::SmallVector<llvm::StringRef, 4> Dirs;
    llvm::StringRef(Path).split(Dirs, ':', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
    for (llvm::StringRef Dir : Dirs)
      O.ReadOnlyCacheDirs.push_back(Dir.str());
  }
  if (const char *Size = std::getenv("MHCJIT_CACHE_MAX_SIZE")) {
    llvm::Expected<uint64_t> Bytes = parseByteSize(Size);
    if (Bytes)
      O.CacheMaxBytes = *Bytes;
    else
      O.Warn("MHCJIT_CACHE_MAX_SIZE is ignored: " + llvm::toString(Bytes.takeError()));
  }
  if (const char *Dir = std::getenv("MHCJIT_CACHE_LOCK_DIR"))
    O.LockDir = Dir;
  if (const char *Timeout = std::getenv("MHCJIT_CACHE_LOCK_TIMEOUT")) {
    llvm::Expected<int64_t> Seconds = parseDuration(Timeout);
    if (Seconds)
      O.LockTimeout = std::chrono::seconds(*Seconds);
    else
      O.Warn("MHCJIT_CACHE_LOCK_TIMEOUT is ignored: " + llvm::toString(Seconds.takeError()));
  }
  if (const char *Arch = std::getenv("MHCJIT_ARCH"))
    O.ArchOverride = Arch;
  if (const char *Db = std::getenv("MHCJIT_TUNING_DB"))
    O.TuningDbPath = Db;
  O.Autotune = envFlag("MHCJIT_AUTOTUNE");
  return O;
}

const RuntimeOptions &runtimeOptions() {
  std::lock_guard<std::mutex> Guard(OptionsLock);
  if (!Current)
    Current = std::make_unique<RuntimeOptions>(RuntimeOptions::fromEnvironment());
  return *Current;
}

void setRuntimeOptions(RuntimeOptions Options) {
  std::lock_guard<std::mutex> Guard(OptionsLock);
  if (!Options.Warn)
    Options.Warn = RuntimeOptions::fromEnvironment().Warn;
  Current = std::make_unique<RuntimeOptions>(std::move(Options));
}

} // namespace mhcjit
