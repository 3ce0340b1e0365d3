// mhcjit tests: NVRTC compilations of (spec, arch) jobs on both cores of the CI machine.
#pragma once

#include "mhcjit/Compiler.h"
#include "mhcjit/KernelSource.h"

#include "TestSupport.h"

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mhcjit {
namespace test {

/// One compilation to run and its outcome.
struct CompileJob {
  KernelSpec Spec;
  std::string Arch;
  std::string NameExpression;
  bool Ok = false;
  std::string Error;
  CompileOutput Output;
};

inline CompileJob job(const KernelSpec &Spec, const std::string &Arch) {
  CompileJob J;
  J.Spec = Spec;
  J.Arch = Arch;
  return J;
}

/// Compiles every job on two threads (NVRTC programs are independent), then returns them.
/// Assertions happen afterwards on the test's thread.
inline void compileAll(std::vector<CompileJob> &Jobs) {
  std::atomic<size_t> Next{0};
  auto Worker = [&] {
    for (size_t I = Next++; I < Jobs.size(); I = Next++) {
      CompileJob &J = Jobs[I];
      auto Kernel = generateKernel(J.Spec);
      if (!Kernel) {
        J.Error = "generateKernel: " + llvm::toString(Kernel.takeError());
        continue;
      }
      J.NameExpression = Kernel->NameExpression;
      auto Out = compileCubin(*Kernel, J.Arch);
      if (!Out) {
        J.Error = llvm::toString(Out.takeError());
        continue;
      }
      J.Ok = true;
      J.Output = std::move(*Out);
    }
  };
  std::thread Helper(Worker);
  Worker();
  Helper.join();
}

/// compileAll, then one message per job: empty where the job gave an ELF cubin with no symbol of
/// internal linkage, else what went wrong, naming the spec and the arch.
inline std::vector<std::string> compileFailures(std::vector<CompileJob> &Jobs) {
  compileAll(Jobs);
  std::vector<std::string> Failures(Jobs.size());
  for (size_t I = 0; I < Jobs.size(); ++I) {
    const CompileJob &J = Jobs[I];
    if (!J.Ok)
      Failures[I] = specLabel(J.Spec) + " for " + J.Arch + ": " + J.Error;
    else if (J.Output.Binary.compare(0, 4, "\x7f" "ELF") != 0)
      Failures[I] = specLabel(J.Spec) + ": not an ELF cubin";
    else if (J.Output.Binary.find("_INTERNAL_") != std::string::npos)
      // NVRTC puts an id of the compiling process or thread (seen: the PID) into the name of a
      // global of internal linkage (a namespace-scope constexpr that is not inline), so the same
      // kernel's cubin would differ from one compile to the next
      Failures[I] = specLabel(J.Spec) + " for " + J.Arch + ": a symbol of internal linkage in the cubin";
  }
  return Failures;
}

} // namespace test
} // namespace mhcjit
