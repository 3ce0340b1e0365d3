// mhcjit tests: cache key records (rendering, parsing) and the sha256 keys made from them.
// A key must change with every ingredient and with nothing else.
#include "cache/CacheTestSupport.h"

#include "mhcjit/CacheKey.h"
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/Sha256.h"

#include "doctest/doctest.h"

#include "llvm/Support/Error.h"

#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace mhcjit;

namespace {

/// A record of fixed literals: its rendering and key must never change by accident.
CacheKeyRecord fixedRecord() {
  CacheKeyRecord R;
  R.SchemaVersion = 1;
  R.GeneratorVersion = "0.1.0";
  R.TemplatesDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  R.SpecRecord = "op=aggregate dir=fwd n=4 C=7168 dtype=bf16";
  R.NameExpression = "mhc::aggregate_fwd<4, 7168, mhc::bf16_t>";
  R.NvrtcVersion = "13.0";
  R.Options = {"-std=c++17", "-default-device"};
  R.Arch = "sm_90a";
  return R;
}

bool sameRecord(const CacheKeyRecord &A, const CacheKeyRecord &B) {
  return A.SchemaVersion == B.SchemaVersion && A.GeneratorVersion == B.GeneratorVersion &&
         A.TemplatesDigest == B.TemplatesDigest && A.SpecRecord == B.SpecRecord &&
         A.NameExpression == B.NameExpression && A.NvrtcVersion == B.NvrtcVersion &&
         A.Options == B.Options && A.Arch == B.Arch;
}

/// The message of a parse failure, or "" if Text parsed.
std::string parseError(llvm::StringRef Text) {
  llvm::Expected<CacheKeyRecord> Parsed = parseKeyRecord(Text);
  if (Parsed)
    return "";
  return llvm::toString(Parsed.takeError());
}

} // namespace

TEST_CASE("a key record renders as one field=value line per ingredient in a fixed order") {
  CHECK(renderKeyRecord(fixedRecord()) ==
        "schema=1\n"
        "generator=0.1.0\n"
        "templates=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
        "spec=op=aggregate dir=fwd n=4 C=7168 dtype=bf16\n"
        "name=mhc::aggregate_fwd<4, 7168, mhc::bf16_t>\n"
        "nvrtc=13.0\n"
        "option=-std=c++17\n"
        "option=-default-device\n"
        "arch=sm_90a\n");
}

TEST_CASE("a rendered key record parses back to the same record") {
  std::vector<CacheKeyRecord> Records = {fixedRecord(), testing::makeRecord()};
  CacheKeyRecord NoOptions = fixedRecord();
  NoOptions.Options.clear();
  Records.push_back(NoOptions);
  CacheKeyRecord Awkward = fixedRecord();
  Awkward.Options = {"", "-DX=\"a b\"", "back\\slash", "two\nlines", "cr\r"};
  Awkward.NameExpression = "";
  Records.push_back(Awkward);

  for (const CacheKeyRecord &Record : Records) {
    std::string Text = renderKeyRecord(Record);
    CAPTURE(Text);
    llvm::Expected<CacheKeyRecord> Parsed = parseKeyRecord(Text);
    REQUIRE_MESSAGE(static_cast<bool>(Parsed), llvm::toString(Parsed.takeError()));
    CHECK(sameRecord(*Parsed, Record));
    CHECK(renderKeyRecord(*Parsed) == Text);
  }
}

TEST_CASE("a record without its final newline still parses") {
  std::string Text = renderKeyRecord(fixedRecord());
  Text.pop_back();
  llvm::Expected<CacheKeyRecord> Parsed = parseKeyRecord(Text);
  REQUIRE_MESSAGE(static_cast<bool>(Parsed), llvm::toString(Parsed.takeError()));
  CHECK(sameRecord(*Parsed, fixedRecord()));
}

