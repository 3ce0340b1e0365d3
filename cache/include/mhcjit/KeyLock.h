// mhcjit cache: a per-key lock between the processes of one node, so that 8 ranks starting
// together compile a kernel once. Lock files live in a node-local directory, never in the cache.
#pragma once

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <chrono>
#include <string>

namespace mhcjit {

/// An exclusive flock(2) on "<directory>/<key>.lock", released (and the file removed) on
/// destruction. A process that dies holding it releases it: the kernel drops flocks on exit.
/// NOTE: the directory must be node-local (flock on NFS is either local-only or slow, and a
/// lock server is a single point of failure); ranks of other nodes simply compile on their own.
class KeyLock {
public:
  KeyLock() = default; ///< not held
  KeyLock(KeyLock &&Other) noexcept { *this = std::move(Other); }
  KeyLock &operator=(KeyLock &&Other) noexcept;
  KeyLock(const KeyLock &) = delete;
  KeyLock &operator=(const KeyLock &) = delete;
  ~KeyLock() { release(); }

  /// /dev/shm/mhcjit-locks-<uid> where /dev/shm is a writable directory, else
  /// <system temp dir>/mhcjit-locks-<uid>.
  static std::string defaultDirectory();

  /// Locks Key (a cache key) in Directory, created 0700 when missing, waiting at most Timeout
  /// (polling with a short backoff). After a timeout the lock is not held() and timedOut() is
  /// true: the caller goes on without it. An error when Directory is unusable: not a directory
  /// of this user, writable by others, or uncreatable.
  static llvm::Expected<KeyLock> acquire(llvm::StringRef Directory, llvm::StringRef Key,
                                         std::chrono::milliseconds Timeout);

  bool held() const { return Fd >= 0; }
  /// Another process held the lock when this one asked.
  bool waited() const { return Waited; }
  /// The wait ended by the timeout, not by the lock.
  bool timedOut() const { return TimedOut; }
  /// Removes the lock file and unlocks; a no-op when not held.
  void release();

private:
  int Fd = -1;
  std::string Path;
  bool Waited = false;
  bool TimedOut = false;
};

} // namespace mhcjit
