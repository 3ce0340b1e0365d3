// mhcjit cache: the on-disk kernel cache (default root, lookup, publish by rename, touch, list).
// Entries are immutable directories; a writer builds one aside and renames it into place.
#include "mhcjit/DiskCache.h"

#include "mhcjit/CacheMaintenance.h"

#include "EntryCheck.h"
#include "FileIO.h"
#include "Manifest.h"
#include "Permissions.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Chrono.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mhcjit {

namespace {

llvm::StringRef environment(const char *Name) {
  const char *Value = std::getenv(Name);
  return Value ? llvm::StringRef(Value) : llvm::StringRef();
}

std::string joinPath(llvm::StringRef Dir, llvm::StringRef Name) {
  llvm::SmallString<256> Path(Dir);
  llvm::sys::path::append(Path, Name);
  return std::string(Path.str());
}

using fileio::removeTree;

/// TEST-ONLY hook: with MHCJIT_TEST_CRASH_AT=<Stage> in the environment, the process kills
/// itself with SIGKILL when publish() reaches Stage, so tests can check that a writer dying at
/// any point leaves nothing a reader accepts. Stages, in order: tmp-created, cubin-partial
/// (half the cubin written), cubin-written, files-written (before the directory fsync),
/// before-rename, invalid-moved-aside (replacing a bad entry), after-rename. Not for users.
bool crashRequested(const char *Stage) {
  static const char *Wanted = std::getenv("MHCJIT_TEST_CRASH_AT");
  return Wanted && std::strcmp(Wanted, Stage) == 0;
}
void crashPoint(const char *Stage) {
  if (crashRequested(Stage))
    ::raise(SIGKILL);
}

/// Prefixes an error's message with Context, keeping its error code.
llvm::Error withContext(llvm::Error E, const llvm::Twine &Context) {
  std::string Message;
  std::error_code EC;
  llvm::handleAllErrors(std::move(E), [&](const llvm::ErrorInfoBase &Info) {
    Message = Info.message();
    EC = Info.convertToErrorCode();
  });
  return llvm::createStringError(EC, Context + ": " + Message);
}

/// rename(2) failed because something already sits at the destination.
bool destinationOccupied(int Errno) {
  return Errno == EEXIST || Errno == ENOTEMPTY || Errno == ENOTDIR || Errno == EISDIR;
}

/// Writes the four files of Entry (with mode FileMode) into the (empty) directory Dir and
/// fsyncs it.
llvm::Error writeEntryFiles(llvm::StringRef Dir, const CacheEntry &Entry, unsigned FileMode) {
  int64_t Now = static_cast<int64_t>(std::time(nullptr));
  std::string ManifestText = renderManifest(manifestFor(Entry, Now));
  std::string CubinPath = joinPath(Dir, CubinFileName);
  if (crashRequested("cubin-partial")) {
    llvm::consumeError(fileio::writeFileDurably(
        CubinPath, llvm::StringRef(Entry.Cubin).take_front(Entry.Cubin.size() / 2), FileMode));
    crashPoint("cubin-partial");
  }
  if (llvm::Error E = fileio::writeFileDurably(CubinPath, Entry.Cubin, FileMode))
    return E;
  crashPoint("cubin-written");
  if (llvm::Error E =
          fileio::writeFileDurably(joinPath(Dir, SourceFileName), Entry.Source, FileMode))
    return E;
  if (llvm::Error E = fileio::writeFileDurably(joinPath(Dir, LastUsedFileName), "", FileMode))
    return E;
  // NOTE: the manifest goes last, so a directory with a manifest had its other files written.
  if (llvm::Error E =
          fileio::writeFileDurably(joinPath(Dir, ManifestFileName), ManifestText, FileMode))
    return E;
  crashPoint("files-written");
  return fileio::syncDirectory(Dir);
}

/// Renames the finished temporary directory Tmp to Final. If Final exists and validates, another
/// process won and that is success; if it is invalid it is renamed aside, removed, and the rename
/// is tried once more. Tmp is left for the caller to remove unless it was renamed.
llvm::Error moveIntoPlace(const std::string &Tmp, const std::string &Final, llvm::StringRef Key,
                          bool &Renamed) {
  Renamed = false;
  if (::rename(Tmp.c_str(), Final.c_str()) == 0) {
    Renamed = true;
    return llvm::Error::success();
  }
  int Errno = errno;
  if (!destinationOccupied(Errno))
    return fileio::errnoError("cannot rename '" + Tmp + "' to", Final, Errno);
  if (checkEntry(Final, Key).valid())
    return llvm::Error::success();

  std::string Trash =
      fileio::uniqueName(llvm::sys::path::parent_path(Final), (".trash-" + Key).str());
  if (::rename(Final.c_str(), Trash.c_str()) == 0) {
    crashPoint("invalid-moved-aside");
    removeTree(Trash);
  } else {
    Errno = errno;
    if (Errno != ENOENT) // ENOENT: another process moved it aside first.
      return fileio::errnoError("cannot move the invalid entry aside to '" + Trash + "' from",
                                Final, Errno);
  }

  if (::rename(Tmp.c_str(), Final.c_str()) == 0) {
    Renamed = true;
    return llvm::Error::success();
  }
  Errno = errno;
  // Another process may have published between our two renames.
  if (destinationOccupied(Errno) && checkEntry(Final, Key).valid())
    return llvm::Error::success();
  return fileio::errnoError("cannot rename '" + Tmp + "' to", Final, Errno);
}

/// One line of list(): the entry directory Path named Name, found in the shard ShardName.
CacheEntrySummary summarizeEntry(const std::string &Path, llvm::StringRef Name,
                                 llvm::StringRef ShardName) {
  CacheEntrySummary Summary;
  Summary.Key = Name.str();
  Summary.Path = Path;
  if (!llvm::sys::fs::is_directory(Path)) {
    uint64_t Size = 0;
    if (!llvm::sys::fs::file_size(Path, Size))
      Summary.Bytes = Size;
    Summary.Problem = "not a directory";
    return Summary;
  }
  Summary.Bytes = fileio::directoryFileBytes(Path);
  llvm::sys::fs::file_status Stamp;
  if (!llvm::sys::fs::status(joinPath(Path, LastUsedFileName), Stamp))
    Summary.LastUsedUnix = llvm::sys::toTimeT(Stamp.getLastModificationTime());
  if (!isCacheKey(Name)) {
    Summary.Problem = "the directory name is not a cache key";
    return Summary;
  }

  EntryCheck Check = checkEntry(Path, Name);
  if (Check.ManifestRead) {
    Summary.SpecRecord = Check.Entry.Record.SpecRecord;
    Summary.Arch = Check.Entry.Record.Arch;
  }
  // Example: key "3fa2..." belongs in shard "3f"; found under "a0/" lookup() never sees it.
  if (Name.take_front(2) != ShardName)
    Summary.Problem = ("in shard " + ShardName + "/, expected " + Name.take_front(2) + "/").str();
  else
    Summary.Problem = std::move(Check.Problem);
  Summary.Valid = Summary.Problem.empty();
  return Summary;
}

} // namespace

