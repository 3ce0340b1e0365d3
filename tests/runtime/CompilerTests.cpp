// mhcjit tests: NVRTC compilation of every template instantiation for several archs, arch names,
// the ptxas report, compile errors with their source excerpt, cache keys and buildKernel().
// No GPU needed: NVRTC compiles for any arch on any machine.
#include "mhcjit/Arch.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/Compiler.h"
#include "mhcjit/DiskCache.h"
#include "mhcjit/EmbeddedTemplates.h"
#include "mhcjit/Errors.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/mhcjit.hpp"

#include "CompileJobs.h"
#include "TestSupport.h"
#include "doctest/doctest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

/// The ELF header's e_machine field (little endian, offset 18).
unsigned elfMachine(llvm::StringRef Binary) {
  if (Binary.size() < 20)
    return 0;
  return static_cast<unsigned char>(Binary[18]) | (static_cast<unsigned char>(Binary[19]) << 8);
}

/// The checks every successful aggregate compilation must pass.
void checkCompiled(const CompileJob &J) {
  const std::string Label = specLabel(J.Spec) + " for " + J.Arch;
  CAPTURE(Label);
  REQUIRE_MESSAGE(J.Ok, J.Error);
  const CompileOutput &O = J.Output;
  CHECK(O.Binary.size() > 64);
  CHECK(llvm::StringRef(O.Binary).startswith("\x7f" "ELF"));
  CHECK(elfMachine(O.Binary) == 190u); // EM_CUDA
  CHECK(llvm::StringRef(O.LoweredName).startswith("_Z"));
  CHECK(contains(O.LoweredName, J.Spec.Dir == Direction::Forward ? "aggregate_fwd" : "aggregate_bwd"));
  CHECK(O.Resources.Registers > 0);
  CHECK(O.Resources.Registers <= 255);
  CHECK(O.Resources.StackBytes == 0);
  CHECK(O.Resources.SpillStoreBytes == 0);
  CHECK(O.Resources.SpillLoadBytes == 0);
  // Forward needs no shared memory; backward's block sum holds threads/32 * n floats, unless
  // the block is a single warp (the shuffle alone sums it and the scratch is never touched).
  const int ExpectedShared = J.Spec.Dir == Direction::Forward || J.Spec.Tile.Threads == 32
                                 ? 0
                                 : J.Spec.Tile.Threads / 32 * J.Spec.N * 4;
  CHECK(O.Resources.SharedBytes == ExpectedShared);
  CHECK(contains(O.Log, "ptxas"));
  CHECK(O.Seconds > 0);
}

std::vector<CompileJob> fullMatrix(const std::string &Arch) {
  std::vector<CompileJob> Jobs;
  for (Layout L : {Layout::SBCN, Layout::SBNC})
    for (DType T : {DType::BF16, DType::FP16, DType::FP32}) {
      Jobs.push_back(job(aggregateSpec(Direction::Forward, L, T, 4, 7168), Arch));
      Jobs.push_back(job(aggregateSpec(Direction::Backward, L, T, 4, 7168, false), Arch));
      Jobs.push_back(job(aggregateSpec(Direction::Backward, L, T, 4, 7168, true), Arch));
    }
  return Jobs;
}

void compileAndCheckMatrix(const std::string &Arch) {
  std::vector<CompileJob> Jobs = fullMatrix(Arch);
  REQUIRE(Jobs.size() == 18);
  compileAll(Jobs);
  std::set<std::string> Lowered;
  for (const CompileJob &J : Jobs) {
    checkCompiled(J);
    Lowered.insert(J.Output.LoweredName);
  }
  CHECK(Lowered.size() == Jobs.size()); // every instantiation is a distinct kernel
}

/// A scratch directory, removed with its contents at the end of the test.
class TempDir {
public:
  TempDir() {
    std::error_code EC = llvm::sys::fs::createUniqueDirectory("mhcjit-compiler-test", Path);
    REQUIRE_MESSAGE(!EC, EC.message());
  }
  ~TempDir() { llvm::sys::fs::remove_directories(Path); }
  std::string path() const { return std::string(Path.str()); }

private:
  llvm::SmallString<128> Path;
};

/// Regular files anywhere under Dir.
size_t countFiles(const std::string &Dir) {
  size_t Count = 0;
  std::error_code EC;
  for (llvm::sys::fs::recursive_directory_iterator It(Dir, EC), End; It != End && !EC;
       It.increment(EC))
    if (It->type() == llvm::sys::fs::file_type::regular_file)
      ++Count;
  return Count;
}

/// Options for buildKernel() with the cache in Dir and warnings collected in Warnings.
RuntimeOptions optionsFor(const std::string &Dir, std::vector<std::string> &Warnings) {
  RuntimeOptions O;
  O.CacheDir = Dir;
  O.DiskCache = true;
  O.NoJit = false;
  O.Warn = [&Warnings](llvm::StringRef Message) { Warnings.push_back(Message.str()); };
  return O;
}

/// A tiny hand-written kernel, for probing arch names without compiling a real template.
GeneratedKernel probeKernel() {
  GeneratedKernel K;
  K.FileName = "probe.cu";
  K.Source = "template <int N> __global__ void probe(float *p) { p[threadIdx.x] = N; }\n";
  K.NameExpression = "probe<3>";
  K.Options = {"--std=c++17"};
  return K;
}

} // namespace

