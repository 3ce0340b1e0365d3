// mhcjit tests: KernelSpec validation, the canonical record, equality and hashing, contract
// presets (SPEC.md "Contracts") and the default tile heuristic. Pure CPU, no NVRTC.
#include "mhcjit/Contract.h"
#include "mhcjit/Errors.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/TileHeuristic.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include "llvm/Support/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

Failure validate(const KernelSpec &Spec) { return failureOf(validateSpec(Spec)); }

/// Checks that Spec is rejected as an invalid argument and that the message holds each piece.
void checkRejected(const KernelSpec &Spec, std::initializer_list<const char *> Pieces) {
  Failure O = validate(Spec);
  REQUIRE_MESSAGE(O.Failed, canonicalRecord(Spec));
  CHECK(O.Code == static_cast<int>(Errc::InvalidArgument));
  CHECK_MESSAGE(llvm::StringRef(O.Message).startswith("invalid kernel spec: "), O.Message);
  for (const char *Piece : Pieces)
    CHECK_MESSAGE(O.Message.find(Piece) != std::string::npos,
                  "'" << std::string(Piece) << "' is missing from: " << O.Message);
}

uint32_t bitsOf(float F) {
  uint32_t B;
  std::memcpy(&B, &F, sizeof B);
  return B;
}

/// A realistic valid spec: the runtime's forward bf16 aggregate at n = 4, C = 7168.
/// A fixed tile, not the heuristic's, so that the records these tests spell out stay put.
KernelSpec baseSpec() {
  KernelSpec S;
  S.N = 4;
  S.C = 7168;
  S.StreamType = DType::BF16;
  S.Tile = TileConfig{256, 8, 1};
  return S;
}

KernelSpec backwardSpec() {
  KernelSpec S = baseSpec();
  S.Dir = Direction::Backward;
  return S;
}

/// Field-by-field comparison with a readable failure for each field.
void checkSameFields(const KernelSpec &A, const KernelSpec &B) {
  CHECK(A.Operation == B.Operation);
  CHECK(A.Dir == B.Dir);
  CHECK(A.N == B.N);
  CHECK(A.C == B.C);
  CHECK(A.StreamType == B.StreamType);
  CHECK(A.StreamLayout == B.StreamLayout);
  CHECK(A.Prec == B.Prec);
  CHECK(A.Tile.Threads == B.Tile.Threads);
  CHECK(A.Tile.Vec == B.Tile.Vec);
  CHECK(A.AccumulateDx == B.AccumulateDx);
  CHECK(A.PointerAlign == B.PointerAlign);
  CHECK(A.HasGamma == B.HasGamma);
  CHECK(A.HasBias == B.HasBias);
  CHECK(A.Params == B.Params);
  CHECK(A.Contract.Kind == B.Contract.Kind);
  CHECK(A.Contract.Rms == B.Contract.Rms);
  CHECK(A.Contract.Sinkhorn == B.Contract.Sinkhorn);
  CHECK(A.Contract.SinkhornIters == B.Contract.SinkhornIters);
  CHECK(bitsOf(A.Contract.RmsEps) == bitsOf(B.Contract.RmsEps));
  CHECK(bitsOf(A.Contract.PreEps) == bitsOf(B.Contract.PreEps));
  CHECK(bitsOf(A.Contract.PostMult) == bitsOf(B.Contract.PostMult));
  CHECK(bitsOf(A.Contract.SinkhornEps) == bitsOf(B.Contract.SinkhornEps));
}

/// One change of one field, named for failure messages.
struct FieldChange {
  const char *Field;
  std::function<void(KernelSpec &)> Apply;
};

/// Every field of a KernelSpec that names a different kernel, each changed alone. Starting from
/// backwardSpec() each result is still a valid spec.
std::vector<FieldChange> kernelFieldChanges() {
  return {
      {"dir", [](KernelSpec &S) { S.Dir = Direction::Forward; }},
      {"n", [](KernelSpec &S) { S.N = 3; }},
      {"C", [](KernelSpec &S) { S.C = 7176; }},
      {"dtype", [](KernelSpec &S) { S.StreamType = DType::FP16; }},
      {"layout", [](KernelSpec &S) { S.StreamLayout = Layout::SBNC; }},
      {"contract", [](KernelSpec &S) { S.Contract.Kind = ContractKind::Megatron; }},
      {"rms_eps", [](KernelSpec &S) { S.Contract.RmsEps = 1e-5f; }},
      {"rms_eps by one ulp",
       [](KernelSpec &S) { S.Contract.RmsEps = std::nextafter(S.Contract.RmsEps, 1.0f); }},
      {"rms_form", [](KernelSpec &S) { S.Contract.Rms = RmsForm::Outside; }},
      {"pre_eps", [](KernelSpec &S) { S.Contract.PreEps = 1e-6f; }},
      {"pre_eps as -0", [](KernelSpec &S) { S.Contract.PreEps = -0.0f; }},
      {"post_mult", [](KernelSpec &S) { S.Contract.PostMult = 1.0f; }},
      {"sinkhorn", [](KernelSpec &S) { S.Contract.Sinkhorn = SinkhornKind::SoftmaxEps; }},
      {"sinkhorn_iters", [](KernelSpec &S) { S.Contract.SinkhornIters = 10; }},
      {"sinkhorn_eps", [](KernelSpec &S) { S.Contract.SinkhornEps = 1e-6f; }},
      {"precision", [](KernelSpec &S) { S.Prec = Precision::TF32; }},
      {"threads", [](KernelSpec &S) { S.Tile.Threads = 128; }},
      {"vec", [](KernelSpec &S) { S.Tile.Vec = 4; }},
      {"accumulate_dx", [](KernelSpec &S) { S.AccumulateDx = true; }},
      {"pointer_align", [](KernelSpec &S) { S.PointerAlign = 2; }},
  };
}

} // namespace

