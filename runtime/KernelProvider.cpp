// mhcjit runtime: the in-memory tables in front of the disk cache and NVRTC.
// Entries are shared across contexts; loaded functions are kept per (context id, spec).
#include "mhcjit/KernelProvider.h"
#include "mhcjit/Arch.h"
#include "mhcjit/Compiler.h"
#include "mhcjit/DiskCache.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/EmbeddedTemplates.h"

#include "llvm/ADT/StringMap.h"

#include <atomic>
#include <ctime>
#include <mutex>
#include <unordered_map>

namespace mhcjit {

namespace {

std::atomic<uint64_t> MemoryHits{0}, DiskHits{0}, Compiles{0}, Loads{0};

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

void warnOnce(const RuntimeOptions &Options, const std::string &Message) {
  static std::once_flag Once;
  std::call_once(Once, [&] {
    if (Options.Warn)
      Options.Warn(Message);
  });
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
  DiskCache Cache(Options.CacheDir);
  if (Options.DiskCache) {
    CacheLookup Found = Cache.lookup(Keyed->Key);
    if (Found.Entry) {
      Cache.touch(Keyed->Key);
      ++DiskHits;
      Slot->Entry = std::make_shared<const CacheEntry>(std::move(*Found.Entry));
      return BuiltKernel{Slot->Entry, KernelOrigin::Disk};
    }
    if (!Found.Rejected.empty() && Options.Warn)
      Options.Warn("rebuilding the bad cache entry " + Cache.entryPath(Keyed->Key) + ": " +
                   Found.Rejected);
  }
  if (Options.NoJit)
    return makeError(Errc::NoJit, "MHCJIT_NO_JIT is set and no cache holds " + specLabel(Spec) +
                                      " for " + Arch + " (key " + Keyed->Key +
                                      "). Build it with: " + prewarmCommand(Spec, Arch));
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
  if (Options.DiskCache)
    if (llvm::Error E = Cache.publish(*Entry))
      warnOnce(Options, "the kernel cache at " + Cache.root() +
                            " is skipped; kernels stay in memory for this process: " +
                            llvm::toString(std::move(E)));
  Slot->Entry = std::move(Entry);
  return BuiltKernel{Slot->Entry, KernelOrigin::Compiled};
}

llvm::Expected<std::string> currentDeviceArch() {
  const RuntimeOptions &Options = runtimeOptions();
  if (!Options.ArchOverride.empty())
    return checkArch(Options.ArchOverride);
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  const DriverApi &Api = *driverApi();
  CUdevice Device;
  int Major = 0, Minor = 0;
  if (llvm::Error E = checkCuda(Api.cuCtxGetDevice(&Device), "cuCtxGetDevice"))
    return std::move(E);
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
  return {MemoryHits.load(), DiskHits.load(), Compiles.load(), Loads.load()};
}

} // namespace mhcjit
