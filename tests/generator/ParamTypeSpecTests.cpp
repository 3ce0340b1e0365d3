// mhcjit tests: the parameter type of a KernelSpec (phi, gamma, bias in fp32 or the stream
// dtype): where it applies, its canonical record, equality, hash and name expression. Pure CPU.
#include "mhcjit/Errors.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/TileHeuristic.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include <string>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

KernelSpec specOf(Op O, Direction D, DType T = DType::BF16) {
  KernelSpec S;
  S.Operation = O;
  S.Dir = D;
  S.N = 4;
  S.C = 7168;
  S.StreamType = T;
  S.Tile = defaultTileConfig(S);
  return S;
}

std::string nameOf(const KernelSpec &S) {
  auto K = generateKernel(S);
  if (!K) {
    FAIL_CHECK(llvm::toString(K.takeError()));
    return "";
  }
  return K->NameExpression;
}

} // namespace

TEST_CASE("stream-dtype parameters apply to project and to expand_combine with a bias, bf16 or fp16") {
  for (DType T : {DType::BF16, DType::FP16})
    for (Direction D : {Direction::Forward, Direction::Backward}) {
      CAPTURE(dtypeName(T).str());
      KernelSpec P = specOf(Op::Project, D, T);
      CHECK(paramsApply(P));
      P.HasGamma = true;
      CHECK(paramsApply(P));
      KernelSpec E = specOf(Op::ExpandCombine, D, T);
      CHECK_FALSE(paramsApply(E)); // no bias: no parameter to read
      E.HasBias = true;
      CHECK(paramsApply(E));
      for (Op O : {Op::Scale, Op::Sinkhorn, Op::ScaleSinkhorn, Op::Aggregate, Op::Expand, Op::Contract, Op::Head})
        CHECK_FALSE(paramsApply(specOf(O, D, T)));
    }
  KernelSpec Fp32 = specOf(Op::Project, Direction::Forward, DType::FP32);
  CHECK_FALSE(paramsApply(Fp32)); // fp32 stream: the parameters are fp32 either way
}

TEST_CASE("effectiveParams keeps a stream request only where it applies, and paramDType follows") {
  KernelSpec P = specOf(Op::Project, Direction::Forward, DType::FP16);
  CHECK(effectiveParams(P, ParamType::Stream) == ParamType::Stream);
  CHECK(effectiveParams(P, ParamType::FP32) == ParamType::FP32);
  P.Params = ParamType::Stream;
  CHECK(paramDType(P) == DType::FP16);
  P.Params = ParamType::FP32;
  CHECK(paramDType(P) == DType::FP32);
  KernelSpec E = specOf(Op::ExpandCombine, Direction::Backward);
  CHECK(effectiveParams(E, ParamType::Stream) == ParamType::FP32);
  E.HasBias = true;
  CHECK(effectiveParams(E, ParamType::Stream) == ParamType::Stream);
  CHECK(effectiveParams(specOf(Op::Head, Direction::Forward), ParamType::Stream) == ParamType::FP32);
  CHECK(effectiveParams(specOf(Op::Project, Direction::Forward, DType::FP32), ParamType::Stream) ==
        ParamType::FP32);
}

TEST_CASE("params = stream is rejected where it changes nothing, naming the field and the fix") {
  struct Case {
    KernelSpec Spec;
    const char *Why;
  };
  KernelSpec NoBias = specOf(Op::ExpandCombine, Direction::Forward);
  KernelSpec Fp32 = specOf(Op::Project, Direction::Forward, DType::FP32);
  for (Case C : {Case{specOf(Op::Aggregate, Direction::Forward), "aggregate"},
                 Case{specOf(Op::Head, Direction::Backward), "head"}, Case{NoBias, "without bias"},
                 Case{Fp32, "fp32"}}) {
    C.Spec.Params = ParamType::Stream;
    Failure O = failureOf(validateSpec(C.Spec));
    REQUIRE_MESSAGE(O.Failed, canonicalRecord(C.Spec));
    CHECK(O.Code == static_cast<int>(Errc::InvalidArgument));
    for (const char *Piece : {"params = stream", "params = fp32", C.Why})
      CHECK_MESSAGE(contains(O.Message, Piece), "'" << Piece << "' missing from: " << O.Message);
  }
}