// ---- every instantiation compiles ----

TEST_CASE("every aggregate instantiation compiles for sm_80") { compileAndCheckMatrix("sm_80"); }

TEST_CASE("every aggregate instantiation compiles for sm_90a") { compileAndCheckMatrix("sm_90a"); }

TEST_CASE("every aggregate instantiation compiles for sm_100a") { compileAndCheckMatrix("sm_100a"); }

TEST_CASE("awkward shapes, element-aligned pointers and extreme tiles compile for sm_90a") {
  const DType Types[] = {DType::BF16, DType::FP16, DType::FP32};
  const Layout Layouts[] = {Layout::SBCN, Layout::SBNC};
  std::vector<CompileJob> Jobs;
  int Index = 0;
  for (int N : {1, 3, 8})
    for (int64_t C : {1, 7, 1000}) {
      // rotate through direction, accumulate flag, dtype, layout and alignment
      const int Variant = Index % 3;
      const Direction D = Variant == 0 ? Direction::Forward : Direction::Backward;
      Jobs.push_back(job(aggregateSpec(D, Layouts[Index % 2], Types[(Index / 3 + Index) % 3], N, C,
                                       Variant == 2, Index % 2 == 1),
                         "sm_90a"));
      ++Index;
    }
  // PointerAlign = element size for every dtype and direction at the users' shape
  for (DType T : Types) {
    int L = 0;
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (bool Accumulate : {false, true}) {
        if (D == Direction::Forward && Accumulate)
          continue;
        Jobs.push_back(job(aggregateSpec(D, Layouts[L++ % 2], T, 4, 7168, Accumulate, true), "sm_90a"));
      }
  }
  // the widest and the narrowest block
  {
    KernelSpec S = aggregateSpec(Direction::Backward, Layout::SBCN, DType::BF16, 8, 16384);
    S.Tile.Threads = 1024;
    S.Tile.Vec = 1;
    Jobs.push_back(job(S, "sm_90a"));
    S = aggregateSpec(Direction::Forward, Layout::SBNC, DType::FP32, 5, 4096);
    S.Tile.Threads = 32;
    Jobs.push_back(job(S, "sm_90a"));
  }
  CHECK(Jobs.size() == 20);
  compileAll(Jobs);
  for (const CompileJob &J : Jobs)
    checkCompiled(J);
}

TEST_CASE("compiling the same kernel twice gives the same cubin and lowered name") {
  const KernelSpec Spec = aggregateSpec(Direction::Backward, Layout::SBNC, DType::BF16, 4, 4096, true);
  std::vector<CompileJob> Jobs = {job(Spec, "sm_90a"), job(Spec, "sm_90a")};
  compileAll(Jobs);
  REQUIRE_MESSAGE(Jobs[0].Ok, Jobs[0].Error);
  REQUIRE_MESSAGE(Jobs[1].Ok, Jobs[1].Error);
  CHECK(Jobs[0].Output.Binary == Jobs[1].Output.Binary);
  CHECK(Jobs[0].Output.LoweredName == Jobs[1].Output.LoweredName);
}

TEST_CASE("the compile log is plain text with the ptxas report and no NUL bytes") {
  auto Kernel = generateKernel(aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 4, 7168));
  REQUIRE(static_cast<bool>(Kernel));
  auto Out = compileCubin(*Kernel, "sm_90a");
  REQUIRE_MESSAGE(static_cast<bool>(Out), llvm::toString(Out.takeError()));
  CHECK(contains(Out->Log, "Used "));
  CHECK(contains(Out->Log, Out->LoweredName));
  CHECK_MESSAGE(Out->Log.find('\0') == std::string::npos,
                "NUL at offset " << Out->Log.find('\0') << " of " << Out->Log.size());
}

TEST_CASE("compilePtx returns PTX text for the arch's virtual target") {
  auto Kernel = generateKernel(aggregateSpec(Direction::Backward, Layout::SBCN, DType::FP16, 4, 7168));
  REQUIRE(static_cast<bool>(Kernel));
  auto Ptx = compilePtx(*Kernel, "sm_90a");
  REQUIRE_MESSAGE(static_cast<bool>(Ptx), llvm::toString(Ptx.takeError()));
  CHECK(contains(Ptx->Binary, ".entry"));
  CHECK(contains(Ptx->Binary, ".target sm_90a"));
  CHECK(contains(Ptx->Binary, ".version"));
  CHECK(llvm::StringRef(Ptx->LoweredName).startswith("_Z"));
  CHECK(contains(Ptx->Binary, ".entry " + Ptx->LoweredName));
  CHECK(Ptx->Binary.find('\0') == std::string::npos);
  CHECK_FALSE(llvm::StringRef(Ptx->Binary).startswith("\x7f" "ELF"));

  auto Ptx80 = compilePtx(*Kernel, "sm_80");
  REQUIRE_MESSAGE(static_cast<bool>(Ptx80), llvm::toString(Ptx80.takeError()));
  CHECK(contains(Ptx80->Binary, ".target sm_80"));
  CHECK(Ptx80->LoweredName == Ptx->LoweredName);
}

