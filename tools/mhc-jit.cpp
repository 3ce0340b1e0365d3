// mhc-jit: inspect, pre-warm and list mhcjit kernels, and run the demo.
// One binary; each verb is an LLVM cl subcommand (mhc-jit <verb> --help).
#include "SpecOptions.h"

#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  llvm::InitLLVM Init(argc, argv);
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &OS) { OS << "mhc-jit " << MHCJIT_VERSION << "\n"; });
  llvm::cl::ParseCommandLineOptions(argc, argv,
                                    "mhc-jit: JIT compiler and kernel cache for mHC operators\n\n"
                                    "  mhc-jit inspect --op aggregate --dir fwd --n 4 --C 7168 --dtype bf16\n"
                                    "  mhc-jit prewarm --arch sm_90a --op all --n 4 --C 4096,7168 --dtype bf16\n"
                                    "  mhc-jit cache ls\n"
                                    "  mhc-jit demo\n"
                                    "  mhc-jit bench --jit\n"
                                    "  mhc-jit tune --op aggregate --dir both --n 4 --C 7168 --dtype bf16\n");
  if (mhcjit::InspectCommand)
    return mhcjit::runInspect();
  if (mhcjit::PrewarmCommand)
    return mhcjit::runPrewarm();
  if (mhcjit::CacheCommand)
    return mhcjit::runCache();
  if (mhcjit::DemoCommand)
    return mhcjit::runDemo();
  if (mhcjit::BenchCommand)
    return mhcjit::runBench();
  if (mhcjit::TuneCommand)
    return mhcjit::runTune();
  llvm::errs() << "mhc-jit: name a subcommand: inspect, prewarm, cache, demo, bench or tune (see mhc-jit --help)\n";
  return 1;
}
