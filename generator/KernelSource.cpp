// mhcjit generator: KernelSpec -> {translation unit, name expression, NVRTC options}.
// The only text substitution in the project: template arguments built from typed fields.
#include "mhcjit/KernelSource.h"

#include "llvm/Support/raw_ostream.h"

namespace mhcjit {

namespace {

llvm::StringRef deviceType(DType T) {
  switch (T) {
  case DType::BF16: return "mhc::bf16_t";
  case DType::FP16: return "mhc::fp16_t";
  case DType::FP32: return "float";
  }
  return "?";
}

llvm::StringRef deviceLayout(Layout L) {
  return L == Layout::SBCN ? "mhc::Layout::kSbcn" : "mhc::Layout::kSbnc";
}

/// The template header and the kernel name of an op direction.
struct KernelTemplate {
  llvm::StringRef Header;
  std::string Function;
};

KernelTemplate kernelTemplate(const KernelSpec &S) {
  switch (S.Operation) {
  case Op::Aggregate:
    return {"aggregate.cuh", std::string("mhc::aggregate_") + directionName(S.Dir).str()};
  }
  return {"", ""};
}

std::string templateArguments(const KernelSpec &S) {
  std::string Args;
  llvm::raw_string_ostream OS(Args);
  switch (S.Operation) {
  case Op::Aggregate:
    OS << S.N << ", " << S.C << ", " << deviceType(S.StreamType) << ", "
       << deviceLayout(S.StreamLayout) << ", " << S.Tile.Threads << ", " << S.Tile.Vec << ", "
       << S.PointerAlign;
    if (S.Dir == Direction::Backward)
      OS << ", " << (S.AccumulateDx ? "true" : "false");
    break;
  }
  return OS.str();
}

} // namespace

llvm::Expected<GeneratedKernel> generateKernel(const KernelSpec &Spec) {
  if (llvm::Error E = validateSpec(Spec))
    return E;
  KernelTemplate Template = kernelTemplate(Spec);
  GeneratedKernel K;
  K.FileName = std::string(opName(Spec.Operation)) + "_" + directionName(Spec.Dir).str() + ".cu";
  K.NameExpression = Template.Function + "<" + templateArguments(Spec) + ">";
  K.Source = "// mhcjit: " + canonicalRecord(Spec) + "\n" + "#include \"" +
             Template.Header.str() + "\"\n";
  // NOTE: --ptxas-options=--verbose puts registers, spills and shared memory into the log,
  // which the manifest keeps; -lineinfo costs nothing at run time and helps profilers.
  K.Options = {"--std=c++17", "-lineinfo", "--ptxas-options=--verbose"};
  return K;
}

} // namespace mhcjit