TEST_CASE("the cache key is 64 lower-case hex digits and stable across builds") {
  std::string Key = cacheKey(fixedRecord());
  REQUIRE(Key.size() == 64);
  for (char C : Key)
    CHECK(((C >= '0' && C <= '9') || (C >= 'a' && C <= 'f')));
  CHECK(cacheKey(fixedRecord()) == Key);
  // NOTE: computed once from this record and checked with `sha256sum` on its rendering. If it
  // changes, the key format changed: every cache in the field becomes a miss, so bump
  // CacheSchemaVersion on purpose rather than by accident.
  CHECK(Key == "87d122e1096f8752af9a34523e917cb6dd4324e1735b8d00a046eb4360d2fb4d");
}

TEST_CASE("the cache key changes when any single ingredient changes") {
  using Mutation = std::pair<const char *, std::function<void(CacheKeyRecord &)>>;
  std::vector<Mutation> Mutations = {
      {"schema version", [](CacheKeyRecord &R) { R.SchemaVersion += 1; }},
      {"generator version", [](CacheKeyRecord &R) { R.GeneratorVersion = "0.1.1"; }},
      // NOTE: flips the last digit whatever it is (the digest follows the templates' contents)
      {"templates digest",
       [](CacheKeyRecord &R) { R.TemplatesDigest.back() = R.TemplatesDigest.back() == '0' ? '1' : '0'; }},
      {"spec record", [](CacheKeyRecord &R) { R.SpecRecord += " "; }},
      {"spec hidden size",
       [](CacheKeyRecord &R) { R.SpecRecord = testing::makeRecord(7169).SpecRecord; }},
      {"name expression", [](CacheKeyRecord &R) { R.NameExpression += " "; }},
      {"NVRTC version", [](CacheKeyRecord &R) { R.NvrtcVersion = "13.1"; }},
      {"first option", [](CacheKeyRecord &R) { R.Options[0] = "-std=c++20"; }},
      {"second option", [](CacheKeyRecord &R) { R.Options[1] = "-rdc=false"; }},
      {"an added option", [](CacheKeyRecord &R) { R.Options.push_back("-lineinfo"); }},
      {"a removed option", [](CacheKeyRecord &R) { R.Options.pop_back(); }},
      {"option order", [](CacheKeyRecord &R) { std::swap(R.Options[0], R.Options[1]); }},
      {"arch", [](CacheKeyRecord &R) { R.Arch = "sm_90"; }},
      {"arch family", [](CacheKeyRecord &R) { R.Arch = "sm_100a"; }},
  };

  const CacheKeyRecord Base = testing::makeRecord();
  std::set<std::string> Keys = {cacheKey(Base)};
  for (const Mutation &M : Mutations) {
    CAPTURE(M.first);
    CacheKeyRecord Changed = Base;
    M.second(Changed);
    std::string Key = cacheKey(Changed);
    CHECK(Key != cacheKey(Base));
    CHECK(Keys.insert(Key).second); // and differs from every other single change
  }
}

TEST_CASE("a value cannot forge a line of another field") {
  CacheKeyRecord One = fixedRecord();
  One.Options = {"-a\noption=-b"};
  CacheKeyRecord Two = fixedRecord();
  Two.Options = {"-a", "-b"};
  CHECK(renderKeyRecord(One) != renderKeyRecord(Two));
  CHECK(cacheKey(One) != cacheKey(Two));
}