TEST_CASE("compiling for an unsupported arch fails with the arch error before NVRTC runs") {
  auto Kernel = generateKernel(aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 4, 64));
  REQUIRE(static_cast<bool>(Kernel));
  auto Out = compileCubin(*Kernel, "sm_91");
  Failure F = failureOf(Out);
  REQUIRE(F.Failed);
  CHECK(F.Code == static_cast<int>(Errc::Unsupported));
  CHECK(contains(F.Message, "'sm_91'"));
  auto Ptx = compilePtx(*Kernel, "compute_90");
  Failure P = failureOf(Ptx);
  REQUIRE(P.Failed);
  CHECK(P.Code == static_cast<int>(Errc::Unsupported));
}

// ---- arch names ----

TEST_CASE("NVRTC supports the archs the project targets") {
  std::vector<int> Archs = nvrtcSupportedArchs();
  REQUIRE_FALSE(Archs.empty());
  for (int Needed : {80, 90, 100})
    CHECK_MESSAGE(std::find(Archs.begin(), Archs.end(), Needed) != Archs.end(), Needed);
  CHECK(std::is_sorted(Archs.begin(), Archs.end()));
  std::string Version = nvrtcVersionString();
  CHECK(Version != "unknown");
  CHECK(contains(Version, "."));
}

TEST_CASE("checkArch accepts sm_80, sm_90, sm_90a and sm_100a and returns them unchanged") {
  for (const char *Name : {"sm_80", "sm_90", "sm_90a", "sm_100a"}) {
    auto Arch = checkArch(Name);
    const std::string Expected = Name;
    REQUIRE_MESSAGE(static_cast<bool>(Arch), llvm::toString(Arch.takeError()));
    CHECK(*Arch == Expected);
  }
}

TEST_CASE("checkArch rejects malformed and unknown archs with a message listing supported ones") {
  for (const char *Name : {"sm_91", "sm_90x", "compute_90", "", "sm_", "sm_80a", "90", "SM_90",
                           "sm_90a ", "sm_9"}) {
    const std::string Arch = Name;
    CAPTURE(Arch);
    auto Checked = checkArch(Arch);
    Failure F = failureOf(Checked);
    REQUIRE(F.Failed);
    CHECK(F.Code == static_cast<int>(Errc::Unsupported));
    CHECK(contains(F.Message, "unsupported GPU architecture '" + Arch + "'"));
    CHECK(contains(F.Message, "sm_80"));
    CHECK(contains(F.Message, "sm_90"));
    CHECK(contains(F.Message, "sm_100"));
    CHECK(contains(F.Message, nvrtcVersionString()));
  }
}

TEST_CASE("every arch name that checkArch accepts is one NVRTC compiles for") {
  // The suffixes NVIDIA defines: 'a' from sm_90, 'f' from sm_100 (there is no sm_90f); a number
  // with a leading zero is not an arch name either.
  std::vector<std::string> Candidates = {"sm_090", "sm_0080"};
  for (int Number : nvrtcSupportedArchs())
    for (const char *Suffix : {"", "a", "f"})
      Candidates.push_back("sm_" + std::to_string(Number) + Suffix);
  GeneratedKernel Probe = probeKernel();
  size_t Accepted = 0;
  for (const std::string &Arch : Candidates) {
    CAPTURE(Arch);
    auto Checked = checkArch(Arch);
    if (!Checked) {
      llvm::consumeError(Checked.takeError());
      continue;
    }
    ++Accepted;
    auto Out = compileCubin(Probe, Arch);
    CHECK_MESSAGE(static_cast<bool>(Out), "checkArch accepted " << Arch << " but NVRTC failed: "
                                                                << failureOf(Out).Message);
  }
  CHECK(Accepted >= nvrtcSupportedArchs().size());
}

TEST_CASE("a device's compute capability maps to the arch mhcjit builds for") {
  CHECK(archForComputeCapability(9, 0) == "sm_90a");
  CHECK(archForComputeCapability(10, 0) == "sm_100a");
  CHECK(archForComputeCapability(8, 0) == "sm_80");
  CHECK(archForComputeCapability(8, 6) == "sm_86");
  CHECK(archForComputeCapability(8, 9) == "sm_89");
  CHECK(archForComputeCapability(7, 5) == "sm_75");
  for (auto CC : {std::make_pair(8, 0), std::make_pair(9, 0), std::make_pair(10, 0), std::make_pair(12, 0)}) {
    std::string Arch = archForComputeCapability(CC.first, CC.second);
    auto Checked = checkArch(Arch);
    CHECK_MESSAGE(static_cast<bool>(Checked), Arch << ": " << failureOf(Checked).Message);
  }
  CHECK(virtualArch("sm_90a") == "compute_90a");
  CHECK(virtualArch("sm_80") == "compute_80");
}

// ---- ptxas report ----

TEST_CASE("the ptxas report of CUDA 13 is parsed into registers, stack, spills and smem") {
  const char *Log =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function '_ZN3mhc13aggregate_bwdILi4ELi7168E' for 'sm_90a'\n"
      "ptxas info    : Function properties for _ZN3mhc13aggregate_bwdILi4ELi7168E\n"
      "ptxas         .     24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 62 registers, used 1 barriers, 128 bytes smem, 380 bytes cmem[0]\n"
      "ptxas info    : Compile time = 31.244 ms\n";
  KernelResources R = parsePtxasReport(Log);
  CHECK(R.Registers == 62);
  CHECK(R.StackBytes == 24);
  CHECK(R.SpillStoreBytes == 8);
  CHECK(R.SpillLoadBytes == 12);
  CHECK(R.SharedBytes == 128);
  CHECK(R.ConstantBytes == 380);
}

