// mhcjit GPU tests: every op, forward and backward, against its float64 reference (both contracts
// and layouts, three dtypes, awkward shapes), batch invariance, and finite differences.
#include "GpuTestSupport.h"
#include "OpHarness.h"

#include "Parallel.h"
#include "HostTypes.h"
#include "Reference.h"

#include "mhcjit/Candidates.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/TileOverride.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>

namespace mhcjit {
namespace test {

namespace {

/// Every op, or those named in MHCJIT_TEST_OPS (comma-separated op names, e.g. "project,head"),
/// to rerun the suite for the kernels a change touched.
std::vector<Op> selectedOps() {
  const Op Every[] = {Op::Project,       Op::Scale,  Op::Sinkhorn, Op::ScaleSinkhorn, Op::Aggregate,
                      Op::ExpandCombine, Op::Expand, Op::Contract, Op::Head};
  const char *Names = std::getenv("MHCJIT_TEST_OPS");
  std::vector<Op> Ops;
  for (Op O : Every)
    if (!Names || !*Names || (std::string(",") + Names + ",").find("," + opName(O).str() + ",") != std::string::npos)
      Ops.push_back(O);
  return Ops;
}
const std::vector<Op> AllOps = selectedOps();

MixConfig configFor(ContractKind Contract, DType T, int N, int64_t C, Precision P = Precision::FP32) {
  MixConfig Config;
  Config.N = N;
  Config.C = C;
  Config.StreamType = T;
  Config.Contract = contractPreset(Contract);
  Config.Prec = P;
  return Config;
}

bool producesDx(Op O) {
  return O != Op::Scale && O != Op::Sinkhorn && O != Op::ScaleSinkhorn && O != Op::Expand;
}

/// Compiles every kernel the configs can launch, on all cores, before anything is timed.
void prebuild(const std::vector<MixConfig> &Configs) {
  std::vector<KernelSpec> Specs;
  for (const MixConfig &Config : Configs)
    for (Op O : AllOps)
      for (Direction D : {Direction::Forward, Direction::Backward})
        for (const KernelSpec &S : take(kernelsForCall(Config, O, D)))
          Specs.push_back(S);
  buildAll(Specs);
}

/// Forward and backward of one op against the reference.
void checkOp(Op O, const MixConfig &Config, int64_t M, bool Optional, bool Accumulate) {
  OpDef Def = makeOpDef(O, Config, M, Optional, Accumulate);
  const uint64_t Seed = freshSeed();
  INFO(Def.Label << " seed " << Seed);
  const double Tolerance = toleranceFor(Config, O);
  checkAgainstReference(Def, Direction::Forward, drawInputs(Def, Direction::Forward, Seed), Tolerance);
  checkAgainstReference(Def, Direction::Backward, drawInputs(Def, Direction::Backward, Seed + 1), Tolerance);
}

double seconds(std::chrono::steady_clock::time_point Start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - Start).count();
}

/// Every op, forward and backward, for every config at every M in Ms, each case timed on stderr.
/// MHCJIT_TEST_FIRST_CASE=k starts at case k (0-based, as numbered on stderr): a long matrix
/// can be finished in several runs.
void checkMatrix(const std::vector<MixConfig> &Configs, std::initializer_list<int64_t> Ms) {
  const char *FirstText = std::getenv("MHCJIT_TEST_FIRST_CASE");
  const int First = FirstText ? std::atoi(FirstText) : 0;
  auto Start = std::chrono::steady_clock::now();
  prebuild(Configs);
  std::fprintf(stderr, "prebuilt every kernel in %.1f s\n", seconds(Start));
  int Case = 0;
  for (int64_t M : Ms)
    for (const MixConfig &Config : Configs) {
      if (Case < First) {
        ++Case;
        continue;
      }
      auto CaseStart = std::chrono::steady_clock::now();
      std::string PerOp;
      for (Op O : AllOps) {
        // alternate the optional inputs and dx accumulation over the cases, so both are covered
        const bool Optional = (Case % 2) == 0, Accumulate = producesDx(O) && (Case % 3) == 0;
        auto OpStart = std::chrono::steady_clock::now();
        checkOp(O, Config, M, Optional, Accumulate);
        if (seconds(OpStart) >= 1.0)
          PerOp += " " + opName(O).str() + " " + std::to_string(int(seconds(OpStart))) + " s";
      }
      std::fprintf(stderr, "  case %d: all ops n=%d C=%lld M=%lld %s %s: %.2f s%s\n", Case, Config.N, (long long)Config.C,
                   (long long)M, dtypeName(Config.StreamType).data(), contractName(Config.Contract.Kind).data(),
                   seconds(CaseStart), PerOp.c_str());
      ++Case;
    }
}

std::vector<MixConfig> everyConfig(std::initializer_list<int64_t> Cs) {
  std::vector<MixConfig> Configs;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (DType T : {DType::BF16, DType::FP16, DType::FP32})
      for (int N : {1, 2, 4, 8})
        for (int64_t C : Cs)
          Configs.push_back(configFor(K, T, N, C));
  return Configs;
}

/// Appends to Specs every kernel a call of (Config, O, D) may launch at each tuning candidate of
/// Base, so a candidate-tile test builds them all at once.
void addCandidateKernels(const MixConfig &Config, Op O, Direction D, const KernelSpec &Base, std::vector<KernelSpec> &Specs) {
  for (const TileConfig &Tile : tileCandidates(Base)) {
    ScopedTileOverride Force(Base, Tile);
    for (const KernelSpec &S : take(kernelsForCall(Config, O, D)))
      Specs.push_back(S);
  }
}

} // namespace

TEST_CASE("every op forward and backward matches the float64 reference in both contracts") {
  if (!requireGpu("every op against the reference"))
    return;
  checkMatrix(everyConfig({1, 7, 256, 4096, 7168}), {1, 5});
  checkMatrix(everyConfig({1, 7, 256}), {4096});
}

TEST_CASE("expand_combine forward matches the reference at every candidate tile, partial spans included") {
  if (!requireGpu("expand_combine forward's tiles"))
    return;
  if (std::find(AllOps.begin(), AllOps.end(), Op::ExpandCombine) == AllOps.end())
    return;
  // C = 7: one chunk a token; 4100: chunks (2050 at bf16 vec 2, 1025 at vec 4 or fp32 vec 4)
  // not a multiple of a 32, 64 or 128-chunk span; 4104 in bf16: vec 8 and spans with a tail
  std::vector<std::pair<MixConfig, KernelSpec>> Cases;
  std::vector<KernelSpec> Specs;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (DType T : {DType::BF16, DType::FP32})
      for (int N : {1, 4, 8})
        for (int64_t C : {7, 4100, 4104}) {
          const MixConfig Config = configFor(K, T, N, C);
          const KernelSpec Base = take(specFor(Config, Op::ExpandCombine, Direction::Forward));
          addCandidateKernels(Config, Op::ExpandCombine, Direction::Forward, Base, Specs);
          Cases.push_back({Config, Base});
        }
  buildAll(Specs);
  int Checked = 0, Tiles = 0;
  for (const auto &[Config, Base] : Cases)
    for (const TileConfig &Tile : tileCandidates(Base)) {
      ScopedTileOverride Force(Base, Tile);
      ++Tiles;
      for (int64_t M : {1, 37}) {
        // the bias goes to M = 1 at one tile and to M = 37 at the next
        const bool WithBias = (Tiles + (M == 1 ? 0 : 1)) % 2 == 0;
        OpDef Def = makeOpDef(Op::ExpandCombine, Config, M, WithBias, false);
        const uint64_t Seed = freshSeed();
        INFO(Def.Label << " threads=" << Tile.Threads << " vec=" << Tile.Vec << " rows=" << Tile.Rows << " seed "
                       << Seed);
        checkAgainstReference(Def, Direction::Forward, drawInputs(Def, Direction::Forward, Seed),
                              toleranceFor(Config, Op::ExpandCombine));
        ++Checked;
      }
    }
  CHECK(Checked > 0);
}

TEST_CASE("scale and scale_sinkhorn match the reference at every candidate tile, partial warps included") {
  if (!requireGpu("scale's and scale_sinkhorn's tiles"))
    return;
  // Both stage the rows of 32 tokens a warp through shared memory: every block size the tuner
  // may pick, n from 2 to 8 (the tile of a warp grows with n), M below a warp, past one and
  // past a block of 256 threads.
  std::vector<std::tuple<MixConfig, Op, KernelSpec>> Cases;
  std::vector<KernelSpec> Specs;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (Op O : {Op::Scale, Op::ScaleSinkhorn}) {
      if (std::find(AllOps.begin(), AllOps.end(), O) == AllOps.end())
        continue;
      for (int N : {2, 4, 8})
        for (Direction D : {Direction::Forward, Direction::Backward}) {
          const MixConfig Config = configFor(K, DType::BF16, N, 256);
          const KernelSpec Base = take(specFor(Config, O, D));
          addCandidateKernels(Config, O, D, Base, Specs);
          Cases.push_back({Config, O, Base});
        }
    }
  buildAll(Specs);
  int Checked = 0;
  for (const auto &[Config, O, Base] : Cases)
    for (const TileConfig &Tile : tileCandidates(Base)) {
      ScopedTileOverride Force(Base, Tile);
      for (int64_t M : {5, 37, 300}) {
        OpDef Def = makeOpDef(O, Config, M, false, false);
        const uint64_t Seed = freshSeed();
        INFO(Def.Label << " " << directionName(Base.Dir) << " threads=" << Tile.Threads << " seed " << Seed);
        checkAgainstReference(Def, Base.Dir, drawInputs(Def, Base.Dir, Seed), toleranceFor(Config, O));
        ++Checked;
      }
    }
  CHECK(Checked > 0);
}

TEST_CASE("scale and scale_sinkhorn with pointers off 16-byte alignment move their rows in smaller chunks and stay correct") {
  if (!requireGpu("scale's and scale_sinkhorn's misaligned rows"))
    return;
  // Aligned, whole warps move their rows in 16-byte chunks (8 where n's widths allow only that);
  // 4 bytes off alignment they fall back to words, 8 bytes off the 8-byte chunks stay legal.
  int Checked = 0;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (Op O : {Op::Scale, Op::ScaleSinkhorn}) {
      if (std::find(AllOps.begin(), AllOps.end(), O) == AllOps.end())
        continue;
      for (int N : {2, 4, 6})
        for (size_t Misalign : {4, 8})
          for (int64_t M : {37, 300})
            for (Direction D : {Direction::Forward, Direction::Backward}) {
              const MixConfig Config = configFor(K, DType::BF16, N, 256);
              OpDef Def = makeOpDef(O, Config, M, false, false);
              Def.MisalignBytes = Misalign;
              const uint64_t Seed = freshSeed();
              INFO(Def.Label << " " << directionName(D) << " " << Misalign << " bytes off, seed " << Seed);
              checkAgainstReference(Def, D, drawInputs(Def, D, Seed), toleranceFor(Config, O));
              ++Checked;
            }
    }
  CHECK(Checked > 0);
}

TEST_CASE("project forward matches the reference at every candidate tile, split and short steps included") {
  if (!requireGpu("project forward's tiles"))
    return;
  if (std::find(AllOps.begin(), AllOps.end(), Op::Project) == AllOps.end())
    return;
  // Steps of 256 bytes of x a row (64 columns where N > 24): K = 4000 ends inside a step's first
  // 64 columns; 6400 is two splits of 25 whole bf16 steps; 6200 (n = 1) and 6153 (n = 3, an odd
  // K: element copies) split at 3136 columns, inside a bf16 step; 28004 (n = 4) is the most
  // splits, 8 of 3520 columns, the last one short; n = 8 has 80 mixes. M = 5 is under a warp's
  // 16 tokens, 100 ends inside a block, 300 past one.
  std::vector<std::pair<MixConfig, KernelSpec>> Cases;
  std::vector<KernelSpec> Specs;
  for (Precision P : {Precision::TF32, Precision::FP32})
    for (DType T : {DType::BF16, DType::FP32})
      for (auto [N, C] : {std::pair{1, int64_t(6200)}, {3, 2051}, {4, 1000}, {4, 1600}, {4, 7001}, {8, 200}}) {
        const MixConfig Config = configFor(ContractKind::TE, T, N, C, P);
        const KernelSpec Base = take(specFor(Config, Op::Project, Direction::Forward));
        addCandidateKernels(Config, Op::Project, Direction::Forward, Base, Specs);
        Cases.push_back({Config, Base});
      }
  buildAll(Specs);
  int Checked = 0, Tiles = 0;
  for (const auto &[Config, Base] : Cases)
    for (const TileConfig &Tile : tileCandidates(Base)) {
      ScopedTileOverride Force(Base, Tile);
      ++Tiles;
      for (int64_t M : {5, 100, 300}) {
        // gamma at every other (tile, M)
        const bool WithGamma = (Tiles + M) % 2 == 0;
        OpDef Def = makeOpDef(Op::Project, Config, M, WithGamma, false);
        const uint64_t Seed = freshSeed();
        INFO(Def.Label << " threads=" << Tile.Threads << " rows=" << Tile.Rows << " gamma=" << WithGamma << " seed " << Seed);
        checkAgainstReference(Def, Direction::Forward, drawInputs(Def, Direction::Forward, Seed),
                              toleranceFor(Config, Op::Project));
        ++Checked;
      }
    }
  CHECK(Checked > 0);
}

// NOTE: its 48 cases took 8 to 110 s each on the H100 machine's 16 cores, mostly host work
// (draws, references, comparisons over up to 2.3e8 elements per tensor): run it on its own.
TEST_CASE("every op matches the float64 reference at M = 4096 with C = 4096 and 7168") {
  if (!requireGpu("every op at large C"))
    return;
  checkMatrix(everyConfig({4096, 7168}), {4096});
}

TEST_CASE("project in tf32 precision stays within 2e-3 and the other layout of each contract works") {
  if (!requireGpu("tf32 project and layout overrides"))
    return;
  std::vector<MixConfig> Configs;
  for (DType T : {DType::FP32, DType::BF16})
    for (int64_t C : {7, 4096})
      Configs.push_back(configFor(ContractKind::TE, T, 4, C, Precision::TF32));
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek, ContractKind::Megatron}) {
    MixConfig Config = configFor(K, DType::FP32, 3, 100);
    Config.StreamLayout = K == ContractKind::TE ? Layout::SBNC : Layout::SBCN;
    Config.Contract.PostMult = 1.0f;         // DeepSeek's library default
    Config.Contract.SinkhornIters = 10;
    Configs.push_back(Config);
  }
  prebuild(Configs);
  for (const MixConfig &Config : Configs)
    for (Op O : AllOps)
      for (int64_t M : {5, 300})
        checkOp(O, Config, M, M == 5, producesDx(O) && M == 300);
}

