// mhcjit cache: keeping a cache healthy: verify (and repair), prune by size and age, remove the
// leftovers of crashed writers, and the automatic size policy applied after a publish.
#pragma once

#include "mhcjit/DiskCache.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mhcjit {

/// One entry as a cheap scan sees it: stat calls only, nothing is read or validated.
struct StoredEntry {
  std::string Key;
  std::string Path;
  uint64_t Bytes = 0;       ///< all files of the entry
  int64_t LastUsedUnix = 0; ///< the last-used stamp, else the manifest's or directory's mtime
};

/// Every directory named like a key under the cache's shards. A missing root is empty.
llvm::Expected<std::vector<StoredEntry>> scanEntries(const DiskCache &Cache);

/// Moves the entry directory (or stray file) Path aside to a ".trash-" name in its shard and
/// removes it, so no reader ever sees a half-removed entry. Already gone is success.
llvm::Error removeEntry(llvm::StringRef Path);

/// What pruneCache() may keep. Zero/negative fields mean "no limit".
struct PrunePolicy {
  uint64_t MaxBytes = 0;     ///< keep at most this many bytes, dropping the oldest-used first
  int64_t MaxAgeSeconds = 0; ///< drop entries not used for longer than this
  int64_t NowUnix = 0;       ///< the current time; 0 means now
};

struct PruneReport {
  size_t RemovedEntries = 0;
  uint64_t RemovedBytes = 0;
  size_t KeptEntries = 0;
  uint64_t KeptBytes = 0;
  std::vector<std::string> Failures; ///< entries that could not be removed, with why
};

/// Removes entries not used within MaxAgeSeconds, then the least recently used ones until at
/// most MaxBytes remain. Ordered by the last-used stamp the library writes (not atime); ties
/// by key, so the result does not depend on directory order.
llvm::Expected<PruneReport> pruneCache(const DiskCache &Cache, const PrunePolicy &Policy);

/// A writer's temporary directory (".tmp-*" being built, ".trash-*" being removed).
struct Temporary {
  std::string Path;
  int64_t AgeSeconds = 0; ///< since its last modification
};

/// Every temporary in the cache's shards. A missing root has none.
llvm::Expected<std::vector<Temporary>> findTemporaries(const DiskCache &Cache);

/// Removes the temporaries in the one shard directory Shard older than GraceSeconds (a live
/// writer needs well under a second; a crashed one never comes back). Best effort; returns how
/// many were removed.
size_t removeStaleTemporaries(llvm::StringRef Shard, int64_t GraceSeconds);

/// The same for every shard of Cache.
size_t removeStaleTemporaries(const DiskCache &Cache, int64_t GraceSeconds);

/// What verifyCache() found (and, with Repair, removed).
struct VerifyReport {
  size_t Entries = 0;                        ///< entry directories looked at
  std::vector<CacheEntrySummary> Bad;        ///< entries a reader rejects
  size_t RemovedBad = 0;                     ///< of Bad, removed (Repair)
  std::vector<Temporary> Temporaries;        ///< all temporaries found
  size_t RemovedTemporaries = 0;             ///< stale ones removed (Repair)
  std::vector<std::string> Failures;         ///< removals that failed, with why
};

/// Validates every entry (as lookup() would) and finds the temporaries. With Repair, removes
/// the bad entries and the temporaries older than GraceSeconds.
llvm::Expected<VerifyReport> verifyCache(const DiskCache &Cache, bool Repair,
                                         int64_t GraceSeconds);

/// The automatic size policy (MHCJIT_CACHE_MAX_SIZE), called after this process published an
/// entry of PublishedBytes. Cheap: the first call per root in a process scans the cache once
/// (stat only); later calls add to that estimate and scan again only when it passes MaxBytes,
/// then prune down to 90% of MaxBytes so the next scan is far off. Best effort; returns the
/// number of entries removed. MaxBytes 0 disables it.
size_t pruneAfterPublish(const DiskCache &Cache, uint64_t PublishedBytes, uint64_t MaxBytes);

/// "500M", "2G", "1.5GiB", "4096" (bytes); K, M, G, T are powers of 1024.
llvm::Expected<uint64_t> parseByteSize(llvm::StringRef Text);

/// "30d", "12h", "90m", "45s", "2w", or plain seconds.
llvm::Expected<int64_t> parseDuration(llvm::StringRef Text);

} // namespace mhcjit