TEST_CASE("a ptxas report without smem means no shared memory; an empty log says nothing") {
  KernelResources R = parsePtxasReport(
      "ptxas info    : Function properties for k\n"
      "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 18 registers, 360 bytes cmem[0]\n");
  CHECK(R.Registers == 18);
  CHECK(R.SharedBytes == 0);
  CHECK(R.StackBytes == 0);
  CHECK(R.SpillStoreBytes == 0);
  CHECK(R.SpillLoadBytes == 0);
  CHECK(R.ConstantBytes == 360);

  KernelResources None = parsePtxasReport("");
  CHECK(None.Registers == -1);
  CHECK(None.SharedBytes == -1);
  CHECK(None.StackBytes == -1);
  CHECK(None.SpillStoreBytes == -1);
  CHECK(None.SpillLoadBytes == -1);
  CHECK(None.ConstantBytes == -1);
}

// ---- compile errors ----

TEST_CASE("a syntax error fails with the NVRTC log and a numbered excerpt marking the line") {
  GeneratedKernel K;
  K.FileName = "broken_kernel.cu";
  K.Source = "// line 1: a hand-written kernel\n"
             "#include \"mhc_common.cuh\"\n"
             "template <int N> __global__ void broken(float *p) { p[0] = N + ; }\n"
             "// line 4\n"
             "// line 5\n"
             "// line 6\n"
             "// line 7 is past the excerpt\n";
  K.NameExpression = "broken<1>";
  K.Options = {"--std=c++17"};
  auto Out = compileCubin(K, "sm_90a");
  Failure F = failureOf(Out);
  REQUIRE(F.Failed);
  CAPTURE(F.Message);
  CHECK(F.Code == static_cast<int>(Errc::CompileFailed));
  CHECK(contains(F.Message, "NVRTC could not compile broken<1> for sm_90a"));
  CHECK(contains(F.Message, "broken_kernel.cu(3): error"));           // the log itself
  CHECK(contains(F.Message, "broken_kernel.cu around line 3:\n"));    // the excerpt heading
  CHECK(contains(F.Message, "     1 | // line 1: a hand-written kernel\n"));
  CHECK(contains(F.Message, "     2 | #include \"mhc_common.cuh\"\n"));
  CHECK(contains(F.Message, ">    3 | template <int N> __global__ void broken(float *p) { p[0] = N + ; }\n"));
  CHECK(contains(F.Message, "     6 | // line 6\n"));
  CHECK_FALSE(contains(F.Message, "line 7 is past the excerpt"));
}

TEST_CASE("an error inside an embedded template shows that template's lines") {
  // n = 9 passes straight to the template, whose static_assert rejects it.
  GeneratedKernel K;
  K.FileName = "aggregate_fwd.cu";
  K.Source = "#include \"aggregate.cuh\"\n";
  K.NameExpression = "mhc::aggregate_fwd<9, 64, float, mhc::Layout::kSbcn, 256, 4, 16>";
  K.Options = {"--std=c++17"};
  auto Out = compileCubin(K, "sm_90a");
  Failure F = failureOf(Out);
  REQUIRE(F.Failed);
  CAPTURE(F.Message);
  CHECK(F.Code == static_cast<int>(Errc::CompileFailed));
  CHECK(contains(F.Message, "n must be in 1..8"));
  CHECK(contains(F.Message, "aggregate.cuh around line "));
  CHECK(contains(F.Message, "static_assert(kN >= 1 && kN <= 8"));
  // the marked line is the static_assert
  size_t Marker = F.Message.find("\n>");
  REQUIRE(Marker != std::string::npos);
  size_t LineEnd = F.Message.find('\n', Marker + 1);
  CHECK(contains(F.Message.substr(Marker, LineEnd - Marker), "static_assert(kN >= 1"));
}

TEST_CASE("sourceExcerpt finds the first error, resolves paths by base name and clips at the ends") {
  GeneratedKernel K;
  K.FileName = "tiny.cu";
  K.Source = "line one\nline two\n";
  std::string First = sourceExcerpt("tiny.cu(1): warning: w\n/tmp/x/tiny.cu(2): error: e\ntiny.cu(1): error: later\n", K);
  CHECK(First == "/tmp/x/tiny.cu around line 2:\n     1 | line one\n>    2 | line two\n     3 | \n");
  CHECK(sourceExcerpt("no errors at all\n", K).empty());
  CHECK(sourceExcerpt("other.cu(1): error: e\n", K).empty());
  std::string InTemplate = sourceExcerpt("mhc_args.h(1): error: e\n", K);
  CHECK(llvm::StringRef(InTemplate).startswith("mhc_args.h around line 1:\n>    1 | "));
}

// ---- cache keys ----

