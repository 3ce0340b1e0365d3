// mhcjit generator: validation, names and the canonical record of a KernelSpec.
// The canonical record is the spec's identity in cache keys and manifests.
#include "mhcjit/KernelSpec.h"
#include "mhcjit/Errors.h"
#include "mhc_args.h"

#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace mhcjit {

namespace {

llvm::Error invalid(const llvm::Twine &Message) {
  return makeError(Errc::InvalidArgument, "invalid kernel spec: " + Message);
}

bool isPowerOfTwo(int64_t V) { return V > 0 && (V & (V - 1)) == 0; }

/// Exact text of a float: "0x1p-23" round-trips through strtof bit for bit.
std::string hexFloat(float V) {
  std::string S;
  llvm::raw_string_ostream OS(S);
  OS << llvm::format("%a", static_cast<double>(V));
  return OS.str();
}

} // namespace

llvm::StringRef opName(Op O) {
  switch (O) {
  case Op::Project: return "project";
  case Op::Scale: return "scale";
  case Op::Sinkhorn: return "sinkhorn";
  case Op::Aggregate: return "aggregate";
  case Op::ExpandCombine: return "expand_combine";
  case Op::Expand: return "expand";
  case Op::Contract: return "contract";
  case Op::Head: return "head";
  case Op::ScaleSinkhorn: return "scale_sinkhorn";
  case Op::ReduceRows: return "reduce_rows";
  }
  return "?";
}
llvm::StringRef directionName(Direction D) { return D == Direction::Forward ? "fwd" : "bwd"; }
llvm::StringRef dtypeName(DType T) {
  switch (T) {
  case DType::BF16: return "bf16";
  case DType::FP16: return "fp16";
  case DType::FP32: return "fp32";
  }
  return "?";
}
llvm::StringRef precisionName(Precision P) { return P == Precision::FP32 ? "fp32" : "tf32"; }
llvm::StringRef paramTypeName(ParamType P) { return P == ParamType::FP32 ? "fp32" : "stream"; }
int dtypeSize(DType T) { return T == DType::FP32 ? 4 : 2; }

bool paramsApply(const KernelSpec &S) {
  const bool ReadsParams =
      S.Operation == Op::Project || (S.Operation == Op::ExpandCombine && S.HasBias);
  return ReadsParams && S.StreamType != DType::FP32;
}

ParamType effectiveParams(const KernelSpec &S, ParamType Requested) {
  return paramsApply(S) ? Requested : ParamType::FP32;
}

DType paramDType(const KernelSpec &S) {
  return S.Params == ParamType::Stream ? S.StreamType : DType::FP32;
}

llvm::ArrayRef<Op> allOps() {
  static const Op Ops[] = {Op::Project, Op::Scale,    Op::Sinkhorn, Op::Aggregate,    Op::ExpandCombine,
                           Op::Expand,  Op::Contract, Op::Head,     Op::ScaleSinkhorn};
  return Ops;
}

llvm::Optional<Op> parseOp(llvm::StringRef Name) {
  if (Name == opName(Op::ReduceRows))
    return Op::ReduceRows;
  for (Op O : allOps())
    if (opName(O) == Name)
      return O;
  return llvm::None;
}
llvm::Optional<Direction> parseDirection(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<Direction>>(Name)
      .Cases("fwd", "forward", Direction::Forward)
      .Cases("bwd", "backward", Direction::Backward)
      .Default(llvm::None);
}
llvm::Optional<DType> parseDType(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<DType>>(Name)
      .Case("bf16", DType::BF16)
      .Case("fp16", DType::FP16)
      .Case("fp32", DType::FP32)
      .Default(llvm::None);
}
llvm::Optional<ParamType> parseParamType(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<ParamType>>(Name)
      .Case("fp32", ParamType::FP32)
      .Case("stream", ParamType::Stream)
      .Default(llvm::None);
}
llvm::Optional<Precision> parsePrecision(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<Precision>>(Name)
      .Case("fp32", Precision::FP32)
      .Case("tf32", Precision::TF32)
      .Default(llvm::None);
}

