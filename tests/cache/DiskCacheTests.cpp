// mhcjit tests: the on-disk kernel cache (publish, lookup, validation, races, listing, roots).
// Each test works in its own scratch directory; bad entries must be misses, never crashes.
#include "cache/CacheTestSupport.h"

#include "mhcjit/DiskCache.h"
#include "mhcjit/Sha256.h"

#include "doctest/doctest.h"

#include "llvm/Support/Chrono.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::testing;

namespace {

/// Copies the files of one entry directory into another (created).
void copyEntryDir(const std::string &From, const std::string &To) {
  REQUIRE(!llvm::sys::fs::create_directories(To));
  for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json", "last-used"})
    writeFile(join(To, Name), readFile(join(From, Name)));
}

} // namespace

TEST_CASE("a published entry looks up with identical bytes and fields") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);

  std::string Dir = Cache.entryPath(Entry.Key);
  CHECK(Dir == join(Scratch.sub("cache"), "v1/" + Entry.Key.substr(0, 2) + "/" + Entry.Key));
  for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json", "last-used"})
    CHECK_MESSAGE(llvm::sys::fs::exists(join(Dir, Name)), Name);
  CHECK(readFile(join(Dir, "kernel.cubin")) == Entry.Cubin);
  CHECK(readFile(join(Dir, "kernel.cu")) == Entry.Source);

  CacheLookup Found = Cache.lookup(Entry.Key);
  REQUIRE_MESSAGE(Found.Entry.hasValue(), Found.Rejected);
  CHECK(Found.Rejected.empty());
  const CacheEntry &Got = *Found.Entry;
  CHECK(Got.Key == Entry.Key);
  CHECK(Got.Cubin == Entry.Cubin);
  CHECK(Got.Source == Entry.Source);
  CHECK(Got.LoweredName == Entry.LoweredName);
  CHECK(Got.CompileLog == Entry.CompileLog);
  CHECK(Got.CompileSeconds == Entry.CompileSeconds);
  CHECK(renderKeyRecord(Got.Record) == renderKeyRecord(Entry.Record));
  CHECK(Got.Resources.Registers == 40);
  CHECK(Got.Resources.SpillStoreBytes == 0);
  CHECK(Got.Resources.SpillLoadBytes == 0);
  CHECK(Got.Resources.SharedBytes == 0);
  CHECK(Got.Resources.StackBytes == 16);
  CHECK(Got.Resources.ConstantBytes == 380);
}

TEST_CASE("the manifest records the key, the record, the cubin checksum and the resources") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string Manifest = readFile(join(Cache.entryPath(Entry.Key), "manifest.json"));
  for (const std::string &Needle :
       {"\"key\": \"" + Entry.Key + "\"", "\"cubin_sha256\": \"" + sha256Hex(Entry.Cubin) + "\"",
        "\"cubin_bytes\": " + std::to_string(Entry.Cubin.size()), std::string("\"options\": ["),
        std::string("\"arch\": \"sm_90a\""), std::string("\"registers\": 40"),
        std::string("\"spill_store_bytes\": 0"), std::string("\"constant_bytes\": 380"),
        std::string("\"lowered_name\""), std::string("\"compile_log\""),
        std::string("\"compile_seconds\": 0.625"), std::string("\"created_unix\"")})
    CHECK_MESSAGE(Manifest.find(Needle) != std::string::npos, Needle);
}

TEST_CASE("looking up a missing key is a clean miss that creates nothing") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  std::string Root = Scratch.sub("cache");
  DiskCache Cache(Root);
  CacheEntry Entry = makeEntry();

  CacheLookup Found = Cache.lookup(Entry.Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK(Found.Rejected.empty());
  Cache.touch(Entry.Key);
  CHECK_FALSE(llvm::sys::fs::exists(Root));

  // Also a miss, with nothing created, when the root exists but the shard does not.
  REQUIRE(!llvm::sys::fs::create_directories(Root));
  Found = Cache.lookup(Entry.Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK(Found.Rejected.empty());
  CHECK_FALSE(llvm::sys::fs::exists(join(Root, "v1")));
}

TEST_CASE("looking up something that is not a key is a miss with a reason") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  for (const char *Bad : {"", "../../etc", "ABCDEF", "zz"}) {
    CacheLookup Found = Cache.lookup(Bad);
    CHECK_FALSE(Found.Entry.hasValue());
    CHECK_FALSE(Found.Rejected.empty());
  }
  CHECK_FALSE(llvm::sys::fs::exists(Scratch.sub("cache")));
}