TEST_CASE("a kernel's key is a stable sha256 of its record") {
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 4, 7168);
  auto A = keyKernel(S, "sm_90a");
  auto B = keyKernel(S, "sm_90a");
  REQUIRE_MESSAGE(static_cast<bool>(A), llvm::toString(A.takeError()));
  REQUIRE_MESSAGE(static_cast<bool>(B), llvm::toString(B.takeError()));
  CHECK(isLowerHex64(A->Key));
  CHECK(A->Key == B->Key);
  CHECK(A->Key == cacheKey(A->Record));
  CHECK(A->Record.Arch == "sm_90a");
  CHECK(A->Record.SpecRecord == canonicalRecord(S));
  CHECK(A->Record.TemplatesDigest == templatesDigest());
  CHECK(A->Record.NameExpression == A->Kernel.NameExpression);
  CHECK(A->Record.Options == A->Kernel.Options);
  CHECK(A->Record.NvrtcVersion == nvrtcVersionString());
  CHECK(A->Record.GeneratorVersion == MHCJIT_VERSION);
  CHECK(A->Kernel.NameExpression == "mhc::aggregate_fwd<4, 7168, mhc::bf16_t, mhc::Layout::kSbcn, 256, 2, 16>");
}

TEST_CASE("the key differs per arch") {
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 4, 7168);
  std::set<std::string> Keys;
  for (const char *Arch : {"sm_80", "sm_90", "sm_90a", "sm_100a"}) {
    auto K = keyKernel(S, Arch);
    REQUIRE_MESSAGE(static_cast<bool>(K), llvm::toString(K.takeError()));
    Keys.insert(K->Key);
  }
  CHECK(Keys.size() == 4);
}

TEST_CASE("the key differs when any single spec field changes") {
  const KernelSpec Base = aggregateSpec(Direction::Backward, Layout::SBCN, DType::BF16, 4, 7168);
  std::vector<std::pair<std::string, std::function<void(KernelSpec &)>>> Changes = {
      {"dir", [](KernelSpec &S) { S.Dir = Direction::Forward; }},
      {"n", [](KernelSpec &S) { S.N = 5; }},
      {"C", [](KernelSpec &S) { S.C = 7176; }},
      {"dtype", [](KernelSpec &S) { S.StreamType = DType::FP16; }},
      {"layout", [](KernelSpec &S) { S.StreamLayout = Layout::SBNC; }},
      {"contract", [](KernelSpec &S) { S.Contract.Kind = ContractKind::DeepSeek; }},
      {"rms_eps", [](KernelSpec &S) { S.Contract.RmsEps = 1e-5f; }},
      {"rms_form", [](KernelSpec &S) { S.Contract.Rms = RmsForm::Outside; }},
      {"pre_eps", [](KernelSpec &S) { S.Contract.PreEps = 1e-6f; }},
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
  auto BaseKey = keyKernel(Base, "sm_90a");
  REQUIRE_MESSAGE(static_cast<bool>(BaseKey), llvm::toString(BaseKey.takeError()));
  std::set<std::string> Keys{BaseKey->Key};
  for (auto &Change : Changes) {
    CAPTURE(Change.first);
    KernelSpec S = Base;
    Change.second(S);
    auto K = keyKernel(S, "sm_90a");
    REQUIRE_MESSAGE(static_cast<bool>(K), llvm::toString(K.takeError()));
    CHECK(K->Key != BaseKey->Key);
    Keys.insert(K->Key);
  }
  CHECK(Keys.size() == Changes.size() + 1);
}

TEST_CASE("keyKernel rejects an invalid spec and an unsupported arch") {
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 4, 7168);
  S.N = 9;
  auto Bad = keyKernel(S, "sm_90a");
  Failure F = failureOf(Bad);
  REQUIRE(F.Failed);
  CHECK(F.Code == static_cast<int>(Errc::InvalidArgument));
  CHECK(contains(F.Message, "n = 9"));
  S.N = 4;
  auto BadArch = keyKernel(S, "sm_91");
  Failure G = failureOf(BadArch);
  REQUIRE(G.Failed);
  CHECK(G.Code == static_cast<int>(Errc::Unsupported));
}

// ---- buildKernel ----
// The provider's memory table is process-wide and keyed by the kernel key alone, so each test
// uses a C no other test in this binary builds.

TEST_CASE("buildKernel compiles on first use, publishes to disk, then serves from memory") {
  TempDir Dir;
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Dir.path(), Warnings);
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBNC, DType::BF16, 4, 3333);
  ProviderStats Before = providerStats();

  auto First = buildKernel(S, "sm_90a", Options);
  REQUIRE_MESSAGE(static_cast<bool>(First), llvm::toString(First.takeError()));
  CHECK(First->Origin == KernelOrigin::Compiled);
  CHECK(originName(First->Origin) == "compiled");
  REQUIRE(static_cast<bool>(First->Entry));
  const CacheEntry &E = *First->Entry;
  auto Keyed = keyKernel(S, "sm_90a");
  REQUIRE(static_cast<bool>(Keyed));
  CHECK(E.Key == Keyed->Key);
  CHECK(E.Record.SpecRecord == canonicalRecord(S));
  CHECK(llvm::StringRef(E.Cubin).startswith("\x7f" "ELF"));
  CHECK(llvm::StringRef(E.LoweredName).startswith("_Z"));
  CHECK(E.Source == Keyed->Kernel.Source);
  CHECK(E.Resources.Registers > 0);
  DiskCache Cache(Dir.path());
  CHECK(llvm::sys::fs::is_directory(Cache.entryPath(E.Key)));
  CacheLookup OnDisk = Cache.lookup(E.Key);
  REQUIRE_MESSAGE(OnDisk.Entry.hasValue(), OnDisk.Rejected);
  CHECK(OnDisk.Entry->Cubin == E.Cubin);

  auto Second = buildKernel(S, "sm_90a", Options);
  REQUIRE_MESSAGE(static_cast<bool>(Second), llvm::toString(Second.takeError()));
  CHECK(Second->Origin == KernelOrigin::Memory);
  CHECK(originName(Second->Origin) == "memory");
  CHECK((Second->Entry == First->Entry)); // the very same entry object

  ProviderStats After = providerStats();
  CHECK(After.Compiles == Before.Compiles + 1);
  CHECK(After.MemoryHits == Before.MemoryHits + 1);
  CHECK(Warnings.empty());
}