llvm::Error validateSpec(const KernelSpec &S) {
  if (S.N < 1 || S.N > 8)
    return invalid("n = " + llvm::Twine(S.N) + " is outside the supported range 1..8");
  if (S.C < 1)
    return invalid("C = " + llvm::Twine(S.C) + " must be at least 1");
  // NOTE: C is a template argument (int); n*C indexes a token's row, so keep n*C in int range.
  if (S.C > (int64_t(1) << 24))
    return invalid("C = " + llvm::Twine(S.C) + " is larger than the supported maximum 16777216");
  const ContractConstants &K = S.Contract;
  if (!std::isfinite(K.RmsEps) || K.RmsEps < 0)
    return invalid("rms_eps = " + hexFloat(K.RmsEps) + " must be finite and >= 0");
  if (!std::isfinite(K.PreEps) || K.PreEps < 0)
    return invalid("pre_eps = " + hexFloat(K.PreEps) + " must be finite and >= 0");
  if (!std::isfinite(K.PostMult))
    return invalid("post_mult = " + hexFloat(K.PostMult) + " must be finite");
  if (!std::isfinite(K.SinkhornEps) || K.SinkhornEps < 0)
    return invalid("sinkhorn_eps = " + hexFloat(K.SinkhornEps) + " must be finite and >= 0");
  if (K.SinkhornIters < 1 || K.SinkhornIters > 1000)
    return invalid("sinkhorn_iters = " + llvm::Twine(K.SinkhornIters) + " is outside 1..1000");
  if (S.Tile.Threads < 32 || S.Tile.Threads > 1024 || S.Tile.Threads % 32 != 0)
    return invalid("threads = " + llvm::Twine(S.Tile.Threads) +
                   " must be a multiple of 32 in 32..1024");
  const int Elem = dtypeSize(S.StreamType);
  if (!isPowerOfTwo(S.Tile.Vec) || S.Tile.Vec * Elem > 16)
    return invalid("vec = " + llvm::Twine(S.Tile.Vec) + " must be a power of two with vec * " +
                   llvm::Twine(Elem) + " bytes <= 16 for " + dtypeName(S.StreamType));
  if (S.PointerAlign != 16 && S.PointerAlign != Elem)
    return invalid("pointer_align = " + llvm::Twine(S.PointerAlign) + " must be 16 or " +
                   llvm::Twine(Elem) + " (the element size)");
  if (S.AccumulateDx && S.Dir != Direction::Backward)
    return invalid("accumulate_dx applies to backward kernels only");
  if (S.Tile.Rows < 1 || S.Tile.Rows > 256)
    return invalid("rows = " + llvm::Twine(S.Tile.Rows) + " is outside 1..256");
  if (S.Operation == Op::Project && S.Dir == Direction::Forward) {
    // templates/project.cuh: each warp computes 1, 2 or 4 whole tiles of 16 tokens.
    const int Warps = S.Tile.Threads / 32;
    const int Tiles = S.Tile.Rows / (16 * Warps);
    if (S.Tile.Rows % (16 * Warps) != 0 || (Tiles != 1 && Tiles != 2 && Tiles != 4))
      return invalid("rows = " + llvm::Twine(S.Tile.Rows) + " with threads = " + llvm::Twine(S.Tile.Threads) +
                     ": project forward needs rows = 16, 32 or 64 tokens per warp times " + llvm::Twine(Warps) +
                     " warps");
  }
  if (S.Operation == Op::ExpandCombine && S.Dir == Direction::Forward && S.Tile.Rows != 1 && S.Tile.Rows != 2 &&
      S.Tile.Rows != 4)
    return invalid("rows = " + llvm::Twine(S.Tile.Rows) +
                   ": expand_combine forward takes 1, 2 or 4 column chunks a thread");
  if (S.Operation == Op::Scale || S.Operation == Op::ScaleSinkhorn) {
    const int Bytes = mhc::scale_staging_bytes(S.N, S.Tile.Threads, S.Dir == Direction::Backward);
    if (Bytes > mhc::kStaticSharedBytes)
      return invalid("threads = " + llvm::Twine(S.Tile.Threads) + " at n = " + llvm::Twine(S.N) + ": " +
                     opName(S.Operation) + "'s staging tiles would need " + llvm::Twine(Bytes) +
                     " bytes of shared memory, more than the " + llvm::Twine(mhc::kStaticSharedBytes) +
                     " a block may have");
  }
  if (S.HasGamma && S.Operation != Op::Project)
    return invalid("a norm weight (gamma) applies to project only");
  if (S.HasBias && S.Operation != Op::ExpandCombine)
    return invalid("a bias applies to expand_combine only");
  // NOTE: params=stream where it changes nothing (an fp32 stream, an op without stream-dtype
  // parameters, expand_combine without bias) would give one kernel two records and two cache
  // entries; callers resolve the request with effectiveParams().
  if (S.Params == ParamType::Stream && !paramsApply(S))
    return invalid("params = stream applies to project and to expand_combine with a bias, with a "
                   "bf16 or fp16 stream; use params = fp32 for " + opName(S.Operation) + " with " +
                   dtypeName(S.StreamType) + (S.Operation == Op::ExpandCombine ? " without bias" : ""));
  const int MaxStage = S.Operation == Op::Head && S.Dir == Direction::Backward ? 1 : 0;
  if (S.Stage < 0 || S.Stage > MaxStage)
    return invalid("stage = " + llvm::Twine(S.Stage) + " is outside 0.." + llvm::Twine(MaxStage) +
                   " for " + opName(S.Operation) + "." + directionName(S.Dir));
  if (S.Operation == Op::ReduceRows && S.Dir != Direction::Forward)
    return invalid("reduce_rows has a forward kernel only");
  return llvm::Error::success();
}

