// mhcjit runtime: architecture names and NVRTC's version and supported targets.
#include "mhcjit/Arch.h"
#include "mhcjit/Errors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <nvrtc.h>

namespace mhcjit {

std::vector<int> nvrtcSupportedArchs() {
  int Count = 0;
  if (nvrtcGetNumSupportedArchs(&Count) != NVRTC_SUCCESS || Count <= 0)
    return {};
  std::vector<int> Archs(static_cast<size_t>(Count));
  if (nvrtcGetSupportedArchs(Archs.data()) != NVRTC_SUCCESS)
    return {};
  return Archs;
}

std::string nvrtcVersionString() {
  int Major = 0, Minor = 0;
  if (nvrtcVersion(&Major, &Minor) != NVRTC_SUCCESS)
    return "unknown";
  return std::to_string(Major) + "." + std::to_string(Minor);
}

llvm::Expected<std::string> checkArch(llvm::StringRef Arch) {
  std::vector<int> Supported = nvrtcSupportedArchs();
  auto Listing = [&] {
    std::string L;
    for (int A : Supported)
      L += (L.empty() ? "sm_" : ", sm_") + std::to_string(A);
    return L + " (sm_90 and newer also take an 'a' suffix, sm_100 and newer an 'f' suffix)";
  };
  llvm::StringRef Rest = Arch;
  unsigned Number = 0;
  // NOTE: no leading zeros ("sm_090" is not a name NVRTC takes); 'a' exists from sm_90 on and
  // 'f' (family) from sm_100 on.
  bool Ok = Rest.consume_front("sm_") && !Rest.startswith("0") && !Rest.consumeInteger(10, Number);
  if (Ok && !Rest.empty())
    Ok = (Rest == "a" && Number >= 90) || (Rest == "f" && Number >= 100);
  if (Ok)
    Ok = llvm::is_contained(Supported, static_cast<int>(Number));
  if (!Ok)
    return makeError(Errc::Unsupported, "unsupported GPU architecture '" + Arch +
                                            "'; this NVRTC " + nvrtcVersionString() +
                                            " supports: " + Listing());
  return Arch.str();
}

std::string archForComputeCapability(int Major, int Minor) {
  std::string Arch = "sm_" + std::to_string(Major * 10 + Minor);
  // NOTE: arch-specific targets unlock wgmma/setmaxnreg (9.0) and tcgen05 (10.x); the cubin then
  // runs only on that exact major.minor, which is what a JIT build for this device wants.
  if ((Major == 9 && Minor == 0) || Major == 10)
    Arch += "a";
  return Arch;
}

std::string virtualArch(llvm::StringRef Arch) {
  llvm::StringRef Rest = Arch;
  Rest.consume_front("sm_");
  return "compute_" + Rest.str();
}

} // namespace mhcjit
