// mhcjit tests: verify/repair, pruning by size and age (by the last-used stamp, not atime),
// stale temporaries of crashed writers, the automatic size policy, size and duration parsing.
#include "cache/CacheTestSupport.h"

#include "mhcjit/CacheMaintenance.h"
#include "mhcjit/DiskCache.h"

#include "doctest/doctest.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <ctime>
#include <set>
#include <unistd.h>

using namespace mhcjit;
using namespace mhcjit::testing;

namespace {

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

/// The keys a cheap scan finds.
std::set<std::string> keysOf(const DiskCache &Cache) {
  llvm::Expected<std::vector<StoredEntry>> Entries = scanEntries(Cache);
  REQUIRE_MESSAGE(static_cast<bool>(Entries), llvm::toString(Entries.takeError()));
  std::set<std::string> Keys;
  for (const StoredEntry &E : *Entries)
    Keys.insert(E.Key);
  return Keys;
}

uint64_t bytesOf(const DiskCache &Cache) {
  llvm::Expected<std::vector<StoredEntry>> Entries = scanEntries(Cache);
  REQUIRE(static_cast<bool>(Entries));
  uint64_t Bytes = 0;
  for (const StoredEntry &E : *Entries)
    Bytes += E.Bytes;
  return Bytes;
}

/// Entries of hidden sizes 1000, 2000, ... published with last-used stamps LastUsed[i], and
/// access times in the opposite order (so a prune by atime would pick the wrong ones).
std::vector<CacheEntry> publishAged(DiskCache &Cache, const std::vector<int64_t> &LastUsed) {
  std::vector<CacheEntry> Entries;
  for (size_t I = 0; I < LastUsed.size(); ++I) {
    Entries.push_back(makeEntry(1000 * static_cast<int64_t>(I + 1)));
    publishOrFail(Cache, Entries.back());
    setTimes(join(Cache.entryPath(Entries.back().Key), "last-used"),
             /*AccessUnix=*/LastUsed[LastUsed.size() - 1 - I], /*ModifyUnix=*/LastUsed[I]);
  }
  return Entries;
}

} // namespace

TEST_CASE("sizes parse with binary units and durations with s, m, h, d and w") {
  auto Size = [](llvm::StringRef Text) {
    llvm::Expected<uint64_t> V = parseByteSize(Text);
    REQUIRE_MESSAGE(static_cast<bool>(V), llvm::toString(V.takeError()));
    return *V;
  };
  CHECK(Size("4096") == 4096);
  CHECK(Size("500M") == 500ull << 20);
  CHECK(Size("2G") == 2ull << 30);
  CHECK(Size("2g") == 2ull << 30);
  CHECK(Size("1.5GiB") == 3ull << 29);
  CHECK(Size("10KB") == 10240);
  CHECK(Size("3T") == 3ull << 40);
  CHECK(Size("0") == 0);
  for (const char *Bad : {"", "M", "abc", "5X", "1.2.3G", "-5M", "2 GB extra"}) {
    llvm::Expected<uint64_t> V = parseByteSize(Bad);
    CHECK_MESSAGE(!V, Bad);
    if (!V)
      CHECK(llvm::toString(V.takeError()).find("500M") != std::string::npos);
  }

  auto Duration = [](llvm::StringRef Text) {
    llvm::Expected<int64_t> V = parseDuration(Text);
    REQUIRE_MESSAGE(static_cast<bool>(V), llvm::toString(V.takeError()));
    return *V;
  };
  CHECK(Duration("45") == 45);
  CHECK(Duration("45s") == 45);
  CHECK(Duration("90m") == 5400);
  CHECK(Duration("12h") == 43200);
  CHECK(Duration("30d") == 30 * 86400);
  CHECK(Duration("2w") == 14 * 86400);
  for (const char *Bad : {"", "h", "1y", "1.5h", "-1d", "99999999999999999999d"}) {
    llvm::Expected<int64_t> V = parseDuration(Bad);
    CHECK_MESSAGE(!V, Bad);
    if (!V)
      CHECK(llvm::toString(V.takeError()).find("30d") != std::string::npos);
  }
}