TEST_CASE("a truncated cubin is rejected") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  writeFile(join(Cache.entryPath(Entry.Key), "kernel.cubin"),
            Entry.Cubin.substr(0, Entry.Cubin.size() / 2));

  CacheLookup Found = Cache.lookup(Entry.Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK_MESSAGE(Found.Rejected.find("bytes") != std::string::npos, Found.Rejected);
}

TEST_CASE("a cubin with one flipped byte is rejected") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string Flipped = Entry.Cubin;
  Flipped[Flipped.size() / 3] ^= 0x01;
  writeFile(join(Cache.entryPath(Entry.Key), "kernel.cubin"), Flipped);

  CacheLookup Found = Cache.lookup(Entry.Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK_MESSAGE(Found.Rejected.find("sha256") != std::string::npos, Found.Rejected);
}

TEST_CASE("a garbled manifest is rejected") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string ManifestPath = join(Cache.entryPath(Entry.Key), "manifest.json");
  std::string Good = readFile(ManifestPath);

  SUBCASE("not JSON at all") { writeFile(ManifestPath, "{\"key\": \"trunc"); }
  SUBCASE("binary garbage") { writeFile(ManifestPath, std::string("\0\xff\x13\x37", 4)); }
  SUBCASE("JSON that is not an object") { writeFile(ManifestPath, "[1, 2, 3]"); }
  SUBCASE("an empty file") { writeFile(ManifestPath, ""); }
  SUBCASE("a field missing") {
    size_t At = Good.find("\"cubin_sha256\"");
    REQUIRE(At != std::string::npos);
    std::string Renamed = Good;
    Renamed.replace(At, 14, "\"cubin_sha255\"");
    writeFile(ManifestPath, Renamed);
  }
  SUBCASE("a field of the wrong type") {
    size_t At = Good.find("\"registers\": 40");
    REQUIRE(At != std::string::npos);
    std::string Retyped = Good;
    Retyped.replace(At, 15, "\"registers\": \"40\"");
    writeFile(ManifestPath, Retyped);
  }
  SUBCASE("the manifest removed") { REQUIRE(!llvm::sys::fs::remove(ManifestPath)); }

  CacheLookup Found = Cache.lookup(Entry.Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK_MESSAGE(Found.Rejected.find("manifest") != std::string::npos, Found.Rejected);
}

TEST_CASE("an entry with a missing cubin or source is rejected") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  const char *Missing = "kernel.cubin";
  SUBCASE("cubin") { Missing = "kernel.cubin"; }
  SUBCASE("source") { Missing = "kernel.cu"; }
  REQUIRE(!llvm::sys::fs::remove(join(Cache.entryPath(Entry.Key), Missing)));

  CacheLookup Found = Cache.lookup(Entry.Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK_MESSAGE(Found.Rejected.find(Missing) != std::string::npos, Found.Rejected);
}

TEST_CASE("a valid entry copied under another key's directory is rejected") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry(7168);
  std::string OtherKey = cacheKey(testing::makeRecord(4096));
  REQUIRE(OtherKey != Entry.Key);
  publishOrFail(Cache, Entry);
  copyEntryDir(Cache.entryPath(Entry.Key), Cache.entryPath(OtherKey));

  SUBCASE("as it was") {}
  SUBCASE("with the manifest's key edited to fit") {
    std::string ManifestPath = join(Cache.entryPath(OtherKey), "manifest.json");
    std::string Text = readFile(ManifestPath);
    size_t At = Text.find(Entry.Key);
    REQUIRE(At != std::string::npos);
    Text.replace(At, Entry.Key.size(), OtherKey);
    writeFile(ManifestPath, Text);
  }

  CacheLookup Found = Cache.lookup(OtherKey);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK_FALSE(Found.Rejected.empty());
  // The original is untouched.
  CHECK(Cache.lookup(Entry.Key).Entry.hasValue());
}

