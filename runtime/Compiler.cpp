// mhcjit runtime: one NVRTC program per kernel, the templates given as in-memory headers.
// Mangled names come from nvrtcGetLoweredName; ptxas's report is kept for the manifest.
#include "mhcjit/Compiler.h"
#include "mhcjit/Arch.h"
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/Errors.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"

#include <chrono>
#include <cstring>
#include <nvrtc.h>

namespace mhcjit {

namespace {

/// Owns an nvrtcProgram for the length of one compilation.
class Program {
public:
  ~Program() {
    if (Handle)
      nvrtcDestroyProgram(&Handle);
  }
  nvrtcProgram Handle = nullptr;
};

llvm::Error nvrtcError(nvrtcResult R, llvm::StringRef What, const GeneratedKernel &K) {
  return makeError(Errc::CompileFailed, "NVRTC " + What + " failed for " + K.NameExpression +
                                            ": " + nvrtcGetErrorString(R));
}

std::string programLog(nvrtcProgram P) {
  size_t Size = 0;
  if (nvrtcGetProgramLogSize(P, &Size) != NVRTC_SUCCESS || Size <= 1)
    return {};
  std::string Log(Size, '\0');
  if (nvrtcGetProgramLog(P, &Log[0]) != NVRTC_SUCCESS)
    return {};
  // NOTE: the reported size can exceed the text by more than its one terminating NUL.
  Log.resize(std::strlen(Log.c_str()));
  return Log;
}

enum class Output { Cubin, Ptx };

llvm::Expected<CompileOutput> compile(const GeneratedKernel &K, llvm::StringRef Arch, Output Kind) {
  auto Start = std::chrono::steady_clock::now();
  auto Checked = checkArch(Arch);
  if (!Checked)
    return Checked.takeError();
  llvm::ArrayRef<EmbeddedTemplate> Templates = embeddedTemplates();
  llvm::SmallVector<const char *, 16> HeaderTexts, HeaderNames;
  for (const EmbeddedTemplate &T : Templates) {
    HeaderTexts.push_back(T.Text);
    HeaderNames.push_back(T.Name);
  }
  Program P;
  if (nvrtcResult R = nvrtcCreateProgram(&P.Handle, K.Source.c_str(), K.FileName.c_str(),
                                         static_cast<int>(Templates.size()), HeaderTexts.data(),
                                         HeaderNames.data()))
    return nvrtcError(R, "program creation", K);
  if (nvrtcResult R = nvrtcAddNameExpression(P.Handle, K.NameExpression.c_str()))
    return nvrtcError(R, "adding the name expression", K);

  std::string ArchOption = "--gpu-architecture=" +
                           (Kind == Output::Cubin ? Arch.str() : virtualArch(Arch));
  std::vector<const char *> Options;
  for (const std::string &O : K.Options)
    Options.push_back(O.c_str());
  Options.push_back(ArchOption.c_str());

  nvrtcResult Result = nvrtcCompileProgram(P.Handle, static_cast<int>(Options.size()), Options.data());
  CompileOutput Out;
  Out.Log = programLog(P.Handle);
  if (Result != NVRTC_SUCCESS) {
    std::string Message = "NVRTC could not compile " + K.NameExpression + " for " + Arch.str() +
                          " (" + nvrtcGetErrorString(Result) + "). Log:\n" + Out.Log;
    std::string Excerpt = sourceExcerpt(Out.Log, K);
    if (!Excerpt.empty())
      Message += "\n" + Excerpt;
    return makeError(Errc::CompileFailed, Message);
  }
  const char *Lowered = nullptr;
  if (nvrtcResult R = nvrtcGetLoweredName(P.Handle, K.NameExpression.c_str(), &Lowered))
    return nvrtcError(R, "lowered-name lookup", K);
  Out.LoweredName = Lowered;

  size_t Size = 0;
  if (Kind == Output::Cubin) {
    if (nvrtcResult R = nvrtcGetCUBINSize(P.Handle, &Size))
      return nvrtcError(R, "cubin size query", K);
    Out.Binary.resize(Size);
    if (nvrtcResult R = nvrtcGetCUBIN(P.Handle, &Out.Binary[0]))
      return nvrtcError(R, "cubin retrieval", K);
  } else {
    if (nvrtcResult R = nvrtcGetPTXSize(P.Handle, &Size))
      return nvrtcError(R, "PTX size query", K);
    Out.Binary.resize(Size);
    if (nvrtcResult R = nvrtcGetPTX(P.Handle, &Out.Binary[0]))
      return nvrtcError(R, "PTX retrieval", K);
    if (!Out.Binary.empty() && Out.Binary.back() == '\0')
      Out.Binary.pop_back();
  }
  Out.Resources = parsePtxasReport(Out.Log);
  Out.Seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
  return Out;
}

/// The integer just before Suffix in Line ("Used 32 registers" -> 32), or -1.
int numberBefore(llvm::StringRef Line, llvm::StringRef Suffix) {
  size_t At = Line.find(Suffix);
  if (At == llvm::StringRef::npos)
    return -1;
  llvm::StringRef Head = Line.substr(0, At).rtrim();
  llvm::StringRef Digits = Head.substr(Head.find_last_not_of("0123456789") + 1);
  int Value = -1;
  return Digits.getAsInteger(10, Value) ? -1 : Value;
}

} // namespace

llvm::Expected<CompileOutput> compileCubin(const GeneratedKernel &Kernel, llvm::StringRef Arch) {
  return compile(Kernel, Arch, Output::Cubin);
}

llvm::Expected<CompileOutput> compilePtx(const GeneratedKernel &Kernel, llvm::StringRef Arch) {
  return compile(Kernel, Arch, Output::Ptx);
}

KernelResources parsePtxasReport(llvm::StringRef Log) {
  // ptxas -v prints, per kernel:
  //   ptxas info    : Used 62 registers, used 1 barriers, 128 bytes smem, 380 bytes cmem[0]
  //   0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
  KernelResources R;
  llvm::SmallVector<llvm::StringRef, 32> Lines;
  Log.split(Lines, '\n');
  for (llvm::StringRef L : Lines) {
    auto Take = [&](int &Field, llvm::StringRef Suffix) {
      int V = numberBefore(L, Suffix);
      if (V >= 0)
        Field = V;
    };
    Take(R.Registers, " registers");
    Take(R.SharedBytes, " bytes smem");
    Take(R.ConstantBytes, " bytes cmem[0]");
    Take(R.StackBytes, " bytes stack frame");
    Take(R.SpillStoreBytes, " bytes spill stores");
    Take(R.SpillLoadBytes, " bytes spill loads");
  }
  if (R.Registers >= 0 && R.SharedBytes < 0)
    R.SharedBytes = 0; // ptxas omits "smem" when a kernel uses none
  return R;
}

} // namespace mhcjit
