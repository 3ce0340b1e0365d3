// mhcjit tests: parameters (phi, gamma, bias) in the stream dtype through the runtime: the C ABI
// field, the alignment checks by the parameter dtype, the kernel sets, and NVRTC compilation of
// every stream-parameter kernel for sm_80, sm_90a and sm_100a. Fake pointers: no GPU is used.
#include "mhcjit/mhcjit.h"

#include "mhcjit/Compiler.h"
#include "mhcjit/Driver.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/mhcjit.hpp"

#include "CompileJobs.h"
#include "TestSupport.h"
#include "doctest/doctest.h"

#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

// Fake device pointers, 16-byte aligned unless named otherwise.
void *const X = reinterpret_cast<void *>(0x10000);
float *const H = reinterpret_cast<float *>(0x20000);
float *const Ms = reinterpret_cast<float *>(0x30000);
void *const Phi = reinterpret_cast<void *>(0x40000);
void *const Gamma = reinterpret_cast<void *>(0x50000);
float *const DPhi = reinterpret_cast<float *>(0x60000);
float *const DGamma = reinterpret_cast<float *>(0x70000);
void *const DX = reinterpret_cast<void *>(0x80000);
void *const Bias = reinterpret_cast<void *>(0x90000);
float *const Post = reinterpret_cast<float *>(0xa0000);
float *const Res = reinterpret_cast<float *>(0xb0000);
void *const Out = reinterpret_cast<void *>(0xc0000);
/// 2-byte aligned only: fine for a bf16 parameter, wrong for an fp32 one.
void *const Odd = reinterpret_cast<void *>(0xd0002);

mhcjit_config config(mhcjit_param_dtype Params, mhcjit_dtype DType = MHCJIT_BF16) {
  mhcjit_config C;
  std::memset(&C, 0xAB, sizeof C);
  REQUIRE(mhcjit_config_init(&C, MHCJIT_CONTRACT_TE) == MHCJIT_SUCCESS);
  C.c = 7168;
  C.dtype = DType;
  C.param_dtype = Params;
  return C;
}

mhcjit_status projectFwd(const mhcjit_config &C, const void *phi, const void *gamma) {
  return mhcjit_project_fwd(&C, 8, X, phi, gamma, H, Ms, nullptr);
}

mhcjit_status combineFwd(const mhcjit_config &C, const void *bias) {
  return mhcjit_expand_combine_fwd(&C, 8, X, bias, Post, X, Res, Out, nullptr);
}

/// Status is INVALID_ARGUMENT and the last error holds every piece.
void checkInvalid(mhcjit_status Status, std::initializer_list<const char *> Pieces) {
  const std::string Message = mhcjit_last_error();
  CAPTURE(Message);
  CHECK(Status == MHCJIT_ERROR_INVALID_ARGUMENT);
  for (const char *Piece : Pieces)
    CHECK_MESSAGE(contains(Message, Piece), "missing '" << std::string(Piece) << "'");
}

/// A call that passed every argument check: without a GPU it stops at NO_DEVICE. With a GPU
/// the fake pointers would be launched on, so those calls are made only where there is none.
bool noGpu() { return !gpuAvailable(); }

} // namespace

TEST_CASE("mhcjit_config_init sets fp32 parameters and the config keeps its size") {
  mhcjit_config C = config(MHCJIT_PARAM_FP32);
  mhcjit_config D;
  std::memset(&D, 0xAB, sizeof D);
  REQUIRE(mhcjit_config_init(&D, MHCJIT_CONTRACT_DEEPSEEK) == MHCJIT_SUCCESS);
  CHECK(D.param_dtype == MHCJIT_PARAM_FP32);
  CHECK(MHCJIT_PARAM_FP32 == 0); // zeroed memory means the old behaviour
  // param_dtype sits in what was tail padding: callers built against the older header still fit
  CHECK(sizeof(mhcjit_config) == 64);
  CHECK(offsetof(mhcjit_config, param_dtype) == 60);
  CHECK(C.struct_size == sizeof(mhcjit_config));
}

