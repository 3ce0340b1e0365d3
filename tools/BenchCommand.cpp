// mhc-jit bench: op timings against the copy bandwidth (OpBench.cpp), or with --jit what the JIT
// pipeline costs: a cold compile, a warm disk load, an in-memory hit, one launch call's host time.
#include "SpecOptions.h"

#include "mhcjit/DiskCache.h"
#include "mhcjit/Driver.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/mhcjit.hpp"

#include "DeviceBuffer.h"
#include "OpBench.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include "mhc_args.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

cl::opt<bool> JitOpt("jit",
                     cl::desc("Measure the JIT pipeline (compile, disk load, memory hit, launch)"),
                     cl::sub(BenchCommand));
cl::list<std::string> BenchOpsOpt("op", cl::desc("Ops to time (default: all)"), cl::CommaSeparated,
                                  cl::sub(BenchCommand));
cl::list<std::string> ConfigOpt("config", cl::desc("B,T,C (repeatable; default: the six standard configs)"),
                                cl::sub(BenchCommand));
cl::opt<std::string> CsvOpt("csv", cl::desc("Also write the table as CSV to this file"), cl::sub(BenchCommand));
cl::opt<int> BenchNOpt("n", cl::desc("Streams (default 4)"), cl::init(4), cl::sub(BenchCommand));
cl::opt<std::string> BenchDTypeOpt("dtype", cl::desc("Stream dtype (default bf16)"), cl::init("bf16"),
                                   cl::sub(BenchCommand));
cl::opt<std::string> BenchContractOpt("contract", cl::desc("Contract (default te)"), cl::init("te"),
                                      cl::sub(BenchCommand));
cl::opt<std::string> BenchPrecisionOpt("precision", cl::desc("Projection precision (default tf32)"),
                                       cl::init("tf32"), cl::sub(BenchCommand));

using Clock = std::chrono::steady_clock;
double micros(Clock::time_point A, Clock::time_point B) {
  return std::chrono::duration<double, std::micro>(B - A).count();
}
double median(std::vector<double> V) {
  std::sort(V.begin(), V.end());
  return V.empty() ? 0 : V[V.size() / 2];
}

int fail(llvm::Error E) {
  llvm::errs() << "mhc-jit bench: " << llvm::toString(std::move(E)) << "\n";
  return 1;
}