TEST_CASE("every op runs past 16 million tokens, beyond any grid-dimension limit") {
  if (!requireGpu("16 million tokens"))
    return;
  const int64_t M = (int64_t(1) << 24) + 3;
  MixConfig Config = configFor(ContractKind::TE, DType::BF16, 2, 3);
  prebuild({Config});
  for (Op O : AllOps)
    checkOp(O, Config, M, true, producesDx(O));
}

TEST_CASE("forward outputs of a token are bitwise the same alone and inside a batch of 4096") {
  if (!requireGpu("batch invariance"))
    return;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek}) {
    // te runs the projection on tensor cores (tf32), deepseek on CUDA cores (fp32)
    MixConfig Config = configFor(K, DType::BF16, 4, 7168, K == ContractKind::TE ? Precision::TF32 : Precision::FP32);
    prebuild({Config});
    for (Op O : AllOps) {
      OpDef Batch = makeOpDef(O, Config, 4096, true, false), Single = makeOpDef(O, Config, 1, true, false);
      INFO(Batch.Label);
      HostTensors In = drawInputs(Batch, Direction::Forward, freshSeed());
      HostTensors BatchOut = runOnDevice(Batch, Direction::Forward, In);
      for (int64_t Token : {int64_t(0), int64_t(1234), int64_t(4095)}) {
        HostTensors One;
        for (size_t I = 0; I < Batch.Inputs.size(); ++I) {
          const TensorDef &B = Batch.Inputs[I], &S = Single.Inputs[I];
          const std::vector<float> &V = In.at(B.Name);
          One[B.Name] = B.Elements == S.Elements
                            ? V // a parameter, shared by all tokens
                            : std::vector<float>(V.begin() + Token * S.Elements, V.begin() + (Token + 1) * S.Elements);
        }
        HostTensors OneOut = runOnDevice(Single, Direction::Forward, One);
        for (const TensorDef &T : Single.Outputs) {
          const float *Slice = BatchOut.at(T.Name).data() + Token * T.Elements;
          CHECK_MESSAGE(std::memcmp(Slice, OneOut.at(T.Name).data(), T.Elements * sizeof(float)) == 0,
                        Batch.Label << " output " << T.Name << " of token " << Token << " differs from the batch");
        }
      }
    }
  }
}

