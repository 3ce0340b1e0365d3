// mhcjit tests: the per-key node-local lock (exclusion across processes, timeouts, crashes).
// Children are forked, only lock and unlock, and leave with _exit (no doctest machinery).
#include "cache/CacheTestSupport.h"

#include "mhcjit/KeyLock.h"

#include "doctest/doctest.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"

#include <chrono>
#include <csignal>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace mhcjit;
using namespace mhcjit::testing;
using std::chrono::milliseconds;

namespace {

const std::string Key = cacheKey(makeRecord(7168));

/// Locks Key in Dir or fails the test.
KeyLock lockOrFail(const std::string &Dir, milliseconds Timeout) {
  llvm::Expected<KeyLock> Lock = KeyLock::acquire(Dir, Key, Timeout);
  REQUIRE_MESSAGE(static_cast<bool>(Lock), llvm::toString(Lock.takeError()));
  return std::move(*Lock);
}

/// Runs Body in a forked child and returns its exit status (the child's Body returns it).
template <typename Fn> int inChild(Fn Body) {
  pid_t Pid = ::fork();
  REQUIRE(Pid >= 0);
  if (Pid == 0)
    ::_exit(Body());
  int Status = 0;
  REQUIRE(::waitpid(Pid, &Status, 0) == Pid);
  REQUIRE(WIFEXITED(Status));
  return WEXITSTATUS(Status);
}

/// In a child: 0 when acquire(Timeout) ends as Expect says ("held" or "timed out").
int childTries(const std::string &Dir, milliseconds Timeout, bool ExpectHeld) {
  llvm::Expected<KeyLock> Lock = KeyLock::acquire(Dir, Key, Timeout);
  if (!Lock) {
    llvm::consumeError(Lock.takeError());
    return 2;
  }
  if (ExpectHeld)
    return Lock->held() ? 0 : 1;
  return !Lock->held() && Lock->timedOut() && Lock->waited() ? 0 : 1;
}

} // namespace

TEST_CASE("a key lock excludes other processes until it is released, and leaves no file") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("locks");
  KeyLock Lock = lockOrFail(Dir, milliseconds(0));
  CHECK(Lock.held());
  CHECK_FALSE(Lock.waited());
  CHECK(llvm::sys::fs::exists(join(Dir, Key + ".lock")));

  auto Start = std::chrono::steady_clock::now();
  CHECK(inChild([&] { return childTries(Dir, milliseconds(200), /*ExpectHeld=*/false); }) == 0);
  CHECK(std::chrono::steady_clock::now() - Start >= milliseconds(200)); // it did wait

  Lock.release();
  CHECK_FALSE(Lock.held());
  CHECK_FALSE(llvm::sys::fs::exists(join(Dir, Key + ".lock")));
  CHECK(inChild([&] { return childTries(Dir, milliseconds(0), /*ExpectHeld=*/true); }) == 0);
  CHECK(namesStartingWith(Dir, "").empty());
}

TEST_CASE("a waiter gets the lock as soon as the holder releases it") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("locks");
  int Ready[2];
  REQUIRE(::pipe(Ready) == 0);
  pid_t Holder = ::fork();
  REQUIRE(Holder >= 0);
  if (Holder == 0) {
    llvm::Expected<KeyLock> Lock = KeyLock::acquire(Dir, Key, milliseconds(0));
    bool Held = Lock && Lock->held();
    if (!Lock)
      llvm::consumeError(Lock.takeError());
    char Byte = Held ? 'y' : 'n';
    (void)!::write(Ready[1], &Byte, 1);
    ::usleep(300 * 1000); // "compiling"
    ::_exit(0);           // runs no destructor: the kernel drops the lock with the process
  }
  char Byte = 0;
  REQUIRE(::read(Ready[0], &Byte, 1) == 1);
  REQUIRE(Byte == 'y');
  auto Start = std::chrono::steady_clock::now();
  KeyLock Lock = lockOrFail(Dir, milliseconds(30000));
  auto Waited = std::chrono::steady_clock::now() - Start;
  CHECK(Lock.held());
  CHECK(Lock.waited());
  CHECK_FALSE(Lock.timedOut());
  CHECK(Waited >= milliseconds(200));
  CHECK(Waited < milliseconds(5000));
  int Status = 0;
  ::waitpid(Holder, &Status, 0);
  ::close(Ready[0]);
  ::close(Ready[1]);
}