TEST_CASE("stream-dtype parameters are in the record, round-trip and change equality and hash") {
  KernelSpec Project = specOf(Op::Project, Direction::Backward, DType::FP16);
  Project.HasGamma = true;
  Project.AccumulateDx = true;
  KernelSpec Combine = specOf(Op::ExpandCombine, Direction::Forward);
  Combine.HasBias = true;
  for (KernelSpec Base : {Project, Combine}) {
    KernelSpec Stream = Base;
    Stream.Params = ParamType::Stream;
    REQUIRE_FALSE(failureOf(validateSpec(Stream)).Failed);
    const std::string Record = canonicalRecord(Stream);
    CAPTURE(Record);
    CHECK(contains(Record, " params=stream "));
    CHECK(contains(canonicalRecord(Base), " params=fp32 "));
    CHECK(Record != canonicalRecord(Base));
    CHECK(Stream != Base);
    CHECK(specHash(Stream) != specHash(Base));
    auto Parsed = parseCanonicalRecord(Record);
    REQUIRE_MESSAGE(static_cast<bool>(Parsed), llvm::toString(Parsed.takeError()));
    CHECK(*Parsed == Stream);
    CHECK(Parsed->Params == ParamType::Stream);
    CHECK(canonicalRecord(*Parsed) == Record);
    CHECK(contains(specLabel(Stream), std::string(" params=") + dtypeName(Stream.StreamType).str()));
    CHECK_FALSE(contains(specLabel(Base), "params"));
  }
}

TEST_CASE("a record written before the parameter type existed parses with fp32 parameters") {
  KernelSpec S = specOf(Op::Project, Direction::Forward);
  std::string Record = canonicalRecord(S);
  const std::string Field = " params=fp32";
  size_t At = Record.find(Field);
  REQUIRE(At != std::string::npos);
  Record.erase(At, Field.size());
  auto Parsed = parseCanonicalRecord(Record);
  REQUIRE_MESSAGE(static_cast<bool>(Parsed), llvm::toString(Parsed.takeError()));
  CHECK(Parsed->Params == ParamType::FP32);
  CHECK(*Parsed == S);
}

TEST_CASE("the parameter type is the template argument after the stream type of project and expand_combine") {
  KernelSpec P = specOf(Op::Project, Direction::Forward);
  P.Tile.Threads = 256;
  P.Tile.Rows = 128;
  CHECK(nameOf(P) == "mhc::project_fwd<4, 7168, mhc::bf16_t, float, 256, 128, false, false, 16>");
  P.Params = ParamType::Stream;
  P.HasGamma = true;
  CHECK(nameOf(P) == "mhc::project_fwd<4, 7168, mhc::bf16_t, mhc::bf16_t, 256, 128, false, true, 16>");
  KernelSpec PB = specOf(Op::Project, Direction::Backward, DType::FP16);
  PB.Tile.Threads = 128;
  PB.Params = ParamType::Stream;
  PB.AccumulateDx = true;
  CHECK(nameOf(PB) == "mhc::project_bwd<4, 7168, mhc::fp16_t, mhc::fp16_t, 128, false, false, true, 16>");

  KernelSpec E = specOf(Op::ExpandCombine, Direction::Forward);
  E.Tile.Threads = 256;
  E.Tile.Vec = 8;
  E.Tile.Rows = 2;
  E.HasBias = true;
  CHECK(nameOf(E) == "mhc::expand_combine_fwd<4, 7168, mhc::bf16_t, float, mhc::Layout::kSbcn, 256, 8, 16, true, 2>");
  E.Params = ParamType::Stream;
  CHECK(nameOf(E) ==
        "mhc::expand_combine_fwd<4, 7168, mhc::bf16_t, mhc::bf16_t, mhc::Layout::kSbcn, 256, 8, 16, true, 2>");
  KernelSpec EB = specOf(Op::ExpandCombine, Direction::Backward, DType::FP16);
  EB.Tile.Threads = 256;
  EB.Tile.Vec = 8;
  EB.HasBias = true;
  EB.Params = ParamType::Stream;
  CHECK(nameOf(EB) ==
        "mhc::expand_combine_bwd<4, 7168, mhc::fp16_t, mhc::fp16_t, mhc::Layout::kSbcn, 256, 8, 16, true, false>");
}
