// mhcjit tests: the rendered translation unit, name expression and options of generateKernel(),
// and the embedded templates with their digest. Pure CPU, no NVRTC.
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/Errors.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/Sha256.h"
#include "mhcjit/TileHeuristic.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

/// The generated kernel of Spec; fails the test (and returns an empty kernel) on an error.
GeneratedKernel generateOrFail(const KernelSpec &Spec) {
  auto K = generateKernel(Spec);
  if (!K) {
    FAIL_CHECK("generateKernel failed: " << llvm::toString(K.takeError()));
    return {};
  }
  return std::move(*K);
}

/// The message of an error (empty for success).
std::string messageOf(llvm::Error E) { return E ? llvm::toString(std::move(E)) : std::string(); }

bool isLowerHex(llvm::StringRef S) {
  return std::all_of(S.begin(), S.end(),
                     [](char C) { return (C >= '0' && C <= '9') || (C >= 'a' && C <= 'f'); });
}

} // namespace

TEST_CASE("the sbcn forward kernel names aggregate_fwd with every template argument") {
  GeneratedKernel K = generateOrFail(aggregateSpec(Direction::Forward, Layout::SBCN));
  CHECK(K.NameExpression == "mhc::aggregate_fwd<4, 7168, mhc::bf16_t, mhc::Layout::kSbcn, 256, 2, 16>");
  CHECK(K.FileName == "aggregate_fwd.cu");
  CHECK(contains(K.Source, "#include \"aggregate.cuh\"\n"));
}

TEST_CASE("the sbnc forward kernel differs from the sbcn one in its layout argument and vec") {
  GeneratedKernel Sbnc = generateOrFail(aggregateSpec(Direction::Forward, Layout::SBNC));
  GeneratedKernel Sbcn = generateOrFail(aggregateSpec(Direction::Forward, Layout::SBCN));
  CHECK(Sbnc.NameExpression == "mhc::aggregate_fwd<4, 7168, mhc::bf16_t, mhc::Layout::kSbnc, 256, 8, 16>");
  CHECK(Sbnc.FileName == Sbcn.FileName);
  CHECK(Sbnc.Options == Sbcn.Options);
  CHECK(Sbnc.Source != Sbcn.Source); // the banner records the layout
  CHECK(contains(Sbnc.Source, "layout=sbnc"));
  CHECK(contains(Sbcn.Source, "layout=sbcn"));
}

TEST_CASE("the backward kernels carry a trailing accumulate flag, false or true") {
  for (Layout L : {Layout::SBCN, Layout::SBNC}) {
    KernelSpec S = aggregateSpec(Direction::Backward, L);
    // 4 bytes per stream a thread (vec 2), 512 threads, in either layout
    std::string LayoutArg = L == Layout::SBCN ? "mhc::Layout::kSbcn, 512, 2" : "mhc::Layout::kSbnc, 512, 2";
    GeneratedKernel Write = generateOrFail(S);
    CHECK(Write.NameExpression ==
          "mhc::aggregate_bwd<4, 7168, mhc::bf16_t, " + LayoutArg + ", 16, false>");
    CHECK(Write.FileName == "aggregate_bwd.cu");
    S.AccumulateDx = true;
    GeneratedKernel Add = generateOrFail(S);
    CHECK(Add.NameExpression ==
          "mhc::aggregate_bwd<4, 7168, mhc::bf16_t, " + LayoutArg + ", 16, true>");
    CHECK(contains(Add.Source, "accumulate_dx=1"));
    CHECK(contains(Write.Source, "accumulate_dx=0"));
  }
}

TEST_CASE("each stream dtype maps to its device type in the name expression") {
  CHECK(generateOrFail(aggregateSpec(Direction::Forward, Layout::SBCN, DType::FP16)).NameExpression ==
        "mhc::aggregate_fwd<4, 7168, mhc::fp16_t, mhc::Layout::kSbcn, 256, 2, 16>");
  CHECK(generateOrFail(aggregateSpec(Direction::Forward, Layout::SBCN, DType::FP32)).NameExpression ==
        "mhc::aggregate_fwd<4, 7168, float, mhc::Layout::kSbcn, 256, 1, 16>");
}

