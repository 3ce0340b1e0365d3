// mhc-jit tune: time every candidate tile of a spec on the GPU and store the winner in the
// tuning database (--op ... --C ...), or move tuning results between machines (--export FILE,
// --import FILE). The timing is the runtime's (tuneSpec), the same MHCJIT_AUTOTUNE runs.
#include "SpecOptions.h"

#include "mhcjit/Autotuner.h"
#include "mhcjit/Driver.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/TuningDb.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

cl::opt<std::string> ExportOpt("export", cl::desc("Write the tuning database's entries to FILE (merged into FILE if it exists)"),
                               cl::value_desc("FILE"), cl::sub(TuneCommand));
cl::opt<std::string> ImportOpt("import", cl::desc("Merge the entries of FILE into the tuning database (newer entries win)"),
                               cl::value_desc("FILE"), cl::sub(TuneCommand));
cl::opt<int64_t> TokensOpt("M", cl::desc("Tokens to time at (default 32768, enough to fill the GPU); entries of "
                                         "M-dependent tiles are stored for M's power-of-two bucket"),
                           cl::init(DefaultTuningTokens), cl::sub(TuneCommand));
cl::opt<int> RepeatsOpt("repeats", cl::desc("Timed runs per candidate, each after an L2 flush (default 25, at least 20)"),
                        cl::init(25), cl::sub(TuneCommand));

int fail(const llvm::Twine &Message) {
  llvm::errs() << "mhc-jit tune: " << Message << "\n";
  return 1;
}

/// The candidate table of one tuning: every candidate's median, min, max and spread in
/// microseconds, the winner and the candidates tied with the best (within 2%) marked.
void printTable(const TuneResult &R, const TimingPlan &Plan, llvm::raw_ostream &OS) {
  const TuningKey &K = R.Entry.Key;
  double Best = R.Timings.front().MedianMs;
  for (const LaunchTiming &T : R.Timings)
    Best = std::min(Best, T.MedianMs);
  const double TieLimit = tieLimitMs(R.Entry.Timings);
  OS << llvm::format("%s on %s (%d SMs, %s): M = %lld, %d timed runs after %d warm-ups per candidate, %.1f s\n",
                     K.Spec.c_str(), K.GpuName.c_str(), K.SmCount, K.Arch.c_str(), (long long)R.M, Plan.Repeats,
                     Plan.WarmUps, R.Seconds)
     << "| # | threads | vec | rows | median (us) | min (us) | max (us) | quartiles (us) | vs best | |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t I = 0; I < R.Timings.size(); ++I) {
    const LaunchTiming &T = R.Timings[I];
    const TileConfig &Tile = R.Entry.Timings[I].Tile;
    std::string Marks;
    if (I == R.WinnerIndex)
      Marks = "winner";
    else if (T.MedianMs <= TieLimit)
      Marks = llvm::formatv("tie (within {0:f1}%)", 100.0 * (TieLimit / Best - 1.0)).str();
    if (I == 0)
      Marks += Marks.empty() ? "heuristic default" : ", heuristic default";
    OS << llvm::format("| %zu | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %+.1f%% | %s |\n", I, Tile.Threads, Tile.Vec,
                       Tile.Rows, T.MedianMs * 1e3, T.MinMs * 1e3, T.MaxMs * 1e3, T.quartileSpreadMs() * 1e3,
                       100.0 * (T.MedianMs / Best - 1.0), Marks.c_str());
  }
  const LaunchTiming &Default = R.Timings.front(), &Won = R.Timings[R.WinnerIndex];
  OS << llvm::format("winner: threads=%d vec=%d rows=%d, %.1f us (heuristic default %.1f us, %.2fx); key: %s\n",
                     R.Entry.Winner.Threads, R.Entry.Winner.Vec, R.Entry.Winner.Rows, Won.MedianMs * 1e3,
                     Default.MedianMs * 1e3, Default.MedianMs / Won.MedianMs, K.str().c_str());
}

int moveEntries(const std::string &Path, const RuntimeOptions &Options) {
  if (!ExportOpt.empty()) {
    TuningDb Db = TuningDb::load(Path, Options.Warn);
    size_t Count = Db.size();
    if (llvm::Error E = Db.save(ExportOpt))
      return fail("cannot export to " + ExportOpt + ": " + llvm::toString(std::move(E)));
    llvm::outs() << "exported " << Count << " entries of " << Path << " to " << ExportOpt << "\n";
    return 0;
  }
  auto Imported = TuningDb::loadStrict(ImportOpt);
  if (!Imported)
    return fail("cannot import " + ImportOpt + ": " + llvm::toString(Imported.takeError()));
  TuningDb Db = TuningDb::load(Path, Options.Warn);
  Db.merge(*Imported);
  if (llvm::Error E = Db.save(Path))
    return fail("cannot save " + Path + ": " + llvm::toString(std::move(E)));
  llvm::outs() << "imported " << Imported->size() << " entries into " << Path << " (now "
               << Db.size() << ")\n";
  return 0;
}

int timeCandidates(const std::string &Path) {
  auto Specs = specsFromOptions(SpecSelection::TuneBases);
  if (!Specs)
    return fail(llvm::toString(Specs.takeError()) +
                " (tune takes --op OP --C C [--dir fwd|bwd|both] [--n N] [--dtype D] [--M M], or "
                "--export FILE | --import FILE)");
  if (llvm::Error E = checkTokens(TokensOpt))
    return fail("--M: " + llvm::toString(std::move(E)));
  if (RepeatsOpt < 20)
    return fail("--repeats must be at least 20 (a median of fewer runs is too noisy), got " +
                llvm::Twine(RepeatsOpt.getValue()));
  if (!gpuAvailable())
    return fail("needs a GPU to time candidates (no CUDA driver or device here); tune on a GPU "
                "machine, then carry the results with --export/--import or prewarm --tuning-db");
  TimingPlan Plan;
  Plan.Repeats = RepeatsOpt;
  for (const KernelSpec &Spec : *Specs) {
    auto Result = tuneSpec(Spec, TokensOpt, Plan);
    if (!Result)
      return fail("tuning " + specLabel(Spec) + ": " + llvm::toString(Result.takeError()));
    printTable(*Result, Plan, llvm::outs());
    TuningDb Fresh;
    Fresh.record(Result->Entry);
    if (llvm::Error E = Fresh.save(Path))
      return fail("cannot save " + Path + ": " + llvm::toString(std::move(E)));
    llvm::outs() << "stored in " << Path << "\n\n";
    llvm::outs().flush();
  }
  return 0;
}

} // namespace

int runTune() {
  applyCacheDirOption();
  const RuntimeOptions &Options = runtimeOptions();
  std::string Path = tuningDbOption().empty() ? runtimeTuningDbPath(Options) : tuningDbOption();
  if (!ExportOpt.empty() && !ImportOpt.empty())
    return fail("give one of --export FILE or --import FILE, not both");
  if (Path.empty())
    return fail("no tuning database: set --tuning-db, MHCJIT_TUNING_DB or a cache directory");
  if (!ExportOpt.empty() || !ImportOpt.empty())
    return moveEntries(Path, Options);
  return timeCandidates(Path);
}

} // namespace mhcjit
