// mhc-jit prewarm: compile every named kernel into the cache in parallel, without a GPU.
// A live progress line, then a summary (compiled, already cached, failed); non-zero on failure.
#include "SpecOptions.h"

#include "mhcjit/Candidates.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/TuningDb.h"
#include "mhcjit/mhcjit.hpp"

#include "llvm/Support/Format.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <unistd.h>

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

cl::opt<unsigned> JobsOpt("j", cl::desc("Parallel compilations (default: all cores)"), cl::init(0),
                          cl::sub(PrewarmCommand));

struct Progress {
  std::mutex Lock;
  size_t Total = 0, Done = 0, Compiled = 0, Cached = 0, Failed = 0;
  bool Live = llvm::sys::Process::StandardErrIsDisplayed();

  void finished(const KernelSpec &Spec, llvm::Expected<BuiltKernel> &Result) {
    std::lock_guard<std::mutex> Guard(Lock);
    ++Done;
    // the whole report in one write, so a warning from a compile thread never splits a line
    std::string Text;
    llvm::raw_string_ostream OS(Text);
    if (!Result) {
      ++Failed;
      OS << (Live ? "\r\033[K" : "") << "failed: " << specLabel(Spec) << "\n"
         << llvm::toString(Result.takeError()) << "\n";
    } else if (Result->Origin == KernelOrigin::Compiled) {
      ++Compiled;
    } else {
      ++Cached;
    }
    if (Live)
      OS << "\r\033[K[" << Done << "/" << Total << "] compiled " << Compiled << ", already cached " << Cached
         << ", failed " << Failed;
    else if (Result)
      OS << "[" << Done << "/" << Total << "] "
         << (Result->Origin == KernelOrigin::Compiled ? "compiled " : "cached   ") << specLabel(Spec) << "\n";
    llvm::errs() << OS.str();
    llvm::errs().flush();
  }
};

/// Every kernel the winners of the tuning database at Path for Arch launch (kernelVariants of
/// each winner, for each --params value), deduplicated, in the database's key order.
llvm::Expected<std::vector<KernelSpec>> specsFromTuningDb(const std::string &Path, llvm::StringRef Arch) {
  std::vector<ParamType> Params;
  if (llvm::Error E = paramTypesOption(/*Single=*/false, Params))
    return std::move(E);
  auto Db = TuningDb::loadStrict(Path);
  if (!Db)
    return Db.takeError();
  std::vector<KernelSpec> Specs;
  for (const auto &KV : Db->entries()) {
    if (KV.first.Arch != Arch)
      continue;
    auto Base = specFromUntiledRecord(KV.first.Spec, KV.second.Winner);
    if (!Base)
      return Base.takeError();
    for (ParamType P : Params)
      for (const KernelSpec &K : kernelVariants(*Base, P))
        if (std::find(Specs.begin(), Specs.end(), K) == Specs.end())
          Specs.push_back(K);
  }
  return Specs;
}

} // namespace

int runPrewarm() {
  std::string Root = applyCacheDirOption();
  std::string Arch = archOption();
  auto Specs = tuningDbOption().empty() ? specsFromOptions(SpecSelection::Kernels)
                                        : specsFromTuningDb(tuningDbOption(), Arch);
  if (!Specs) {
    llvm::errs() << "mhc-jit prewarm: " << llvm::toString(Specs.takeError()) << "\n";
    return 1;
  }
  RuntimeOptions Options = runtimeOptions();
  Options.NoJit = false; // pre-warming is compiling
  // NOTE: each process starts at its own place in the list, so that 8 ranks of a node
  // pre-warming the same set compile different kernels side by side instead of queuing on the
  // per-key lock of the same first kernel. The place is a hash of the pid: with pid % size,
  // ranks started together (consecutive pids) would start on neighbouring kernels and soon
  // queue behind the one that started last. The set, and so the result, is the same.
  if (!Specs->empty()) {
    // Example: pids 4000 and 4001 start at kernels 76 and 46 of 100.
    uint64_t Spread = (static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull) >> 32;
    std::rotate(Specs->begin(), Specs->begin() + Spread % Specs->size(), Specs->end());
  }
  Progress P;
  P.Total = Specs->size();
  auto Start = std::chrono::steady_clock::now();
  {
    llvm::ThreadPool Pool(JobsOpt ? llvm::hardware_concurrency(JobsOpt) : llvm::hardware_concurrency());
    for (const KernelSpec &Spec : *Specs)
      Pool.async([&, Spec] {
        auto Result = buildKernel(Spec, Arch, Options);
        P.finished(Spec, Result);
      });
    Pool.wait();
  }
  double Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  if (P.Live)
    llvm::errs() << "\n";
  llvm::outs() << "prewarm " << Arch << " into " << Root << ": " << P.Total << " kernels, "
               << P.Compiled << " compiled, " << P.Cached << " already cached, " << P.Failed
               << " failed (" << llvm::format("%.1f", Seconds) << " s)\n";
  return P.Failed ? 1 : 0;
}

} // namespace mhcjit