// ---- validation ----

TEST_CASE("the runtime's default specs pass validation for every dtype, direction and layout") {
  for (DType T : {DType::BF16, DType::FP16, DType::FP32})
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (Layout L : {Layout::SBCN, Layout::SBNC})
        for (int64_t C : {1, 7, 1000, 7168}) {
          KernelSpec S;
          S.Dir = D;
          S.C = C;
          S.StreamType = T;
          S.StreamLayout = L;
          S.Tile = defaultTileConfig(S);
          Failure O = validate(S);
          CHECK_MESSAGE(!O.Failed, canonicalRecord(S) << ": " << O.Message);
        }
}

TEST_CASE("a spec with n = 0 is rejected with the allowed range") {
  KernelSpec S = baseSpec();
  S.N = 0;
  checkRejected(S, {"n = 0", "1..8"});
}

TEST_CASE("a spec with n = 9 is rejected with the allowed range") {
  KernelSpec S = baseSpec();
  S.N = 9;
  checkRejected(S, {"n = 9", "1..8"});
}

TEST_CASE("the boundary stream counts n = 1 and n = 8 are accepted") {
  for (int N : {1, 8}) {
    KernelSpec S = baseSpec();
    S.N = N;
    Failure O = validate(S);
    CHECK_MESSAGE(!O.Failed, O.Message);
  }
}

TEST_CASE("a spec with C = 0 or a negative C is rejected naming C and its minimum") {
  KernelSpec S = baseSpec();
  S.C = 0;
  checkRejected(S, {"C = 0", "at least 1"});
  S.C = -7168;
  checkRejected(S, {"C = -7168", "at least 1"});
}

TEST_CASE("a C beyond the supported maximum is rejected with the maximum") {
  KernelSpec S = baseSpec();
  S.C = (int64_t(1) << 24) + 8;
  checkRejected(S, {"C = 16777224", "16777216"});
}

TEST_CASE("a thread count that is not a multiple of 32 is rejected with the rule") {
  KernelSpec S = baseSpec();
  S.Tile.Threads = 100;
  checkRejected(S, {"threads = 100", "multiple of 32", "32..1024"});
}

TEST_CASE("thread counts outside 32..1024 are rejected even when they are multiples of 32") {
  KernelSpec S = baseSpec();
  S.Tile.Threads = 0;
  checkRejected(S, {"threads = 0", "32..1024"});
  S.Tile.Threads = 2048;
  checkRejected(S, {"threads = 2048", "32..1024"});
  S.Tile.Threads = 1024;
  CHECK_FALSE(validate(S).Failed);
  S.Tile.Threads = 32;
  CHECK_FALSE(validate(S).Failed);
}

TEST_CASE("a vector width of 8 fp32 elements (32 bytes) is rejected with the 16-byte limit") {
  KernelSpec S = baseSpec();
  S.StreamType = DType::FP32;
  S.Tile.Vec = 8;
  checkRejected(S, {"vec = 8", "4 bytes", "<= 16", "fp32"});
  S.Tile.Vec = 4;
  CHECK_FALSE(validate(S).Failed);
}

TEST_CASE("a vector width of 16 bf16 elements is rejected while 8 is accepted") {
  KernelSpec S = baseSpec();
  S.Tile.Vec = 16;
  checkRejected(S, {"vec = 16", "2 bytes", "<= 16", "bf16"});
  S.StreamType = DType::FP16;
  checkRejected(S, {"vec = 16", "fp16"});
  S.Tile.Vec = 8;
  CHECK_FALSE(validate(S).Failed);
}

TEST_CASE("a vector width that is not a power of two is rejected") {
  KernelSpec S = baseSpec();
  for (int Vec : {0, 3, 6, -2}) {
    S.Tile.Vec = Vec;
    checkRejected(S, {("vec = " + std::to_string(Vec)).c_str(), "power of two"});
  }
}

TEST_CASE("a pointer alignment other than 16 or the element size is rejected with both choices") {
  KernelSpec S = baseSpec();
  S.PointerAlign = 8;
  checkRejected(S, {"pointer_align = 8", "16 or 2", "element size"});
  S.PointerAlign = 4; // fp32's element size, not bf16's
  checkRejected(S, {"pointer_align = 4", "16 or 2"});
  S.StreamType = DType::FP32;
  S.Tile.Vec = 4;
  S.PointerAlign = 2;
  checkRejected(S, {"pointer_align = 2", "16 or 4"});
  S.PointerAlign = 4;
  CHECK_FALSE(validate(S).Failed);
  S.StreamType = DType::BF16;
  S.PointerAlign = 2;
  CHECK_FALSE(validate(S).Failed);
}