int benchJit() {
  if (!gpuAvailable()) {
    llvm::errs() << "mhc-jit bench: needs a GPU (no CUDA driver or device here)\n";
    return 1;
  }
  auto Arch = currentDeviceArch();
  if (!Arch)
    return fail(Arch.takeError());
  llvm::SmallString<128> Root;
  if (std::error_code EC = llvm::sys::fs::createUniqueDirectory("mhcjit-bench", Root))
    return fail(llvm::createStringError(EC, "cannot create a temporary cache directory"));
  RuntimeOptions Options = runtimeOptions();
  Options.CacheDir = Root.str().str();
  Options.DiskCache = true;
  Options.NoJit = false;

  // Distinct specs (C differs), so each cold build really runs NVRTC.
  std::vector<KernelSpec> Specs;
  for (int64_t C : {1024, 2048, 2560, 4096, 6656, 7168, 8192, 16384}) {
    MixConfig Config;
    Config.C = C;
    Specs.push_back(*specFor(Config, Op::Aggregate, Direction::Forward));
  }
  std::vector<double> Cold, Warm;
  for (const KernelSpec &S : Specs) {
    auto T0 = Clock::now();
    auto Built = buildKernel(S, *Arch, Options);
    auto T1 = Clock::now();
    if (!Built)
      return fail(Built.takeError());
    Cold.push_back(micros(T0, T1));
  }
  // Warm load, as a new process does it: key, read and validate the entry, load the module.
  const DriverApi &Api = *driverApi();
  DiskCache Cache(Options.CacheDir);
  for (const KernelSpec &S : Specs) {
    auto T0 = Clock::now();
    auto Keyed = keyKernel(S, *Arch);
    if (!Keyed)
      return fail(Keyed.takeError());
    CacheLookup Found = Cache.lookup(Keyed->Key);
    if (!Found.Entry)
      return fail(llvm::createStringError(llvm::inconvertibleErrorCode(),
                                          "entry missing: " + Found.Rejected));
    CUmodule Module;
    CUfunction Function;
    if (llvm::Error E =
            checkCuda(Api.cuModuleLoadData(&Module, Found.Entry->Cubin.data()), "cuModuleLoadData"))
      return fail(std::move(E));
    if (llvm::Error E =
            checkCuda(Api.cuModuleGetFunction(&Function, Module, Found.Entry->LoweredName.c_str()),
                      "cuModuleGetFunction"))
      return fail(std::move(E));
    Warm.push_back(micros(T0, Clock::now()));
    Api.cuModuleUnload(Module);
  }
  // In-memory hit: the lookup every launch does once the kernel is loaded in this context.
  const KernelSpec &Hot = Specs.back();
  if (auto L = loadKernel(Hot); !L)
    return fail(L.takeError());
  std::vector<double> Hits;
  for (int Sample = 0; Sample < 21; ++Sample) {
    const int Calls = 10000;
    auto T0 = Clock::now();
    for (int I = 0; I < Calls; ++I) {
      auto L = loadKernel(Hot);
      if (!L)
        return fail(L.takeError());
    }
    Hits.push_back(micros(T0, Clock::now()) / Calls);
  }
  // Host time of one aggregateForward call (M = 1) against a bare cuLaunchKernel of the same
  // kernel; batches end with a synchronize that is not timed, so the queue never fills.
  MixConfig Config;
  Config.C = Hot.C;
  auto X = DeviceBuffer::allocate(4 * Hot.C * 2);
  auto Pre = DeviceBuffer::allocate(16);
  auto Y = DeviceBuffer::allocate(Hot.C * 2);
  if (!X || !Pre || !Y)
    return fail(llvm::joinErrors(llvm::joinErrors(X.takeError(), Pre.takeError()), Y.takeError()));
  AggregateForwardArgs Args{1, X->get(), Pre->getFloat(), Y->get()};
  auto Loaded = loadKernel(Hot);
  if (!Loaded)
    return fail(Loaded.takeError());
  mhc::AggregateFwdArgs Raw{X->get(), Pre->getFloat(), Y->get(), 1};
  std::vector<double> ApiCall, BareLaunch;
  for (int Sample = 0; Sample < 21; ++Sample) {
    const int Calls = 200;
    auto T0 = Clock::now();
    for (int I = 0; I < Calls; ++I)
      if (llvm::Error E = aggregateForward(Config, Args, nullptr))
        return fail(std::move(E));
    ApiCall.push_back(micros(T0, Clock::now()) / Calls);
    Api.cuCtxSynchronize();
    T0 = Clock::now();
    for (int I = 0; I < Calls; ++I)
      if (llvm::Error E = launchKernel(*Loaded, 1, Hot.Tile.Threads, &Raw, nullptr))
        return fail(std::move(E));
    BareLaunch.push_back(micros(T0, Clock::now()) / Calls);
    Api.cuCtxSynchronize();
  }
  llvm::sys::fs::remove_directories(Root);
  llvm::outs()
      << "JIT pipeline, aggregate fwd n=4 bf16 (" << Specs.size()
      << " kernels, C = 1024..16384), arch " << *Arch << "\n"
      << llvm::format(
             "  cold compile (NVRTC + publish to disk), median:  %10.1f us  (min %.1f, max %.1f)\n",
             median(Cold), *std::min_element(Cold.begin(), Cold.end()),
             *std::max_element(Cold.begin(), Cold.end()))
      << llvm::format("  warm load from disk (key, read+verify, cuModuleLoadData): %.1f us\n",
                      median(Warm))
      << llvm::format("  in-memory hit (loadKernel of a loaded kernel):   %10.3f us\n",
                      median(Hits))
      << llvm::format("  host time of one aggregateForward call:          %10.3f us\n",
                      median(ApiCall))
      << llvm::format("  host time of a bare cuLaunchKernel (same kernel): %9.3f us\n",
                      median(BareLaunch));
  return 0;
}