TEST_CASE("buildKernel finds a kernel another process published to the disk cache") {
  TempDir Dir;
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Dir.path(), Warnings);
  KernelSpec S = aggregateSpec(Direction::Backward, Layout::SBCN, DType::FP32, 2, 4444, true);
  // Play the other process: compile and publish without going through the provider.
  auto Keyed = keyKernel(S, "sm_90a");
  REQUIRE(static_cast<bool>(Keyed));
  auto Compiled = compileCubin(Keyed->Kernel, "sm_90a");
  REQUIRE_MESSAGE(static_cast<bool>(Compiled), llvm::toString(Compiled.takeError()));
  CacheEntry Entry;
  Entry.Key = Keyed->Key;
  Entry.Record = Keyed->Record;
  Entry.Cubin = Compiled->Binary;
  Entry.Source = Keyed->Kernel.Source;
  Entry.LoweredName = Compiled->LoweredName;
  Entry.CompileLog = Compiled->Log;
  Entry.Resources = Compiled->Resources;
  Entry.CompileSeconds = Compiled->Seconds;
  llvm::Error Published = DiskCache(Dir.path()).publish(Entry);
  REQUIRE_MESSAGE(!Published, llvm::toString(std::move(Published)));

  // Even with NoJit, a kernel on disk is served.
  Options.NoJit = true;
  auto Built = buildKernel(S, "sm_90a", Options);
  REQUIRE_MESSAGE(static_cast<bool>(Built), llvm::toString(Built.takeError()));
  CHECK(Built->Origin == KernelOrigin::Disk);
  CHECK(originName(Built->Origin) == "disk");
  CHECK(Built->Entry->Cubin == Compiled->Binary);
  CHECK(Built->Entry->LoweredName == Compiled->LoweredName);
  CHECK(Warnings.empty());
}

TEST_CASE("with NoJit a kernel missing from an empty cache is an error naming the prewarm command") {
  TempDir Dir;
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Dir.path(), Warnings);
  Options.NoJit = true;
  KernelSpec S = aggregateSpec(Direction::Backward, Layout::SBNC, DType::FP16, 6, 5555);
  S.Contract = contractPreset(ContractKind::DeepSeek);
  ProviderStats Before = providerStats();
  auto Built = buildKernel(S, "sm_90a", Options);
  Failure F = failureOf(Built);
  REQUIRE(F.Failed);
  CAPTURE(F.Message);
  CHECK(F.Code == static_cast<int>(Errc::NoJit));
  CHECK(contains(F.Message, "MHCJIT_NO_JIT"));
  CHECK(contains(F.Message, "mhc-jit prewarm"));
  CHECK(contains(F.Message, "--arch sm_90a"));
  CHECK(contains(F.Message, "--dir bwd"));
  CHECK(contains(F.Message, "--n 6"));
  CHECK(contains(F.Message, "--C 5555"));
  CHECK(contains(F.Message, "--dtype fp16"));
  CHECK(contains(F.Message, "--layout sbnc"));
  CHECK(contains(F.Message, "--contract deepseek"));
  CHECK(providerStats().Compiles == Before.Compiles);
  CHECK(countFiles(Dir.path()) == 0); // a lookup creates nothing
}

TEST_CASE("with the disk cache off buildKernel compiles but writes nothing") {
  TempDir Dir;
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Dir.path(), Warnings);
  Options.DiskCache = false;
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::FP16, 7, 6666);
  auto Built = buildKernel(S, "sm_90a", Options);
  REQUIRE_MESSAGE(static_cast<bool>(Built), llvm::toString(Built.takeError()));
  CHECK(Built->Origin == KernelOrigin::Compiled);
  CHECK(countFiles(Dir.path()) == 0);
  CHECK(Warnings.empty());
}

TEST_CASE("buildKernel passes on an invalid spec's and an unsupported arch's errors") {
  TempDir Dir;
  std::vector<std::string> Warnings;
  RuntimeOptions Options = optionsFor(Dir.path(), Warnings);
  KernelSpec S = aggregateSpec(Direction::Forward, Layout::SBCN, DType::BF16, 4, 7777);
  auto BadArch = buildKernel(S, "sm_91", Options);
  CHECK(failureOf(BadArch).Code == static_cast<int>(Errc::Unsupported));
  S.C = 0;
  auto BadSpec = buildKernel(S, "sm_90a", Options);
  CHECK(failureOf(BadSpec).Code == static_cast<int>(Errc::InvalidArgument));
  CHECK(countFiles(Dir.path()) == 0);
}

