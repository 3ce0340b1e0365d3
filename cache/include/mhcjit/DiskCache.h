// mhcjit cache: the on-disk kernel cache (immutable entry directories published by rename).
// Layout: <root>/v1/<key[0:2]>/<key>/{kernel.cubin, kernel.cu, manifest.json, last-used}.
#pragma once

#include "mhcjit/CacheEntry.h"

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mhcjit {

/// What a lookup found: an entry that validated, or a miss (with the reason when an entry
/// existed but was rejected: truncated cubin, checksum mismatch, garbled manifest, foreign key).
struct CacheLookup {
  llvm::Optional<CacheEntry> Entry;
  std::string Rejected; ///< empty on a clean miss or a hit
};

/// One line of a cache listing.
struct CacheEntrySummary {
  std::string Key;
  std::string Path;        ///< the entry directory
  std::string SpecRecord;  ///< empty when the manifest could not be read
  std::string Arch;
  uint64_t Bytes = 0;      ///< all files of the entry
  int64_t LastUsedUnix = 0; ///< from the last-used stamp; 0 if none
  bool Valid = false;
  std::string Problem;     ///< why it is not valid
};

/// A cache rooted at one directory. Lookups never create anything; publish() creates what it needs.
class DiskCache {
public:
  explicit DiskCache(std::string Root) : Root(std::move(Root)) {}

  /// $MHCJIT_CACHE_DIR, else $XDG_CACHE_HOME/mhcjit, else $HOME/.cache/mhcjit.
  static std::string defaultRoot();

  const std::string &root() const { return Root; }
  /// <root>/v1/<key[0:2]>/<key>
  std::string entryPath(llvm::StringRef Key) const;

  /// Reads and validates the entry of Key: the manifest parses, its key and record match Key,
  /// the cubin's length and sha256 match the manifest. A bad entry is a miss with a reason.
  CacheLookup lookup(llvm::StringRef Key) const;

  /// Writes Entry into a temporary directory next to its final place, fsyncs, and renames it
  /// into place. If a valid entry already sits there (another process won), that is success;
  /// an invalid one is moved aside and replaced. Never aborts on I/O errors: returns them.
  llvm::Error publish(const CacheEntry &Entry);

  /// Sets the entry's last-used stamp to now (best effort; errors are ignored).
  void touch(llvm::StringRef Key) const;

  /// Every entry directory under the root, validated. A missing root is an empty list.
  llvm::Expected<std::vector<CacheEntrySummary>> list() const;

private:
  std::string Root;
};

} // namespace mhcjit