TEST_CASE("every backward agrees with finite differences of its forward in fp32") {
  if (!requireGpu("finite differences"))
    return;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek}) {
    MixConfig Config = configFor(K, DType::FP32, 3, 5);
    prebuild({Config});
    for (Op O : AllOps) {
      OpDef Def = makeOpDef(O, Config, 2, true, false, RowScale::Unit);
      INFO(Def.Label);
      const uint64_t Seed = freshSeed();
      HostTensors In = drawInputs(Def, Direction::Backward, Seed); // inputs and upstream weights
      HostTensors Grads = runOnDevice(Def, Direction::Backward, In);
      // loss(inputs) = sum over outputs of (upstream weight * output), in double
      auto loss = [&](const HostTensors &Inputs) {
        HostTensors Out = runOnDevice(Def, Direction::Forward, Inputs);
        double L = 0;
        for (const TensorDef &T : Def.Outputs)
          for (int64_t I = 0; I < T.Elements; ++I)
            L += double(In.at("d" + T.Name)[I]) * double(Out.at(T.Name)[I]);
        return L;
      };
      for (const std::string &Name : Def.Differentiable) {
        std::vector<float> &V = In.at(Name);
        double Rms = 0;
        for (float X : V)
          Rms += double(X) * X;
        Rms = std::sqrt(Rms / V.size());
        // a positive tensor (ms) keeps every step inside its domain; others get a floor
        const bool Positive = *std::min_element(V.begin(), V.end()) > 0.0f;
        std::vector<double> Fd(V.size());
        for (size_t I = 0; I < V.size(); ++I) {
          // a step relative to the element (ms must stay positive), never below 1% of the rms
          const float Saved = V[I],
                      H = float(1e-2 * std::max(std::fabs(double(Saved)), Positive ? 0.0 : 1e-2 * Rms));
          V[I] = Saved + H;
          const double Up = loss(In);
          V[I] = Saved - H;
          const double Down = loss(In);
          V[I] = Saved;
          Fd[I] = (Up - Down) / (double(Saved + H) - double(Saved - H));
        }
        double Err = relativeError(Grads.at("d" + Name), Fd);
        CHECK_MESSAGE(Err <= 2e-2, Def.Label << ": d" << Name << " vs finite differences: relative error " << Err);
      }
    }
  }
}

