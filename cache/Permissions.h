// mhcjit cache (private): who may write a cache directory, and the modes the cache creates.
// A cache others can write is a door into every process that loads its cubins; refuse it.
#pragma once

#include "mhcjit/DiskCache.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace mhcjit {

/// Mode of the directories a cache creates: 0700, or 02770 (setgid) when shared.
unsigned cacheDirectoryMode(CacheSharing Sharing);
/// Mode of the files a cache creates: 0600, or 0660 when shared.
unsigned cacheFileMode(CacheSharing Sharing);

/// An error when the directory Dir exists and another user could write it (see
/// DiskCache::checkTrusted()); MustOwn also requires that this user owns it. A missing Dir is
/// trusted (nothing to trust yet); a Dir that is not a directory is not.
llvm::Error checkDirectoryTrust(llvm::StringRef Dir, CacheSharing Sharing, bool MustOwn);

} // namespace mhcjit
