// mhcjit generator: sha256 as lower-case hex, on top of llvm::SHA256.
#include "mhcjit/Sha256.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/SHA256.h"

namespace mhcjit {

std::string sha256Hex(llvm::StringRef Data) {
  llvm::SHA256 Hasher;
  Hasher.update(Data);
  return llvm::toHex(Hasher.final(), /*LowerCase=*/true);
}

} // namespace mhcjit