TEST_CASE("publishing over an invalid entry replaces it") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string Dir = Cache.entryPath(Entry.Key);

  SUBCASE("a truncated cubin") { writeFile(join(Dir, "kernel.cubin"), "\x7f" "ELF"); }
  SUBCASE("a garbled manifest") { writeFile(join(Dir, "manifest.json"), "not json"); }
  SUBCASE("an empty directory left by a crash") {
    REQUIRE(!llvm::sys::fs::remove_directories(Dir));
    REQUIRE(!llvm::sys::fs::create_directory(Dir));
  }
  SUBCASE("a regular file in the entry's place") {
    REQUIRE(!llvm::sys::fs::remove_directories(Dir));
    writeFile(Dir, "junk");
  }
  REQUIRE_FALSE(Cache.lookup(Entry.Key).Entry.hasValue());

  publishOrFail(Cache, Entry);
  CacheLookup Found = Cache.lookup(Entry.Key);
  REQUIRE_MESSAGE(Found.Entry.hasValue(), Found.Rejected);
  CHECK(Found.Entry->Cubin == Entry.Cubin);
  CHECK(namesStartingWith(Cache.root(), ".tmp-").empty());
  CHECK(namesStartingWith(Cache.root(), ".trash-").empty());
}

TEST_CASE("publishing when a valid entry exists succeeds and keeps the existing entry") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry First = makeEntry();
  publishOrFail(Cache, First);

  // Same key (same record), another compile: the first published entry stays.
  CacheEntry Second = First;
  Second.CompileLog = "a later compile\n";
  Second.CompileSeconds = 9.5;
  publishOrFail(Cache, Second);

  CacheLookup Found = Cache.lookup(First.Key);
  REQUIRE_MESSAGE(Found.Entry.hasValue(), Found.Rejected);
  CHECK(Found.Entry->CompileLog == First.CompileLog);
  CHECK(namesStartingWith(Cache.root(), ".tmp-").empty());
  CHECK(namesStartingWith(Cache.root(), ".trash-").empty());
}

TEST_CASE("publishing leaves no temporary directories behind") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  for (int64_t C : {256, 1024, 4096, 7168, 8192})
    publishOrFail(Cache, makeEntry(C));
  CHECK(namesStartingWith(Cache.root(), ".tmp-").empty());
  CHECK(namesStartingWith(Cache.root(), ".").empty());
  for (int64_t C : {256, 1024, 4096, 7168, 8192})
    CHECK(Cache.lookup(makeEntry(C).Key).Entry.hasValue());
}

TEST_CASE("concurrent publishers of one key all succeed and leave one valid entry") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  const CacheEntry Entry = makeEntry();
  constexpr int Publishers = 8;
  std::vector<std::string> Failures(Publishers);
  std::vector<std::thread> Threads;
  for (int I = 0; I < Publishers; ++I)
    Threads.emplace_back([&, I] {
      DiskCache Own(Cache.root());
      if (llvm::Error E = Own.publish(Entry))
        Failures[I] = llvm::toString(std::move(E));
    });
  for (std::thread &T : Threads)
    T.join();
  for (const std::string &Failure : Failures)
    CHECK_MESSAGE(Failure.empty(), Failure);

  CacheLookup Found = Cache.lookup(Entry.Key);
  REQUIRE_MESSAGE(Found.Entry.hasValue(), Found.Rejected);
  CHECK(Found.Entry->Cubin == Entry.Cubin);
  CHECK(namesStartingWith(Cache.root(), ".").empty());
}