TEST_CASE("awkward shapes, small tiles and element alignment appear verbatim as arguments") {
  KernelSpec S = aggregateSpec(Direction::Backward, Layout::SBNC, DType::FP32, 3, 7);
  S.PointerAlign = 4;
  S.AccumulateDx = true;
  GeneratedKernel K = generateOrFail(S);
  CHECK(K.NameExpression == "mhc::aggregate_bwd<3, 7, float, mhc::Layout::kSbnc, 32, 1, 4, true>");
  S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 8, 1000);
  S.Tile.Threads = 1024;
  S.Tile.Vec = 2;
  S.PointerAlign = 2;
  CHECK(generateOrFail(S).NameExpression ==
        "mhc::aggregate_fwd<8, 1000, mhc::bf16_t, mhc::Layout::kSbcn, 1024, 2, 2>");
}

TEST_CASE("the translation unit is a banner with the canonical record and one include") {
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN);
  GeneratedKernel K = generateOrFail(S);
  CHECK(K.Source == "// mhcjit: " + canonicalRecord(S) + "\n#include \"aggregate.cuh\"\n");
}

TEST_CASE("the NVRTC options ask for C++17 and the ptxas report and leave the arch out") {
  GeneratedKernel K = generateOrFail(aggregateSpec(Direction::Forward, Layout::SBCN));
  auto Has = [&](llvm::StringRef O) { return std::find(K.Options.begin(), K.Options.end(), O) != K.Options.end(); };
  CHECK(Has("--std=c++17"));
  CHECK(Has("--ptxas-options=--verbose"));
  for (const std::string &O : K.Options) {
    CHECK_MESSAGE(!contains(O, "arch"), O);
    CHECK_MESSAGE(!contains(O, "sm_"), O);
  }
}

TEST_CASE("generation is deterministic: the same spec renders the same bytes") {
  KernelSpec S = aggregateSpec(Direction::Backward, Layout::SBNC, DType::FP16, 5, 333);
  GeneratedKernel A = generateOrFail(S), B = generateOrFail(S);
  CHECK(A.Source == B.Source);
  CHECK(A.NameExpression == B.NameExpression);
  CHECK(A.FileName == B.FileName);
  CHECK(A.Options == B.Options);
}

TEST_CASE("contract constants change the source record but not the aggregate instantiation") {
  KernelSpec Te = aggregateSpec(Direction::Forward, Layout::SBNC);
  KernelSpec Ds = Te;
  Ds.Contract = contractPreset(ContractKind::DeepSeek);
  Ds.Contract.PostMult = 1.0f;
  GeneratedKernel A = generateOrFail(Te), B = generateOrFail(Ds);
  CHECK(A.NameExpression == B.NameExpression);
  CHECK(A.Source != B.Source);
  CHECK(contains(B.Source, "contract=deepseek"));
  CHECK(contains(B.Source, "post_mult=0x1p+0"));
}

TEST_CASE("scale_sinkhorn renders its own kernels with the contract struct, from its own template") {
  for (ContractKind Kind : {ContractKind::TE, ContractKind::DeepSeek})
    for (int N : {1, 4, 8}) {
      KernelSpec S;
      S.Operation = Op::ScaleSinkhorn;
      S.N = N;
      S.C = 7168;
      S.Contract = contractPreset(Kind);
      const std::string Contract(contractName(Kind));
      CAPTURE(Contract);
      CAPTURE(N);
      for (Direction D : {Direction::Forward, Direction::Backward}) {
        S.Dir = D;
        S.Tile = defaultTileConfig(S);
        GeneratedKernel K = generateOrFail(S);
        const std::string Dir = D == Direction::Forward ? "fwd" : "bwd";
        // n, threads and the contract's constants: the fused op reads neither C nor streams
        CHECK(K.NameExpression == "mhc::scale_sinkhorn_" + Dir + "<" + std::to_string(N) + ", " +
                                      std::to_string(S.Tile.Threads) + ", mhcjit_contract>");
        CHECK(K.FileName == "scale_sinkhorn_" + Dir + ".cu");
        CHECK(contains(K.Source, "#include \"scale_sinkhorn.cuh\"\n"));
        CHECK(contains(K.Source, "struct mhcjit_contract {"));
        CHECK(contains(K.Source, "op=scale_sinkhorn dir=" + Dir + " "));
        CHECK(contains(K.Source, Kind == ContractKind::TE ? "sinkhorn_log = true" : "sinkhorn_log = false"));
      }
    }
}

TEST_CASE("the embedded templates include scale_sinkhorn.cuh next to scale.cuh and sinkhorn.cuh") {
  std::set<std::string> Names;
  for (const EmbeddedTemplate &T : embeddedTemplates())
    Names.insert(T.Name);
  for (const char *Needed : {"scale.cuh", "sinkhorn.cuh", "scale_sinkhorn.cuh", "reduce_rows.cuh"})
    CHECK_MESSAGE(Names.count(Needed) == 1, std::string(Needed));
}