TEST_CASE("an unknown param_dtype is rejected naming the field and both choices") {
  mhcjit_config C = config(static_cast<mhcjit_param_dtype>(2));
  checkInvalid(projectFwd(C, Phi, nullptr), {"param_dtype", "2", "MHCJIT_PARAM_FP32", "MHCJIT_PARAM_STREAM"});
  C.param_dtype = static_cast<mhcjit_param_dtype>(-1);
  checkInvalid(combineFwd(C, Bias), {"param_dtype", "-1"});
}

TEST_CASE("fp32 parameters must be 4-byte aligned, bf16 ones 2-byte aligned") {
  mhcjit_config F = config(MHCJIT_PARAM_FP32), S = config(MHCJIT_PARAM_STREAM);
  checkInvalid(projectFwd(F, Odd, nullptr), {"'phi'", "0xD0002", "4-byte"});
  checkInvalid(projectFwd(F, Phi, Odd), {"'gamma'", "4-byte"});
  checkInvalid(combineFwd(F, Odd), {"'bias'", "4-byte"});
  checkInvalid(projectFwd(S, reinterpret_cast<void *>(0x40001), nullptr), {"'phi'", "2-byte"});
  checkInvalid(combineFwd(S, reinterpret_cast<void *>(0x90001)), {"'bias'", "2-byte"});
  // an fp32 stream has fp32 parameters whatever param_dtype says
  mhcjit_config Fp32Stream = config(MHCJIT_PARAM_STREAM, MHCJIT_FP32);
  checkInvalid(projectFwd(Fp32Stream, Odd, nullptr), {"'phi'", "4-byte"});
  checkInvalid(combineFwd(Fp32Stream, Odd), {"'bias'", "4-byte"});
  if (!noGpu()) {
    MESSAGE("skipped the NO_DEVICE checks: a GPU is present and the pointers here are fake");
    return;
  }
  CHECK(projectFwd(S, Odd, Odd) == MHCJIT_ERROR_NO_DEVICE);
  CHECK(combineFwd(S, Odd) == MHCJIT_ERROR_NO_DEVICE);
  mhcjit_config Half = config(MHCJIT_PARAM_STREAM, MHCJIT_FP16);
  CHECK(projectFwd(Half, Odd, nullptr) == MHCJIT_ERROR_NO_DEVICE);
}

TEST_CASE("parameter gradients stay fp32: dphi, dgamma and dbias need 4-byte alignment with bf16 parameters") {
  mhcjit_config S = config(MHCJIT_PARAM_STREAM);
  float *const OddF = reinterpret_cast<float *>(0xd0002);
  checkInvalid(mhcjit_project_bwd(&S, 8, X, Phi, Gamma, H, Ms, DX, OddF, DGamma, 0, nullptr), {"'dphi'", "4-byte"});
  checkInvalid(mhcjit_project_bwd(&S, 8, X, Phi, Gamma, H, Ms, DX, DPhi, OddF, 0, nullptr), {"'dgamma'", "4-byte"});
  checkInvalid(mhcjit_expand_combine_bwd(&S, 8, X, X, Bias, Post, X, Res, Out, OddF, Post, Res, DX, 0, nullptr),
               {"'dbias'", "4-byte"});
  if (!noGpu())
    return;
  CHECK(mhcjit_project_bwd(&S, 8, X, Odd, Odd, H, Ms, DX, DPhi, DGamma, 0, nullptr) == MHCJIT_ERROR_NO_DEVICE);
  CHECK(mhcjit_expand_combine_bwd(&S, 8, X, X, Odd, Post, X, Res, Out, DPhi, Post, Res, DX, 1, nullptr) ==
        MHCJIT_ERROR_NO_DEVICE);
}