TEST_CASE("concurrent publishing processes of one key all succeed and leave one valid entry") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  const CacheEntry Entry = makeEntry();
  // NOTE: separate processes (like 8 ranks of one node) get distinct pids in their temp names;
  // a child only publishes and leaves with _exit, so it runs no doctest machinery.
  std::vector<pid_t> Children;
  for (int I = 0; I < 6; ++I) {
    pid_t Pid = ::fork();
    REQUIRE(Pid >= 0);
    if (Pid == 0) {
      llvm::Error E = DiskCache(Cache.root()).publish(Entry);
      bool Failed = static_cast<bool>(E);
      llvm::consumeError(std::move(E));
      ::_exit(Failed ? 1 : 0);
    }
    Children.push_back(Pid);
  }
  for (pid_t Pid : Children) {
    int Status = 0;
    REQUIRE(::waitpid(Pid, &Status, 0) == Pid);
    CHECK(WIFEXITED(Status));
    CHECK(WEXITSTATUS(Status) == 0);
  }
  CHECK(Cache.lookup(Entry.Key).Entry.hasValue());
  CHECK(namesStartingWith(Cache.root(), ".").empty());
}

TEST_CASE("publishing creates directories and files private to the user") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string Dir = Cache.entryPath(Entry.Key);
  struct stat Status;
  for (const std::string &Path : {Cache.root(), llvm::sys::path::parent_path(Dir).str(), Dir}) {
    REQUIRE(::stat(Path.c_str(), &Status) == 0);
    CHECK_MESSAGE((Status.st_mode & 077) == 0, Path);
  }
  REQUIRE(::stat(join(Dir, "kernel.cubin").c_str(), &Status) == 0);
  CHECK((Status.st_mode & 0777) == 0600);
}

TEST_CASE("publishing an entry whose key does not match its record is an error") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  Entry.Record.Arch = "sm_100a"; // the key was computed for sm_90a
  llvm::Error E = Cache.publish(Entry);
  REQUIRE(static_cast<bool>(E));
  CHECK(llvm::toString(std::move(E)).find(Entry.Key) != std::string::npos);
  CHECK_FALSE(llvm::sys::fs::exists(Cache.root()));
}

TEST_CASE("publishing under a regular file returns an error instead of crashing") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  std::string Blocker = Scratch.sub("not-a-directory");
  writeFile(Blocker, "I am a file");
  DiskCache Cache(join(Blocker, "cache"));
  llvm::Error E = Cache.publish(makeEntry());
  REQUIRE(static_cast<bool>(E));
  std::string Message = llvm::toString(std::move(E));
  CHECK_MESSAGE(Message.find(Blocker) != std::string::npos, Message);
  CHECK_MESSAGE(Message.find("Not a directory") != std::string::npos, Message);
  // Reading such a cache is a clean miss and an empty listing.
  CacheLookup Found = Cache.lookup(makeEntry().Key);
  CHECK_FALSE(Found.Entry.hasValue());
  CHECK(Found.Rejected.empty());
  llvm::Expected<std::vector<CacheEntrySummary>> Listed = Cache.list();
  REQUIRE(static_cast<bool>(Listed));
  CHECK(Listed->empty());
}

TEST_CASE("publishing into a read-only directory returns an error") {
  if (::geteuid() == 0) {
    MESSAGE("skipped: running as root, where a read-only mode does not stop writes");
    return;
  }
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  std::string Root = Scratch.sub("cache");
  REQUIRE(!llvm::sys::fs::create_directories(join(Root, "v1")));
  REQUIRE(::chmod(join(Root, "v1").c_str(), 0500) == 0);
  DiskCache Cache(Root);
  llvm::Error E = Cache.publish(makeEntry());
  ::chmod(join(Root, "v1").c_str(), 0700);
  REQUIRE(static_cast<bool>(E));
  std::string Message = llvm::toString(std::move(E));
  CHECK_MESSAGE(Message.find("Permission denied") != std::string::npos, Message);
}