std::string canonicalRecord(const KernelSpec &S) {
  const ContractConstants &K = S.Contract;
  std::string R;
  llvm::raw_string_ostream OS(R);
  OS << "op=" << opName(S.Operation) << " dir=" << directionName(S.Dir) << " n=" << S.N
     << " C=" << S.C << " dtype=" << dtypeName(S.StreamType)
     << " layout=" << layoutName(S.StreamLayout) << " contract=" << contractName(K.Kind)
     << " rms_eps=" << hexFloat(K.RmsEps) << " rms_form=" << rmsFormName(K.Rms)
     << " pre_eps=" << hexFloat(K.PreEps) << " post_mult=" << hexFloat(K.PostMult)
     << " sinkhorn=" << sinkhornName(K.Sinkhorn) << " sinkhorn_iters=" << K.SinkhornIters
     << " sinkhorn_eps=" << hexFloat(K.SinkhornEps) << " precision=" << precisionName(S.Prec)
     << " threads=" << S.Tile.Threads << " vec=" << S.Tile.Vec
     << " rows=" << S.Tile.Rows << " accumulate_dx=" << (S.AccumulateDx ? 1 : 0)
     << " align=" << S.PointerAlign << " gamma=" << (S.HasGamma ? 1 : 0)
     << " bias=" << (S.HasBias ? 1 : 0) << " params=" << paramTypeName(S.Params)
     << " stage=" << S.Stage;
  return OS.str();
}

llvm::Expected<KernelSpec> parseCanonicalRecord(llvm::StringRef Record) {
  llvm::StringMap<std::string> Fields;
  llvm::SmallVector<llvm::StringRef, 24> Parts;
  Record.trim().split(Parts, ' ', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef Part : Parts) {
    auto KV = Part.split('=');
    Fields[KV.first] = KV.second.str();
  }
  auto Bad = [&](llvm::StringRef Field) {
    return makeError(Errc::InvalidArgument,
                     "spec record has no valid '" + Field + "': " + Record);
  };
  // Integers must fit an int (C may use all 64 bits): a wrapped value could form a valid spec.
  auto Int = [&](llvm::StringRef Field, int64_t &Out) -> bool {
    auto It = Fields.find(Field);
    if (It == Fields.end() || llvm::StringRef(It->second).getAsInteger(10, Out))
      return false;
    return Field == "C" || (Out >= INT32_MIN && Out <= INT32_MAX);
  };
  auto Float = [&](llvm::StringRef Field, float &Out) -> bool {
    auto It = Fields.find(Field);
    if (It == Fields.end() || It->second.empty())
      return false;
    char *End = nullptr;
    Out = std::strtof(It->second.c_str(), &End);
    return *End == '\0';
  };
  KernelSpec S;
  auto OpV = parseOp(Fields.lookup("op"));
  auto DirV = parseDirection(Fields.lookup("dir"));
  auto DTypeV = parseDType(Fields.lookup("dtype"));
  auto LayoutV = parseLayout(Fields.lookup("layout"));
  auto ContractV = parseContract(Fields.lookup("contract"));
  auto RmsV = parseRmsForm(Fields.lookup("rms_form"));
  auto SinkV = parseSinkhorn(Fields.lookup("sinkhorn"));
  auto PrecV = parsePrecision(Fields.lookup("precision"));
  // NOTE: records written before the parameter type existed (cache manifests, tuning databases)
  // have no 'params'; their kernels read fp32 parameters.
  auto ParamsV = Fields.count("params") ? parseParamType(Fields.lookup("params"))
                                        : llvm::Optional<ParamType>(ParamType::FP32);
  if (!OpV) return Bad("op");
  if (!DirV) return Bad("dir");
  if (!DTypeV) return Bad("dtype");
  if (!LayoutV) return Bad("layout");
  if (!ContractV) return Bad("contract");
  if (!RmsV) return Bad("rms_form");
  if (!SinkV) return Bad("sinkhorn");
  if (!PrecV) return Bad("precision");
  if (!ParamsV) return Bad("params");
  S.Operation = *OpV;
  S.Dir = *DirV;
  S.StreamType = *DTypeV;
  S.StreamLayout = *LayoutV;
  S.Contract.Kind = *ContractV;
  S.Contract.DefaultLayout = contractPreset(*ContractV).DefaultLayout;
  S.Contract.Rms = *RmsV;
  S.Contract.Sinkhorn = *SinkV;
  S.Prec = *PrecV;
  S.Params = *ParamsV;
  int64_t N, Iters, Threads, Vec, Acc, Align, Rows, Gamma, BiasV, Stage;
  if (!Int("n", N)) return Bad("n");
  if (!Int("C", S.C)) return Bad("C");
  if (!Int("sinkhorn_iters", Iters)) return Bad("sinkhorn_iters");
  if (!Int("threads", Threads)) return Bad("threads");
  if (!Int("vec", Vec)) return Bad("vec");
  if (!Int("accumulate_dx", Acc)) return Bad("accumulate_dx");
  if (!Int("align", Align)) return Bad("align");
  if (!Int("rows", Rows)) return Bad("rows");
  if (!Int("gamma", Gamma)) return Bad("gamma");
  if (!Int("bias", BiasV)) return Bad("bias");
  if (!Int("stage", Stage)) return Bad("stage");
  if (!Float("rms_eps", S.Contract.RmsEps)) return Bad("rms_eps");
  if (!Float("pre_eps", S.Contract.PreEps)) return Bad("pre_eps");
  if (!Float("post_mult", S.Contract.PostMult)) return Bad("post_mult");
  if (!Float("sinkhorn_eps", S.Contract.SinkhornEps)) return Bad("sinkhorn_eps");
  S.N = static_cast<int>(N);
  S.Contract.SinkhornIters = static_cast<int>(Iters);
  S.Tile.Threads = static_cast<int>(Threads);
  S.Tile.Vec = static_cast<int>(Vec);
  S.AccumulateDx = Acc != 0;
  S.PointerAlign = static_cast<int>(Align);
  S.Tile.Rows = static_cast<int>(Rows);
  S.HasGamma = Gamma != 0;
  S.HasBias = BiasV != 0;
  S.Stage = static_cast<int>(Stage);
  if (llvm::Error E = validateSpec(S))
    return E;
  return S;
}