TEST_CASE("pruning by size removes the least recently used entries by the last-used stamp, not atime") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  int64_t T = now();
  std::vector<CacheEntry> E = publishAged(Cache, {T - 5000, T - 100, T - 9000, T - 1, T - 300});
  uint64_t Total = bytesOf(Cache);
  uint64_t Each = Total / 5;

  // Room for three entries (sizes differ by a few bytes): the two oldest-used go (9000, 5000 s).
  PrunePolicy Policy;
  Policy.MaxBytes = Total - 2 * Each + Each / 2;
  llvm::Expected<PruneReport> Report = pruneCache(Cache, Policy);
  REQUIRE_MESSAGE(static_cast<bool>(Report), llvm::toString(Report.takeError()));
  CHECK(Report->RemovedEntries == 2);
  CHECK(Report->KeptEntries == 3);
  CHECK(Report->KeptBytes <= Policy.MaxBytes);
  CHECK(Report->RemovedBytes + Report->KeptBytes == Total);
  CHECK(Report->Failures.empty());
  CHECK(keysOf(Cache) == std::set<std::string>{E[1].Key, E[3].Key, E[4].Key});
  CHECK(namesStartingWith(Cache.root(), ".").empty());
  for (const CacheEntry &Kept : {E[1], E[3], E[4]})
    CHECK(Cache.lookup(Kept.Key).Entry.hasValue());
}

TEST_CASE("pruning by age removes entries unused for longer than the limit, and nothing else") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  int64_t T = now();
  std::vector<CacheEntry> E = publishAged(Cache, {T - 40 * 86400, T - 10 * 86400, T - 31 * 86400, T});
  PrunePolicy Policy;
  Policy.MaxAgeSeconds = 30 * 86400;
  llvm::Expected<PruneReport> Report = pruneCache(Cache, Policy);
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->RemovedEntries == 2);
  CHECK(keysOf(Cache) == std::set<std::string>{E[1].Key, E[3].Key});

  // Without limits, nothing goes; a missing cache prunes to nothing without an error.
  Report = pruneCache(Cache, PrunePolicy());
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->RemovedEntries == 0);
  CHECK(Report->KeptEntries == 2);
  Report = pruneCache(DiskCache(Scratch.sub("missing")), Policy);
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->KeptEntries == 0);
  CHECK_FALSE(llvm::sys::fs::exists(Scratch.sub("missing")));
}

TEST_CASE("an entry without its last-used stamp ages by its manifest") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  REQUIRE(!llvm::sys::fs::remove(join(Cache.entryPath(Entry.Key), "last-used")));
  setTimes(join(Cache.entryPath(Entry.Key), "manifest.json"), 1000000000, 1000000000);
  llvm::Expected<std::vector<StoredEntry>> Entries = scanEntries(Cache);
  REQUIRE(static_cast<bool>(Entries));
  REQUIRE(Entries->size() == 1);
  CHECK(Entries->front().LastUsedUnix == 1000000000);
  CHECK(Entries->front().Path == Cache.entryPath(Entry.Key));
}

TEST_CASE("verify lists every kind of bad entry and repair removes exactly those") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  std::vector<CacheEntry> E;
  for (int64_t C : {128, 256, 384, 512, 640, 768}) {
    E.push_back(makeEntry(C));
    publishOrFail(Cache, E.back());
  }
  auto Dir = [&](size_t I) { return Cache.entryPath(E[I].Key); };
  writeFile(join(Dir(0), "kernel.cubin"), E[0].Cubin.substr(0, 100));          // truncated
  std::string Flipped = E[1].Cubin;
  Flipped[Flipped.size() / 2] ^= 0x20;
  writeFile(join(Dir(1), "kernel.cubin"), Flipped);                            // one byte
  writeFile(join(Dir(2), "manifest.json"), "\x01garbage{");                     // garbage manifest
  for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json"})       // foreign entry
    writeFile(join(Dir(3), Name), readFile(join(Dir(4), Name)));

  llvm::Expected<VerifyReport> Report = verifyCache(Cache, /*Repair=*/false, DefaultStaleSeconds);
  REQUIRE_MESSAGE(static_cast<bool>(Report), llvm::toString(Report.takeError()));
  CHECK(Report->Entries == 6);
  REQUIRE(Report->Bad.size() == 4);
  CHECK(Report->RemovedBad == 0);
  std::set<std::string> BadKeys;
  for (const CacheEntrySummary &S : Report->Bad) {
    BadKeys.insert(S.Key);
    CHECK_FALSE(S.Problem.empty());
  }
  CHECK(BadKeys == std::set<std::string>{E[0].Key, E[1].Key, E[2].Key, E[3].Key});
  CHECK(keysOf(Cache).size() == 6); // verify alone changes nothing

  Report = verifyCache(Cache, /*Repair=*/true, DefaultStaleSeconds);
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->RemovedBad == 4);
  CHECK(Report->Failures.empty());
  CHECK(keysOf(Cache) == std::set<std::string>{E[4].Key, E[5].Key});
  CHECK(namesStartingWith(Cache.root(), ".").empty());
  Report = verifyCache(Cache, /*Repair=*/false, DefaultStaleSeconds);
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->Bad.empty());
  CHECK(Report->Entries == 2);
}

