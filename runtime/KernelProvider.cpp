// mhcjit runtime: the in-memory tables in front of the disk caches and NVRTC.
// Entries are shared across contexts; loaded functions are kept per (context id, spec).
// Disk: read-only layers, then the writable cache; a miss compiles under a node-local key lock.
#include "mhcjit/KernelProvider.h"
#include "mhcjit/Arch.h"
#include "mhcjit/CacheMaintenance.h"
#include "mhcjit/Compiler.h"
#include "mhcjit/DiskCache.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/KeyLock.h"

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <atomic>
#include <ctime>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace mhcjit {

namespace {

std::atomic<uint64_t> MemoryHits{0}, DiskHits{0}, Compiles{0}, Loads{0}, LockWaits{0},
    LockTimeouts{0};

/// One kernel key's build, shared by every thread that asks for it.
struct BuildSlot {
  std::mutex Lock;
  std::shared_ptr<const CacheEntry> Entry;
};

std::mutex EntriesLock;
llvm::StringMap<std::shared_ptr<BuildSlot>> Entries;

std::shared_ptr<BuildSlot> slotFor(llvm::StringRef Key) {
  std::lock_guard<std::mutex> Guard(EntriesLock);
  std::shared_ptr<BuildSlot> &Slot = Entries[Key];
  if (!Slot)
    Slot = std::make_shared<BuildSlot>();
  return Slot;
}

/// The command that would put Spec into a cache, for MHCJIT_NO_JIT errors.
std::string prewarmCommand(const KernelSpec &S, llvm::StringRef Arch) {
  return "mhc-jit prewarm --arch " + Arch.str() + " --op " + opName(S.Operation).str() +
         " --dir " + directionName(S.Dir).str() + " --n " + std::to_string(S.N) + " --C " +
         std::to_string(S.C) + " --dtype " + dtypeName(S.StreamType).str() + " --layout " +
         layoutName(S.StreamLayout).str() + " --contract " + contractName(S.Contract.Kind).str();
}

/// Warns once per process and Topic (e.g. one cache root's write failures), so a full disk
/// gives one line, not one per kernel.
void warnOnce(const RuntimeOptions &Options, const std::string &Topic, const std::string &Message) {
  static std::mutex Lock;
  static llvm::StringSet<> Warned;
  {
    std::lock_guard<std::mutex> Guard(Lock);
    if (!Warned.insert(Topic).second)
      return;
  }
  if (Options.Warn)
    Options.Warn(Message);
}

/// The disk caches of one build, in search order, each checked for trust first.
struct CacheLayers {
  std::vector<DiskCache> ReadOnly; ///< MHCJIT_CACHE_PATH, the trusted ones
  llvm::Optional<DiskCache> Writable;
  std::vector<std::string> Searched; ///< every directory and what became of it, for errors
};

CacheLayers openLayers(const RuntimeOptions &Options) {
  CacheLayers Layers;
  if (!Options.DiskCache) {
    Layers.Searched.push_back("none (MHCJIT_DISABLE_DISK_CACHE is set)");
    return Layers;
  }
  CacheSharing Sharing = Options.SharedCache ? CacheSharing::Shared : CacheSharing::Private;
  for (const std::string &Dir : Options.ReadOnlyCacheDirs) {
    DiskCache Cache(Dir, Sharing);
    if (llvm::Error E = Cache.checkTrusted(/*ForWriting=*/false)) {
      warnOnce(Options, "refused:" + Dir,
               "the read-only kernel cache " + Dir + " is not used: " + llvm::toString(std::move(E)));
      Layers.Searched.push_back(Dir + " (read-only, refused)");
      continue;
    }
    Layers.Searched.push_back(Dir + " (read-only)");
    Layers.ReadOnly.push_back(std::move(Cache));
  }
  if (Options.CacheDir.empty()) {
    Layers.Searched.push_back("no writable cache (no MHCJIT_CACHE_DIR, XDG_CACHE_HOME or HOME)");
    return Layers;
  }
  DiskCache Cache(Options.CacheDir, Sharing);
  if (llvm::Error E = Cache.checkTrusted(/*ForWriting=*/true)) {
    warnOnce(Options, "refused:" + Options.CacheDir,
             "the kernel cache at " + Options.CacheDir +
                 " is not used; kernels are compiled into memory for this process: " +
                 llvm::toString(std::move(E)));
    Layers.Searched.push_back(Options.CacheDir + " (refused)");
    return Layers;
  }
  Layers.Searched.push_back(Options.CacheDir);
  Layers.Writable = std::move(Cache);
  return Layers;
}

/// The entry of Key in the first layer that holds a valid one. Bad entries are warned about;
/// the writable cache's is rebuilt by the caller, a read-only layer's is skipped.
llvm::Optional<CacheEntry> lookupLayers(const CacheLayers &Layers, const std::string &Key,
                                        const RuntimeOptions &Options) {
  for (const DiskCache &Cache : Layers.ReadOnly) {
    CacheLookup Found = Cache.lookup(Key);
    if (Found.Entry)
      return std::move(Found.Entry); // NOTE: no touch(): a read-only layer is never written
    if (!Found.Rejected.empty() && Options.Warn)
      Options.Warn("skipping the bad entry " + Cache.entryPath(Key) +
                   " of a read-only cache: " + Found.Rejected);
  }
  if (!Layers.Writable)
    return llvm::None;
  CacheLookup Found = Layers.Writable->lookup(Key);
  if (Found.Entry) {
    Layers.Writable->touch(Key);
    return std::move(Found.Entry);
  }
  if (!Found.Rejected.empty() && Options.Warn)
    Options.Warn("rebuilding the bad cache entry " + Layers.Writable->entryPath(Key) + ": " +
                 Found.Rejected);
  return llvm::None;
}

/// Locks Key on this node so that one process compiles it while the others wait (bounded) and
/// then find it published. Without a usable lock directory this warns once and locks nothing.
KeyLock lockKey(const std::string &Key, const RuntimeOptions &Options) {
  std::string Dir = Options.LockDir.empty() ? KeyLock::defaultDirectory() : Options.LockDir;
  llvm::Expected<KeyLock> Lock = KeyLock::acquire(Dir, Key, Options.LockTimeout);
  if (!Lock) {
    warnOnce(Options, "lock:" + Dir,
             "kernels are compiled without the per-key lock, so processes of this node may "
             "compile the same kernel at once: " + llvm::toString(Lock.takeError()));
    return KeyLock();
  }
  if (Lock->waited())
    ++LockWaits;
  if (Lock->timedOut()) {
    ++LockTimeouts;
    warnOnce(Options, "lock-timeout",
             "gave up waiting after " + std::to_string(Options.LockTimeout.count()) +
                 " ms for another process compiling kernel " + Key +
                 "; compiling it here too (MHCJIT_CACHE_LOCK_TIMEOUT sets the wait)");
  }
  return std::move(*Lock);
}

/// The MHCJIT_NO_JIT error for a kernel no cache holds.
llvm::Error noJitError(const KernelSpec &Spec, llvm::StringRef Arch, const std::string &Key,
                       const CacheLayers &Layers) {
  std::string Searched;
  for (const std::string &Dir : Layers.Searched)
    Searched += (Searched.empty() ? "" : ", ") + Dir;
  return makeError(Errc::NoJit, "MHCJIT_NO_JIT is set and no cache holds " + specLabel(Spec) +
                                    " for " + Arch + " (key " + Key + "); searched: " +
                                    Searched + ". Build it with: " + prewarmCommand(Spec, Arch));
}

} // namespace