TEST_CASE("a call's kernels read stream-dtype parameters exactly where they have parameters") {
  MixConfig Config;
  Config.C = 4096;
  Config.Params = ParamType::Stream;
  for (Op O : allOps())
    for (Direction D : {Direction::Forward, Direction::Backward}) {
      auto Specs = kernelsForCall(Config, O, D);
      REQUIRE_MESSAGE(static_cast<bool>(Specs), failureOf(Specs).Message);
      for (const KernelSpec &S : *Specs) {
        CAPTURE(specLabel(S));
        const bool Expected = S.Operation == Op::Project || (S.Operation == Op::ExpandCombine && S.HasBias);
        CHECK((S.Params == ParamType::Stream) == Expected);
      }
    }
  auto Base = specFor(Config, Op::Project, Direction::Forward);
  REQUIRE(static_cast<bool>(Base));
  CHECK(Base->Params == ParamType::Stream);
  // an fp32 stream: every kernel has fp32 parameters, the same kernels as with Params = FP32
  MixConfig Fp32 = Config;
  Fp32.StreamType = DType::FP32;
  MixConfig Plain = Fp32;
  Plain.Params = ParamType::FP32;
  for (Op O : {Op::Project, Op::ExpandCombine}) {
    auto A = kernelsForCall(Fp32, O, Direction::Backward), B = kernelsForCall(Plain, O, Direction::Backward);
    REQUIRE(static_cast<bool>(A));
    REQUIRE(static_cast<bool>(B));
    CHECK(*A == *B);
  }
}

TEST_CASE("kernelVariants gives a base spec's bias variant the call's parameter type") {
  MixConfig Config;
  Config.C = 1000;
  auto Base = specFor(Config, Op::ExpandCombine, Direction::Backward);
  REQUIRE(static_cast<bool>(Base));
  int Stream = 0;
  for (const KernelSpec &S : kernelVariants(*Base, ParamType::Stream))
    if (S.Params == ParamType::Stream) {
      CHECK(S.HasBias);
      ++Stream;
    }
  CHECK(Stream == 2); // with bias: writing and accumulating dx
  for (const KernelSpec &S : kernelVariants(*Base))
    CHECK(S.Params == ParamType::FP32);
}

TEST_CASE("every kernel that reads stream-dtype parameters compiles with NVRTC for sm_80, sm_90a and sm_100a") {
  struct Target {
    const char *Arch;
    MixConfig Config;
  };
  std::vector<Target> Targets;
  for (const char *Arch : {"sm_80", "sm_90a", "sm_100a"}) {
    MixConfig Te;
    Te.C = 7168;
    Te.Params = ParamType::Stream;
    Targets.push_back({Arch, Te});
  }
  MixConfig Odd; // fp16, odd shape, tensor-core projection, sbnc
  Odd.N = 3;
  Odd.C = 7;
  Odd.StreamType = DType::FP16;
  Odd.Contract = contractPreset(ContractKind::DeepSeek);
  Odd.Prec = Precision::TF32;
  Odd.Params = ParamType::Stream;
  Targets.push_back({"sm_90a", Odd});
  MixConfig Tf32 = Targets.front().Config; // bf16 on tensor cores
  Tf32.Prec = Precision::TF32;
  Targets.push_back({"sm_100a", Tf32});
  std::vector<CompileJob> Jobs;
  for (const Target &T : Targets)
    for (Op O : {Op::Project, Op::ExpandCombine})
      for (Direction D : {Direction::Forward, Direction::Backward}) {
        auto Specs = kernelsForCall(T.Config, O, D);
        REQUIRE_MESSAGE(static_cast<bool>(Specs), failureOf(Specs).Message);
        for (const KernelSpec &S : *Specs)
          if (S.Params == ParamType::Stream)
            Jobs.push_back(job(S, T.Arch));
      }
  for (const std::string &F : compileFailures(Jobs))
    CHECK_MESSAGE(F.empty(), F);
  // per target: project 6 (gamma x accumulate, forward 2 + backward 4), expand_combine 3 (bias);
  // in tf32 with a 16-bit stream at n <= 4 (the last two targets), project forward has a
  // second default tile (defaultTileChoices): 2 more
  CHECK(Jobs.size() == Targets.size() * 9 + 2 * 2);
}