TEST_CASE("verify --repair removes only temporaries older than the grace period") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  std::string Shard = llvm::sys::path::parent_path(Cache.entryPath(Entry.Key)).str();
  const std::string Old = join(Shard, ".tmp-" + Entry.Key + "-123-crashed");
  const std::string Young = join(Shard, ".tmp-" + Entry.Key + "-456-writing");
  const std::string Trash = join(Shard, ".trash-" + Entry.Key + "-789-crashed");
  for (const std::string &Dir : {Old, Young, Trash}) {
    REQUIRE(!llvm::sys::fs::create_directories(Dir));
    writeFile(join(Dir, "kernel.cubin"), "partial");
  }
  setTimes(Old, now() - 7200, now() - 7200);
  setTimes(Trash, now() - 7200, now() - 7200);

  llvm::Expected<VerifyReport> Report = verifyCache(Cache, /*Repair=*/false, 3600);
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->Temporaries.size() == 3);
  CHECK(Report->Bad.empty());
  Report = verifyCache(Cache, /*Repair=*/true, 3600);
  REQUIRE(static_cast<bool>(Report));
  CHECK(Report->RemovedTemporaries == 2);
  CHECK_FALSE(llvm::sys::fs::exists(Old));
  CHECK_FALSE(llvm::sys::fs::exists(Trash));
  CHECK(llvm::sys::fs::exists(Young));
  CHECK(Cache.lookup(Entry.Key).Entry.hasValue());
}

TEST_CASE("publishing removes stale temporaries of its shard and keeps a live writer's") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  std::string Shard = llvm::sys::path::parent_path(Cache.entryPath(Entry.Key)).str();
  const std::string Old = join(Shard, ".tmp-" + Entry.Key + "-1-crashed");
  const std::string Young = join(Shard, ".tmp-" + Entry.Key + "-2-writing");
  REQUIRE(!llvm::sys::fs::create_directories(Old));
  REQUIRE(!llvm::sys::fs::create_directories(Young));
  setTimes(Old, now() - 2 * 3600, now() - 2 * 3600);
  publishOrFail(Cache, Entry);
  CHECK_FALSE(llvm::sys::fs::exists(Old));
  CHECK(llvm::sys::fs::exists(Young));

  // A shorter grace period is a setting of the cache.
  Cache.setStaleSeconds(0);
  CHECK(Cache.staleSeconds() == 0);
  publishOrFail(Cache, Entry);
  CHECK_FALSE(llvm::sys::fs::exists(Young));
}

TEST_CASE("the automatic size policy keeps the cache under its limit, dropping the oldest-used") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  std::vector<CacheEntry> E;
  int64_t T = now() - 1000;
  uint64_t Limit = 0;
  for (int I = 0; I < 8; ++I) {
    E.push_back(makeEntry(100 + I));
    publishOrFail(Cache, E.back());
    std::string Dir = Cache.entryPath(E.back().Key);
    setTimes(join(Dir, "last-used"), T + I, T + I); // published in order, used in order
    uint64_t Bytes = 0;
    for (const char *Name : {"kernel.cubin", "kernel.cu", "manifest.json", "last-used"})
      Bytes += readFile(join(Dir, Name)).size();
    if (!Limit)
      Limit = Bytes * 3 + Bytes / 2; // about three and a half entries
    pruneAfterPublish(Cache, Bytes, Limit);
    CAPTURE(I);
    CHECK(bytesOf(Cache) <= Limit);
    CHECK(keysOf(Cache).count(E.back().Key) == 1); // the newest entry always stays
  }
  std::set<std::string> Kept = keysOf(Cache);
  CHECK(Kept.size() >= 2);
  CHECK(Kept.size() <= 3);
  CHECK(Kept.count(E[7].Key) == 1);
  CHECK(Kept.count(E[6].Key) == 1);
  CHECK(Kept.count(E[0].Key) == 0);
  // A limit of 0 is "no limit".
  CHECK(pruneAfterPublish(Cache, 1 << 30, 0) == 0);
  CHECK(keysOf(Cache) == Kept);
}

TEST_CASE("removing an entry that is already gone succeeds") {
  ScratchDir Scratch;
  REQUIRE(Scratch.ok());
  DiskCache Cache(Scratch.sub("cache"));
  CacheEntry Entry = makeEntry();
  publishOrFail(Cache, Entry);
  llvm::Error First = removeEntry(Cache.entryPath(Entry.Key));
  CHECK_MESSAGE(!First, llvm::toString(std::move(First)));
  CHECK_FALSE(llvm::sys::fs::exists(Cache.entryPath(Entry.Key)));
  llvm::Error Second = removeEntry(Cache.entryPath(Entry.Key));
  CHECK_MESSAGE(!Second, llvm::toString(std::move(Second)));
  CHECK(namesStartingWith(Cache.root(), ".").empty());
}
