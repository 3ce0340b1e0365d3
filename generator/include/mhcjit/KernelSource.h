// mhcjit generator: a KernelSpec rendered as a tiny CUDA translation unit for NVRTC.
// Pure: no CUDA calls, no I/O. The templates themselves arrive as embedded headers.
#pragma once

#include "mhcjit/KernelSpec.h"

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mhcjit {

/// What NVRTC needs to build one kernel of a spec.
struct GeneratedKernel {
  std::string FileName;       ///< the program name NVRTC reports errors against
  std::string Source;         ///< the translation unit: a banner and an #include
  std::string NameExpression; ///< the template instantiation, e.g. mhc::aggregate_fwd<4, ...>
  std::vector<std::string> Options; ///< NVRTC options, the target arch excluded
};

/// Renders the spec; fails with validateSpec()'s message on a bad spec.
llvm::Expected<GeneratedKernel> generateKernel(const KernelSpec &Spec);

/// Bytes of dynamic shared memory the spec's kernel is launched with: project forward's ring of
/// x, phi and gamma steps (templates/mhc_args.h, project_fwd_shared_bytes), project backward's
/// pipelines of x and dH steps on tensor cores (project_bwd_shared_bytes), 0 for every other
/// kernel.
int dynamicSharedBytes(const KernelSpec &Spec);

} // namespace mhcjit
