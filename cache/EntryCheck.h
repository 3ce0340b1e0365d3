// mhcjit cache (private): reading and validating one entry directory.
// Shared by lookup(), publish() (is the entry already there good?) and list().
#pragma once

#include "mhcjit/CacheEntry.h"

#include "llvm/ADT/StringRef.h"

#include <string>

namespace mhcjit {

/// File names inside an entry directory.
constexpr const char *CubinFileName = "kernel.cubin";
constexpr const char *SourceFileName = "kernel.cu";
constexpr const char *ManifestFileName = "manifest.json";
constexpr const char *LastUsedFileName = "last-used";

/// What reading an entry directory found.
struct EntryCheck {
  CacheEntry Entry;          ///< filled as far as the files could be read
  bool ManifestRead = false; ///< the manifest parsed (Entry.Record and the rest are set)
  std::string Problem;       ///< why the entry is not valid; empty when it is

  bool valid() const { return Problem.empty(); }
};

/// True for 64 lower-case hex digits, the only names an entry directory may have.
bool isCacheKey(llvm::StringRef Key);

/// Reads Dir as the entry of Key: the manifest parses, names Key, its record hashes to Key, and
/// kernel.cubin has the manifest's length and sha256; kernel.cu must be readable.
EntryCheck checkEntry(llvm::StringRef Dir, llvm::StringRef Key);

} // namespace mhcjit