namespace {

/// Reference values as the device would hold them: fp32, or rounded to the stream dtype.
std::vector<float> asStored(const std::vector<double> &V, bool Stream, DType T) {
  std::vector<float> F(V.begin(), V.end());
  return Stream ? roundToDType(F, T) : F;
}

/// One whole mHC sublayer, forward and backward, run on the device and through the float64
/// references side by side. Each side feeds its own outputs to the next op; the stand-in
/// sublayer is f = 0.5 y (so dy = 0.5 df). dx gathers the three contributions in fp32. Fused
/// runs scale_sinkhorn where the other runs scale then sinkhorn (and their backwards in
/// reverse), as a model does with the fused op.
void checkSublayer(const MixConfig &Config, int64_t M, bool Fused) {
  const uint64_t Seed = freshSeed();
  OpDef Project = makeOpDef(Op::Project, Config, M, false, true);
  OpDef Scale = makeOpDef(Op::Scale, Config, M, false, false);
  OpDef Sinkhorn = makeOpDef(Op::Sinkhorn, Config, M, false, false);
  OpDef Mixing = makeOpDef(Op::ScaleSinkhorn, Config, M, false, false);
  OpDef Aggregate = makeOpDef(Op::Aggregate, Config, M, false, true);
  OpDef Combine = makeOpDef(Op::ExpandCombine, Config, M, true, true);
  INFO("sublayer " << Combine.Label << (Fused ? " with scale_sinkhorn" : " with scale, sinkhorn") << " seed "
                   << Seed);
  const DType T = Config.StreamType;
  HostTensors Drawn = drawInputs(Combine, Direction::Backward, Seed); // x, f (unused), bias, dout
  HostTensors Params = drawInputs(Project, Direction::Forward, Seed + 1);
  HostTensors ScaleParams = drawInputs(Scale, Direction::Forward, Seed + 2);
  // dev: device results; ref: float64 references, each fed the reference's own outputs
  HostTensors Dev, Ref;
  for (HostTensors *Side : {&Dev, &Ref}) {
    (*Side)["x"] = Drawn.at("x");
    (*Side)["phi"] = Params.at("phi");
    (*Side)["alpha"] = ScaleParams.at("alpha");
    (*Side)["beta"] = ScaleParams.at("beta");
    (*Side)["bias"] = Drawn.at("bias");
    (*Side)["dout"] = Drawn.at("dout");
  }
  auto step = [&](const OpDef &Def, Direction Dir, HostTensors &Side, bool Device) {
    HostTensors In;
    for (const TensorDef &D : directionInputs(Def, Dir))
      In[D.Name] = Side.at(D.Name);
    if (Dir == Direction::Backward && Def.Accumulate)
      In["dx"] = Side.at("dx");
    if (Device) {
      for (auto &[Name, V] : runOnDevice(Def, Dir, In))
        Side[Name] = V;
      return;
    }
    RefTensors Out = Dir == Direction::Forward ? Def.ForwardRef(In) : Def.BackwardRef(In);
    for (const TensorDef &D : directionOutputs(Def, Dir))
      Side[D.Name] = asStored(Out.at(D.Name), D.Store == Storage::Stream, T);
  };
  for (bool Device : {true, false}) {
    HostTensors &Side = Device ? Dev : Ref;
    step(Project, Direction::Forward, Side, Device);
    if (Fused) {
      step(Mixing, Direction::Forward, Side, Device);
    } else {
      step(Scale, Direction::Forward, Side, Device);
      step(Sinkhorn, Direction::Forward, Side, Device);
    }
    step(Aggregate, Direction::Forward, Side, Device);
    std::vector<float> F(Side.at("y"));
    for (float &V : F)
      V *= 0.5f;
    Side["f"] = roundToDType(F, T);
    step(Combine, Direction::Forward, Side, Device);
    Side["dx"] = std::vector<float>(Side.at("x").size(), 0.0f);
    step(Combine, Direction::Backward, Side, Device);
    std::vector<float> DY(Side.at("df"));
    for (float &V : DY)
      V *= 0.5f;
    Side["dy"] = roundToDType(DY, T);
    step(Aggregate, Direction::Backward, Side, Device);
    if (Fused) {
      step(Mixing, Direction::Backward, Side, Device);
    } else {
      step(Sinkhorn, Direction::Backward, Side, Device);
      step(Scale, Direction::Backward, Side, Device);
    }
    step(Project, Direction::Backward, Side, Device);
  }
  for (const char *Name : {"out", "dx", "dphi", "dalpha", "dbeta", "dbias", "dres", "dpost"}) {
    std::vector<double> Expected(Ref.at(Name).begin(), Ref.at(Name).end());
    double Err = relativeError(Dev.at(Name), Expected);
    CHECK_MESSAGE(Err <= toleranceFor(Config, Op::Aggregate), "sublayer " << Name << ": relative error " << Err);
  }
}

} // namespace