namespace {
uint32_t floatBits(float F) {
  uint32_t Bits;
  std::memcpy(&Bits, &F, sizeof Bits);
  return Bits;
}
} // namespace

bool operator==(const KernelSpec &A, const KernelSpec &B) {
  const ContractConstants &P = A.Contract, &Q = B.Contract;
  return A.Operation == B.Operation && A.Dir == B.Dir && A.N == B.N && A.C == B.C &&
         A.StreamType == B.StreamType && A.StreamLayout == B.StreamLayout && A.Prec == B.Prec &&
         A.Tile == B.Tile && A.AccumulateDx == B.AccumulateDx && A.PointerAlign == B.PointerAlign &&
         A.HasGamma == B.HasGamma && A.HasBias == B.HasBias &&
         A.Params == B.Params && A.Stage == B.Stage &&
         P.Kind == Q.Kind &&
         floatBits(P.RmsEps) == floatBits(Q.RmsEps) && P.Rms == Q.Rms &&
         floatBits(P.PreEps) == floatBits(Q.PreEps) &&
         floatBits(P.PostMult) == floatBits(Q.PostMult) && P.Sinkhorn == Q.Sinkhorn &&
         P.SinkhornIters == Q.SinkhornIters && floatBits(P.SinkhornEps) == floatBits(Q.SinkhornEps);
}

size_t specHash(const KernelSpec &S) {
  const ContractConstants &K = S.Contract;
  return llvm::hash_combine(S.Operation, S.Dir, S.N, S.C, S.StreamType, S.StreamLayout, S.Prec,
                            S.Tile.Threads, S.Tile.Vec, S.Tile.Rows, S.AccumulateDx,
                            S.PointerAlign, S.HasGamma, S.HasBias, S.Params, S.Stage, K.Kind,
                            floatBits(K.RmsEps), K.Rms, floatBits(K.PreEps),
                            floatBits(K.PostMult), K.Sinkhorn, K.SinkhornIters,
                            floatBits(K.SinkhornEps));
}

std::string specLabel(const KernelSpec &S) {
  std::string L;
  llvm::raw_string_ostream OS(L);
  OS << opName(S.Operation) << '.' << directionName(S.Dir) << " n=" << S.N << " C=" << S.C << ' '
     << dtypeName(S.StreamType) << ' ' << layoutName(S.StreamLayout) << ' '
     << contractName(S.Contract.Kind) << " threads=" << S.Tile.Threads << " vec=" << S.Tile.Vec;
  if (S.Tile.Rows != 1)
    OS << " rows=" << S.Tile.Rows;
  if (S.HasGamma)
    OS << " gamma";
  if (S.HasBias)
    OS << " bias";
  if (S.Params == ParamType::Stream)
    OS << " params=" << dtypeName(S.StreamType);
  if (S.Stage)
    OS << " stage=" << S.Stage;
  if (S.AccumulateDx)
    OS << " accumulate";
  if (S.PointerAlign != 16)
    OS << " align=" << S.PointerAlign;
  return OS.str();
}

} // namespace mhcjit