TEST_CASE("accumulate_dx on a forward spec is rejected and accepted on a backward one") {
  KernelSpec S = baseSpec();
  S.AccumulateDx = true;
  checkRejected(S, {"accumulate_dx", "backward"});
  S = backwardSpec();
  S.AccumulateDx = true;
  CHECK_FALSE(validate(S).Failed);
}

TEST_CASE("non-finite or negative contract constants are rejected naming the constant") {
  const float Inf = std::numeric_limits<float>::infinity();
  const float NaN = std::numeric_limits<float>::quiet_NaN();
  {
    KernelSpec S = baseSpec();
    S.Contract.RmsEps = NaN;
    checkRejected(S, {"rms_eps = ", "finite"});
    S.Contract.RmsEps = Inf;
    checkRejected(S, {"rms_eps = ", "finite"});
    S.Contract.RmsEps = -1e-6f;
    checkRejected(S, {"rms_eps = -0x1.0c6f7", ">= 0"});
  }
  {
    KernelSpec S = baseSpec();
    S.Contract.PreEps = -Inf;
    checkRejected(S, {"pre_eps = ", "finite"});
  }
  {
    KernelSpec S = baseSpec();
    S.Contract.PostMult = Inf;
    checkRejected(S, {"post_mult = ", "finite"});
    S.Contract.PostMult = -1.0f; // a negative multiplier is odd but finite: allowed
    CHECK_FALSE(validate(S).Failed);
  }
  {
    KernelSpec S = baseSpec();
    S.Contract.SinkhornEps = NaN;
    checkRejected(S, {"sinkhorn_eps = ", "finite"});
  }
}

TEST_CASE("a Sinkhorn iteration count outside 1..1000 is rejected with the range") {
  KernelSpec S = baseSpec();
  S.Contract.SinkhornIters = 0;
  checkRejected(S, {"sinkhorn_iters = 0", "1..1000"});
  S.Contract.SinkhornIters = 1001;
  checkRejected(S, {"sinkhorn_iters = 1001", "1..1000"});
  S.Contract.SinkhornIters = 1;
  CHECK_FALSE(validate(S).Failed);
}

// ---- canonical record ----

TEST_CASE("the canonical record of the default spec names every field with hex floats") {
  KernelSpec S = baseSpec();
  std::string R = canonicalRecord(S);
  CHECK(R == "op=aggregate dir=fwd n=4 C=7168 dtype=bf16 layout=sbcn contract=te rms_eps=0x1p-23 "
             "rms_form=inside pre_eps=0x0p+0 post_mult=0x1p+1 sinkhorn=log sinkhorn_iters=20 "
             "sinkhorn_eps=0x0p+0 precision=fp32 threads=256 vec=8 rows=1 accumulate_dx=0 "
             "align=16 gamma=0 bias=0 params=fp32 stage=0");
  CHECK(R.find('\n') == std::string::npos);
}

TEST_CASE("specs survive the canonical record round trip bit for bit") {
  std::vector<KernelSpec> Specs;
  Specs.push_back(baseSpec());
  {
    // DeepSeek's library defaults: a backward that accumulates, with overridden constants.
    KernelSpec S = backwardSpec();
    S.Contract = contractPreset(ContractKind::DeepSeek);
    S.StreamLayout = Layout::SBNC;
    S.StreamType = DType::FP16;
    S.C = 4096;
    S.Tile = defaultTileConfig(S);
    S.AccumulateDx = true;
    S.Contract.RmsEps = 1e-5f;
    S.Contract.PostMult = 1.0f;
    S.Contract.SinkhornIters = 10;
    Specs.push_back(S);
  }
  {
    KernelSpec S = baseSpec();
    S.Contract = contractPreset(ContractKind::Megatron);
    S.StreamLayout = Layout::SBNC;
    S.StreamType = DType::FP32;
    S.N = 8;
    S.C = 1000;
    S.Prec = Precision::TF32;
    S.Tile = defaultTileConfig(S);
    S.PointerAlign = 4;
    Specs.push_back(S);
  }
  {
    // Awkward floats: one ulp below 1, the smallest subnormal, a negative zero, 1/3.
    KernelSpec S = backwardSpec();
    S.N = 1;
    S.C = 7;
    S.Tile = defaultTileConfig(S);
    S.PointerAlign = 2;
    S.Contract.RmsEps = std::nextafter(1.0f, 0.0f);
    S.Contract.PreEps = std::numeric_limits<float>::denorm_min();
    S.Contract.PostMult = -0.0f;
    S.Contract.SinkhornEps = 1.0f / 3.0f;
    S.Contract.SinkhornIters = 1000;
    S.Contract.Sinkhorn = SinkhornKind::SoftmaxEps;
    S.Contract.Rms = RmsForm::Outside;
    Specs.push_back(S);
  }
  for (const KernelSpec &S : Specs) {
    std::string Record = canonicalRecord(S);
    CAPTURE(Record);
    auto Parsed = parseCanonicalRecord(Record);
    if (!Parsed) {
      FAIL(llvm::toString(Parsed.takeError()));
      continue;
    }
    checkSameFields(*Parsed, S);
    CHECK(*Parsed == S);
    CHECK(specHash(*Parsed) == specHash(S));
    CHECK(canonicalRecord(*Parsed) == Record);
  }
}

