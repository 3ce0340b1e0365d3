// mhc-jit tune: move tuning results between machines (--export FILE, --import FILE).
// Timing candidates on a GPU is not implemented yet; the command says so instead of guessing.
#include "SpecOptions.h"

#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/TuningDb.h"

#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

namespace mhcjit {

namespace {

cl::opt<std::string> ExportOpt("export", cl::desc("Write the tuning database's entries to FILE (merged into FILE if it exists)"),
                               cl::value_desc("FILE"), cl::sub(TuneCommand));
cl::opt<std::string> ImportOpt("import", cl::desc("Merge the entries of FILE into the tuning database (newer entries win)"),
                               cl::value_desc("FILE"), cl::sub(TuneCommand));

int fail(const llvm::Twine &Message) {
  llvm::errs() << "mhc-jit tune: " << Message << "\n";
  return 1;
}

} // namespace

int runTune() {
  applyCacheDirOption();
  const RuntimeOptions &Options = runtimeOptions();
  std::string Path = tuningDbOption().empty() ? runtimeTuningDbPath(Options) : tuningDbOption();
  if (ExportOpt.empty() == ImportOpt.empty())
    return fail("give one of --export FILE or --import FILE (timing candidates on a GPU, "
                "--op ..., is not implemented yet)");
  if (Path.empty())
    return fail("no tuning database: set --tuning-db, MHCJIT_TUNING_DB or a cache directory");
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

} // namespace mhcjit
