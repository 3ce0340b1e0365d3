// mhc-jit inspect: the generated source, PTX, ptxas resources or cache key of one kernel.
#include "SpecOptions.h"

#include "mhcjit/Compiler.h"
#include "mhcjit/DiskCache.h"
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/Arch.h"
#include "mhcjit/Driver.h"
#include "mhcjit/TuningDb.h"

#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

enum class Show { Source, Ptx, Resources, Key, Config };

cl::opt<Show> ShowOpt("show", cl::desc("What to print"), cl::init(Show::Source), cl::sub(InspectCommand),
                      cl::values(clEnumValN(Show::Source, "source", "the CUDA source NVRTC compiles (default)"),
                                 clEnumValN(Show::Ptx, "ptx", "the PTX"),
                                 clEnumValN(Show::Resources, "resources", "registers, spills, shared memory, stack"),
                                 clEnumValN(Show::Key, "key", "the cache key, its record and the entry path"),
                                 clEnumValN(Show::Config, "config", "the tile config the runtime would use, and why")));
cl::opt<int64_t> TokensOpt("M", cl::desc("--show config: tokens of the call (default: unknown, the any-M entry)"),
                           cl::init(0), cl::sub(InspectCommand));
cl::opt<bool> AccumulateOpt("accumulate-dx", cl::desc("Backward: the variant that adds dx into fp32"),
                            cl::sub(InspectCommand));
cl::opt<bool> GammaOpt("with-gamma", cl::desc("project: the variant with a norm weight"), cl::sub(InspectCommand));
cl::opt<bool> BiasOpt("with-bias", cl::desc("expand_combine: the variant with a bias"), cl::sub(InspectCommand));
cl::opt<int> StageOpt("stage", cl::desc("head backward: 0 (per token) or 1 (K slices)"), cl::init(0),
                      cl::sub(InspectCommand));

int fail(llvm::Error E) {
  llvm::errs() << "mhc-jit inspect: " << llvm::toString(std::move(E)) << "\n";
  return 1;
}

void printSource(const KeyedKernel &K) {
  llvm::outs() << "// ---- " << K.Kernel.FileName << " (the translation unit) ----\n"
               << K.Kernel.Source << "// name expression: " << K.Kernel.NameExpression << "\n// options:";
  for (const std::string &O : K.Kernel.Options)
    llvm::outs() << ' ' << O;
  llvm::outs() << " --gpu-architecture=" << K.Record.Arch << "\n";
  for (const EmbeddedTemplate &T : embeddedTemplates())
    llvm::outs() << "\n// ---- " << T.Name << " (embedded template) ----\n" << T.Text;
}

void printResources(const CacheEntry &E, const KernelSpec &S) {
  const KernelResources &R = E.Resources;
  llvm::outs() << "kernel:        " << E.LoweredName << "\n"
               << "spec:          " << specLabel(S) << "\n"
               << "arch:          " << E.Record.Arch << "\n"
               << "registers:     " << R.Registers << " per thread\n"
               << "spill stores:  " << R.SpillStoreBytes << " bytes\n"
               << "spill loads:   " << R.SpillLoadBytes << " bytes\n"
               << "shared memory: " << R.SharedBytes << " bytes per block (static) + " << dynamicSharedBytes(S)
               << " (dynamic)\n"
               << "stack frame:   " << R.StackBytes << " bytes per thread\n"
               << "constant[0]:   " << R.ConstantBytes << " bytes\n"
               << "tile config:   threads=" << S.Tile.Threads << " vec=" << S.Tile.Vec
               << " rows=" << S.Tile.Rows << " (default heuristic)\n"
               << "cubin:         " << E.Cubin.size() << " bytes\n";
}

/// The tile the runtime would choose for Base (the call's spec, no variant flags) and why. With a
/// GPU the identity is the current device's; without one only --arch and this NVRTC are known,
/// and an entry of any GPU of that arch matches.
int printConfig(const KernelSpec &Base, const std::string &Arch) {
  const RuntimeOptions &Options = runtimeOptions();
  std::string Path = tuningDbOption().empty() ? runtimeTuningDbPath(Options) : tuningDbOption();
  TuningDb Db = Path.empty() ? TuningDb() : TuningDb::load(Path, Options.Warn);
  DeviceIdentity Device;
  Device.Arch = Arch;
  Device.NvrtcVersion = nvrtcVersionString();
  std::string DeviceText = "no GPU: any GPU of " + Arch + ", NVRTC " + Device.NvrtcVersion;
  if (tuningDbOption().empty() && gpuAvailable()) {
    auto Current = currentDeviceIdentity();
    if (!Current)
      return fail(Current.takeError());
    Device = *Current;
    DeviceText = Device.GpuName + ", " + std::to_string(Device.SmCount) + " SMs, " + Device.Arch;
  }
  auto Choice = chooseTile(Db, Base, Device, TokensOpt);
  if (!Choice)
    return fail(Choice.takeError());
  const TileConfig &T = Choice->Tile;
  llvm::outs() << "spec:        " << specLabel(Base) << "\n"
               << "tile config: threads=" << T.Threads << " vec=" << T.Vec << " rows=" << T.Rows << "\n"
               << "why:         " << Choice->Reason << "\n"
               << "tuning DB:   " << (Path.empty() ? std::string("(none)") : Path) << "\n"
               << "device:      " << DeviceText << "\n";
  return 0;
}

} // namespace

int runInspect() {
  std::string Root = applyCacheDirOption();
  auto Specs = specsFromOptions(SpecSelection::Single);
  if (!Specs)
    return fail(Specs.takeError());
  KernelSpec Spec = Specs->front();
  if (ShowOpt == Show::Config)
    return printConfig(Spec, archOption());
  Spec.AccumulateDx = AccumulateOpt && Spec.Dir == Direction::Backward;
  Spec.HasGamma = GammaOpt;
  Spec.HasBias = BiasOpt;
  Spec.Stage = StageOpt;
  std::vector<ParamType> Params;
  if (llvm::Error E = paramTypesOption(/*Single=*/true, Params))
    return fail(std::move(E));
  // NOTE: resolved again now that --with-bias is known (the base spec of expand_combine has no
  // bias, so specFor() gave it fp32 parameters).
  Spec.Params = effectiveParams(Spec, Params.front());
  std::string Arch = archOption();
  auto Keyed = keyKernel(Spec, Arch);
  if (!Keyed)
    return fail(Keyed.takeError());
  switch (ShowOpt) {
  case Show::Source:
    printSource(*Keyed);
    return 0;
  case Show::Key:
    llvm::outs() << "key:   " << Keyed->Key << "\n"
                 << "entry: " << DiskCache(Root).entryPath(Keyed->Key) << "\n"
                 << "record:\n" << renderKeyRecord(Keyed->Record);
    return 0;
  case Show::Ptx: {
    auto Ptx = compilePtx(Keyed->Kernel, Arch);
    if (!Ptx)
      return fail(Ptx.takeError());
    llvm::outs() << Ptx->Binary;
    return 0;
  }
  case Show::Config:
    return 0; // handled above
  case Show::Resources: {
    auto Built = buildKernel(Spec, Arch, runtimeOptions());
    if (!Built)
      return fail(Built.takeError());
    printResources(*Built->Entry, Spec);
    return 0;
  }
  }
  return 0;
}

} // namespace mhcjit
