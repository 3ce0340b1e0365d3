// mhc-jit cache ls | verify [--repair] | prune --max-size SIZE --max-age DURATION | stats.
// Listing, checking, repairing and trimming the kernel cache (the writable one, or --cache-dir).
#include "SpecOptions.h"

#include "mhcjit/CacheMaintenance.h"
#include "mhcjit/DiskCache.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/RuntimeOptions.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <ctime>

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

cl::opt<std::string> ActionOpt(cl::Positional, cl::desc("<action: ls | verify | prune | stats>"),
                               cl::init("ls"), cl::sub(CacheCommand));
cl::opt<bool> RepairOpt("repair", cl::desc("verify: remove bad entries and stale temporaries"),
                        cl::sub(CacheCommand));
cl::opt<std::string> MaxSizeOpt("max-size",
                                cl::desc("prune: keep at most this much, least recently used "
                                         "removed first (e.g. 500M, 2G)"),
                                cl::sub(CacheCommand));
cl::opt<std::string> MaxAgeOpt("max-age",
                               cl::desc("prune: remove entries not used for this long (e.g. 30d, 12h)"),
                               cl::sub(CacheCommand));
cl::opt<std::string> StaleAfterOpt("stale-after",
                                   cl::desc("verify --repair, prune: remove writers' temporaries "
                                            "older than this (default 1h)"),
                                   cl::init("1h"), cl::sub(CacheCommand));

/// Exit statuses of verify and prune (documented in the README).
constexpr int ExitClean = 0, ExitProblems = 1, ExitError = 2;

std::string timeText(int64_t Unix) {
  if (Unix <= 0)
    return "never";
  std::time_t T = static_cast<std::time_t>(Unix);
  char Buffer[32];
  std::strftime(Buffer, sizeof Buffer, "%Y-%m-%d %H:%M:%S", std::localtime(&T));
  return Buffer;
}

/// "1.5 MiB" for people; exact byte counts are printed next to it where scripts read them.
std::string bytesText(uint64_t Bytes) {
  const char *Units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double Value = static_cast<double>(Bytes);
  int Unit = 0;
  while (Value >= 1024 && Unit < 4) {
    Value /= 1024;
    ++Unit;
  }
  std::string Text;
  llvm::raw_string_ostream OS(Text);
  OS << llvm::format(Unit ? "%.1f %s" : "%.0f %s", Value, Units[Unit]);
  return OS.str();
}

/// "op.dir n=4 C=7168 bf16 sbcn te threads=256 vec=8" from a canonical spec record.
std::string describe(const CacheEntrySummary &S) {
  if (S.SpecRecord.empty())
    return "?";
  auto Spec = parseCanonicalRecord(S.SpecRecord);
  if (!Spec) {
    llvm::consumeError(Spec.takeError());
    return S.SpecRecord;
  }
  return specLabel(*Spec);
}

CacheSharing sharingOption() {
  return runtimeOptions().SharedCache ? CacheSharing::Shared : CacheSharing::Private;
}

/// --stale-after in seconds, or an error message printed by the caller.
llvm::Expected<int64_t> staleSeconds() { return parseDuration(StaleAfterOpt); }

int fail(llvm::StringRef Action, llvm::Error E) {
  llvm::errs() << "mhc-jit cache " << Action << ": " << llvm::toString(std::move(E)) << "\n";
  return ExitError;
}

