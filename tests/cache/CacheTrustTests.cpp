// mhcjit tests: who may write a cache (refusal of caches others can write, as ssh refuses a
// loose ~/.ssh) and the modes of a private and of a shared (group) cache.
#include "cache/CacheTestSupport.h"

#include "mhcjit/DiskCache.h"

#include "doctest/doctest.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::testing;

namespace {

/// The message of checkTrusted(ForWriting), or "" when the cache is trusted.
std::string distrust(const DiskCache &Cache, bool ForWriting) {
  llvm::Error E = Cache.checkTrusted(ForWriting);
  return E ? llvm::toString(std::move(E)) : std::string();
}

bool contains(const std::string &Text, const std::string &Needle) {
  return Text.find(Needle) != std::string::npos;
}

/// A group of this process that is not the user's private group (named like the user), so a
/// directory given to it is writable by other people; -1 if there is none to use.
gid_t foreignGroup() {
  std::vector<gid_t> Groups(256);
  int Count = ::getgroups(static_cast<int>(Groups.size()), Groups.data());
  Groups.resize(Count > 0 ? Count : 0);
  if (::geteuid() == 0)
    Groups.push_back(65534); // nogroup: root may give a directory to any group
  struct passwd *User = ::getpwuid(::geteuid());
  for (gid_t Gid : Groups) {
    struct group *Group = ::getgrgid(Gid);
    if (Group && User && std::string(Group->gr_name) != User->pw_name)
      return Gid;
    if (!Group && ::geteuid() == 0)
      return Gid; // a nameless group is nobody's private group
  }
  return static_cast<gid_t>(-1);
}

} // namespace

TEST_CASE("a cache that every user can write is refused for reading and writing") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Root = Scratch.sub("cache");
  REQUIRE(!llvm::sys::fs::create_directories(Root));
  std::string Loose = Root;
  SUBCASE("the root") {}
  SUBCASE("its v1 directory") {
    Loose = join(Root, "v1");
    REQUIRE(!llvm::sys::fs::create_directories(Loose));
  }
  REQUIRE(::chmod(Loose.c_str(), 0777) == 0);
  for (CacheSharing Sharing : {CacheSharing::Private, CacheSharing::Shared}) {
    DiskCache Cache(Root, Sharing);
    std::string Why = distrust(Cache, /*ForWriting=*/false);
    CAPTURE(Why);
    CHECK(contains(Why, "refusing the kernel cache directory '" + Loose + "'"));
    CHECK(contains(Why, "every user can write it (mode 0777)"));
    CHECK(contains(Why, "chmod o-w " + Loose));
    CHECK_FALSE(distrust(Cache, /*ForWriting=*/true).empty());

    llvm::Error E = Cache.publish(makeEntry());
    REQUIRE(static_cast<bool>(E));
    CHECK(contains(llvm::toString(std::move(E)), "every user can write it"));
    CHECK_FALSE(llvm::sys::fs::exists(Cache.entryPath(makeEntry().Key)));
  }
}

TEST_CASE("a group-writable cache is refused unless the cache is shared") {
  gid_t Group = foreignGroup();
  if (Group == static_cast<gid_t>(-1)) {
    MESSAGE("skipped: this user has no group other than a private one to give the cache to");
    return;
  }
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Root = Scratch.sub("cache");
  REQUIRE(!llvm::sys::fs::create_directories(Root));
  REQUIRE(::chown(Root.c_str(), static_cast<uid_t>(-1), Group) == 0);
  REQUIRE(::chmod(Root.c_str(), 0770) == 0);

  DiskCache Private(Root, CacheSharing::Private);
  std::string Why = distrust(Private, /*ForWriting=*/false);
  CAPTURE(Why);
  CHECK(contains(Why, "its group can write it (mode 0770)"));
  CHECK(contains(Why, "chmod g-w " + Root));
  CHECK(contains(Why, "MHCJIT_CACHE_SHARED=1"));

  DiskCache Shared(Root, CacheSharing::Shared);
  CHECK(distrust(Shared, /*ForWriting=*/false).empty());
  CHECK(distrust(Shared, /*ForWriting=*/true).empty());
  llvm::Error E = Shared.publish(makeEntry());
  CHECK_MESSAGE(!E, llvm::toString(std::move(E)));
  CHECK(Shared.lookup(makeEntry().Key).Entry.hasValue());
}

