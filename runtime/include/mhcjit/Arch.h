// mhcjit runtime: GPU architecture names ("sm_90a") checked against what this NVRTC supports.
#pragma once

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mhcjit {

/// Compute capabilities this NVRTC can target, e.g. {75, 80, 86, ..., 90, 100, 120}.
std::vector<int> nvrtcSupportedArchs();

/// "13.0": the NVRTC version, part of every cache key.
std::string nvrtcVersionString();

/// Checks "sm_<cc>[a|f]" against nvrtcSupportedArchs(); returns it unchanged when valid.
/// The error lists the supported names.
llvm::Expected<std::string> checkArch(llvm::StringRef Arch);

/// The arch mhcjit builds for a device of compute capability Major.Minor: the arch-specific
/// variant where one exists (9.0 -> sm_90a, 10.0 -> sm_100a), else sm_<Major><Minor>.
std::string archForComputeCapability(int Major, int Minor);

/// "compute_90a" for "sm_90a": the virtual arch NVRTC takes when asked for PTX.
std::string virtualArch(llvm::StringRef Arch);

} // namespace mhcjit