TEST_CASE("every kernel of every op compiles with NVRTC for sm_80, sm_90a and sm_100a") {
  // Each config's full kernel set: both directions, optional inputs, dx accumulation, the second
  // stage of head backward and reduce_rows (what prewarm builds).
  struct Target {
    const char *Arch;
    MixConfig Config;
  };
  std::vector<Target> Targets;
  for (const char *Arch : {"sm_80", "sm_90a", "sm_100a"}) {
    MixConfig Te;
    Te.C = 7168;
    Targets.push_back({Arch, Te});
  }
  MixConfig Odd;
  Odd.N = 3;
  Odd.C = 7;
  Odd.StreamType = DType::FP16;
  Odd.Contract = contractPreset(ContractKind::DeepSeek);
  Odd.Prec = Precision::TF32;
  Targets.push_back({"sm_90a", Odd});
  MixConfig Wide;
  Wide.N = 8;
  Wide.C = 100;
  Wide.StreamType = DType::FP32;
  Wide.Contract = contractPreset(ContractKind::Megatron);
  Targets.push_back({"sm_90a", Wide});
  std::vector<CompileJob> Jobs;
  for (const Target &T : Targets)
    for (Op O : allOps())
      for (Direction D : {Direction::Forward, Direction::Backward}) {
        auto Specs = kernelsForCall(T.Config, O, D);
        REQUIRE_MESSAGE(static_cast<bool>(Specs), failureOf(Specs).Message);
        for (const KernelSpec &S : *Specs)
          Jobs.push_back(job(S, T.Arch));
      }
  for (const std::string &F : compileFailures(Jobs))
    CHECK_MESSAGE(F.empty(), F);
  CHECK(Jobs.size() > 100);
  // the stream ops' heuristic tiles never spill (512 threads leave 128 registers a thread)
  for (const CompileJob &J : Jobs) {
    const Op O = J.Spec.Operation;
    if (J.Ok && (O == Op::Aggregate || O == Op::ExpandCombine || O == Op::Expand || O == Op::Contract))
      CHECK_MESSAGE(J.Output.Resources.SpillStoreBytes == 0, specLabel(J.Spec) << " for " << J.Arch << " spills");
  }
  // At n = 4, C = 7168 on sm_90a every kernel keeps its values in registers or shared memory: a
  // stack frame means local memory, spilled or an array indexed at run time (a block sum whose
  // per-level halving was not unrolled put its 32 values there: 118 LDL/STL, slower on the
  // H100, PERF.md session 21), which the spill counts alone do not show. The projection's tf32
  // kernels (the bench's precision; the library's default is fp32) are compiled here too. Known
  // exception: the fp32 mode's project backward with dx accumulation, 255 registers and a 4-byte
  // spill (8-byte frame); held to that so it cannot grow unseen.
  MixConfig Tf32;
  Tf32.C = 7168;
  Tf32.Prec = Precision::TF32;
  std::vector<CompileJob> Tf32Jobs;
  for (Direction D : {Direction::Forward, Direction::Backward}) {
    auto Specs = kernelsForCall(Tf32, Op::Project, D);
    REQUIRE_MESSAGE(static_cast<bool>(Specs), failureOf(Specs).Message);
    for (const KernelSpec &S : *Specs)
      Tf32Jobs.push_back(job(S, "sm_90a"));
  }
  for (const std::string &F : compileFailures(Tf32Jobs))
    CHECK_MESSAGE(F.empty(), F);
  Jobs.insert(Jobs.end(), Tf32Jobs.begin(), Tf32Jobs.end());
  int Checked = 0, CheckedTf32 = 0;
  for (const CompileJob &J : Jobs)
    if (J.Ok && std::string(J.Arch) == "sm_90a" && J.Spec.N == 4 && J.Spec.C == 7168) {
      const bool KnownSpill = J.Spec.Operation == Op::Project && J.Spec.Dir == Direction::Backward &&
                              J.Spec.Prec == Precision::FP32 && J.Spec.AccumulateDx;
      CHECK_MESSAGE(J.Output.Resources.StackBytes <= (KnownSpill ? 8 : 0),
                    specLabel(J.Spec) << " has a stack frame of " << J.Output.Resources.StackBytes << " bytes");
      ++Checked;
      CheckedTf32 += J.Spec.Operation == Op::Project && J.Spec.Prec == Precision::TF32;
    }
  CHECK(Checked > 20);
  CHECK(CheckedTf32 >= 2);
}

namespace {
/// Appends an sm_90a compile job for each tuning candidate tile of the call (Config, O, D).
void addCandidateJobs(const MixConfig &Config, Op O, Direction D, std::vector<CompileJob> &Jobs) {
  auto Base = specFor(Config, O, D);
  REQUIRE_MESSAGE(static_cast<bool>(Base), failureOf(Base).Message);
  for (const TileConfig &Tile : tileCandidates(*Base)) {
    KernelSpec S = *Base;
    S.Tile = Tile;
    Jobs.push_back(job(S, "sm_90a"));
  }
}
} // namespace

