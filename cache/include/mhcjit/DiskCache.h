// mhcjit cache: the on-disk kernel cache (immutable entry directories published by rename).
// Layout: <root>/v1/<key[0:2]>/<key>/{kernel.cubin, kernel.cu, manifest.json, last-used}.
// Temporaries of writers (".tmp-*", ".trash-*") live in the shard directories next to entries.
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

/// Who may share a cache. Private: directories 0700 and files 0600, and a cache writable by
/// anyone else is refused. Shared (MHCJIT_CACHE_SHARED=1): directories 02770 (setgid, so
/// entries keep the cache's group) and files 0660, and a group-writable cache is accepted.
enum class CacheSharing { Private, Shared };

/// Temporaries older than this (seconds) are a crashed writer's and may be removed.
constexpr int64_t DefaultStaleSeconds = 3600;

/// A cache rooted at one directory. Lookups never create anything; publish() creates what it needs.
class DiskCache {
public:
  explicit DiskCache(std::string Root, CacheSharing Sharing = CacheSharing::Private)
      : Root(std::move(Root)), Sharing(Sharing) {}

  /// $MHCJIT_CACHE_DIR, else $XDG_CACHE_HOME/mhcjit, else $HOME/.cache/mhcjit.
  static std::string defaultRoot();

  const std::string &root() const { return Root; }
  CacheSharing sharing() const { return Sharing; }
  /// <root>/v1/<key[0:2]>/<key>
  std::string entryPath(llvm::StringRef Key) const;

  /// Whether this user may trust the cache (checked like ssh checks ~/.ssh): the root and
  /// <root>/v1, where they exist, must be directories that no other user can write: not
  /// world-writable, and not group-writable unless the cache is Shared or the group is the
  /// owner's private group. ForWriting also requires that this user owns them (unless Shared).
  /// The error says what is wrong and how to fix it. Checking creates nothing.
  llvm::Error checkTrusted(bool ForWriting) const;

  /// Reads and validates the entry of Key: the manifest parses, its key and record match Key,
  /// the cubin's length and sha256 match the manifest. A bad entry is a miss with a reason.
  /// NOTE: lookup() does not call checkTrusted(); a caller that reads a cache others could
  /// write checks it first (the kernel provider does).
  CacheLookup lookup(llvm::StringRef Key) const;

  /// Writes Entry into a temporary directory next to its final place, fsyncs, and renames it
  /// into place. If a valid entry already sits there (another process won), that is success;
  /// an invalid one is moved aside and replaced. Refuses an untrusted cache (checkTrusted()).
  /// Afterwards removes stale temporaries (older than staleSeconds()) of the entry's shard.
  /// Never aborts on I/O errors: returns them.
  llvm::Error publish(const CacheEntry &Entry);

  /// Sets the entry's last-used stamp to now (best effort; errors are ignored). Pruning orders
  /// entries by this stamp, not by atime (often off or coarse on cluster filesystems).
  void touch(llvm::StringRef Key) const;

  /// Every entry directory under the root, validated. A missing root is an empty list.
  llvm::Expected<std::vector<CacheEntrySummary>> list() const;

  /// The age after which publish() treats a temporary as a crashed writer's.
  int64_t staleSeconds() const { return StaleSeconds; }
  void setStaleSeconds(int64_t Seconds) { StaleSeconds = Seconds; }

private:
  std::string Root;
  CacheSharing Sharing;
  int64_t StaleSeconds = DefaultStaleSeconds;
};

} // namespace mhcjit