TEST_CASE("the record writes 1e-5, 1.0 and 10 iterations of an overridden contract exactly") {
  KernelSpec S = baseSpec();
  S.Contract.RmsEps = 1e-5f;
  S.Contract.PostMult = 1.0f;
  S.Contract.SinkhornIters = 10;
  std::string R = canonicalRecord(S);
  CHECK(R.find(" rms_eps=0x1.4f8b58p-17 ") != std::string::npos);
  CHECK(R.find(" post_mult=0x1p+0 ") != std::string::npos);
  CHECK(R.find(" sinkhorn_iters=10 ") != std::string::npos);
  CHECK(R != canonicalRecord(baseSpec()));
}

TEST_CASE("a record with extra spaces or fields in another order parses to the same spec") {
  KernelSpec S = backwardSpec();
  std::string Shuffled =
      "  stage=0 params=fp32 bias=0 gamma=0 align=16 accumulate_dx=0 rows=1 vec=8 threads=256 precision=fp32 sinkhorn_eps=0x0p+0 "
      "sinkhorn_iters=20 sinkhorn=log post_mult=0x1p+1 pre_eps=0x0p+0 rms_form=inside "
      "rms_eps=0x1p-23 contract=te layout=sbcn dtype=bf16 C=7168   n=4 dir=bwd op=aggregate \n";
  auto Parsed = parseCanonicalRecord(Shuffled);
  REQUIRE_MESSAGE(static_cast<bool>(Parsed), llvm::toString(Parsed.takeError()));
  CHECK(*Parsed == S);
}

TEST_CASE("a record missing a field or holding a garbled value is rejected naming the field") {
  const std::string Good = canonicalRecord(baseSpec());
  auto Replace = [&](const std::string &From, const std::string &To) {
    std::string R = Good;
    size_t At = R.find(From);
    REQUIRE(At != std::string::npos);
    R.replace(At, From.size(), To);
    return R;
  };
  struct Case {
    std::string Record;
    const char *Field;
  };
  std::vector<Case> Cases = {
      {Replace("n=4 ", ""), "'n'"},
      {Replace("n=4 ", "n=four "), "'n'"},
      {Replace("C=7168 ", "C= "), "'C'"},
      {Replace("dtype=bf16", "dtype=int8"), "'dtype'"},
      {Replace("layout=sbcn", "layout=bsnc"), "'layout'"},
      {Replace("contract=te", "contract=xla"), "'contract'"},
      {Replace("rms_eps=0x1p-23", "rms_eps=0x1p-23junk"), "'rms_eps'"},
      {Replace("post_mult=0x1p+1", "post_mult="), "'post_mult'"},
      {Replace("sinkhorn=log", "sinkhorn=sinkhorn"), "'sinkhorn'"},
      {Replace("precision=fp32", "precision=fp64"), "'precision'"},
      {Replace("vec=8", "vec=8.0"), "'vec'"},
      {Replace(" align=16", ""), "'align'"},
      {Replace("params=fp32", "params=bf16"), "'params'"},
      {Replace("params=fp32", "params="), "'params'"},
      {"", "'op'"},
  };
  for (const Case &C : Cases) {
    CAPTURE(C.Record);
    Failure O = failureOf(parseCanonicalRecord(C.Record).takeError());
    REQUIRE(O.Failed);
    CHECK(O.Code == static_cast<int>(Errc::InvalidArgument));
    CHECK_MESSAGE(O.Message.find(C.Field) != std::string::npos, O.Message);
  }
}

TEST_CASE("a record whose integers overflow an int is rejected, not wrapped into a valid spec") {
  // 2^32 + 4, 2^32 + 256 and 2^32 + 16 wrap to 4, 256 and 16 if narrowed without a check.
  const std::string Good = canonicalRecord(baseSpec());
  struct Case {
    std::string From, To;
  };
  for (const Case &C : {Case{" n=4 ", " n=4294967300 "}, Case{" threads=256 ", " threads=4294967552 "},
                        Case{" align=16", " align=4294967312"},
                        Case{" sinkhorn_iters=20 ", " sinkhorn_iters=4294967316 "}}) {
    std::string Record = Good;
    size_t At = Record.find(C.From);
    REQUIRE(At != std::string::npos);
    Record.replace(At, C.From.size(), C.To);
    CAPTURE(Record);
    auto Parsed = parseCanonicalRecord(Record);
    if (Parsed)
      FAIL_CHECK("accepted and wrapped into: " << canonicalRecord(*Parsed));
    else
      CHECK(failureOf(Parsed.takeError()).Code == static_cast<int>(Errc::InvalidArgument));
  }
}

TEST_CASE("a well-formed record of an invalid spec is rejected with validateSpec's message") {
  KernelSpec S = baseSpec();
  S.N = 9;
  Failure O = failureOf(parseCanonicalRecord(canonicalRecord(S)).takeError());
  REQUIRE(O.Failed);
  CHECK(O.Message == validate(S).Message);
}

// ---- equality and hashing ----

TEST_CASE("equal specs compare equal and hash equally") {
  KernelSpec A = backwardSpec(), B = backwardSpec();
  CHECK(A == B);
  CHECK_FALSE(A != B);
  CHECK(specHash(A) == specHash(B));
}