TEST_CASE("a whole mHC sublayer forward and backward matches the references in both contracts") {
  if (!requireGpu("whole sublayer"))
    return;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek}) {
    MixConfig Config = configFor(K, DType::BF16, 4, 1000);
    prebuild({Config});
    MixConfig Exact = configFor(K, DType::FP32, 3, 64);
    prebuild({Exact});
    for (bool Fused : {false, true}) {
      checkSublayer(Config, 257, Fused);
      checkSublayer(Exact, 33, Fused);
    }
  }
}

TEST_CASE("sinkhorn matches the reference where logits span more than the exp-domain range") {
  if (!requireGpu("sinkhorn with wide logits"))
    return;
  // NOTE: the log contract iterates in the exp domain only while a token's logits span <= 20;
  // alternating tokens of sigma 1 and 9 (spans up to about 60) mix both paths inside each warp.
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (int N : {2, 4}) {
      const MixConfig Config = configFor(K, DType::BF16, N, 256);
      OpDef Def = makeOpDef(Op::Sinkhorn, Config, 4096, false, false);
      const int64_t Matrix = int64_t(N) * N;
      Def.Inputs[0].Draw = [Matrix](Random &R, int64_t I) { return R.normal() * ((I / Matrix) % 2 ? 9.0f : 1.0f); };
      const uint64_t Seed = freshSeed();
      INFO(Def.Label << " seed " << Seed);
      const double Tolerance = toleranceFor(Config, Op::Sinkhorn);
      checkAgainstReference(Def, Direction::Forward, drawInputs(Def, Direction::Forward, Seed), Tolerance);
      checkAgainstReference(Def, Direction::Backward, drawInputs(Def, Direction::Backward, Seed + 1), Tolerance);
    }
}

