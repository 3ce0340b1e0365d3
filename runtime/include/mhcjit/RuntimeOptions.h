// mhcjit runtime: process-wide options, read once from the environment.
#pragma once

#include "llvm/ADT/StringRef.h"

#include <functional>
#include <string>

namespace mhcjit {

/// Settings that change how kernels are found and built. Environment variables:
///   MHCJIT_CACHE_DIR  writable cache root (default $XDG_CACHE_HOME/mhcjit, else ~/.cache/mhcjit)
///   MHCJIT_DISABLE_DISK_CACHE=1  keep kernels in memory only
///   MHCJIT_NO_JIT=1   a kernel missing from the cache is an error instead of a compilation
///   MHCJIT_ARCH       build for this arch instead of the current device's (e.g. sm_90)
struct RuntimeOptions {
  std::string CacheDir;
  bool DiskCache = true;
  bool NoJit = false;
  std::string ArchOverride;
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
