// mhcjit runtime: process-wide options, read once from the environment.
#pragma once

#include "llvm/ADT/StringRef.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mhcjit {

/// Settings that change how kernels are found and built. Environment variables:
///   MHCJIT_CACHE_DIR  writable cache root (default $XDG_CACHE_HOME/mhcjit, else ~/.cache/mhcjit)
///   MHCJIT_CACHE_PATH dir1:dir2:... read-only pre-warmed caches, searched first, in order
///   MHCJIT_DISABLE_DISK_CACHE=1  keep kernels in memory only
///   MHCJIT_NO_JIT=1   a kernel missing from the cache is an error instead of a compilation
///   MHCJIT_CACHE_SHARED=1  the caches are shared by a group (02770/0660, group-writable ok)
///   MHCJIT_CACHE_MAX_SIZE  e.g. 2G: prune the writable cache, least recently used first
///   MHCJIT_CACHE_LOCK_DIR  node-local directory of the per-key locks (default: KeyLock's)
///   MHCJIT_CACHE_LOCK_TIMEOUT  longest wait for another process's compile, e.g. 60s (default)
///   MHCJIT_ARCH       build for this arch instead of the current device's (e.g. sm_90)
///   MHCJIT_TUNING_DB  the tuning database file (default <CacheDir>/tuning/v1.json)
///   MHCJIT_AUTOTUNE=1 tune a spec on first use when the tuning database has no entry for it
struct RuntimeOptions {
  std::string CacheDir; ///< empty: no writable cache
  std::vector<std::string> ReadOnlyCacheDirs;
  bool DiskCache = true;
  bool NoJit = false;
  bool SharedCache = false;
  uint64_t CacheMaxBytes = 0; ///< 0: no automatic pruning
  std::string LockDir;        ///< empty: KeyLock::defaultDirectory()
  std::chrono::milliseconds LockTimeout{60000};
  std::string ArchOverride;
  /// The tuning database; empty: <CacheDir>/tuning/v1.json (none without a CacheDir).
  std::string TuningDbPath;
  /// Time every candidate tile of a launch's spec on its first use when the tuning database has
  /// no entry, store the winner there and use it (runtimeTile, autotuneOnFirstUse).
  bool Autotune = false;
  /// Receives warnings (e.g. "cache skipped: ..."); default: one line on stderr.
  std::function<void(llvm::StringRef)> Warn;

  /// The options the environment describes (read on every call; the runtime reads it once).
  static RuntimeOptions fromEnvironment();
};

/// The runtime's options: fromEnvironment() at first use, unless setRuntimeOptions() came first.
const RuntimeOptions &runtimeOptions();

/// Replaces the runtime's options (tools use it for --cache-dir). Call before the first launch.
void setRuntimeOptions(RuntimeOptions Options);

} // namespace mhcjit