TEST_CASE("changing any single field makes specs unequal, changes the hash and the record") {
  const KernelSpec Base = backwardSpec();
  REQUIRE_FALSE(validate(Base).Failed);
  for (const FieldChange &Change : kernelFieldChanges()) {
    const std::string Field = Change.Field;
    CAPTURE(Field);
    KernelSpec Changed = Base;
    Change.Apply(Changed);
    Failure O = validate(Changed);
    CHECK_MESSAGE(!O.Failed, O.Message);
    CHECK_FALSE(Changed == Base);
    CHECK(Changed != Base);
    CHECK(specHash(Changed) != specHash(Base));
    CHECK(canonicalRecord(Changed) != canonicalRecord(Base));
  }
}

TEST_CASE("specs that differ in any single field all hash differently from each other") {
  const KernelSpec Base = backwardSpec();
  std::vector<KernelSpec> Variants{Base};
  std::vector<std::string> Names{"base"};
  for (const FieldChange &Change : kernelFieldChanges()) {
    KernelSpec S = Base;
    Change.Apply(S);
    Variants.push_back(S);
    Names.push_back(Change.Field);
  }
  for (size_t I = 0; I < Variants.size(); ++I)
    for (size_t J = I + 1; J < Variants.size(); ++J) {
      CAPTURE(Names[I]);
      CAPTURE(Names[J]);
      CHECK((Variants[I] == Variants[J]) == false);
      CHECK(specHash(Variants[I]) != specHash(Variants[J]));
    }
}

TEST_CASE("equality compares floats by bit pattern, so 0 and -0 differ and NaNs are equal") {
  KernelSpec A = baseSpec(), B = baseSpec();
  A.Contract.PreEps = 0.0f;
  B.Contract.PreEps = -0.0f;
  CHECK(A != B);
  A.Contract.PostMult = B.Contract.PostMult = std::numeric_limits<float>::quiet_NaN();
  B.Contract.PreEps = 0.0f;
  CHECK(A == B); // identical bits, although NaN != NaN as floats
  CHECK(specHash(A) == specHash(B));
}

// ---- contract presets ----

TEST_CASE("the te preset matches SPEC.md: sbcn, rms_eps 2^-23 inside, pre_eps 0, log 20") {
  ContractConstants K = contractPreset(ContractKind::TE);
  CHECK(K.Kind == ContractKind::TE);
  CHECK(K.DefaultLayout == Layout::SBCN);
  CHECK(bitsOf(K.RmsEps) == bitsOf(0x1p-23f));
  CHECK(K.RmsEps == std::numeric_limits<float>::epsilon());
  CHECK(K.Rms == RmsForm::Inside);
  CHECK(bitsOf(K.PreEps) == bitsOf(0.0f));
  CHECK(bitsOf(K.PostMult) == bitsOf(2.0f));
  CHECK(K.Sinkhorn == SinkhornKind::Log);
  CHECK(K.SinkhornIters == 20);
}

TEST_CASE("the deepseek preset matches SPEC.md: sbnc, 1e-6 inside, pre_eps 1e-6, softmax_eps 20") {
  ContractConstants K = contractPreset(ContractKind::DeepSeek);
  CHECK(K.Kind == ContractKind::DeepSeek);
  CHECK(K.DefaultLayout == Layout::SBNC);
  CHECK(bitsOf(K.RmsEps) == bitsOf(1e-6f));
  CHECK(K.Rms == RmsForm::Inside);
  CHECK(bitsOf(K.PreEps) == bitsOf(1e-6f));
  CHECK(bitsOf(K.PostMult) == bitsOf(2.0f));
  CHECK(K.Sinkhorn == SinkhornKind::SoftmaxEps);
  CHECK(K.SinkhornIters == 20);
  CHECK(bitsOf(K.SinkhornEps) == bitsOf(1e-6f));
}

TEST_CASE("the megatron preset matches SPEC.md: like deepseek but with rms_eps outside the sqrt") {
  ContractConstants K = contractPreset(ContractKind::Megatron);
  CHECK(K.Kind == ContractKind::Megatron);
  CHECK(K.DefaultLayout == Layout::SBNC);
  CHECK(bitsOf(K.RmsEps) == bitsOf(1e-6f));
  CHECK(K.Rms == RmsForm::Outside);
  CHECK(bitsOf(K.PreEps) == bitsOf(1e-6f));
  CHECK(bitsOf(K.PostMult) == bitsOf(2.0f));
  CHECK(K.Sinkhorn == SinkhornKind::SoftmaxEps);
  CHECK(K.SinkhornIters == 20);
  CHECK(bitsOf(K.SinkhornEps) == bitsOf(1e-6f));
}

TEST_CASE("a default-constructed KernelSpec carries the te contract") {
  KernelSpec S;
  ContractConstants Te = contractPreset(ContractKind::TE);
  CHECK(S.Contract.Kind == ContractKind::TE);
  CHECK(bitsOf(S.Contract.RmsEps) == bitsOf(Te.RmsEps));
  CHECK(S.StreamLayout == Te.DefaultLayout);
}