int benchOpsCommand() {
  if (!gpuAvailable()) {
    llvm::errs() << "mhc-jit bench: needs a GPU (no CUDA driver or device here)\n";
    return 1;
  }
  auto Bad = [](const llvm::Twine &What) {
    llvm::errs() << "mhc-jit bench: " << What << "\n";
    return 1;
  };
  MixConfig Base;
  Base.N = BenchNOpt;
  auto T = parseDType(BenchDTypeOpt);
  auto K = parseContract(BenchContractOpt);
  auto P = parsePrecision(BenchPrecisionOpt);
  if (!T || !K || !P)
    return Bad("bad --dtype, --contract or --precision");
  Base.StreamType = *T;
  Base.Contract = contractPreset(*K);
  Base.Prec = *P;
  std::vector<Op> Ops;
  for (const std::string &Name : BenchOpsOpt) {
    auto O = parseOp(Name);
    if (!O)
      return Bad("unknown op '" + Name + "'");
    Ops.push_back(*O);
  }
  if (Ops.empty())
    Ops.assign(allOps().begin(), allOps().end());
  std::vector<BenchShape> Shapes;
  for (const std::string &Text : ConfigOpt) {
    llvm::SmallVector<llvm::StringRef, 3> Parts;
    llvm::StringRef(Text).split(Parts, ',');
    BenchShape S{0, 0, 0};
    if (Parts.size() != 3 || Parts[0].getAsInteger(10, S.B) || Parts[1].getAsInteger(10, S.T) ||
        Parts[2].getAsInteger(10, S.C) || S.B < 1 || S.T < 1 || S.C < 1)
      return Bad("--config takes B,T,C with positive integers, got '" + Text + "'");
    Shapes.push_back(S);
  }
  if (Shapes.empty())
    Shapes = {{4, 8192, 7168}, {4, 8192, 4096}, {1, 8192, 16384},
              {8, 2048, 2560}, {3, 8192, 2048}, {1, 4096, 6656}};
  auto Copy = measureCopyBandwidth();
  if (!Copy)
    return fail(Copy.takeError());
  auto Rows = benchOps(Shapes, Ops, Base, *Copy);
  if (!Rows)
    return fail(Rows.takeError());
  llvm::outs() << llvm::format("device-to-device copy: %.0f GB/s (read + write); n=%d %s %s %s\n",
                               *Copy / 1e9, Base.N, dtypeName(Base.StreamType).data(),
                               contractName(Base.Contract.Kind).data(), precisionName(Base.Prec).data())
               << "| B,T,C | op | dir | time (us) | GB/s | % of SOL |\n|---|---|---|---|---|---|\n";
  std::string Csv = "B,T,C,op,dir,time_us,bytes,gbps,sol_percent\n";
  for (const BenchRow &R : *Rows) {
    llvm::outs() << llvm::format("| %lld,%lld,%lld | %s | %s | %.1f | %.0f | %.1f |\n",
                                 (long long)R.Shape.B, (long long)R.Shape.T, (long long)R.Shape.C,
                                 opName(R.Operation).data(), directionName(R.Dir).data(),
                                 R.Milliseconds * 1e3, R.GBps, R.SolPercent);
    llvm::raw_string_ostream(Csv) << llvm::format(
        "%lld,%lld,%lld,%s,%s,%.1f,%.0f,%.1f,%.1f\n", (long long)R.Shape.B, (long long)R.Shape.T,
        (long long)R.Shape.C, opName(R.Operation).data(), directionName(R.Dir).data(),
        R.Milliseconds * 1e3, R.Bytes, R.GBps, R.SolPercent);
  }
  // the whole sublayer at each shape where every one of its op directions was timed; the header
  // names its ops, since tables of older runs summed scale and sinkhorn instead of the fused op
  std::vector<SublayerTotal> Totals = sublayerTotals(*Rows, *Copy);
  if (!Totals.empty()) {
    std::string Names;
    for (Op O : sublayerOps())
      Names += (Names.empty() ? "" : ", ") + opName(O).str();
    llvm::outs() << "\n| B,T,C | sublayer (" << Names
                 << ") fwd + bwd (ms) | SOL (ms) | % of SOL |\n|---|---|---|---|\n";
    for (const SublayerTotal &T : Totals)
      llvm::outs() << llvm::format("| %lld,%lld,%lld | %.3f | %.3f | %.1f |\n", (long long)T.Shape.B,
                                   (long long)T.Shape.T, (long long)T.Shape.C, T.Milliseconds,
                                   T.Bytes / *Copy * 1e3, T.SolPercent);
  }
  if (!CsvOpt.empty()) {
    std::error_code EC;
    llvm::raw_fd_ostream Out(CsvOpt, EC);
    if (EC)
      return Bad("cannot write " + CsvOpt + ": " + EC.message());
    Out << Csv;
    Out.close();
    if (Out.has_error()) {
      Out.clear_error();
      return Bad("cannot write " + CsvOpt);
    }
  }
  return 0;
}

} // namespace

int runBench() {
  applyCacheDirOption();
  if (JitOpt)
    return benchJit();
  return benchOpsCommand();
}

} // namespace mhcjit
