// mhcjit cache: checked POSIX file I/O (durable writes, directory fsync, whole-file reads).
// NOTE: plain open/write/fsync instead of raw_fd_ostream, whose destructor aborts on I/O errors.
#include "FileIO.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mhcjit {
namespace fileio {

namespace {

/// Closes a file descriptor on scope exit unless release()d.
class FdGuard {
public:
  explicit FdGuard(int Fd) : Fd(Fd) {}
  ~FdGuard() {
    if (Fd >= 0)
      ::close(Fd);
  }
  FdGuard(const FdGuard &) = delete;
  FdGuard &operator=(const FdGuard &) = delete;
  int get() const { return Fd; }
  int release() {
    int Result = Fd;
    Fd = -1;
    return Result;
  }

private:
  int Fd;
};

/// open(2) that retries on EINTR; returns -1 with errno set on failure.
int openRetrying(const char *Path, int Flags, mode_t Mode = 0) {
  int Fd;
  do
    Fd = ::open(Path, Flags | O_CLOEXEC, Mode);
  while (Fd < 0 && errno == EINTR);
  return Fd;
}

/// 64 random bits for temporary names; collisions are survivable (callers retry on EEXIST).
uint64_t randomBits() {
  uint64_t Bits = 0;
  if (::getrandom(&Bits, sizeof(Bits), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(Bits)))
    return Bits;
  // NOTE: getrandom() can fail on old kernels or early at boot; the clock and a per-process
  // counter still keep threads and processes of this host apart in practice.
  static std::atomic<uint64_t> Counter{0};
  uint64_t Now = std::chrono::steady_clock::now().time_since_epoch().count();
  return Now ^ (Counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
}

} // namespace

llvm::Error errnoError(const llvm::Twine &What, const llvm::Twine &Path, int Errno) {
  return llvm::createStringError(std::error_code(Errno, std::generic_category()),
                                 What + " '" + Path + "': " + std::strerror(Errno));
}

llvm::Error writeFileDurably(const llvm::Twine &Path, llvm::StringRef Data, unsigned Mode) {
  llvm::SmallString<256> Storage;
  const char *CPath = Path.toNullTerminatedStringRef(Storage).data();
  FdGuard Fd(openRetrying(CPath, O_WRONLY | O_CREAT | O_EXCL, Mode));
  if (Fd.get() < 0)
    return errnoError("cannot create", Path, errno);
  // NOTE: the umask may have removed group bits a shared cache asked for; set them exactly.
  if ((Mode & 077) != 0 && ::fchmod(Fd.get(), Mode) != 0)
    return errnoError("cannot set the mode of", Path, errno);

  const char *Next = Data.data();
  size_t Left = Data.size();
  while (Left > 0) {
    ssize_t Written = ::write(Fd.get(), Next, Left);
    if (Written < 0) {
      if (errno == EINTR)
        continue;
      return errnoError("cannot write", Path, errno);
    }
    // NOTE: a regular file only returns 0 for a zero-length request; treat it as a full disk
    // rather than spinning.
    if (Written == 0)
      return errnoError("cannot write", Path, ENOSPC);
    Next += Written;
    Left -= static_cast<size_t>(Written);
  }

  if (::fsync(Fd.get()) != 0)
    return errnoError("cannot fsync", Path, errno);
  // NOTE: close() can report a deferred write error (NFS); it is not retried on EINTR because
  // the descriptor is released either way on Linux.
  if (::close(Fd.release()) != 0)
    return errnoError("cannot close", Path, errno);
  return llvm::Error::success();
}

llvm::Error syncDirectory(const llvm::Twine &Path) {
  llvm::SmallString<256> Storage;
  const char *CPath = Path.toNullTerminatedStringRef(Storage).data();
  FdGuard Fd(openRetrying(CPath, O_RDONLY | O_DIRECTORY));
  if (Fd.get() < 0)
    return errnoError("cannot open directory", Path, errno);
  if (::fsync(Fd.get()) != 0)
    return errnoError("cannot fsync directory", Path, errno);
  return llvm::Error::success();
}

llvm::Expected<std::string> readWholeFile(const llvm::Twine &Path) {
  llvm::SmallString<256> Storage;
  const char *CPath = Path.toNullTerminatedStringRef(Storage).data();
  FdGuard Fd(openRetrying(CPath, O_RDONLY));
  if (Fd.get() < 0)
    return errnoError("cannot open", Path, errno);
  struct stat Status;
  if (::fstat(Fd.get(), &Status) != 0)
    return errnoError("cannot stat", Path, errno);
  if (!S_ISREG(Status.st_mode))
    return errnoError("not a regular file", Path, EINVAL);

  std::string Contents;
  Contents.reserve(static_cast<size_t>(Status.st_size));
  char Buffer[64 * 1024];
  for (;;) {
    ssize_t Got = ::read(Fd.get(), Buffer, sizeof(Buffer));
    if (Got < 0) {
      if (errno == EINTR)
        continue;
      return errnoError("cannot read", Path, errno);
    }
    if (Got == 0)
      break;
    Contents.append(Buffer, static_cast<size_t>(Got));
  }
  return Contents;
}

llvm::Error makeDirectories(llvm::StringRef Path, unsigned Mode) {
  if (Path.empty() || llvm::sys::fs::is_directory(Path))
    return llvm::Error::success();
  // Example: for "/home/u/.cache/mhcjit/v1/3f" with "/home/u/.cache" present, this creates
  // ".../mhcjit", then ".../v1", then ".../3f", each with Mode.
  llvm::StringRef Parent = llvm::sys::path::parent_path(Path);
  if (!Parent.empty() && Parent != Path)
    if (llvm::Error E = makeDirectories(Parent, Mode))
      return E;
  std::string CPath = Path.str();
  if (::mkdir(CPath.c_str(), Mode) != 0) {
    if (errno == EEXIST && llvm::sys::fs::is_directory(Path)) // another process was first
      return llvm::Error::success();
    return errnoError("cannot create directory", Path, errno);
  }
  // NOTE: mkdir applies the umask and ignores the setgid bit on some systems; chmod sets both.
  if ((Mode & 07077) != 0 && ::chmod(CPath.c_str(), Mode) != 0)
    return errnoError("cannot set the mode of", Path, errno);
  return llvm::Error::success();
}

std::string uniqueName(llvm::StringRef Parent, llvm::StringRef Prefix) {
  std::string Name;
  llvm::raw_string_ostream OS(Name);
  OS << Prefix << '-' << ::getpid() << '-' << llvm::format_hex_no_prefix(randomBits(), 16);
  OS.flush();
  llvm::SmallString<256> Path(Parent);
  llvm::sys::path::append(Path, Name);
  return std::string(Path.str());
}

llvm::Expected<std::string> createUniqueDirectory(llvm::StringRef Parent, llvm::StringRef Prefix,
                                                  unsigned Mode) {
  constexpr int Attempts = 16;
  for (int Attempt = 0;; ++Attempt) {
    std::string Path = uniqueName(Parent, Prefix);
    if (::mkdir(Path.c_str(), Mode) == 0) {
      if ((Mode & 07077) != 0 && ::chmod(Path.c_str(), Mode) != 0) {
        int Errno = errno;
        ::rmdir(Path.c_str());
        return errnoError("cannot set the mode of", Path, Errno);
      }
      return Path;
    }
    if (errno != EEXIST || Attempt + 1 == Attempts)
      return errnoError("cannot create directory", Path, errno);
  }
}

uint64_t directoryFileBytes(const llvm::Twine &Dir) {
  uint64_t Bytes = 0;
  std::error_code EC;
  for (llvm::sys::fs::directory_iterator It(Dir, EC), End; !EC && It != End; It.increment(EC)) {
    llvm::sys::fs::file_status Status;
    if (llvm::sys::fs::status(It->path(), Status, /*Follow=*/false))
      continue;
    if (Status.type() == llvm::sys::fs::file_type::regular_file)
      Bytes += Status.getSize();
  }
  return Bytes;
}

void removeTree(const std::string &Path) {
  if (llvm::sys::fs::is_directory(Path))
    llvm::sys::fs::remove_directories(Path, /*IgnoreErrors=*/true);
  else
    llvm::sys::fs::remove(Path);
}

} // namespace fileio
} // namespace mhcjit