TEST_CASE("every enum name parses back to its value and unknown names parse to nothing") {
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek, ContractKind::Megatron})
    CHECK(parseContract(contractName(K)) == K);
  CHECK(contractName(ContractKind::TE) == "te");
  CHECK(contractName(ContractKind::DeepSeek) == "deepseek");
  CHECK(contractName(ContractKind::Megatron) == "megatron");
  for (Layout L : {Layout::SBCN, Layout::SBNC})
    CHECK(parseLayout(layoutName(L)) == L);
  for (RmsForm F : {RmsForm::Inside, RmsForm::Outside})
    CHECK(parseRmsForm(rmsFormName(F)) == F);
  for (SinkhornKind K : {SinkhornKind::Log, SinkhornKind::SoftmaxEps})
    CHECK(parseSinkhorn(sinkhornName(K)) == K);
  for (DType T : {DType::BF16, DType::FP16, DType::FP32})
    CHECK(parseDType(dtypeName(T)) == T);
  for (Precision P : {Precision::FP32, Precision::TF32})
    CHECK(parsePrecision(precisionName(P)) == P);
  for (Direction D : {Direction::Forward, Direction::Backward})
    CHECK(parseDirection(directionName(D)) == D);
  for (Op O : allOps())
    CHECK(parseOp(opName(O)) == O);
  CHECK(parseDirection("forward") == Direction::Forward);
  CHECK(parseDirection("backward") == Direction::Backward);
  CHECK_FALSE(parseContract("TE").hasValue());
  CHECK_FALSE(parseLayout("").hasValue());
  CHECK_FALSE(parseDType("int8").hasValue());
  CHECK_FALSE(parseDType("bfloat16").hasValue());
  CHECK_FALSE(parseOp("transpose").hasValue());
  CHECK_FALSE(parseOp("Expand").hasValue());
  CHECK_FALSE(parseSinkhorn("softmax").hasValue());
  CHECK(dtypeSize(DType::BF16) == 2);
  CHECK(dtypeSize(DType::FP16) == 2);
  CHECK(dtypeSize(DType::FP32) == 4);
}

TEST_CASE("scale_sinkhorn is an op of its own, listed once next to scale and sinkhorn") {
  CHECK(opName(Op::ScaleSinkhorn) == "scale_sinkhorn");
  CHECK(parseOp("scale_sinkhorn") == Op::ScaleSinkhorn);
  CHECK_FALSE(parseOp("scale-sinkhorn").hasValue());
  CHECK_FALSE(parseOp("scalesinkhorn").hasValue());
  // prewarm --op all, bench and the tuner walk allOps(): the fused op must be there once, the
  // separate ops (which stay) too, and the helper reduce_rows never
  auto Count = [](Op O) { return std::count(allOps().begin(), allOps().end(), O); };
  CHECK(Count(Op::ScaleSinkhorn) == 1);
  CHECK(Count(Op::Scale) == 1);
  CHECK(Count(Op::Sinkhorn) == 1);
  CHECK(Count(Op::ReduceRows) == 0);
  std::set<std::string> Names;
  for (Op O : allOps())
    Names.insert(opName(O).str());
  CHECK(Names.size() == allOps().size());
}

TEST_CASE("scale_sinkhorn specs validate for n = 1..8 in every contract and survive the record") {
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek, ContractKind::Megatron})
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (int N = 1; N <= 8; ++N) {
        KernelSpec S;
        S.Operation = Op::ScaleSinkhorn;
        S.Dir = D;
        S.N = N;
        S.C = 7168;
        S.Contract = contractPreset(K);
        S.StreamLayout = S.Contract.Kind == ContractKind::TE ? Layout::SBCN : Layout::SBNC;
        S.Tile = defaultTileConfig(S);
        const std::string Record = canonicalRecord(S);
        CAPTURE(Record);
        Failure O = validate(S);
        CHECK_MESSAGE(!O.Failed, O.Message);
        CHECK(llvm::StringRef(Record).startswith("op=scale_sinkhorn "));
        auto Parsed = parseCanonicalRecord(Record);
        REQUIRE_MESSAGE(static_cast<bool>(Parsed), failureOf(Parsed.takeError()).Message);
        checkSameFields(*Parsed, S);
        CHECK(*Parsed == S);
        // the same fields under the separate ops name other kernels
        for (Op Other : {Op::Scale, Op::Sinkhorn}) {
          KernelSpec T = S;
          T.Operation = Other;
          CHECK(T != S);
          CHECK(canonicalRecord(T) != Record);
          CHECK(specHash(T) != specHash(S));
        }
      }
}

TEST_CASE("scale_sinkhorn's default tile is a thread per token: 128 threads forward, 64 backward") {
  for (int N : {1, 4, 8})
    for (DType T : {DType::BF16, DType::FP32})
      for (int64_t C : {7, 7168}) {
        KernelSpec S;
        S.Operation = Op::ScaleSinkhorn;
        S.N = N;
        S.C = C;
        S.StreamType = T;
        CAPTURE(canonicalRecord(S));
        S.Dir = Direction::Forward;
        CHECK(defaultTileConfig(S).Threads == 128);
        S.Dir = Direction::Backward;
        CHECK(defaultTileConfig(S).Threads == 64);
        CHECK(defaultTileConfig(S).Vec == 1);
        CHECK(defaultTileConfig(S).Rows == 1);
      }
}