TEST_CASE("every tuning candidate of scale and scale_sinkhorn compiles at n = 4 and 8") {
  // Their warps stage rows through static shared memory, which bounds the block size by n
  // (scale_staging_bytes): the candidates that would not fit are left out, the rest compile.
  std::vector<CompileJob> Jobs;
  for (Op O : {Op::Scale, Op::ScaleSinkhorn})
    for (int N : {4, 8})
      for (Direction D : {Direction::Forward, Direction::Backward}) {
        MixConfig Config;
        Config.N = N;
        Config.C = 4096;
        Config.Contract = contractPreset(ContractKind::DeepSeek);
        addCandidateJobs(Config, O, D, Jobs);
      }
  for (const std::string &F : compileFailures(Jobs))
    CHECK_MESSAGE(F.empty(), F);
  // scale: 128 and 256 threads at n = 4 (512 left out), 128 at n = 8; scale_sinkhorn: 64, 128
  // and 256 at n = 4, 64 and 128 at n = 8; each in both directions
  CHECK(Jobs.size() == 2 * (2 + 1) + 2 * (3 + 2));
}

TEST_CASE("every tuning candidate of project forward compiles at n = 3, 4 and 8, one tile a warp without spills") {
  // Its steps, x ring, phi tiles and launch bounds all follow (n, dtype, rows, precision):
  // project_fwd_step_cols, project_fwd_stages and project_fwd_min_blocks. Warps of two 16-token
  // tiles hold twice the sums; at n = 8, or with fp32 x in the fp32 mode, they spill a little
  // (so did the kernel before steps of 256 bytes), and the tuner weighs that by their times.
  std::vector<CompileJob> Jobs;
  for (Precision P : {Precision::TF32, Precision::FP32})
    for (auto [N, T] : {std::pair{3, DType::BF16}, {4, DType::BF16}, {8, DType::BF16}, {4, DType::FP32}}) {
      MixConfig Config;
      Config.N = N;
      Config.C = 4096;
      Config.StreamType = T;
      Config.Prec = P;
      addCandidateJobs(Config, Op::Project, Direction::Forward, Jobs);
    }
  for (const std::string &F : compileFailures(Jobs))
    CHECK_MESSAGE(F.empty(), F);
  int OneTile = 0;
  for (const CompileJob &J : Jobs)
    if (J.Spec.Tile.Rows == 16 * (J.Spec.Tile.Threads / 32)) {
      CHECK_MESSAGE(J.Output.Resources.SpillStoreBytes == 0, specLabel(J.Spec) << " spills");
      ++OneTile;
    }
  CHECK(Jobs.size() == 2 * 4 * 5);
  CHECK(OneTile == 2 * 4 * 2); // 128 threads of 64 tokens, 256 of 128

}

TEST_CASE("scale_sinkhorn's kernels compile for sm_90a at every n in both contracts") {
  // The fused kernels are instantiated per n and per contract (te's log Sinkhorn, deepseek's
  // softmax_eps), so each of n = 1..8 is its own kernel in each contract; the backward brings
  // its reduce_rows. The tuner's other thread counts must compile too (checked at n = 4).
  std::vector<CompileJob> Jobs;
  auto Add = [&](const KernelSpec &S) {
    // reduce_rows is one kernel for many calls: compile it once
    if (std::none_of(Jobs.begin(), Jobs.end(), [&](const CompileJob &J) { return J.Spec == S; }))
      Jobs.push_back(job(S, "sm_90a"));
  };
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (int N = 1; N <= 8; ++N) {
      MixConfig Config;
      Config.N = N;
      Config.C = 4096;
      Config.Contract = contractPreset(K);
      for (Direction D : {Direction::Forward, Direction::Backward}) {
        auto Specs = kernelsForCall(Config, Op::ScaleSinkhorn, D);
        REQUIRE_MESSAGE(static_cast<bool>(Specs), failureOf(Specs).Message);
        CHECK(std::count_if(Specs->begin(), Specs->end(),
                            [](const KernelSpec &S) { return S.Operation == Op::ScaleSinkhorn; }) == 1);
        for (const KernelSpec &S : *Specs)
          Add(S);
        if (N != 4)
          continue;
        auto Base = specFor(Config, Op::ScaleSinkhorn, D);
        REQUIRE_MESSAGE(static_cast<bool>(Base), failureOf(Base).Message);
        for (const TileConfig &Tile : tileCandidates(*Base)) {
          KernelSpec S = *Base;
          S.Tile = Tile;
          Add(S);
        }
      }
    }
  for (const std::string &F : compileFailures(Jobs))
    CHECK_MESSAGE(F.empty(), F);
  size_t Fused = 0;
  for (const CompileJob &J : Jobs) {
    if (!J.Ok || J.Spec.Operation != Op::ScaleSinkhorn)
      continue;
    ++Fused;
    const std::string Label = specLabel(J.Spec);
    CAPTURE(Label);
    const bool Fwd = J.Spec.Dir == Direction::Forward;
    CHECK(contains(J.Output.LoweredName, Fwd ? "scale_sinkhorn_fwd" : "scale_sinkhorn_bwd"));
    CHECK(J.Output.Resources.Registers > 0);
  }
  // every n in both contracts and directions, plus two more tiles of each at n = 4
  CHECK(Fused == 2 * 8 * 2 + 2 * 2 * 2);
}
