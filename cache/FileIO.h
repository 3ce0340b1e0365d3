// mhcjit cache (private): checked POSIX file I/O for cache entries.
// Every write is checked and fsynced; nothing here can abort the process on an I/O error.
#pragma once

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mhcjit {
namespace fileio {

/// An error "<What> '<Path>': <strerror(Errno)>" carrying Errno as its error code.
llvm::Error errnoError(const llvm::Twine &What, const llvm::Twine &Path, int Errno);

/// Creates Path (which must not exist) with Mode (exactly: the umask does not apply), writes all
/// of Data, fsyncs and closes it. On failure the partial file may remain; the caller removes its
/// temporary directory.
llvm::Error writeFileDurably(const llvm::Twine &Path, llvm::StringRef Data, unsigned Mode = 0600);

/// fsyncs a directory so that the names created or renamed in it are durable.
llvm::Error syncDirectory(const llvm::Twine &Path);

/// Reads a whole regular file with read(2) (no mmap: a file truncated underneath a mapping
/// would kill the process with SIGBUS).
llvm::Expected<std::string> readWholeFile(const llvm::Twine &Path);

/// Creates Path and its missing parents with Mode (exactly, e.g. 0700 or 02770 for a shared
/// cache: the umask does not apply to the directories created here; existing ones are kept).
llvm::Error makeDirectories(llvm::StringRef Path, unsigned Mode = 0700);

/// Creates a fresh directory "<Parent>/<Prefix>-<pid>-<random>" with Mode (exactly) and returns
/// its path. Retries a few times should the name exist already.
llvm::Expected<std::string> createUniqueDirectory(llvm::StringRef Parent, llvm::StringRef Prefix,
                                                  unsigned Mode = 0700);

/// A fresh name "<Parent>/<Prefix>-<pid>-<random>" that is not created (for renaming aside).
std::string uniqueName(llvm::StringRef Parent, llvm::StringRef Prefix);

/// Sum of the sizes of the regular files directly in Dir; 0 where Dir cannot be read.
uint64_t directoryFileBytes(const llvm::Twine &Dir);

/// Removes a directory tree, or a file, ignoring errors (cleanup of leftovers).
void removeTree(const std::string &Path);

} // namespace fileio
} // namespace mhcjit
