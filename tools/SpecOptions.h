// mhc-jit: the subcommands and the options they share (spec fields, arch, cache directory).
#pragma once

#include "mhcjit/KernelSpec.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mhcjit {

extern llvm::cl::SubCommand InspectCommand;
extern llvm::cl::SubCommand PrewarmCommand;
extern llvm::cl::SubCommand CacheCommand;
extern llvm::cl::SubCommand DemoCommand;
extern llvm::cl::SubCommand BenchCommand;
extern llvm::cl::SubCommand TuneCommand;

/// What specsFromOptions() gives.
enum class SpecSelection {
  Kernels,  ///< every kernel each op call may launch (prewarm)
  Single,   ///< one op call's base spec: each option holds at most one value (inspect)
  TuneBases ///< base specs with one value per option except --dir (tune: fwd, bwd or both)
};

/// The kernels the spec options name: every combination of --op, --dir, --n, --C, --dtype,
/// --layout, --contract, --precision and --params, each with the runtime's tile config. --dir also
/// takes "both" (fwd and bwd). Kernels: every kernel each call may launch (kernelsForCall:
/// optional inputs, dx accumulation, helper kernels), deduplicated. Single and TuneBases: the op
/// call's base spec (specFor), one per direction.
llvm::Expected<std::vector<KernelSpec>> specsFromOptions(SpecSelection Selection);

/// The values of --params (fp32 when absent), appended to Out; with Single at most one.
/// The spec option loops apply each through effectiveParams (where it has no effect: fp32).
llvm::Error paramTypesOption(bool Single, std::vector<ParamType> &Out);

/// --arch, or sm_90a when absent.
std::string archOption();

/// Applies --cache-dir (when given) to the runtime's options; returns the cache root in use.
std::string applyCacheDirOption();

/// --tuning-db, or "" when absent (inspect, prewarm, tune).
std::string tuningDbOption();

/// Prints the cache listing of Root (mhc-jit cache ls); 0 on success.
int listCacheEntries(const std::string &Root);

int runInspect();
int runPrewarm();
int runCache();
int runDemo();
int runBench();
int runTune();

} // namespace mhcjit
