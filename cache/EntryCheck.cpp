// mhcjit cache: reading and validating one entry directory against its key.
// A bad entry yields a short reason, never a crash: it becomes a miss that is rebuilt.
#include "EntryCheck.h"

#include "FileIO.h"
#include "Manifest.h"

#include "mhcjit/Sha256.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Path.h"

namespace mhcjit {

namespace {

std::string joinPath(llvm::StringRef Dir, llvm::StringRef Name) {
  llvm::SmallString<256> Path(Dir);
  llvm::sys::path::append(Path, Name);
  return std::string(Path.str());
}

/// "cannot read <Name> (<why>)": the directory is known to the caller, so the reason is short.
std::string unreadable(llvm::StringRef Name, llvm::Error E) {
  std::error_code EC = llvm::errorToErrorCode(std::move(E));
  return ("cannot read " + Name + " (" + EC.message() + ")").str();
}

} // namespace

bool isCacheKey(llvm::StringRef Key) {
  if (Key.size() != 64)
    return false;
  for (char C : Key)
    if (!llvm::isDigit(C) && !(C >= 'a' && C <= 'f'))
      return false;
  return true;
}

EntryCheck checkEntry(llvm::StringRef Dir, llvm::StringRef Key) {
  EntryCheck Check;
  Check.Entry.Key = Key.str();

  llvm::Expected<std::string> ManifestText = fileio::readWholeFile(joinPath(Dir, ManifestFileName));
  if (!ManifestText) {
    Check.Problem = unreadable(ManifestFileName, ManifestText.takeError());
    return Check;
  }
  llvm::Expected<Manifest> Parsed = parseManifest(*ManifestText);
  if (!Parsed) {
    Check.Problem = "garbled " + std::string(ManifestFileName) + ": " +
                    llvm::toString(Parsed.takeError());
    return Check;
  }
  Manifest &M = *Parsed;
  Check.ManifestRead = true;
  Check.Entry.Record = M.Record;
  Check.Entry.LoweredName = M.LoweredName;
  Check.Entry.CompileLog = M.CompileLog;
  Check.Entry.Resources = M.Resources;
  Check.Entry.CompileSeconds = M.CompileSeconds;

  // NOTE: both checks are needed. The manifest's own key catches an entry copied whole under
  // another key's directory; hashing its record catches a manifest whose key was edited to fit.
  if (M.Key != Key) {
    Check.Problem = "manifest is for key " + M.Key + ", not this directory's key";
    return Check;
  }
  if (cacheKey(M.Record) != Key) {
    Check.Problem = "manifest record does not hash to this directory's key";
    return Check;
  }

  llvm::Expected<std::string> Cubin = fileio::readWholeFile(joinPath(Dir, CubinFileName));
  if (!Cubin) {
    Check.Problem = unreadable(CubinFileName, Cubin.takeError());
    return Check;
  }
  if (Cubin->size() != M.CubinBytes) {
    Check.Problem = std::string(CubinFileName) + " has " + std::to_string(Cubin->size()) +
                    " bytes, manifest says " + std::to_string(M.CubinBytes);
    return Check;
  }
  if (sha256Hex(*Cubin) != M.CubinSha256) {
    Check.Problem = std::string(CubinFileName) + " sha256 differs from the manifest";
    return Check;
  }
  Check.Entry.Cubin = std::move(*Cubin);

  llvm::Expected<std::string> Source = fileio::readWholeFile(joinPath(Dir, SourceFileName));
  if (!Source) {
    Check.Problem = unreadable(SourceFileName, Source.takeError());
    return Check;
  }
  Check.Entry.Source = std::move(*Source);
  return Check;
}

} // namespace mhcjit
