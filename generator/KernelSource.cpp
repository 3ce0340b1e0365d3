// mhcjit generator: KernelSpec -> {translation unit, name expression, NVRTC options}.
// The only text substitution in the project: template arguments built from typed fields.
#include "mhcjit/KernelSource.h"

#include "mhc_args.h"

#include "llvm/Support/Format.h"
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

const char *boolText(bool B) { return B ? "true" : "false"; }

/// Exact float literal for CUDA C++: "0x1p-23f".
std::string floatLiteral(float V) {
  std::string S;
  llvm::raw_string_ostream OS(S);
  OS << llvm::format("%a", static_cast<double>(V)) << 'f';
  return OS.str();
}

/// The ops whose kernels read contract constants get them as a struct defined in the unit.
bool needsContract(Op O) {
  return O == Op::Scale || O == Op::Sinkhorn || O == Op::ScaleSinkhorn || O == Op::Head;
}

constexpr const char *ContractStruct = "mhcjit_contract";

std::string contractDefinition(const ContractConstants &K) {
  std::string S;
  llvm::raw_string_ostream OS(S);
  OS << "struct " << ContractStruct << " {\n"
     << "  static constexpr float rms_eps = " << floatLiteral(K.RmsEps) << ";\n"
     << "  static constexpr bool rms_outside = " << boolText(K.Rms == RmsForm::Outside) << ";\n"
     << "  static constexpr float pre_eps = " << floatLiteral(K.PreEps) << ";\n"
     << "  static constexpr float post_mult = " << floatLiteral(K.PostMult) << ";\n"
     << "  static constexpr bool sinkhorn_log = " << boolText(K.Sinkhorn == SinkhornKind::Log) << ";\n"
     << "  static constexpr int sinkhorn_iters = " << K.SinkhornIters << ";\n"
     << "  static constexpr float sinkhorn_eps = " << floatLiteral(K.SinkhornEps) << ";\n"
     << "};\n";
  return OS.str();
}

llvm::StringRef templateHeader(Op O) {
  switch (O) {
  case Op::Project: return "project.cuh";
  case Op::Scale: return "scale.cuh";
  case Op::Sinkhorn: return "sinkhorn.cuh";
  case Op::Aggregate: return "aggregate.cuh";
  case Op::ExpandCombine: return "expand_combine.cuh";
  case Op::Expand:
  case Op::Contract: return "expand_contract.cuh";
  case Op::Head: return "head.cuh";
  case Op::ScaleSinkhorn: return "scale_sinkhorn.cuh";
  case Op::ReduceRows: return "reduce_rows.cuh";
  }
  return "?";
}

std::string kernelFunction(const KernelSpec &S) {
  std::string Name = "mhc::" + opName(S.Operation).str();
  if (S.Operation == Op::ReduceRows)
    return Name;
  Name += "_" + directionName(S.Dir).str();
  if (S.Operation == Op::Head && S.Dir == Direction::Backward)
    Name += S.Stage == 0 ? "_token" : "_slice";
  return Name;
}

/// The stream-op arguments shared by aggregate, expand_combine, expand and contract
/// (expand_combine adds the parameter type of its bias after the stream type).
void streamArguments(llvm::raw_ostream &OS, const KernelSpec &S, bool WithParamType = false) {
  OS << S.N << ", " << S.C << ", " << deviceType(S.StreamType) << ", ";
  if (WithParamType)
    OS << deviceType(paramDType(S)) << ", ";
  OS << deviceLayout(S.StreamLayout) << ", " << S.Tile.Threads << ", " << S.Tile.Vec << ", "
     << S.PointerAlign;
}

std::string templateArguments(const KernelSpec &S) {
  std::string Args;
  llvm::raw_string_ostream OS(Args);
  const bool Bwd = S.Dir == Direction::Backward;
  switch (S.Operation) {
  case Op::Aggregate:
  case Op::Expand:
  case Op::Contract:
    streamArguments(OS, S);
    if (Bwd && S.Operation != Op::Expand)
      OS << ", " << boolText(S.AccumulateDx);
    break;
  case Op::ExpandCombine:
    streamArguments(OS, S, /*WithParamType=*/true);
    OS << ", " << boolText(S.HasBias);
    if (Bwd)
      OS << ", " << boolText(S.AccumulateDx);
    else
      OS << ", " << S.Tile.Rows; // chunks a lane
    break;
  case Op::Project:
    OS << S.N << ", " << S.C << ", " << deviceType(S.StreamType) << ", "
       << deviceType(paramDType(S)) << ", " << S.Tile.Threads;
    if (!Bwd)
      OS << ", " << S.Tile.Rows;
    OS << ", " << boolText(S.Prec == Precision::TF32) << ", " << boolText(S.HasGamma);
    if (Bwd)
      OS << ", " << boolText(S.AccumulateDx);
    OS << ", " << S.PointerAlign;
    break;
  case Op::Scale:
  case Op::Sinkhorn:
  case Op::ScaleSinkhorn:
    OS << S.N << ", " << S.Tile.Threads << ", " << ContractStruct;
    break;
  case Op::Head:
    OS << S.N << ", " << S.C << ", " << deviceType(S.StreamType) << ", "
       << deviceLayout(S.StreamLayout) << ", " << S.Tile.Threads;
    if (!Bwd || S.Stage == 0)
      OS << ", " << ContractStruct;
    else
      OS << ", " << boolText(S.AccumulateDx);
    break;
  case Op::ReduceRows:
    OS << S.Tile.Threads;
    break;
  }
  return OS.str();
}

} // namespace

llvm::Expected<GeneratedKernel> generateKernel(const KernelSpec &Spec) {
  if (llvm::Error E = validateSpec(Spec))
    return E;
  GeneratedKernel K;
  std::string Function = kernelFunction(Spec);
  K.FileName = Function.substr(5) + ".cu"; // drop "mhc::"
  K.NameExpression = Function + "<" + templateArguments(Spec) + ">";
  K.Source = "// mhcjit: " + canonicalRecord(Spec) + "\n" + "#include \"" +
             templateHeader(Spec.Operation).str() + "\"\n";
  if (needsContract(Spec.Operation))
    K.Source += contractDefinition(Spec.Contract);
  // NOTE: --ptxas-options=--verbose puts registers, spills and shared memory into the log,
  // which the manifest keeps; -lineinfo costs nothing at run time and helps profilers.
  K.Options = {"--std=c++17", "-lineinfo", "--ptxas-options=--verbose"};
  return K;
}

int dynamicSharedBytes(const KernelSpec &Spec) {
  if (Spec.Operation != Op::Project)
    return 0;
  const bool Tf32 = Spec.Prec == Precision::TF32;
  if (Spec.Dir == Direction::Backward)
    return mhc::project_bwd_shared_bytes(Spec.N, dtypeSize(Spec.StreamType), Spec.Tile.Threads, Tf32);
  return mhc::project_fwd_shared_bytes(Spec.N, dtypeSize(Spec.StreamType), Spec.Tile.Rows, Tf32);
}

} // namespace mhcjit