TEST_CASE("a lock held by a process killed with SIGKILL is free at once") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("locks");
  int Ready[2];
  REQUIRE(::pipe(Ready) == 0);
  pid_t Holder = ::fork();
  REQUIRE(Holder >= 0);
  if (Holder == 0) {
    llvm::Expected<KeyLock> Lock = KeyLock::acquire(Dir, Key, milliseconds(0));
    char Byte = Lock && Lock->held() ? 'y' : 'n';
    (void)!::write(Ready[1], &Byte, 1);
    for (;;)
      ::pause();
  }
  char Byte = 0;
  REQUIRE(::read(Ready[0], &Byte, 1) == 1);
  REQUIRE(Byte == 'y');
  CHECK(inChild([&] { return childTries(Dir, milliseconds(50), /*ExpectHeld=*/false); }) == 0);
  REQUIRE(::kill(Holder, SIGKILL) == 0);
  int Status = 0;
  REQUIRE(::waitpid(Holder, &Status, 0) == Holder);
  CHECK(WIFSIGNALED(Status));
  // The dead holder's lock file is still there, but unlocked.
  CHECK(llvm::sys::fs::exists(join(Dir, Key + ".lock")));
  KeyLock Lock = lockOrFail(Dir, milliseconds(0));
  CHECK(Lock.held());
  CHECK_FALSE(Lock.waited());
  ::close(Ready[0]);
  ::close(Ready[1]);
}

TEST_CASE("the default lock directory is node-local and the lock directory is private") {
  std::string Default = KeyLock::defaultDirectory();
  CAPTURE(Default);
  const std::string Suffix = "/mhcjit-locks-" + std::to_string(::geteuid());
  CHECK(llvm::StringRef(Default).endswith(Suffix));
  if (llvm::sys::fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK | X_OK) == 0)
    CHECK(Default == "/dev/shm" + Suffix);

  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("locks");
  KeyLock Lock = lockOrFail(Dir, milliseconds(0));
  CHECK(modeOf(Dir) == 0700);
  CHECK((modeOf(join(Dir, Key + ".lock")) & 077) == 0);
}

TEST_CASE("a lock directory that others can write, or that is a link, is refused") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Dir = Scratch.sub("locks");
  SUBCASE("world-writable") {
    REQUIRE(!llvm::sys::fs::create_directory(Dir));
    REQUIRE(::chmod(Dir.c_str(), 0777) == 0);
  }
  SUBCASE("group-writable") {
    REQUIRE(!llvm::sys::fs::create_directory(Dir));
    REQUIRE(::chmod(Dir.c_str(), 0770) == 0);
  }
  SUBCASE("a symlink to a private directory") {
    REQUIRE(!llvm::sys::fs::create_directory(Scratch.sub("real")));
    REQUIRE(::chmod(Scratch.sub("real").c_str(), 0700) == 0);
    REQUIRE(!llvm::sys::fs::create_link(Scratch.sub("real"), Dir));
  }
  llvm::Expected<KeyLock> Lock = KeyLock::acquire(Dir, Key, milliseconds(0));
  REQUIRE_FALSE(static_cast<bool>(Lock));
  std::string Message = llvm::toString(Lock.takeError());
  CHECK_MESSAGE(Message.find("refusing the lock directory") != std::string::npos, Message);
  CHECK_MESSAGE(Message.find(Dir) != std::string::npos, Message);
}

TEST_CASE("only a cache key can name a lock") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  for (const char *Bad : {"", "../escape", "ABC", "x.lock"}) {
    llvm::Expected<KeyLock> Lock = KeyLock::acquire(Scratch.sub("locks"), Bad, milliseconds(0));
    CHECK_FALSE(static_cast<bool>(Lock));
    if (!Lock)
      llvm::consumeError(Lock.takeError());
  }
}