std::string DiskCache::defaultRoot() {
  llvm::StringRef Explicit = environment("MHCJIT_CACHE_DIR");
  if (!Explicit.empty())
    return Explicit.str();
  // NOTE: the XDG base directory spec says a relative $XDG_CACHE_HOME is invalid and ignored.
  llvm::StringRef Xdg = environment("XDG_CACHE_HOME");
  if (!Xdg.empty() && llvm::sys::path::is_absolute(Xdg))
    return joinPath(Xdg, "mhcjit");
  llvm::SmallString<256> Home(environment("HOME"));
  // Without $HOME, ask the password database (home_directory() does).
  if (Home.empty() && !llvm::sys::path::home_directory(Home))
    Home.clear();
  if (Home.empty())
    return std::string(); // NOTE: no home at all: the caller runs without a writable cache.
  llvm::sys::path::append(Home, ".cache", "mhcjit");
  return std::string(Home.str());
}

std::string DiskCache::entryPath(llvm::StringRef Key) const {
  // Example: key "3fa2...e1" lives in "<root>/v1/3f/3fa2...e1".
  llvm::SmallString<256> Path(Root);
  llvm::sys::path::append(Path, "v1", Key.take_front(2), Key);
  return std::string(Path.str());
}

llvm::Error DiskCache::checkTrusted(bool ForWriting) const {
  if (llvm::Error E = checkDirectoryTrust(Root, Sharing, ForWriting))
    return E;
  return checkDirectoryTrust(joinPath(Root, "v1"), Sharing, ForWriting);
}

CacheLookup DiskCache::lookup(llvm::StringRef Key) const {
  CacheLookup Result;
  if (!isCacheKey(Key)) {
    Result.Rejected = "'" + Key.str() + "' is not a cache key (64 lower-case hex digits)";
    return Result;
  }
  std::string Dir = entryPath(Key);
  llvm::sys::fs::file_status Status;
  if (std::error_code EC = llvm::sys::fs::status(Dir, Status)) {
    if (EC != std::errc::no_such_file_or_directory && EC != std::errc::not_a_directory)
      Result.Rejected = "cannot stat the entry directory (" + EC.message() + ")";
    return Result;
  }
  if (Status.type() != llvm::sys::fs::file_type::directory_file) {
    Result.Rejected = "the entry path is not a directory";
    return Result;
  }
  EntryCheck Check = checkEntry(Dir, Key);
  if (!Check.valid()) {
    Result.Rejected = std::move(Check.Problem);
    return Result;
  }
  Result.Entry = std::move(Check.Entry);
  return Result;
}