TEST_CASE("a spec label is short and names op, direction, shape and variant") {
  KernelSpec S = backwardSpec();
  S.AccumulateDx = true;
  S.PointerAlign = 2;
  std::string L = specLabel(S);
  CHECK(L.rfind("aggregate.bwd n=4 C=7168 bf16 sbcn te", 0) == 0);
  CHECK(L.find("accumulate") != std::string::npos);
  CHECK(L.find("align=2") != std::string::npos);
  CHECK(specLabel(baseSpec()).find("accumulate") == std::string::npos);
}

// ---- default tile config ----

TEST_CASE("the default aggregate vector width follows the documented rules in both layouts") {
  const std::vector<int64_t> Cs = {1, 2, 3, 4, 6, 7, 12, 64, 100, 1000, 2048, 4096, 7168, 16384};
  for (Layout L : {Layout::SBCN, Layout::SBNC})
  for (int N : {1, 2, 4, 8})
  for (DType T : {DType::BF16, DType::FP16, DType::FP32})
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (int64_t C : Cs) {
        KernelSpec S;
        S.Dir = D;
        S.N = N;
        S.C = C;
        S.StreamType = T;
        S.StreamLayout = L;
        TileConfig Tile = defaultTileConfig(S);
        const int Elem = dtypeSize(T), V = Tile.Vec;
        CAPTURE(C);
        CAPTURE(Elem);
        CAPTURE(N);
        CHECK(V >= 1);
        CHECK((V & (V - 1)) == 0);
        CHECK(C % V == 0);
        CHECK(V * Elem <= 16);
        // a doubled vec would break the rule that stopped it
        const bool Indivisible = C % (2 * V) != 0 || 2 * V * Elem > 16;
        if (D == Direction::Backward) { // 4 bytes per stream a thread (8: sbnc, 16-bit, C = 2^k >= 2048)
          const bool Wide = L == Layout::SBNC && Elem == 2 && C >= 2048 && (C & (C - 1)) == 0;
          const int StreamBytes = Wide ? 8 : 4;
          CHECK((V == 1 || V * Elem <= StreamBytes));
          CHECK((Indivisible || 2 * V * Elem > StreamBytes));
        } else if (L == Layout::SBCN) { // a span of vec * n elements: 16 bytes, or 4 a stream
          CHECK((V == 1 || V * N * Elem <= 16 || V * Elem <= 4));
          CHECK((Indivisible || (2 * V * N * Elem > 16 && 2 * V * Elem > 4)));
        } else { // the widest
          CHECK(Indivisible);
        }
        CHECK(Tile.Threads >= 32);
        CHECK(Tile.Threads <= 1024);
        CHECK(Tile.Threads % 32 == 0);
        S.Tile = Tile;
        CHECK_FALSE(validate(S).Failed);
      }
}

TEST_CASE("the default tile matches the documented examples") {
  KernelSpec S; // aggregate, n = 4, sbcn
  S.StreamType = DType::BF16;
  S.C = 7168;
  CHECK(defaultTileConfig(S).Vec == 2); // 4 streams x 2 bf16 = 16 bytes
  CHECK(defaultTileConfig(S).Threads == 256);
  S.StreamLayout = Layout::SBNC;
  CHECK(defaultTileConfig(S).Vec == 8); // 16 bytes per stream
  S.StreamLayout = Layout::SBCN;
  S.N = 2;
  CHECK(defaultTileConfig(S).Vec == 4);
  S.N = 8;
  CHECK(defaultTileConfig(S).Vec == 2); // at least 4 bytes a stream
  S.N = 4;
  S.C = 1000;
  CHECK(defaultTileConfig(S).Vec == 2);
  S.C = 7;
  CHECK(defaultTileConfig(S).Vec == 1);
  S.StreamType = DType::FP32;
  S.C = 7168;
  CHECK(defaultTileConfig(S).Vec == 1);
  // backward: one block per token, 4 bytes per stream a thread, no more threads than the token
  // has chunks (at least 32), at most 512 (aggregate) or 256 (expand_combine, 512 where that
  // is a thread per chunk, in sbnc only for a power of two of chunks, else 128)
  S.Dir = Direction::Backward;
  S.StreamType = DType::BF16;
  S.C = 64; // vec 2, 32 chunks
  CHECK(defaultTileConfig(S).Vec == 2);
  CHECK(defaultTileConfig(S).Threads == 32);
  S.C = 100; // vec 2, 50 chunks
  CHECK(defaultTileConfig(S).Threads == 64);
  S.C = 1000; // vec 2, 500 chunks
  CHECK(defaultTileConfig(S).Threads == 512);
  S.C = 7168;
  CHECK(defaultTileConfig(S).Threads == 512);
  S.StreamLayout = Layout::SBNC; // 16-bit sbnc: 8 bytes per stream and 256 threads at C = 2^k
  CHECK(defaultTileConfig(S).Vec == 2);
  CHECK(defaultTileConfig(S).Threads == 512);
  S.C = 4096;
  CHECK(defaultTileConfig(S).Vec == 4);
  CHECK(defaultTileConfig(S).Threads == 256);
  S.StreamType = DType::FP32;
  CHECK(defaultTileConfig(S).Vec == 1);
  CHECK(defaultTileConfig(S).Threads == 512);
  S.StreamType = DType::BF16;
  S.C = 7168;
  S.StreamLayout = Layout::SBCN;
  S.Operation = Op::ExpandCombine; // 32-byte spans: vec 4, 1792 chunks
  CHECK(defaultTileConfig(S).Vec == 4);
  CHECK(defaultTileConfig(S).Threads == 256);
  S.C = 2048; // 512 chunks: a thread each
  CHECK(defaultTileConfig(S).Threads == 512);
  S.C = 2560; // 640 chunks
  CHECK(defaultTileConfig(S).Threads == 256);
  S.StreamLayout = Layout::SBNC; // vec 8, 320 chunks: not a power of two, 128 threads
  CHECK(defaultTileConfig(S).Vec == 8);
  CHECK(defaultTileConfig(S).Threads == 128);
  S.C = 2048; // 256 chunks: a thread each
  CHECK(defaultTileConfig(S).Threads == 256);
  S.C = 4096; // 512 chunks: a thread each
  CHECK(defaultTileConfig(S).Threads == 512);
  S.C = 7168; // 896 chunks
  CHECK(defaultTileConfig(S).Threads == 256);
  S.StreamLayout = Layout::SBCN;
  S.N = 8;
  CHECK(defaultTileConfig(S).Vec == 2);
  CHECK(defaultTileConfig(S).Threads == 128);
}