TEST_CASE("softmax_eps with overridden eps and iterations matches the reference, inside and outside the fast reciprocal's range") {
  if (!requireGpu("softmax_eps with other constants"))
    return;
  // NOTE: the scaling steps take the one-instruction reciprocal only for 2^-60 <= eps <= 1
  // (kNormalScales in sinkhorn.cuh); 2^-70, 0 and 2 take the ranged one. With eps = 2 every
  // step shrinks the entries about tenfold, so its iterations stay few enough for fp32.
  struct Constants {
    float Eps;
    int Iters;
  };
  for (const Constants &K : {Constants{1e-3f, 7}, Constants{0x1p-70f, 7}, Constants{0.0f, 2}, Constants{2.0f, 7},
                             Constants{1e-6f, 1}})
    for (Op O : {Op::Sinkhorn, Op::ScaleSinkhorn}) {
      if (std::find(AllOps.begin(), AllOps.end(), O) == AllOps.end())
        continue;
      MixConfig Config = configFor(ContractKind::DeepSeek, DType::BF16, O == Op::Sinkhorn ? 4 : 3, 256);
      Config.Contract.SinkhornEps = K.Eps;
      Config.Contract.SinkhornIters = K.Iters;
      OpDef Def = makeOpDef(O, Config, 37, false, false);
      const uint64_t Seed = freshSeed();
      INFO(Def.Label << " eps " << K.Eps << " iterations " << K.Iters << " seed " << Seed);
      const double Tolerance = toleranceFor(Config, O);
      checkAgainstReference(Def, Direction::Forward, drawInputs(Def, Direction::Forward, Seed), Tolerance);
      checkAgainstReference(Def, Direction::Backward, drawInputs(Def, Direction::Backward, Seed + 1), Tolerance);
    }
}