llvm::Error DiskCache::publish(const CacheEntry &Entry) {
  std::string Context = "cannot publish cache entry " + Entry.Key;
  if (!isCacheKey(Entry.Key))
    return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                   Context + ": not a cache key (64 lower-case hex digits)");
  std::string RecordKey = cacheKey(Entry.Record);
  if (RecordKey != Entry.Key)
    return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                   Context + ": its record hashes to " + RecordKey);
  // NOTE: the manifest is JSON, which would silently repair invalid UTF-8 in the record; the
  // repaired record would no longer hash to the key and the entry would never validate.
  if (!llvm::json::isUTF8(renderKeyRecord(Entry.Record)))
    return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                   Context + ": its key record is not valid UTF-8");

  if (llvm::Error E = checkTrusted(/*ForWriting=*/true))
    return withContext(std::move(E), Context);
  std::string Final = entryPath(Entry.Key);
  std::string Shard = llvm::sys::path::parent_path(Final).str();
  if (llvm::Error E = fileio::makeDirectories(Shard, cacheDirectoryMode(Sharing)))
    return withContext(std::move(E), Context);
  // NOTE: checked again now that the root and v1/ exist: another process (or user) may have
  // created them between the check above and our mkdir.
  if (llvm::Error E = checkTrusted(/*ForWriting=*/true))
    return withContext(std::move(E), Context);

  llvm::Expected<std::string> Tmp =
      fileio::createUniqueDirectory(Shard, ".tmp-" + Entry.Key, cacheDirectoryMode(Sharing));
  if (!Tmp)
    return withContext(Tmp.takeError(), Context);
  crashPoint("tmp-created");

  bool Renamed = false;
  llvm::Error E = writeEntryFiles(*Tmp, Entry, cacheFileMode(Sharing));
  if (!E) {
    crashPoint("before-rename");
    E = moveIntoPlace(*Tmp, Final, Entry.Key, Renamed);
  }
  if (!Renamed)
    removeTree(*Tmp);
  if (E)
    return withContext(std::move(E), Context);
  crashPoint("after-rename");

  // NOTE: best effort: the entry is in place and valid; a failed fsync of the shard directory
  // only risks losing it on a crash, after which it is rebuilt.
  if (Renamed)
    llvm::consumeError(fileio::syncDirectory(Shard));
  // Opportunistic and cheap (one directory of about 1/256 of the cache): crashed writers'
  // leftovers go away as the cache is used.
  removeStaleTemporaries(Shard, StaleSeconds);
  return llvm::Error::success();
}

void DiskCache::touch(llvm::StringRef Key) const {
  if (!isCacheKey(Key))
    return;
  std::string Stamp = joinPath(entryPath(Key), LastUsedFileName);
  // NOTE: O_CREAT restores a deleted stamp but cannot create the entry directory itself.
  int Fd = ::open(Stamp.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  cacheFileMode(Sharing));
  if (Fd < 0)
    return;
  // NOTE: a null time means "now", which needs only write permission (not ownership), so
  // members of a shared cache's group can stamp entries another member published.
  (void)::futimens(Fd, nullptr);
  ::close(Fd);
}

llvm::Expected<std::vector<CacheEntrySummary>> DiskCache::list() const {
  std::vector<CacheEntrySummary> Entries;
  std::string Versioned = joinPath(Root, "v1");
  std::error_code EC;
  llvm::sys::fs::directory_iterator Shard(Versioned, EC), End;
  // A root (or v1/) that does not exist, or sits under a regular file, holds no entries.
  if (EC == std::errc::no_such_file_or_directory || EC == std::errc::not_a_directory)
    return Entries;
  for (; !EC && Shard != End; Shard.increment(EC)) {
    llvm::StringRef ShardName = llvm::sys::path::filename(Shard->path());
    if (ShardName.startswith(".") || !llvm::sys::fs::is_directory(Shard->path()))
      continue;
    std::error_code ShardEC;
    llvm::sys::fs::directory_iterator It(Shard->path(), ShardEC);
    for (; !ShardEC && It != End; It.increment(ShardEC)) {
      llvm::StringRef Name = llvm::sys::path::filename(It->path());
      if (Name.startswith("."))
        continue;
      Entries.push_back(summarizeEntry(It->path(), Name, ShardName));
    }
    if (ShardEC)
      return llvm::createStringError(ShardEC, "cannot list cache directory '" + Shard->path() +
                                                  "': " + ShardEC.message());
  }
  if (EC)
    return llvm::createStringError(EC, "cannot list cache directory '" + Versioned +
                                           "': " + EC.message());
  std::sort(Entries.begin(), Entries.end(),
            [](const CacheEntrySummary &A, const CacheEntrySummary &B) { return A.Key < B.Key; });
  return Entries;
}

} // namespace mhcjit
