// mhcjit runtime: NVRTC compilation of a generated kernel to a cubin (or PTX), no GPU needed.
#pragma once

#include "mhcjit/CacheEntry.h"
#include "mhcjit/KernelSource.h"

#include "llvm/Support/Error.h"

#include <string>

namespace mhcjit {

/// The result of one NVRTC compilation.
struct CompileOutput {
  std::string Binary;      ///< cubin bytes (or PTX text from compilePtx)
  std::string LoweredName; ///< mangled name of the kernel
  std::string Log;         ///< NVRTC's log with the ptxas report
  KernelResources Resources;
  double Seconds = 0;
};

/// Compiles Kernel for Arch ("sm_90a") into a cubin. On failure the error holds the NVRTC log
/// and a line-numbered excerpt of the source around the first reported error.
llvm::Expected<CompileOutput> compileCubin(const GeneratedKernel &Kernel, llvm::StringRef Arch);

/// Compiles Kernel for the virtual arch of Arch ("compute_90a") and returns PTX text.
llvm::Expected<CompileOutput> compilePtx(const GeneratedKernel &Kernel, llvm::StringRef Arch);

/// Reads registers, spills, shared memory, stack and constant bytes from a ptxas report.
KernelResources parsePtxasReport(llvm::StringRef Log);

/// The excerpt part of a compile error: for the first "file(line): error" in Log, the lines
/// around it from Kernel's source or from the embedded template it names, numbered.
std::string sourceExcerpt(llvm::StringRef Log, const GeneratedKernel &Kernel);

} // namespace mhcjit