namespace {

/// Whether MHCJIT_TEST_OPS leaves scale_sinkhorn in (the tests of the fused op alone follow it).
bool fusedSelected() {
  if (std::find(AllOps.begin(), AllOps.end(), Op::ScaleSinkhorn) != AllOps.end())
    return true;
  MESSAGE("skipped: MHCJIT_TEST_OPS leaves out scale_sinkhorn");
  return false;
}

/// Compiles every kernel that scale, sinkhorn and scale_sinkhorn calls at Config may launch.
void prebuildMixing(const MixConfig &Config) {
  std::vector<KernelSpec> Specs;
  for (Op O : {Op::Scale, Op::Sinkhorn, Op::ScaleSinkhorn})
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (const KernelSpec &S : take(kernelsForCall(Config, O, D)))
        Specs.push_back(S);
  buildAll(Specs);
}

/// Out within Tolerance of Expected, both device results, relative to Expected's norm.
void checkClose(const std::string &What, const std::vector<float> &Out, const std::vector<float> &Expected,
                double Tolerance) {
  REQUIRE(Out.size() == Expected.size());
  const double Err = relativeError(Out, std::vector<double>(Expected.begin(), Expected.end()));
  CHECK_MESSAGE(Err <= Tolerance, What << ": relative error " << Err << " > " << Tolerance);
}

} // namespace

TEST_CASE("scale_sinkhorn matches the reference where its logits span more than the exp-domain range") {
  if (!requireGpu("scale_sinkhorn with wide logits") || !fusedSelected())
    return;
  // NOTE: as for sinkhorn above, but the span comes from H: with unit rows r is about 1, so
  // tokens alternating H of sigma 1 and 9 give logits H*r*alpha + beta spanning up to about 60,
  // and the fused kernel's sinkhorn takes both paths inside each warp.
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (int N : {2, 4}) {
      const MixConfig Config = configFor(K, DType::BF16, N, 256);
      OpDef Def = makeOpDef(Op::ScaleSinkhorn, Config, 4096, false, false, RowScale::Unit);
      const int64_t Mix = int64_t(N) * N + 2 * N;
      REQUIRE(Def.Inputs[0].Name == "H");
      Def.Inputs[0].Draw = [Mix](Random &R, int64_t I) { return R.normal() * ((I / Mix) % 2 ? 9.0f : 1.0f); };
      const uint64_t Seed = freshSeed();
      INFO(Def.Label << " seed " << Seed);
      const double Tolerance = toleranceFor(Config, Op::ScaleSinkhorn);
      checkAgainstReference(Def, Direction::Forward, drawInputs(Def, Direction::Forward, Seed), Tolerance);
      checkAgainstReference(Def, Direction::Backward, drawInputs(Def, Direction::Backward, Seed + 1), Tolerance);
    }
}

