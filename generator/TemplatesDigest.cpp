// mhcjit generator: the digest of the embedded templates that enters every cache key.
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/Sha256.h"

namespace mhcjit {

const std::string &templatesDigest() {
  static const std::string Digest = [] {
    std::string All;
    for (const EmbeddedTemplate &T : embeddedTemplates()) {
      // Length-prefixed, so moving bytes between two files changes the digest too.
      llvm::StringRef Text(T.Text);
      All += std::string(T.Name) + '\0' + std::to_string(Text.size()) + '\0';
      All += Text.str();
    }
    return sha256Hex(All);
  }();
  return Digest;
}

} // namespace mhcjit