int verifyEntries(const std::string &Root) {
  DiskCache Cache(Root, sharingOption());
  llvm::Expected<int64_t> Grace = staleSeconds();
  if (!Grace)
    return fail("verify", Grace.takeError());
  if (llvm::Error E = Cache.checkTrusted(/*ForWriting=*/false)) {
    llvm::outs() << "REFUSED " << llvm::toString(std::move(E)) << "\n";
    return ExitProblems;
  }
  llvm::Expected<VerifyReport> Report = verifyCache(Cache, RepairOpt, *Grace);
  if (!Report)
    return fail("verify", Report.takeError());
  for (const CacheEntrySummary &Bad : Report->Bad)
    llvm::outs() << "BAD  " << Bad.Path << ": " << Bad.Problem
                 << (RepairOpt ? "  [removed]" : "") << "\n";
  for (const Temporary &T : Report->Temporaries)
    llvm::outs() << "TEMP " << T.Path << " (" << T.AgeSeconds << " s old"
                 << (RepairOpt && T.AgeSeconds >= *Grace ? ", removed" : "") << ")\n";
  for (const std::string &Failure : Report->Failures)
    llvm::errs() << "mhc-jit cache verify: " << Failure << "\n";
  llvm::outs() << "verified " << Report->Entries << " entries in " << Root << ": "
               << Report->Bad.size() << " bad";
  if (RepairOpt)
    llvm::outs() << " (" << Report->RemovedBad << " removed), " << Report->Temporaries.size()
                 << " temporaries (" << Report->RemovedTemporaries << " stale removed)";
  else
    llvm::outs() << ", " << Report->Temporaries.size() << " temporaries";
  llvm::outs() << "\n";
  bool BadRemain = Report->Bad.size() > Report->RemovedBad;
  if (BadRemain && !RepairOpt)
    llvm::outs() << "run 'mhc-jit cache verify --repair' to remove them (they are rebuilt "
                    "on next use)\n";
  return BadRemain || !Report->Failures.empty() ? ExitProblems : ExitClean;
}

int pruneEntries(const std::string &Root) {
  DiskCache Cache(Root, sharingOption());
  PrunePolicy Policy;
  if (!MaxSizeOpt.empty()) {
    llvm::Expected<uint64_t> Bytes = parseByteSize(MaxSizeOpt);
    if (!Bytes)
      return fail("prune", Bytes.takeError());
    // NOTE: --max-size 0 means "keep nothing", unlike PrunePolicy's 0 = no limit.
    Policy.MaxBytes = std::max<uint64_t>(*Bytes, 1);
  }
  if (!MaxAgeOpt.empty()) {
    llvm::Expected<int64_t> Seconds = parseDuration(MaxAgeOpt);
    if (!Seconds)
      return fail("prune", Seconds.takeError());
    Policy.MaxAgeSeconds = std::max<int64_t>(*Seconds, 1);
  }
  llvm::Expected<int64_t> Grace = staleSeconds();
  if (!Grace)
    return fail("prune", Grace.takeError());
  if (llvm::Error E = Cache.checkTrusted(/*ForWriting=*/true))
    return fail("prune", std::move(E));
  llvm::Expected<PruneReport> Report = pruneCache(Cache, Policy);
  if (!Report)
    return fail("prune", Report.takeError());
  size_t Temporaries = removeStaleTemporaries(Cache, *Grace);
  for (const std::string &Failure : Report->Failures)
    llvm::errs() << "mhc-jit cache prune: " << Failure << "\n";
  llvm::outs() << "pruned " << Report->RemovedEntries << " entries ("
               << Report->RemovedBytes << " bytes) from " << Root << "; "
               << Report->KeptEntries << " entries, " << Report->KeptBytes << " bytes ("
               << bytesText(Report->KeptBytes) << ") remain; " << Temporaries
               << " stale temporaries removed\n";
  return Report->Failures.empty() ? ExitClean : ExitProblems;
}

/// "N entries, B bytes (1.2 MiB)" for one cache, from a stat-only scan.
void printTotals(const DiskCache &Cache) {
  llvm::Expected<std::vector<StoredEntry>> Entries = scanEntries(Cache);
  if (!Entries) {
    llvm::outs() << "unreadable: " << llvm::toString(Entries.takeError()) << "\n";
    return;
  }
  uint64_t Bytes = 0;
  int64_t Oldest = 0, Newest = 0;
  for (const StoredEntry &E : *Entries) {
    Bytes += E.Bytes;
    Oldest = Oldest ? std::min(Oldest, E.LastUsedUnix) : E.LastUsedUnix;
    Newest = std::max(Newest, E.LastUsedUnix);
  }
  llvm::outs() << Entries->size() << " entries, " << Bytes << " bytes (" << bytesText(Bytes)
               << ")";
  if (!Entries->empty())
    llvm::outs() << ", last used " << timeText(Oldest) << " .. " << timeText(Newest);
  llvm::outs() << "\n";
}

