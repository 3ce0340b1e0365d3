// mhcjit runtime: from a KernelSpec to a cache entry (memory, disk, NVRTC) and to a CUfunction.
// Thread-safe; one kernel is compiled once per process however many threads ask for it.
#pragma once

#include "mhcjit/CacheEntry.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/RuntimeOptions.h"

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <memory>

namespace mhcjit {

/// Where buildKernel() found a kernel.
enum class KernelOrigin { Memory, Disk, Compiled };
llvm::StringRef originName(KernelOrigin O);

struct BuiltKernel {
  std::shared_ptr<const CacheEntry> Entry;
  KernelOrigin Origin = KernelOrigin::Compiled;
};

/// The generated kernel and the key record of Spec for Arch (no compilation).
struct KeyedKernel {
  GeneratedKernel Kernel;
  CacheKeyRecord Record;
  std::string Key;
};
llvm::Expected<KeyedKernel> keyKernel(const KernelSpec &Spec, llvm::StringRef Arch);

/// The cache entry of Spec for Arch: from this process's memory, else the read-only caches
/// (Options.ReadOnlyCacheDirs, in order), else the writable cache, else NVRTC. A compile runs
/// under a node-local per-key lock (bounded wait, then compile anyway), re-checks the writable
/// cache once locked, and publishes there; a failed publish, or a cache refused by
/// DiskCache::checkTrusted(), warns once and keeps the kernel in memory. With Options.NoJit a
/// miss is an Errc::NoJit error naming the searched directories and the prewarm command.
llvm::Expected<BuiltKernel> buildKernel(const KernelSpec &Spec, llvm::StringRef Arch,
                                        const RuntimeOptions &Options);

/// A kernel ready to launch in the current context.
struct LoadedKernel {
  CUfunction Function = nullptr;
  int SmCount = 0;     ///< multiprocessors of the context's device, for grid sizing
  int BlocksPerSm = 0; ///< blocks of Spec.Tile.Threads threads resident per multiprocessor
  int SharedBytes = 0; ///< dynamic shared memory of every launch (dynamicSharedBytes())
  /// The device runs programmatic dependent launches (compute capability 9.0 and later).
  bool DependentLaunch = false;
  std::shared_ptr<const CacheEntry> Entry;
};

/// The CUfunction of Spec in the current context (device 0's primary context when none is
/// current), built for that device's arch (or MHCJIT_ARCH). Cached per context.
llvm::Expected<LoadedKernel> loadKernel(const KernelSpec &Spec);

/// The arch mhcjit builds for in the current context.
llvm::Expected<std::string> currentDeviceArch();

/// Counters of this process (for `mhc-jit cache stats` and tests).
struct ProviderStats {
  uint64_t MemoryHits = 0, DiskHits = 0, Compiles = 0, Loads = 0;
  uint64_t LockWaits = 0;    ///< compiles that waited for another process's lock
  uint64_t LockTimeouts = 0; ///< of those, the waits that gave up and compiled anyway
};
ProviderStats providerStats();

} // namespace mhcjit