TEST_CASE("scale and scale_sinkhorn reject block sizes whose staging tiles exceed 48 KiB of shared memory") {
  for (Op O : {Op::Scale, Op::ScaleSinkhorn})
    for (Direction D : {Direction::Forward, Direction::Backward}) {
      KernelSpec S = baseSpec();
      S.Operation = O;
      S.Dir = D;
      S.Tile = TileConfig{416, 1, 1}; // n = 4: 13 tiles of 32 rows x 28 words, 46592 bytes (+ 1404 backward)
      Failure Ok = validate(S);
      CHECK_MESSAGE(!Ok.Failed, Ok.Message);
      S.Tile.Threads = 448;
      checkRejected(S, {"threads = 448 at n = 4", "staging tiles", "49152"});
      S.N = 8; // 32 rows x 84 words a warp: 128 threads fit, 160 do not
      S.Tile.Threads = 128;
      Failure Fits = validate(S);
      CHECK_MESSAGE(!Fits.Failed, Fits.Message);
      S.Tile.Threads = 160;
      checkRejected(S, {"threads = 160 at n = 8", "staging tiles"});
    }
}

TEST_CASE("expand_combine forward takes 1, 2 or 4 chunks a lane and rejects other rows by name") {
  KernelSpec S = baseSpec();
  S.Operation = Op::ExpandCombine;
  for (int Rows : {1, 2, 4}) {
    S.Tile.Rows = Rows;
    Failure O = validate(S);
    CHECK_MESSAGE(!O.Failed, O.Message);
  }
  for (int Rows : {3, 8, 16}) {
    S.Tile.Rows = Rows;
    checkRejected(S, {"rows = ", "expand_combine forward takes 1, 2 or 4"});
  }
}

TEST_CASE("expand_combine forward's default is 1 chunk a lane in sbcn (16-byte chunks) and 2 in sbnc") {
  KernelSpec S = baseSpec();
  S.Operation = Op::ExpandCombine;
  CHECK(defaultTileConfig(S).Vec == 2);
  CHECK(defaultTileConfig(S).Rows == 1);
  S.StreamLayout = Layout::SBNC;
  CHECK(defaultTileConfig(S).Vec == 8);
  CHECK(defaultTileConfig(S).Rows == 2);
  S.Dir = Direction::Backward;
  CHECK(defaultTileConfig(S).Rows == 1);
}

TEST_CASE("the default tile depends only on op, direction, n, C, dtype and layout") {
  for (Direction D : {Direction::Forward, Direction::Backward})
    for (int64_t C : {7, 100, 7168}) {
      KernelSpec Base;
      Base.Dir = D;
      Base.C = C;
      const TileConfig Expected = defaultTileConfig(Base);
      std::vector<KernelSpec> Others;
      KernelSpec S = Base;
      S.Contract = contractPreset(ContractKind::DeepSeek);
      Others.push_back(S);
      S = Base;
      S.Contract = contractPreset(ContractKind::Megatron);
      S.Contract.SinkhornIters = 3;
      Others.push_back(S);
      S = Base;
      S.Prec = Precision::TF32;
      Others.push_back(S);
      S = Base;
      S.PointerAlign = 2;
      Others.push_back(S);
      S = Base;
      S.Tile.Threads = 1024;
      S.Tile.Vec = 1;
      Others.push_back(S);
      if (D == Direction::Backward) {
        S = Base;
        S.AccumulateDx = true;
        Others.push_back(S);
      }
      for (const KernelSpec &O : Others) {
        TileConfig Got = defaultTileConfig(O);
        CHECK_MESSAGE(Got.Vec == Expected.Vec, canonicalRecord(O));
        CHECK_MESSAGE(Got.Threads == Expected.Threads, canonicalRecord(O));
      }
    }
}