TEST_CASE("list reports valid and invalid entries with their sizes") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));

  llvm::Expected<std::vector<CacheEntrySummary>> Empty = Cache.list();
  REQUIRE(static_cast<bool>(Empty));
  CHECK(Empty->empty());

  CacheEntry Good = makeEntry(1024);
  CacheEntry Bad = makeEntry(2048);
  publishOrFail(Cache, Good);
  publishOrFail(Cache, Bad);
  writeFile(join(Cache.entryPath(Bad.Key), "kernel.cubin"), "short");
  // Leftovers of a crashed publisher are not entries.
  REQUIRE(!llvm::sys::fs::create_directories(
      join(llvm::sys::path::parent_path(Cache.entryPath(Good.Key)), ".tmp-crashed")));

  int64_t Now = static_cast<int64_t>(std::time(nullptr));
  llvm::Expected<std::vector<CacheEntrySummary>> Listed = Cache.list();
  REQUIRE(static_cast<bool>(Listed));
  REQUIRE(Listed->size() == 2);
  for (const CacheEntrySummary &S : *Listed) {
    const CacheEntry &Original = S.Key == Good.Key ? Good : Bad;
    CAPTURE(S.Key);
    CHECK(S.Path == Cache.entryPath(S.Key));
    CHECK(S.SpecRecord == Original.Record.SpecRecord);
    CHECK(S.Arch == "sm_90a");
    CHECK(S.LastUsedUnix >= Now - 60);
    CHECK(S.LastUsedUnix <= Now + 60);
    std::string Dir = Cache.entryPath(S.Key);
    uint64_t Expected = 0;
    for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json", "last-used"})
      Expected += readFile(join(Dir, Name)).size();
    CHECK(S.Bytes == Expected);
    if (S.Key == Good.Key) {
      CHECK(S.Valid);
      CHECK(S.Problem.empty());
      CHECK(S.Bytes > Good.Cubin.size());
    } else {
      CHECK(S.Key == Bad.Key);
      CHECK_FALSE(S.Valid);
      CHECK_MESSAGE(S.Problem.find("bytes") != std::string::npos, S.Problem);
    }
  }
}

TEST_CASE("touch moves the last-used stamp to now") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string Stamp = join(Cache.entryPath(Entry.Key), "last-used");

  // Age the stamp to 2001, then touch it.
  int Fd = -1;
  REQUIRE(!llvm::sys::fs::openFileForWrite(Stamp, Fd, llvm::sys::fs::CD_OpenExisting));
  CHECK(!llvm::sys::fs::setLastAccessAndModificationTime(Fd, llvm::sys::toTimePoint(1000000000)));
  ::close(Fd);
  auto LastUsed = [&] {
    llvm::Expected<std::vector<CacheEntrySummary>> Listed = Cache.list();
    REQUIRE(static_cast<bool>(Listed));
    REQUIRE(Listed->size() == 1);
    return Listed->front().LastUsedUnix;
  };
  CHECK(LastUsed() == 1000000000);

  Cache.touch(Entry.Key);
  CHECK(LastUsed() >= static_cast<int64_t>(std::time(nullptr)) - 60);
  CHECK(Cache.lookup(Entry.Key).Entry.hasValue());
}

TEST_CASE("the default root honours MHCJIT_CACHE_DIR, then XDG_CACHE_HOME, then HOME") {
  EnvironmentGuard Guard({"MHCJIT_CACHE_DIR", "XDG_CACHE_HOME", "HOME"});
  ::setenv("HOME", "/home/tester", 1);
  ::setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
  ::setenv("MHCJIT_CACHE_DIR", "/scratch/kernels", 1);
  CHECK(DiskCache::defaultRoot() == "/scratch/kernels");

  ::setenv("MHCJIT_CACHE_DIR", "", 1);
  CHECK(DiskCache::defaultRoot() == "/xdg/cache/mhcjit");
  ::unsetenv("MHCJIT_CACHE_DIR");
  CHECK(DiskCache::defaultRoot() == "/xdg/cache/mhcjit");

  ::setenv("XDG_CACHE_HOME", "", 1);
  CHECK(DiskCache::defaultRoot() == "/home/tester/.cache/mhcjit");
  ::setenv("XDG_CACHE_HOME", "relative/cache", 1); // invalid per the XDG spec: ignored
  CHECK(DiskCache::defaultRoot() == "/home/tester/.cache/mhcjit");
  ::unsetenv("XDG_CACHE_HOME");
  CHECK(DiskCache::defaultRoot() == "/home/tester/.cache/mhcjit");
}
