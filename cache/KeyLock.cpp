// mhcjit cache: per-key flock(2) locks in a private node-local directory.
// The holder removes the lock file before unlocking; a waiter that then wins a removed file retries.
#include "mhcjit/KeyLock.h"

#include "EntryCheck.h"
#include "FileIO.h"

#include "mhcjit/Errors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace mhcjit {

namespace {

/// Creates Dir (0700) if needed and checks that only this user can use it: a directory, not a
/// symlink, owned by us, writable by nobody else (else another user could hold our locks).
llvm::Error checkLockDirectory(const std::string &Dir) {
  if (::mkdir(Dir.c_str(), 0700) != 0 && errno != EEXIST)
    return fileio::errnoError("cannot create the lock directory", Dir, errno);
  struct stat Status;
  if (::lstat(Dir.c_str(), &Status) != 0)
    return fileio::errnoError("cannot stat the lock directory", Dir, errno);
  if (!S_ISDIR(Status.st_mode) || Status.st_uid != ::geteuid() || (Status.st_mode & 022) != 0)
    return makeError(Errc::CacheFailed, "refusing the lock directory '" + Dir +
                                            "': it must be a directory (not a link) that you "
                                            "own and only you can write; remove it");
  return llvm::Error::success();
}

/// Whether Fd still names the file at Path (the previous holder may have removed it).
bool stillLinked(int Fd, const std::string &Path) {
  struct stat Open, Named;
  return ::fstat(Fd, &Open) == 0 && ::stat(Path.c_str(), &Named) == 0 &&
         Open.st_dev == Named.st_dev && Open.st_ino == Named.st_ino;
}

} // namespace

KeyLock &KeyLock::operator=(KeyLock &&Other) noexcept {
  if (this != &Other) {
    release();
    Fd = Other.Fd;
    Path = std::move(Other.Path);
    Waited = Other.Waited;
    TimedOut = Other.TimedOut;
    Other.Fd = -1;
  }
  return *this;
}

std::string KeyLock::defaultDirectory() {
  std::string Name = "mhcjit-locks-" + std::to_string(::geteuid());
  // NOTE: /dev/shm is a tmpfs on every Linux node: local, fast, emptied at boot.
  if (llvm::sys::fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK | X_OK) == 0)
    return "/dev/shm/" + Name;
  llvm::SmallString<128> Dir;
  llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, Dir);
  llvm::sys::path::append(Dir, Name);
  return std::string(Dir.str());
}

llvm::Expected<KeyLock> KeyLock::acquire(llvm::StringRef Directory, llvm::StringRef Key,
                                         std::chrono::milliseconds Timeout) {
  if (!isCacheKey(Key))
    return makeError(Errc::InvalidArgument,
                     "cannot lock '" + Key + "': not a cache key (64 lower-case hex digits)");
  std::string Dir = Directory.str();
  if (llvm::Error E = checkLockDirectory(Dir))
    return std::move(E);
  KeyLock Lock;
  Lock.Path = Dir + "/" + Key.str() + ".lock";
  auto Deadline = std::chrono::steady_clock::now() + Timeout;
  auto Backoff = std::chrono::milliseconds(1);
  for (;;) {
    int Fd = ::open(Lock.Path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (Fd < 0) {
      if (errno == EINTR)
        continue;
      return fileio::errnoError("cannot open the lock file", Lock.Path, errno);
    }
    for (;;) {
      if (::flock(Fd, LOCK_EX | LOCK_NB) == 0)
        break;
      int Errno = errno;
      if (Errno == EINTR)
        continue;
      if (Errno != EWOULDBLOCK) {
        ::close(Fd);
        return fileio::errnoError("cannot lock", Lock.Path, Errno);
      }
      Lock.Waited = true;
      if (std::chrono::steady_clock::now() >= Deadline) {
        ::close(Fd);
        Lock.TimedOut = true;
        return std::move(Lock);
      }
      // Example: waits of 1, 2, 4, 8, 16, 20, 20, ... ms: a 0.15 s compile by another process
      // costs this one at most 20 ms more than the compile itself.
      std::this_thread::sleep_for(Backoff);
      Backoff = std::min(Backoff * 2, std::chrono::milliseconds(20));
    }
    if (stillLinked(Fd, Lock.Path)) {
      Lock.Fd = Fd;
      return std::move(Lock);
    }
    ::close(Fd); // the holder removed this file as it finished: lock the current one
  }
}

void KeyLock::release() {
  if (Fd < 0)
    return;
  // NOTE: unlink before unlock: a waiter that wins the removed file sees stillLinked() fail
  // and retries on a fresh file, so at most one process ever holds the file at Path.
  ::unlink(Path.c_str());
  ::close(Fd);
  Fd = -1;
}

} // namespace mhcjit
