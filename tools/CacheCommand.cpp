// mhc-jit cache ls: the entries of the kernel cache, validated, with size and last use.
#include "SpecOptions.h"

#include "mhcjit/DiskCache.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <ctime>

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

cl::opt<std::string> ActionOpt(cl::Positional, cl::desc("<action: ls>"), cl::init("ls"),
                               cl::sub(CacheCommand));

std::string timeText(int64_t Unix) {
  if (Unix <= 0)
    return "never";
  std::time_t T = static_cast<std::time_t>(Unix);
  char Buffer[32];
  std::strftime(Buffer, sizeof Buffer, "%Y-%m-%d %H:%M:%S", std::localtime(&T));
  return Buffer;
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
  if (ActionOpt == "ls")
    return listCacheEntries(Root);
  llvm::errs() << "mhc-jit cache: unknown action '" << ActionOpt << "' (expected: ls)\n";
  return 1;
}

} // namespace mhcjit