TEST_CASE("a group-writable cache whose group is the owner's private group is the owner's") {
  struct passwd *User = ::getpwuid(::geteuid());
  struct group *Primary = User ? ::getgrgid(User->pw_gid) : nullptr;
  bool PrivateGroup = Primary && std::string(Primary->gr_name) == User->pw_name;
  for (char **Member = Primary ? Primary->gr_mem : nullptr; Member && *Member; ++Member)
    PrivateGroup &= std::string(*Member) == User->pw_name;
  if (!PrivateGroup) {
    MESSAGE("skipped: this user's primary group is not a private group");
    return;
  }
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Root = Scratch.sub("cache");
  REQUIRE(!llvm::sys::fs::create_directories(Root));
  REQUIRE(::chown(Root.c_str(), static_cast<uid_t>(-1), User->pw_gid) == 0);
  REQUIRE(::chmod(Root.c_str(), 0775) == 0); // what umask 002 gives a mkdir
  CHECK(distrust(DiskCache(Root), /*ForWriting=*/true).empty());
}

TEST_CASE("a cache owned by another user is refused for writing but may be read") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: only root can give a directory to another user");
    return;
  }
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  const std::string Root = Scratch.sub("cache");
  REQUIRE(!llvm::sys::fs::create_directories(Root));
  REQUIRE(::chmod(Root.c_str(), 0755) == 0);
  REQUIRE(::chown(Root.c_str(), 65534, static_cast<gid_t>(-1)) == 0);
  DiskCache Cache(Root);
  std::string Why = distrust(Cache, /*ForWriting=*/true);
  CAPTURE(Why);
  CHECK(contains(Why, "not to you"));
  CHECK(contains(Why, "MHCJIT_CACHE_PATH"));
  CHECK(distrust(Cache, /*ForWriting=*/false).empty()); // a read-only layer may be anyone's
  llvm::Error E = Cache.publish(makeEntry());
  REQUIRE(static_cast<bool>(E));
  llvm::consumeError(std::move(E));
  CHECK_FALSE(llvm::sys::fs::exists(join(Root, "v1")));
  // A shared cache may have been created by another member of the group.
  CHECK(distrust(DiskCache(Root, CacheSharing::Shared), /*ForWriting=*/true).empty());
}

TEST_CASE("a cache root that is not a directory is refused; a missing one is fine") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  writeFile(Scratch.sub("file"), "not a cache");
  CHECK(contains(distrust(DiskCache(Scratch.sub("file")), false), "not a directory"));
  CHECK(distrust(DiskCache(Scratch.sub("missing")), true).empty());
  CHECK_FALSE(llvm::sys::fs::exists(Scratch.sub("missing"))); // checking creates nothing
}

TEST_CASE("a shared cache creates setgid group-writable directories and group-writable files") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  mode_t Old = ::umask(022); // the usual umask would strip the group's write bit
  DiskCache Cache(Scratch.sub("shared"), CacheSharing::Shared);
  CacheEntry Entry = makeEntry();
  llvm::Error E = Cache.publish(Entry);
  ::umask(Old);
  REQUIRE_MESSAGE(!E, llvm::toString(std::move(E)));
  std::string Dir = Cache.entryPath(Entry.Key);
  for (const std::string &Path : {Cache.root(), join(Cache.root(), "v1"),
                                  llvm::sys::path::parent_path(Dir).str(), Dir})
    CHECK_MESSAGE(modeOf(Path) == 02770, Path);
  for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json", "last-used"})
    CHECK_MESSAGE(modeOf(join(Dir, Name)) == 0660, Name);
  CHECK(Cache.lookup(Entry.Key).Entry.hasValue());
  Cache.touch(Entry.Key);
  CHECK(modeOf(join(Dir, "last-used")) == 0660);
}

TEST_CASE("a private cache creates 0700 directories and 0600 files whatever the umask") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  mode_t Old = ::umask(0);
  DiskCache Cache(Scratch.sub("private"));
  CacheEntry Entry = makeEntry();
  llvm::Error E = Cache.publish(Entry);
  ::umask(Old);
  REQUIRE_MESSAGE(!E, llvm::toString(std::move(E)));
  std::string Dir = Cache.entryPath(Entry.Key);
  for (const std::string &Path : {Cache.root(), join(Cache.root(), "v1"), Dir})
    CHECK_MESSAGE(modeOf(Path) == 0700, Path);
  for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json", "last-used"})
    CHECK_MESSAGE(modeOf(join(Dir, Name)) == 0600, Name);
}