int printStats(const std::string &Root) {
  const RuntimeOptions &Options = runtimeOptions();
  llvm::outs() << "cache " << Root << ": ";
  printTotals(DiskCache(Root, sharingOption()));
  for (const std::string &Layer : Options.ReadOnlyCacheDirs) {
    llvm::outs() << "read-only " << Layer << ": ";
    printTotals(DiskCache(Layer, sharingOption()));
  }
  if (Options.CacheMaxBytes)
    llvm::outs() << "size limit (MHCJIT_CACHE_MAX_SIZE): " << Options.CacheMaxBytes << " bytes ("
                 << bytesText(Options.CacheMaxBytes) << ")\n";
  // NOTE: the provider's counters are per process; this command builds nothing, so they read
  // zero here. A program reads its own with mhcjit::providerStats().
  ProviderStats Stats = providerStats();
  llvm::outs() << "this process: " << Stats.MemoryHits << " memory hits, " << Stats.DiskHits
               << " disk hits, " << Stats.Compiles << " compiles (misses), " << Stats.LockWaits
               << " lock waits\n";
  return ExitClean;
}

} // namespace

int listCacheEntries(const std::string &Root) {
  auto Entries = DiskCache(Root).list();
  if (!Entries) {
    llvm::errs() << "mhc-jit cache ls: " << llvm::toString(Entries.takeError()) << "\n";
    return 1;
  }
  uint64_t Bytes = 0;
  size_t Bad = 0;
  llvm::outs() << llvm::format("%-12s  %-8s  %9s  %-19s  %s\n", static_cast<const char *>("KEY"),
                               static_cast<const char *>("ARCH"), static_cast<const char *>("SIZE"),
                               static_cast<const char *>("LAST USE"), static_cast<const char *>("SPEC"));
  for (const CacheEntrySummary &E : *Entries) {
    Bytes += E.Bytes;
    llvm::outs() << llvm::format("%-12s  %-8s  %9llu  %-19s  ", E.Key.substr(0, 12).c_str(),
                                 E.Arch.empty() ? "?" : E.Arch.c_str(),
                                 static_cast<unsigned long long>(E.Bytes), timeText(E.LastUsedUnix).c_str())
                 << describe(E);
    if (!E.Valid) {
      ++Bad;
      llvm::outs() << "  [INVALID: " << E.Problem << "]";
    }
    llvm::outs() << "\n";
  }
  llvm::outs() << Entries->size() << " entries, " << Bytes << " bytes in " << Root;
  if (Bad)
    llvm::outs() << ", " << Bad << " invalid (rebuilt on next use)";
  llvm::outs() << "\n";
  return 0;
}

int runCache() {
  std::string Root = applyCacheDirOption();
  bool PruneOptions = !MaxSizeOpt.empty() || !MaxAgeOpt.empty();
  if ((RepairOpt && ActionOpt != "verify") || (PruneOptions && ActionOpt != "prune")) {
    llvm::errs() << "mhc-jit cache " << ActionOpt << ": --repair belongs to verify, --max-size "
                 << "and --max-age to prune\n";
    return ExitError;
  }
  if (Root.empty()) {
    llvm::errs() << "mhc-jit cache: no cache directory (set MHCJIT_CACHE_DIR or --cache-dir)\n";
    return ExitError;
  }
  if (ActionOpt == "ls")
    return listCacheEntries(Root);
  if (ActionOpt == "verify")
    return verifyEntries(Root);
  if (ActionOpt == "prune")
    return pruneEntries(Root);
  if (ActionOpt == "stats")
    return printStats(Root);
  llvm::errs() << "mhc-jit cache: unknown action '" << ActionOpt
               << "' (expected: ls, verify, prune or stats)\n";
  return ExitError;
}

} // namespace mhcjit
