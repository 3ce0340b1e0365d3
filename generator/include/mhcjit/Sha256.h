// mhcjit generator: lower-case hex sha256 of bytes (cache keys, manifests, template digests).
#pragma once

#include "llvm/ADT/StringRef.h"

#include <string>

namespace mhcjit {

/// Lower-case hex sha256 of Data, 64 characters.
std::string sha256Hex(llvm::StringRef Data);

} // namespace mhcjit