TEST_CASE("parsing a malformed record fails and names the bad line") {
  const std::string Good = renderKeyRecord(fixedRecord());
  auto Replace = [&](llvm::StringRef From, llvm::StringRef To) {
    std::string Text = Good;
    size_t At = Text.find(From.str());
    REQUIRE(At != std::string::npos);
    Text.replace(At, From.size(), To.str());
    return Text;
  };

  SUBCASE("empty text") { CHECK(parseError("").find("schema=") != std::string::npos); }
  SUBCASE("garbage") { CHECK(parseError("hello world\n").find("line 1") != std::string::npos); }
  SUBCASE("binary garbage") {
    CHECK(parseError(llvm::StringRef("\x00\xff\x01", 3)).find("line 1") != std::string::npos);
  }
  SUBCASE("a schema that is not a number") {
    CHECK(parseError(Replace("schema=1", "schema=one")).find("line 1") != std::string::npos);
  }
  SUBCASE("a field out of order") {
    std::string Text = Replace("generator=0.1.0\n", "");
    Text = Replace("schema=1\n", "schema=1\nnvrtc=13.0\n");
    CHECK(parseError(Text).find("line 2") != std::string::npos);
  }
  SUBCASE("an unknown field") {
    CHECK(parseError(Replace("nvrtc=13.0", "nvcc=13.0")).find("line 6") != std::string::npos);
  }
  SUBCASE("a missing arch") {
    CHECK(parseError(Replace("arch=sm_90a\n", "")).find("arch=") != std::string::npos);
  }
  SUBCASE("a line after arch") {
    CHECK(parseError(Good + "option=-late\n").find("line 10") != std::string::npos);
  }
  SUBCASE("a blank line") {
    CHECK(parseError(Replace("nvrtc=13.0\n", "nvrtc=13.0\n\n")).find("line 7") !=
          std::string::npos);
  }
  SUBCASE("a bad escape") {
    CHECK(parseError(Replace("option=-std=c++17", "option=-std\\q")).find("line 7") !=
          std::string::npos);
  }
}

TEST_CASE("every spec field reaches the key: a changed field changes the record and round-trips") {
  // NOTE: the record is parsed back and compared with operator==, which compares every field;
  // a field missing from canonicalRecord() would come back at its default and fail here.
  using SpecChange = std::pair<const char *, std::function<void(KernelSpec &)>>;
  const std::vector<SpecChange> Changes = {
      {"op", [](KernelSpec &S) {
         S.Operation = Op::Project;
         S.Tile.Rows = 128; // 16 tokens per warp (templates/project.cuh)
       }},
      {"op (scale_sinkhorn, the fused op)", [](KernelSpec &S) {
         S.Operation = Op::ScaleSinkhorn;
         S.Tile = TileConfig{128, 1, 1}; // a thread per token
       }},
      {"dir", [](KernelSpec &S) { S.Dir = Direction::Backward; }},
      {"n", [](KernelSpec &S) { S.N = 3; }},
      {"C", [](KernelSpec &S) { S.C += 8; }},
      {"dtype (and a vec that fits it)", [](KernelSpec &S) {
         S.StreamType = DType::FP32;
         S.Tile.Vec = 4;
       }},
      {"layout", [](KernelSpec &S) { S.StreamLayout = Layout::SBNC; }},
      {"contract kind", [](KernelSpec &S) { S.Contract.Kind = ContractKind::Megatron; }},
      {"rms_eps", [](KernelSpec &S) { S.Contract.RmsEps = std::nextafter(S.Contract.RmsEps, 1.0f); }},
      {"rms_form", [](KernelSpec &S) { S.Contract.Rms = RmsForm::Outside; }},
      {"pre_eps", [](KernelSpec &S) { S.Contract.PreEps = 0x1p-20f; }},
      {"post_mult", [](KernelSpec &S) { S.Contract.PostMult = 1.0f; }},
      {"sinkhorn", [](KernelSpec &S) { S.Contract.Sinkhorn = SinkhornKind::SoftmaxEps; }},
      {"sinkhorn_iters", [](KernelSpec &S) { S.Contract.SinkhornIters += 1; }},
      {"sinkhorn_eps", [](KernelSpec &S) { S.Contract.SinkhornEps = 0x1p-30f; }},
      {"precision", [](KernelSpec &S) { S.Prec = Precision::TF32; }},
      {"threads", [](KernelSpec &S) { S.Tile.Threads = 128; }},
      {"vec", [](KernelSpec &S) { S.Tile.Vec = 4; }},
      {"rows", [](KernelSpec &S) { S.Tile.Rows = 2; }},
      {"accumulate_dx (backward)", [](KernelSpec &S) {
         S.Dir = Direction::Backward;
         S.AccumulateDx = true;
       }},
      {"pointer_align", [](KernelSpec &S) { S.PointerAlign = 2; }},
      {"has_gamma (project)", [](KernelSpec &S) {
         S.Operation = Op::Project;
         S.Tile.Rows = 128;
         S.HasGamma = true;
       }},
      {"has_bias (expand_combine)", [](KernelSpec &S) {
         S.Operation = Op::ExpandCombine;
         S.HasBias = true;
       }},
      {"params (project, bf16 stream)", [](KernelSpec &S) {
         S.Operation = Op::Project;
         S.Tile.Rows = 128;
         S.Params = ParamType::Stream;
       }},
      {"params (expand_combine with bias, fp16 stream)", [](KernelSpec &S) {
         S.Operation = Op::ExpandCombine;
         S.StreamType = DType::FP16;
         S.HasBias = true;
         S.Params = ParamType::Stream;
       }},
      {"stage (head backward)", [](KernelSpec &S) {
         S.Operation = Op::Head;
         S.Dir = Direction::Backward;
         S.Stage = 1;
       }},
      {"a float's sign", [](KernelSpec &S) { S.Contract.PreEps = -0.0f; }},
  };
  KernelSpec Base;
  Base.C = 7168;
  CacheKeyRecord BaseRecord = testing::makeRecord();
  BaseRecord.SpecRecord = canonicalRecord(Base);
  std::set<std::string> Keys = {cacheKey(BaseRecord)};
  for (const SpecChange &Change : Changes) {
    CAPTURE(Change.first);
    KernelSpec Changed = Base;
    Change.second(Changed);
    REQUIRE(Changed != Base);
    std::string Record = canonicalRecord(Changed);
    CHECK(Record != canonicalRecord(Base));
    llvm::Expected<KernelSpec> Parsed = parseCanonicalRecord(Record);
    CHECK_MESSAGE(static_cast<bool>(Parsed), llvm::toString(Parsed.takeError()));
    if (Parsed)
      CHECK((*Parsed == Changed));
    CacheKeyRecord R = BaseRecord;
    R.SpecRecord = Record;
    CHECK(Keys.insert(cacheKey(R)).second);
  }
}