TEST_CASE("scale_sinkhorn gives what scale then sinkhorn give on the GPU, forward and backward") {
  if (!requireGpu("scale_sinkhorn against the separate ops") || !fusedSelected())
    return;
  // Device against device on the same inputs. Every tensor here is fp32 whatever the stream
  // dtype, and the separate ops pass the logits and dlogits through memory as fp32, which rounds
  // nothing: the two paths may differ only in the order of fp32 operations, far below 1e-5.
  const double Tolerance = 1e-5;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (int N : {1, 2, 3, 4, 8}) {
      const MixConfig Config = configFor(K, DType::FP32, N, 64);
      prebuildMixing(Config);
      for (int64_t M : {1, 37, 4096}) {
        OpDef Fused = makeOpDef(Op::ScaleSinkhorn, Config, M, false, false);
        OpDef Scale = makeOpDef(Op::Scale, Config, M, false, false);
        OpDef Sinkhorn = makeOpDef(Op::Sinkhorn, Config, M, false, false);
        const uint64_t Seed = freshSeed();
        INFO(Fused.Label << " seed " << Seed);
        // H, ms, alpha, beta and the upstream dpre, dpost, dres
        const HostTensors In = drawInputs(Fused, Direction::Backward, Seed);
        HostTensors FusedFwd = runOnDevice(Fused, Direction::Forward, In);
        HostTensors ScaleFwd = runOnDevice(Scale, Direction::Forward, In);
        HostTensors SinkhornFwd = runOnDevice(Sinkhorn, Direction::Forward, {{"logits", ScaleFwd.at("logits")}});
        checkClose("pre", FusedFwd.at("pre"), ScaleFwd.at("pre"), Tolerance);
        checkClose("post", FusedFwd.at("post"), ScaleFwd.at("post"), Tolerance);
        checkClose("res", FusedFwd.at("res"), SinkhornFwd.at("res"), Tolerance);

        HostTensors FusedBwd = runOnDevice(Fused, Direction::Backward, In);
        HostTensors SinkhornBwd =
            runOnDevice(Sinkhorn, Direction::Backward, {{"logits", ScaleFwd.at("logits")}, {"dres", In.at("dres")}});
        HostTensors ScaleIn = In;
        ScaleIn["dlogits"] = SinkhornBwd.at("dlogits");
        HostTensors ScaleBwd = runOnDevice(Scale, Direction::Backward, ScaleIn);
        for (const char *Name : {"dH", "dms", "dalpha", "dbeta"})
          checkClose(Name, FusedBwd.at(Name), ScaleBwd.at(Name), Tolerance);
      }
    }
}

} // namespace test
} // namespace mhcjit

namespace mhcjit {
namespace test {

TEST_CASE("every op with parameters in the stream dtype matches the reference fed the same rounded parameters") {
  if (!requireGpu("parameters in the stream dtype"))
    return;
  // phi, gamma and bias stored as bf16 / fp16 (SPEC.md "Notation"); the other ops must ignore
  // the setting. A subset of the main matrix's shapes, both with and without gamma and bias.
  std::vector<MixConfig> Configs;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (DType T : {DType::BF16, DType::FP16})
      for (int N : {1, 4, 8})
        for (int64_t C : {1, 7, 256, 4096})
          Configs.push_back(configFor(K, T, N, C));
  for (DType T : {DType::BF16, DType::FP16})
    for (int64_t C : {7, 4096})
      Configs.push_back(configFor(ContractKind::TE, T, 4, C, Precision::TF32)); // tensor-core project
  for (MixConfig &Config : Configs)
    Config.Params = ParamType::Stream;
  auto Start = std::chrono::steady_clock::now();
  prebuild(Configs);
  std::fprintf(stderr, "prebuilt every kernel in %.1f s\n", seconds(Start));
  int Case = 0;
  for (int64_t M : {1, 5, 333})
    for (const MixConfig &Config : Configs) {
      auto CaseStart = std::chrono::steady_clock::now();
      for (Op O : AllOps) {
        const bool HasParams = O == Op::Project || O == Op::ExpandCombine;
        for (bool Optional : {false, true}) {
          if (!HasParams && Optional != (Case % 2 == 0))
            continue; // ops without parameters: once, alternating as in the main matrix
          const bool Accumulate = producesDx(O) && (Case + int(Optional)) % 2 == 0;
          checkOp(O, Config, M, Optional, Accumulate);
        }
      }
      ++Case;
      std::fprintf(stderr, "  all ops, stream-dtype params, n=%d C=%lld M=%lld %s %s %s: %.2f s\n", Config.N,
                   (long long)Config.C, (long long)M, dtypeName(Config.StreamType).data(),
                   contractName(Config.Contract.Kind).data(), precisionName(Config.Prec).data(), seconds(CaseStart));
    }
}

TEST_CASE("a whole mHC sublayer with parameters in the stream dtype matches the references") {
  if (!requireGpu("whole sublayer, stream-dtype parameters"))
    return;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (DType T : {DType::BF16, DType::FP16}) {
      MixConfig Config = configFor(K, T, 4, 1000);
      Config.Params = ParamType::Stream;
      prebuild({Config});
      for (bool Fused : {false, true})
        checkSublayer(Config, 257, Fused);
    }
}

} // namespace test
} // namespace mhcjit
