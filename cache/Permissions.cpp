// mhcjit cache: the trust check of cache directories (owner and mode, as ssh checks ~/.ssh).
// NOTE: the group of a user private group (umask 002 systems) counts as the owner alone.
#include "Permissions.h"

#include "mhcjit/Errors.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace mhcjit {

namespace {

/// "0775" for the permission bits of Mode.
std::string octalMode(mode_t Mode) {
  std::string Text;
  llvm::raw_string_ostream OS(Text);
  OS << llvm::format("%04o", static_cast<unsigned>(Mode & 07777));
  return OS.str();
}

/// The name of user Uid, or "uid <Uid>".
std::string userName(uid_t Uid) {
  struct passwd Entry, *Found = nullptr;
  std::vector<char> Buffer(16384);
  if (::getpwuid_r(Uid, &Entry, Buffer.data(), Buffer.size(), &Found) == 0 && Found)
    return Found->pw_name;
  return "uid " + std::to_string(Uid);
}

/// True when Gid is the private group of user Uid: named like the user and listing no other
/// member (the "user private group" scheme under which umask 002 is the default).
bool isPrivateGroupOf(gid_t Gid, uid_t Uid) {
  struct group Entry, *Found = nullptr;
  std::vector<char> Buffer(16384);
  if (::getgrgid_r(Gid, &Entry, Buffer.data(), Buffer.size(), &Found) != 0 || !Found)
    return false;
  std::string Owner = userName(Uid);
  if (Owner != Found->gr_name)
    return false;
  for (char **Member = Found->gr_mem; Member && *Member; ++Member)
    if (Owner != *Member)
      return false;
  return true;
}

llvm::Error refuse(llvm::StringRef Dir, const llvm::Twine &Why, const llvm::Twine &Fix) {
  return makeError(Errc::CacheFailed, "refusing the kernel cache directory '" + Dir + "': " +
                                          Why + "; " + Fix);
}

} // namespace

unsigned cacheDirectoryMode(CacheSharing Sharing) {
  return Sharing == CacheSharing::Shared ? 02770 : 0700;
}

unsigned cacheFileMode(CacheSharing Sharing) {
  return Sharing == CacheSharing::Shared ? 0660 : 0600;
}

llvm::Error checkDirectoryTrust(llvm::StringRef Dir, CacheSharing Sharing, bool MustOwn) {
  std::string Path = Dir.str();
  struct stat Status;
  if (::stat(Path.c_str(), &Status) != 0) {
    if (errno == ENOENT)
      return llvm::Error::success();
    return makeError(Errc::CacheFailed, "cannot check the kernel cache directory '" + Dir +
                                            "': " + std::strerror(errno));
  }
  if (!S_ISDIR(Status.st_mode))
    return refuse(Dir, "it is not a directory", "point MHCJIT_CACHE_DIR at a directory");
  std::string Mode = octalMode(Status.st_mode);
  if (Status.st_mode & S_IWOTH)
    return refuse(Dir, "every user can write it (mode " + Mode + ")",
                  "make it private with 'chmod o-w " + Dir + "' (a cache others can write "
                  "could hand this process their code)");
  bool Shared = Sharing == CacheSharing::Shared;
  if ((Status.st_mode & S_IWGRP) && !Shared && !isPrivateGroupOf(Status.st_gid, Status.st_uid))
    return refuse(Dir, "its group can write it (mode " + Mode + ")",
                  "make it private with 'chmod g-w " + Dir +
                      "', or set MHCJIT_CACHE_SHARED=1 to share it with that group");
  if (MustOwn && !Shared && Status.st_uid != ::geteuid())
    return refuse(Dir, "it belongs to " + userName(Status.st_uid) + ", not to you (" +
                           userName(::geteuid()) + ")",
                  "use a cache of your own (MHCJIT_CACHE_DIR), list this one read-only in "
                  "MHCJIT_CACHE_PATH, or set MHCJIT_CACHE_SHARED=1 for a group cache");
  return llvm::Error::success();
}

} // namespace mhcjit