llvm::StringRef originName(KernelOrigin O) {
  switch (O) {
  case KernelOrigin::Memory: return "memory";
  case KernelOrigin::Disk: return "disk";
  case KernelOrigin::Compiled: return "compiled";
  }
  return "?";
}

llvm::Expected<KeyedKernel> keyKernel(const KernelSpec &Spec, llvm::StringRef Arch) {
  auto Kernel = generateKernel(Spec);
  if (!Kernel)
    return Kernel.takeError();
  auto Checked = checkArch(Arch);
  if (!Checked)
    return Checked.takeError();
  KeyedKernel K;
  K.Kernel = std::move(*Kernel);
  K.Record.GeneratorVersion = MHCJIT_VERSION;
  K.Record.TemplatesDigest = templatesDigest();
  K.Record.SpecRecord = canonicalRecord(Spec);
  K.Record.NameExpression = K.Kernel.NameExpression;
  K.Record.NvrtcVersion = nvrtcVersionString();
  K.Record.Options = K.Kernel.Options;
  K.Record.Arch = *Checked;
  K.Key = cacheKey(K.Record);
  return K;
}

llvm::Expected<BuiltKernel> buildKernel(const KernelSpec &Spec, llvm::StringRef Arch,
                                        const RuntimeOptions &Options) {
  auto Keyed = keyKernel(Spec, Arch);
  if (!Keyed)
    return Keyed.takeError();
  std::shared_ptr<BuildSlot> Slot = slotFor(Keyed->Key);
  std::lock_guard<std::mutex> Building(Slot->Lock);
  if (Slot->Entry) {
    ++MemoryHits;
    return BuiltKernel{Slot->Entry, KernelOrigin::Memory};
  }
  CacheLayers Layers = openLayers(Options);
  if (llvm::Optional<CacheEntry> Found = lookupLayers(Layers, Keyed->Key, Options)) {
    ++DiskHits;
    Slot->Entry = std::make_shared<const CacheEntry>(std::move(*Found));
    return BuiltKernel{Slot->Entry, KernelOrigin::Disk};
  }
  if (Options.NoJit)
    return noJitError(Spec, Arch, Keyed->Key, Layers);

  // NOTE: held until this function returns, i.e. until the entry is published. Ranks of one
  // node wait here for the first one's compile, then find its entry on the re-check.
  KeyLock Lock;
  if (Layers.Writable) {
    Lock = lockKey(Keyed->Key, Options);
    CacheLookup Found = Layers.Writable->lookup(Keyed->Key);
    if (Found.Entry) {
      Layers.Writable->touch(Keyed->Key);
      ++DiskHits;
      Slot->Entry = std::make_shared<const CacheEntry>(std::move(*Found.Entry));
      return BuiltKernel{Slot->Entry, KernelOrigin::Disk};
    }
  }
  auto Compiled = compileCubin(Keyed->Kernel, Arch);
  if (!Compiled)
    return Compiled.takeError();
  ++Compiles;
  auto Entry = std::make_shared<CacheEntry>();
  Entry->Key = Keyed->Key;
  Entry->Record = Keyed->Record;
  Entry->Cubin = std::move(Compiled->Binary);
  Entry->Source = Keyed->Kernel.Source;
  Entry->LoweredName = Compiled->LoweredName;
  Entry->CompileLog = Compiled->Log;
  Entry->Resources = Compiled->Resources;
  Entry->CompileSeconds = Compiled->Seconds;
  if (Layers.Writable) {
    DiskCache &Cache = *Layers.Writable;
    if (llvm::Error E = Cache.publish(*Entry)) {
      warnOnce(Options, "publish:" + Cache.root(),
               "the kernel cache at " + Cache.root() +
                   " is skipped; kernels stay in memory for this process: " +
                   llvm::toString(std::move(E)));
    } else if (Options.CacheMaxBytes) {
      // The manifest adds about the compile log and 1 KiB; the next scan measures exactly.
      uint64_t Bytes = Entry->Cubin.size() + Entry->Source.size() + Entry->CompileLog.size() + 1024;
      pruneAfterPublish(Cache, Bytes, Options.CacheMaxBytes);
    }
  }
  Slot->Entry = std::move(Entry);
  return BuiltKernel{Slot->Entry, KernelOrigin::Compiled};
}

