// mhcjit runtime: a line-numbered excerpt of the source around the first error NVRTC reports.
// NVRTC writes "aggregate.cuh(23): error: ..."; we show lines 20..26 of that file with a marker.
#include "mhcjit/Compiler.h"
#include "mhcjit/EmbeddedTemplates.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace mhcjit {

namespace {

/// Finds the first "<file>(<line>): error" in Log.
bool findFirstError(llvm::StringRef Log, std::string &File, unsigned &Line) {
  llvm::SmallVector<llvm::StringRef, 64> Lines;
  Log.split(Lines, '\n');
  for (llvm::StringRef L : Lines) {
    size_t Marker = L.find("): error");
    if (Marker == llvm::StringRef::npos)
      continue;
    size_t Open = L.rfind('(', Marker);
    if (Open == llvm::StringRef::npos || L.substr(Open + 1, Marker - Open - 1).getAsInteger(10, Line))
      continue;
    File = L.substr(0, Open).trim().str();
    return true;
  }
  return false;
}

llvm::StringRef fileText(llvm::StringRef File, const GeneratedKernel &Kernel) {
  llvm::StringRef Base = File.rsplit('/').second.empty() ? File : File.rsplit('/').second;
  if (Base == Kernel.FileName)
    return Kernel.Source;
  for (const EmbeddedTemplate &T : embeddedTemplates())
    if (Base == T.Name)
      return T.Text;
  return {};
}

} // namespace

std::string sourceExcerpt(llvm::StringRef Log, const GeneratedKernel &Kernel) {
  std::string File;
  unsigned Line = 0;
  if (!findFirstError(Log, File, Line))
    return {};
  llvm::StringRef Text = fileText(File, Kernel);
  if (Text.empty())
    return {};
  llvm::SmallVector<llvm::StringRef, 256> Lines;
  Text.split(Lines, '\n');
  const unsigned Context = 3;
  unsigned First = Line > Context ? Line - Context : 1;
  unsigned Last = std::min<unsigned>(Line + Context, Lines.size());
  std::string Out;
  llvm::raw_string_ostream OS(Out);
  OS << File << " around line " << Line << ":\n";
  for (unsigned L = First; L <= Last; ++L)
    OS << (L == Line ? ">" : " ") << llvm::format("%5u | ", L) << Lines[L - 1] << "\n";
  return OS.str();
}

} // namespace mhcjit
