// mhcjit cache: verify and repair, prune by size and age, stale temporaries, automatic pruning.
// Removal renames an entry aside first, so a concurrent reader sees it whole or not at all.
#include "mhcjit/CacheMaintenance.h"

#include "EntryCheck.h"
#include "FileIO.h"

#include "mhcjit/Errors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Chrono.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <functional>
#include <mutex>

namespace mhcjit {

namespace {

namespace fs = llvm::sys::fs;

std::string joinPath(llvm::StringRef Dir, llvm::StringRef Name) {
  llvm::SmallString<256> Path(Dir);
  llvm::sys::path::append(Path, Name);
  return std::string(Path.str());
}

bool isTemporaryName(llvm::StringRef Name) {
  return Name.startswith(".tmp-") || Name.startswith(".trash-");
}

int64_t nowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

/// mtime of Path in Unix seconds (no symlink following); false if it cannot be stat'ed.
bool modificationTime(const llvm::Twine &Path, int64_t &Unix) {
  fs::file_status Status;
  if (fs::status(Path, Status, /*Follow=*/false))
    return false;
  Unix = llvm::sys::toTimeT(Status.getLastModificationTime());
  return true;
}

/// Calls Visit(Path, Name) for every name in every shard directory <root>/v1/<shard>/.
llvm::Error forEachInShards(const DiskCache &Cache,
                            const std::function<void(const std::string &, llvm::StringRef)> &Visit) {
  std::string Versioned = joinPath(Cache.root(), "v1");
  std::error_code EC;
  fs::directory_iterator Shard(Versioned, EC), End;
  if (EC == std::errc::no_such_file_or_directory || EC == std::errc::not_a_directory)
    return llvm::Error::success();
  for (; !EC && Shard != End; Shard.increment(EC)) {
    if (llvm::sys::path::filename(Shard->path()).startswith(".") ||
        !fs::is_directory(Shard->path()))
      continue;
    std::error_code ShardEC;
    for (fs::directory_iterator It(Shard->path(), ShardEC); !ShardEC && It != End;
         It.increment(ShardEC))
      Visit(It->path(), llvm::sys::path::filename(It->path()));
    if (ShardEC)
      return makeError(Errc::CacheFailed, "cannot list cache directory '" + Shard->path() +
                                              "': " + ShardEC.message());
  }
  if (EC)
    return makeError(Errc::CacheFailed,
                     "cannot list cache directory '" + Versioned + "': " + EC.message());
  return llvm::Error::success();
}

/// Removes the entries Policy does not keep, oldest use first, and fills Report.
void removeInOrder(std::vector<StoredEntry> &Entries, const PrunePolicy &Policy,
                   PruneReport &Report) {
  // Oldest use first; ties by key so two runs over the same cache remove the same entries.
  std::sort(Entries.begin(), Entries.end(), [](const StoredEntry &A, const StoredEntry &B) {
    return A.LastUsedUnix != B.LastUsedUnix ? A.LastUsedUnix < B.LastUsedUnix : A.Key < B.Key;
  });
  int64_t Now = Policy.NowUnix ? Policy.NowUnix : nowUnix();
  uint64_t Total = 0;
  for (const StoredEntry &E : Entries)
    Total += E.Bytes;
  for (const StoredEntry &E : Entries) {
    // Example: MaxAgeSeconds = 30 days; an entry last used 31 days ago goes whatever the size.
    bool TooOld = Policy.MaxAgeSeconds > 0 && Now - E.LastUsedUnix > Policy.MaxAgeSeconds;
    bool TooBig = Policy.MaxBytes > 0 && Total > Policy.MaxBytes;
    if (!TooOld && !TooBig) {
      ++Report.KeptEntries;
      Report.KeptBytes += E.Bytes;
      continue;
    }
    if (llvm::Error Err = removeEntry(E.Path)) {
      Report.Failures.push_back(llvm::toString(std::move(Err)));
      ++Report.KeptEntries;
      Report.KeptBytes += E.Bytes;
      continue;
    }
    ++Report.RemovedEntries;
    Report.RemovedBytes += E.Bytes;
    Total -= E.Bytes;
  }
}

} // namespace

llvm::Expected<std::vector<StoredEntry>> scanEntries(const DiskCache &Cache) {
  std::vector<StoredEntry> Entries;
  llvm::Error E = forEachInShards(Cache, [&](const std::string &Path, llvm::StringRef Name) {
    if (!isCacheKey(Name) || !fs::is_directory(Path))
      return;
    StoredEntry Entry;
    Entry.Key = Name.str();
    Entry.Path = Path;
    Entry.Bytes = fileio::directoryFileBytes(Path);
    if (!modificationTime(joinPath(Path, LastUsedFileName), Entry.LastUsedUnix) &&
        !modificationTime(joinPath(Path, ManifestFileName), Entry.LastUsedUnix))
      modificationTime(Path, Entry.LastUsedUnix);
    Entries.push_back(std::move(Entry));
  });
  if (E)
    return std::move(E);
  return Entries;
}

llvm::Error removeEntry(llvm::StringRef Path) {
  llvm::StringRef Name = llvm::sys::path::filename(Path);
  std::string Trash =
      fileio::uniqueName(llvm::sys::path::parent_path(Path), (".trash-" + Name).str());
  std::string From = Path.str();
  if (::rename(From.c_str(), Trash.c_str()) != 0) {
    if (errno == ENOENT) // another process removed or replaced it first
      return llvm::Error::success();
    return fileio::errnoError("cannot move the cache entry aside to '" + Trash + "' from", Path,
                              errno);
  }
  fileio::removeTree(Trash);
  if (fs::exists(Trash))
    return makeError(Errc::CacheFailed, "cannot remove '" + Trash + "' (moved aside from '" +
                                            Path + "'); remove it by hand");
  return llvm::Error::success();
}

llvm::Expected<PruneReport> pruneCache(const DiskCache &Cache, const PrunePolicy &Policy) {
  llvm::Expected<std::vector<StoredEntry>> Entries = scanEntries(Cache);
  if (!Entries)
    return Entries.takeError();
  PruneReport Report;
  removeInOrder(*Entries, Policy, Report);
  return Report;
}

llvm::Expected<std::vector<Temporary>> findTemporaries(const DiskCache &Cache) {
  std::vector<Temporary> Found;
  int64_t Now = nowUnix();
  llvm::Error E = forEachInShards(Cache, [&](const std::string &Path, llvm::StringRef Name) {
    int64_t Modified = 0;
    if (isTemporaryName(Name) && modificationTime(Path, Modified))
      Found.push_back({Path, std::max<int64_t>(0, Now - Modified)});
  });
  if (E)
    return std::move(E);
  std::sort(Found.begin(), Found.end(),
            [](const Temporary &A, const Temporary &B) { return A.Path < B.Path; });
  return Found;
}

size_t removeStaleTemporaries(llvm::StringRef Shard, int64_t GraceSeconds) {
  size_t Removed = 0;
  int64_t Now = nowUnix();
  std::error_code EC;
  for (fs::directory_iterator It(Shard, EC), End; !EC && It != End; It.increment(EC)) {
    int64_t Modified = 0;
    if (!isTemporaryName(llvm::sys::path::filename(It->path())) ||
        !modificationTime(It->path(), Modified) || Now - Modified < GraceSeconds)
      continue;
    fileio::removeTree(It->path());
    Removed += !fs::exists(It->path());
  }
  return Removed;
}

size_t removeStaleTemporaries(const DiskCache &Cache, int64_t GraceSeconds) {
  llvm::Expected<std::vector<Temporary>> Found = findTemporaries(Cache);
  if (!Found) {
    llvm::consumeError(Found.takeError());
    return 0;
  }
  size_t Removed = 0;
  for (const Temporary &T : *Found) {
    if (T.AgeSeconds < GraceSeconds)
      continue;
    fileio::removeTree(T.Path);
    Removed += !fs::exists(T.Path);
  }
  return Removed;
}

llvm::Expected<VerifyReport> verifyCache(const DiskCache &Cache, bool Repair,
                                         int64_t GraceSeconds) {
  llvm::Expected<std::vector<CacheEntrySummary>> Entries = Cache.list();
  if (!Entries)
    return Entries.takeError();
  llvm::Expected<std::vector<Temporary>> Temporaries = findTemporaries(Cache);
  if (!Temporaries)
    return Temporaries.takeError();
  VerifyReport Report;
  Report.Entries = Entries->size();
  Report.Temporaries = std::move(*Temporaries);
  for (CacheEntrySummary &S : *Entries) {
    if (S.Valid)
      continue;
    if (Repair) {
      if (llvm::Error E = removeEntry(S.Path))
        Report.Failures.push_back(llvm::toString(std::move(E)));
      else
        ++Report.RemovedBad;
    }
    Report.Bad.push_back(std::move(S));
  }
  if (Repair)
    for (const Temporary &T : Report.Temporaries) {
      if (T.AgeSeconds < GraceSeconds)
        continue;
      fileio::removeTree(T.Path);
      if (fs::exists(T.Path))
        Report.Failures.push_back("cannot remove the stale temporary '" + T.Path + "'");
      else
        ++Report.RemovedTemporaries;
    }
  return Report;
}

size_t pruneAfterPublish(const DiskCache &Cache, uint64_t PublishedBytes, uint64_t MaxBytes) {
  if (MaxBytes == 0)
    return 0;
  // NOTE: per process and root, the bytes the cache held at the last scan plus what this
  // process published since. Other processes' entries are seen at the next scan, so the
  // cache may overshoot by what they wrote meanwhile; the next scan catches up.
  static std::mutex Lock;
  static llvm::StringMap<uint64_t> Estimates;
  std::lock_guard<std::mutex> Guard(Lock);
  auto Known = Estimates.find(Cache.root());
  if (Known != Estimates.end()) {
    Known->second += PublishedBytes;
    if (Known->second <= MaxBytes)
      return 0;
  }
  llvm::Expected<std::vector<StoredEntry>> Entries = scanEntries(Cache);
  if (!Entries) {
    llvm::consumeError(Entries.takeError());
    return 0;
  }
  PruneReport Report;
  uint64_t Total = 0;
  for (const StoredEntry &E : *Entries)
    Total += E.Bytes;
  if (Total > MaxBytes) {
    PrunePolicy Policy;
    // Example: MaxBytes = 1000 MiB: prune to 900 MiB, then scan again after ~100 MiB more.
    Policy.MaxBytes = MaxBytes - MaxBytes / 10;
    removeInOrder(*Entries, Policy, Report);
    Total = Report.KeptBytes;
  }
  Estimates[Cache.root()] = Total;
  return Report.RemovedEntries;
}

llvm::Expected<uint64_t> parseByteSize(llvm::StringRef Text) {
  llvm::StringRef Rest = Text.trim();
  llvm::StringRef Number = Rest.take_while([](char C) { return llvm::isDigit(C) || C == '.'; });
  std::string Unit = Rest.drop_front(Number.size()).lower();
  // Example: "1.5GiB" -> 1.5 and "g"; "500M" -> 500 and "m"; "4096" -> 4096 and "".
  if (llvm::StringRef(Unit).endswith("ib"))
    Unit.resize(Unit.size() - 2);
  else if (Unit.size() > 1 && Unit.back() == 'b')
    Unit.pop_back();
  const llvm::StringRef Units = "bkmgt"; // bytes, then powers of 1024
  size_t Power = Unit.empty() ? 0 : Unit.size() == 1 ? Units.find(Unit[0]) : llvm::StringRef::npos;
  double Value = 0;
  if (Power == llvm::StringRef::npos || Number.empty() || Number.count('.') > 1 ||
      Number.getAsDouble(Value))
    return makeError(Errc::InvalidArgument, "'" + Text + "' is not a size (a number and K, M, "
                                                         "G or T, e.g. 500M, 2G)");
  double Bytes = std::ldexp(Value, 10 * static_cast<int>(Power));
  if (Bytes >= 18446744073709551615.0)
    return makeError(Errc::InvalidArgument, "'" + Text + "' is too large a size");
  return static_cast<uint64_t>(Bytes);
}

llvm::Expected<int64_t> parseDuration(llvm::StringRef Text) {
  llvm::StringRef Rest = Text.trim();
  llvm::StringRef Number = Rest.take_while([](char C) { return llvm::isDigit(C); });
  llvm::StringRef Unit = Rest.drop_front(Number.size());
  int64_t Scale = 0;
  if (Unit.empty() || Unit == "s")
    Scale = 1;
  else if (Unit == "m" || Unit == "min")
    Scale = 60;
  else if (Unit == "h")
    Scale = 3600;
  else if (Unit == "d")
    Scale = 86400;
  else if (Unit == "w")
    Scale = 7 * 86400;
  int64_t Value = 0;
  if (!Scale || Number.empty() || Number.getAsInteger(10, Value) ||
      Value > INT64_MAX / Scale)
    return makeError(Errc::InvalidArgument,
                     "'" + Text + "' is not a duration (a whole number and s, m, h, d or w, "
                                  "e.g. 30d, 12h)");
  return Value * Scale;
}

} // namespace mhcjit