llvm::Expected<std::string> currentDeviceArch() {
  const RuntimeOptions &Options = runtimeOptions();
  if (!Options.ArchOverride.empty())
    return checkArch(Options.ArchOverride);
  auto CurrentDevice = currentDevice();
  if (!CurrentDevice)
    return CurrentDevice.takeError();
  const CUdevice Device = *CurrentDevice;
  const DriverApi &Api = *driverApi();
  int Major = 0, Minor = 0;
  if (llvm::Error E = checkCuda(
          Api.cuDeviceGetAttribute(&Major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, Device),
          "cuDeviceGetAttribute(compute capability)"))
    return std::move(E);
  if (llvm::Error E = checkCuda(
          Api.cuDeviceGetAttribute(&Minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, Device),
          "cuDeviceGetAttribute(compute capability)"))
    return std::move(E);
  return checkArch(archForComputeCapability(Major, Minor));
}

namespace {

struct FunctionKey {
  unsigned long long ContextId;
  KernelSpec Spec;
  bool operator==(const FunctionKey &O) const { return ContextId == O.ContextId && Spec == O.Spec; }
};
struct FunctionKeyHash {
  size_t operator()(const FunctionKey &K) const { return specHash(K.Spec) ^ (K.ContextId * 0x9e3779b97f4a7c15ull); }
};

std::mutex FunctionsLock;
std::unordered_map<FunctionKey, LoadedKernel, FunctionKeyHash> Functions;

llvm::Expected<LoadedKernel> loadIntoContext(const KernelSpec &Spec, const DriverApi &Api) {
  auto Arch = currentDeviceArch();
  if (!Arch)
    return Arch.takeError();
  auto Built = buildKernel(Spec, *Arch, runtimeOptions());
  if (!Built)
    return Built.takeError();
  LoadedKernel L;
  L.Entry = Built->Entry;
  CUmodule Module;
  if (llvm::Error E = checkCuda(Api.cuModuleLoadData(&Module, L.Entry->Cubin.data()),
                                "cuModuleLoadData(" + specLabel(Spec) + ", " + *Arch + ")"))
    return std::move(E);
  if (llvm::Error E = checkCuda(Api.cuModuleGetFunction(&L.Function, Module, L.Entry->LoweredName.c_str()),
                                "cuModuleGetFunction(" + L.Entry->LoweredName + ")"))
    return std::move(E);
  CUdevice Device;
  if (llvm::Error E = checkCuda(Api.cuCtxGetDevice(&Device), "cuCtxGetDevice"))
    return std::move(E);
  if (llvm::Error E = checkCuda(Api.cuDeviceGetAttribute(&L.SmCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, Device),
                                "cuDeviceGetAttribute(multiprocessor count)"))
    return std::move(E);
  int Major = 0;
  if (llvm::Error E = checkCuda(Api.cuDeviceGetAttribute(&Major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, Device),
                                "cuDeviceGetAttribute(compute capability)"))
    return std::move(E);
  L.DependentLaunch = Major >= 9;
  L.SharedBytes = dynamicSharedBytes(Spec);
  if (L.SharedBytes > 0)
    if (llvm::Error E = checkCuda(Api.cuFuncSetAttribute(L.Function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                                         L.SharedBytes),
                                  "cuFuncSetAttribute(" + specLabel(Spec) + ", " + std::to_string(L.SharedBytes) +
                                      " bytes of dynamic shared memory)"))
      return std::move(E);
  if (Spec.Tile.Threads > 0)
    if (llvm::Error E = checkCuda(Api.cuOccupancyMaxActiveBlocksPerMultiprocessor(&L.BlocksPerSm, L.Function,
                                                                                  Spec.Tile.Threads, L.SharedBytes),
                                  "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + specLabel(Spec) + ")"))
      return std::move(E);
  ++Loads;
  return L;
}

} // namespace

llvm::Expected<LoadedKernel> loadKernel(const KernelSpec &Spec) {
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  const DriverApi &Api = *driverApi();
  FunctionKey Key{0, Spec};
  if (llvm::Error E = checkCuda(Api.cuCtxGetId(*Context, &Key.ContextId), "cuCtxGetId"))
    return std::move(E);
  {
    std::lock_guard<std::mutex> Guard(FunctionsLock);
    auto It = Functions.find(Key);
    if (It != Functions.end())
      return It->second;
  }
  // NOTE: built outside the table lock so a slow compile of one kernel does not stall others;
  // two threads racing here both load the module and the first insert wins.
  auto Loaded = loadIntoContext(Spec, Api);
  if (!Loaded)
    return Loaded.takeError();
  std::lock_guard<std::mutex> Guard(FunctionsLock);
  return Functions.emplace(Key, std::move(*Loaded)).first->second;
}

ProviderStats providerStats() {
  ProviderStats Stats;
  Stats.MemoryHits = MemoryHits.load();
  Stats.DiskHits = DiskHits.load();
  Stats.Compiles = Compiles.load();
  Stats.Loads = Loads.load();
  Stats.LockWaits = LockWaits.load();
  Stats.LockTimeouts = LockTimeouts.load();
  return Stats;
}

} // namespace mhcjit