TEST_CASE("the templates digest covers every template byte, name and boundary") {
  // Recomputed here the way the library documents it; then one flipped byte, one renamed file
  // and one byte moved across a file boundary each give another digest, hence another key.
  auto Digest = [](const std::vector<std::pair<std::string, std::string>> &Files) {
    std::string All;
    for (const auto &F : Files)
      All += F.first + '\0' + std::to_string(F.second.size()) + '\0' + F.second;
    return sha256Hex(All);
  };
  std::vector<std::pair<std::string, std::string>> Files;
  for (const EmbeddedTemplate &T : embeddedTemplates())
    Files.push_back({T.Name, T.Text});
  REQUIRE(Files.size() >= 2);
  CHECK(Digest(Files) == templatesDigest());

  std::set<std::string> Digests = {templatesDigest()};
  auto Flipped = Files;
  Flipped[0].second[Flipped[0].second.size() / 2] ^= 1;
  CHECK(Digests.insert(Digest(Flipped)).second);
  auto Renamed = Files;
  Renamed[1].first += "x";
  CHECK(Digests.insert(Digest(Renamed)).second);
  auto Moved = Files;
  Moved[1].second.insert(0, 1, Moved[0].second.back());
  Moved[0].second.pop_back();
  CHECK(Digests.insert(Digest(Moved)).second);

  CacheKeyRecord Record = testing::makeRecord();
  std::string Before = cacheKey(Record);
  Record.TemplatesDigest = Digest(Flipped);
  CHECK(cacheKey(Record) != Before);
}
