// mhcjit runtime: RuntimeOptions from the environment, held once per process.
#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/DiskCache.h"

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
  O.CacheDir = DiskCache::defaultRoot();
  O.DiskCache = !envFlag("MHCJIT_DISABLE_DISK_CACHE");
  O.NoJit = envFlag("MHCJIT_NO_JIT");
  if (const char *Arch = std::getenv("MHCJIT_ARCH"))
    O.ArchOverride = Arch;
  O.Warn = [](llvm::StringRef Message) { llvm::errs() << "mhcjit: warning: " << Message << "\n"; };
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
