// mhcjit cache: the contents of one cache entry (a compiled kernel and what describes it).
#pragma once

#include "mhcjit/CacheKey.h"

#include <cstdint>
#include <string>

namespace mhcjit {

/// Resource usage as ptxas reported it; -1 where the log did not say.
struct KernelResources {
  int Registers = -1;
  int SpillStoreBytes = -1;
  int SpillLoadBytes = -1;
  int SharedBytes = -1; ///< static shared memory per block
  int StackBytes = -1;  ///< stack frame per thread
  int ConstantBytes = -1;
};

/// One compiled kernel. The entry directory holds kernel.cubin, kernel.cu and manifest.json.
struct CacheEntry {
  std::string Key;         ///< cacheKey(Record), also the directory name
  CacheKeyRecord Record;
  std::string Cubin;       ///< raw bytes
  std::string Source;      ///< the translation unit NVRTC compiled
  std::string LoweredName; ///< mangled kernel name from nvrtcGetLoweredName
  std::string CompileLog;  ///< NVRTC log, ptxas report included
  KernelResources Resources;
  double CompileSeconds = 0;
};

} // namespace mhcjit