TEST_CASE("generateKernel rejects an invalid spec with validateSpec's message") {
  std::vector<KernelSpec> Bad;
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN);
  S.N = 9;
  Bad.push_back(S);
  S = aggregateSpec(Direction::Forward, Layout::SBCN);
  S.C = 0;
  Bad.push_back(S);
  S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::FP32);
  S.Tile.Vec = 8;
  Bad.push_back(S);
  S = aggregateSpec(Direction::Forward, Layout::SBCN);
  S.AccumulateDx = true;
  Bad.push_back(S);
  for (const KernelSpec &Spec : Bad) {
    std::string Expected = messageOf(validateSpec(Spec));
    REQUIRE(!Expected.empty());
    auto K = generateKernel(Spec);
    REQUIRE_FALSE(static_cast<bool>(K));
    llvm::Error E = K.takeError();
    // the error keeps validateSpec's category as well as its text
    std::string Message;
    bool InvalidArgument = false;
    llvm::handleAllErrors(std::move(E), [&](const llvm::ErrorInfoBase &Info) {
      InvalidArgument = Info.convertToErrorCode() == makeErrorCode(Errc::InvalidArgument);
      Message = Info.message();
    });
    CHECK(Message == Expected);
    CHECK(InvalidArgument);
  }
}

TEST_CASE("the embedded templates are the four headers NVRTC needs, each non-empty") {
  llvm::ArrayRef<EmbeddedTemplate> Templates = embeddedTemplates();
  std::set<std::string> Names;
  for (const EmbeddedTemplate &T : Templates) {
    REQUIRE(T.Name != nullptr);
    REQUIRE(T.Text != nullptr);
    CHECK_MESSAGE(llvm::StringRef(T.Text).size() > 100, std::string(T.Name));
    CHECK_MESSAGE(contains(T.Text, "#pragma once"), std::string(T.Name));
    Names.insert(T.Name);
  }
  CHECK(Names.size() == Templates.size()); // no duplicates
  for (const char *Needed : {"aggregate.cuh", "mhc_common.cuh", "mhc_streams.cuh", "mhc_args.h"})
    CHECK_MESSAGE(Names.count(Needed) == 1, std::string(Needed));
}

TEST_CASE("the embedded aggregate template defines both kernels the generator names") {
  llvm::StringRef Aggregate;
  for (const EmbeddedTemplate &T : embeddedTemplates())
    if (llvm::StringRef(T.Name) == "aggregate.cuh")
      Aggregate = T.Text;
  REQUIRE(!Aggregate.empty());
  CHECK(contains(Aggregate, "aggregate_fwd("));
  CHECK(contains(Aggregate, "aggregate_bwd("));
  CHECK(contains(Aggregate, "#include \"mhc_streams.cuh\""));
}

TEST_CASE("the embedded bytes equal the template files in the source tree") {
  // This file lives at <repo>/tests/generator/; the templates at <repo>/templates/.
  llvm::SmallString<256> Root(__FILE__);
  llvm::sys::path::remove_filename(Root);
  llvm::sys::path::append(Root, "..", "..", "templates");
  if (!llvm::sys::fs::is_directory(Root)) {
    MESSAGE("skipped: the template sources are not at " << Root.str().str());
    return;
  }
  for (const EmbeddedTemplate &T : embeddedTemplates()) {
    llvm::SmallString<256> Path(Root);
    llvm::sys::path::append(Path, T.Name);
    auto Buffer = llvm::MemoryBuffer::getFile(Path);
    REQUIRE_MESSAGE(static_cast<bool>(Buffer), Path.str().str());
    CHECK_MESSAGE((*Buffer)->getBuffer() == llvm::StringRef(T.Text), std::string(T.Name));
  }
}

TEST_CASE("the templates digest is 64 lower-case hex characters and stable") {
  const std::string &Digest = templatesDigest();
  CHECK(Digest.size() == 64);
  CHECK_MESSAGE(isLowerHex(Digest), Digest);
  CHECK(&templatesDigest() == &Digest);
  CHECK(templatesDigest() == Digest);
  CHECK(Digest != sha256Hex(""));
}

TEST_CASE("sha256Hex matches the FIPS 180-2 test vectors") {
  CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
