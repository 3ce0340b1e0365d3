// mhcjit generator: the typed description of one kernel (what to specialise it on).
// A KernelSpec is plain data; validateSpec() checks it and canonicalRecord() names it exactly.
#pragma once

#include "mhcjit/Contract.h"

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mhcjit {

/// The mHC operators (SPEC.md sections 1-6); ScaleSinkhorn, scale and sinkhorn fused into one
/// kernel a direction (the logits never reach global memory); and ReduceRows, the fixed-order
/// sum of per-block partial rows that parameter gradients (dalpha, dbeta, dbias, dphi, ...)
/// finish with.
enum class Op { Project, Scale, Sinkhorn, Aggregate, ExpandCombine, Expand, Contract, Head, ScaleSinkhorn, ReduceRows };
enum class Direction { Forward, Backward };
/// Stream dtype: the element type of x, f and the stream outputs.
enum class DType { BF16, FP16, FP32 };
/// Products in the projection: exact fp32, or TF32 on tensor cores.
enum class Precision { FP32, TF32 };
/// Element type of the parameter inputs phi, gamma (project) and bias (expand_combine): fp32, or
/// the stream dtype (SPEC.md "Notation"; converted to fp32 on load). Their gradients are fp32
/// either way. head's w is fp32 only (SPEC.md 6), so head ignores this.
enum class ParamType { FP32, Stream };

/// Launch shape of a kernel: chosen by a heuristic or the autotuner, never by M for reductions.
struct TileConfig {
  int Threads = 256; ///< threads per block, a multiple of 32 in [32, 1024]
  int Vec = 8;       ///< consecutive C elements per thread and access, a power of two
  int Rows = 1;      ///< tokens per block (project forward), 1..256
};
inline bool operator==(const TileConfig &A, const TileConfig &B) {
  return A.Threads == B.Threads && A.Vec == B.Vec && A.Rows == B.Rows;
}
inline bool operator!=(const TileConfig &A, const TileConfig &B) { return !(A == B); }

/// Everything a generated kernel is specialised on.
struct KernelSpec {
  Op Operation = Op::Aggregate;
  Direction Dir = Direction::Forward;
  int N = 4;       ///< streams, 1..8
  int64_t C = 0;   ///< hidden size per stream, >= 1
  DType StreamType = DType::BF16;
  Layout StreamLayout = Layout::SBCN;
  ContractConstants Contract = contractPreset(ContractKind::TE);
  Precision Prec = Precision::FP32;
  TileConfig Tile;
  /// Backward only: add dx into a caller's fp32 buffer instead of writing it in the stream dtype.
  bool AccumulateDx = false;
  /// Alignment in bytes that every pointer argument is known to have: 16, or the element size.
  int PointerAlign = 16;
  /// project: the optional norm weight gamma is given; expand_combine: the optional bias.
  bool HasGamma = false;
  bool HasBias = false;
  /// Element type of phi and gamma (project) or bias (expand_combine). Stream only where it
  /// changes the kernel (see paramsApply()), so that one kernel has one record.
  ParamType Params = ParamType::FP32;
  /// Which kernel of a multi-kernel op direction: head backward has 0 (per token), 1 (K slices).
  int Stage = 0;
};

/// Field-by-field equality (floats compared by bit pattern) and a matching hash, so a spec
/// can key the runtime's in-memory kernel table without formatting a record on every launch.
bool operator==(const KernelSpec &A, const KernelSpec &B);
inline bool operator!=(const KernelSpec &A, const KernelSpec &B) { return !(A == B); }
size_t specHash(const KernelSpec &Spec);

/// Checks every field; the error names the field, its value and the allowed range.
llvm::Error validateSpec(const KernelSpec &Spec);

/// A canonical one-line record of every field ("op=aggregate dir=fwd n=4 C=7168 ...").
/// Floating-point constants appear as hex floats, so equal records mean bit-equal kernels.
std::string canonicalRecord(const KernelSpec &Spec);

/// Parses canonicalRecord()'s output back into a spec (used to list cache entries).
llvm::Expected<KernelSpec> parseCanonicalRecord(llvm::StringRef Record);

/// Whether the spec's kernel reads parameters whose dtype can be the stream dtype: project
/// (phi, gamma) and expand_combine with a bias, with a bf16 or fp16 stream.
bool paramsApply(const KernelSpec &Spec);
/// Requested where it applies to Spec (paramsApply), else FP32: the canonical Params of a call
/// that asks for Requested. Example: expand_combine without bias, or an fp32 stream -> FP32.
ParamType effectiveParams(const KernelSpec &Spec, ParamType Requested);
/// The element type the kernel reads phi, gamma or bias in: the stream dtype or fp32.
DType paramDType(const KernelSpec &Spec);

/// Short human names: "aggregate", "fwd"/"bwd", "bf16"/"fp16"/"fp32", "fp32"/"tf32",
/// "fp32"/"stream" (parameter type).
llvm::StringRef opName(Op O);
llvm::StringRef directionName(Direction D);
llvm::StringRef dtypeName(DType T);
llvm::StringRef precisionName(Precision P);
llvm::StringRef paramTypeName(ParamType P);
/// Bytes per element of a stream dtype.
int dtypeSize(DType T);

llvm::Optional<Op> parseOp(llvm::StringRef Name);
llvm::Optional<Direction> parseDirection(llvm::StringRef Name);
llvm::Optional<DType> parseDType(llvm::StringRef Name);
llvm::Optional<Precision> parsePrecision(llvm::StringRef Name);
llvm::Optional<ParamType> parseParamType(llvm::StringRef Name);

/// Every op, for "--op all".
llvm::ArrayRef<Op> allOps();

/// A short, readable label for logs and listings ("aggregate.bwd n=4 C=7168 bf16 sbcn").
std::string specLabel(const KernelSpec &Spec);

} // namespace mhcjit
