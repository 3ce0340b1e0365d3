// mhcjit tests: the C ABI's config presets, argument validation (before any driver call), status
// codes and the thread-local last-error message. Pointers are fake: nothing reaches a GPU.
#include "mhcjit/mhcjit.h"

#include "mhcjit/Driver.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

using mhcjit::test::contains;

namespace {

// Fake device pointers: non-null and 16-byte aligned, so they pass validation.
void *const X = reinterpret_cast<void *>(0x10000);
float *const Pre = reinterpret_cast<float *>(0x20000);
void *const Y = reinterpret_cast<void *>(0x30000);
void *const DY = reinterpret_cast<void *>(0x40000);
void *const DX = reinterpret_cast<void *>(0x50000);
float *const DPre = reinterpret_cast<float *>(0x60000);

/// A valid te config at the users' shape.
mhcjit_config teConfig() {
  mhcjit_config C;
  std::memset(&C, 0xAB, sizeof C); // garbage first: init must set every field
  REQUIRE(mhcjit_config_init(&C, MHCJIT_CONTRACT_TE) == MHCJIT_SUCCESS);
  C.c = 7168;
  return C;
}

std::string lastError() { return mhcjit_last_error(); }

/// Asserts Status is INVALID_ARGUMENT and the last error holds every piece.
void checkInvalid(mhcjit_status Status, std::initializer_list<const char *> Pieces) {
  const std::string Message = lastError();
  CAPTURE(Message);
  CHECK(Status == MHCJIT_ERROR_INVALID_ARGUMENT);
  CHECK_FALSE(Message.empty());
  for (const char *Piece : Pieces)
    CHECK_MESSAGE(contains(Message, Piece), "missing '" << std::string(Piece) << "'");
}

mhcjit_status forward(const mhcjit_config *C, int64_t M = 4096, const void *x = X,
                      const float *pre = Pre, void *y = Y) {
  return mhcjit_aggregate_fwd(C, M, x, pre, y, nullptr);
}

mhcjit_status backward(const mhcjit_config *C, int64_t M = 4096, const void *dy = DY,
                       const void *x = X, const float *pre = Pre, void *dx = DX, float *dpre = DPre,
                       int accumulate = 0) {
  return mhcjit_aggregate_bwd(C, M, dy, x, pre, dx, dpre, accumulate, nullptr);
}

/// A fully valid call would need a GPU; without one it is NO_DEVICE. With a GPU the fake
/// pointers would be launched on, so such calls are only made where there is none.
bool noGpu() { return !mhcjit::gpuAvailable(); }

} // namespace

// ---- mhcjit_config_init ----

TEST_CASE("mhcjit_config_init fills the te preset") {
  mhcjit_config C;
  std::memset(&C, 0xAB, sizeof C);
  REQUIRE(mhcjit_config_init(&C, MHCJIT_CONTRACT_TE) == MHCJIT_SUCCESS);
  CHECK(C.struct_size == sizeof(mhcjit_config));
  CHECK(C.n == 4);
  CHECK(C.c == 0);
  CHECK(C.dtype == MHCJIT_BF16);
  CHECK(C.layout == MHCJIT_LAYOUT_CONTRACT);
  CHECK(C.contract == MHCJIT_CONTRACT_TE);
  CHECK(C.precision == MHCJIT_PRECISION_FP32);
  CHECK(C.rms_eps == 0x1p-23f);
  CHECK(C.rms_outside == 0);
  CHECK(C.pre_eps == 0.0f);
  CHECK_FALSE(std::signbit(C.pre_eps));
  CHECK(C.post_mult == 2.0f);
  CHECK(C.sinkhorn == MHCJIT_SINKHORN_LOG);
  CHECK(C.sinkhorn_iters == 20);
  CHECK(lastError().empty());
}

TEST_CASE("mhcjit_config_init fills the deepseek and megatron presets") {
  mhcjit_config D;
  REQUIRE(mhcjit_config_init(&D, MHCJIT_CONTRACT_DEEPSEEK) == MHCJIT_SUCCESS);
  CHECK(D.struct_size == sizeof(mhcjit_config));
  CHECK(D.n == 4);
  CHECK(D.c == 0);
  CHECK(D.dtype == MHCJIT_BF16);
  CHECK(D.layout == MHCJIT_LAYOUT_CONTRACT);
  CHECK(D.contract == MHCJIT_CONTRACT_DEEPSEEK);
  CHECK(D.rms_eps == 1e-6f);
  CHECK(D.rms_outside == 0);
  CHECK(D.pre_eps == 1e-6f);
  CHECK(D.post_mult == 2.0f);
  CHECK(D.sinkhorn == MHCJIT_SINKHORN_SOFTMAX_EPS);
  CHECK(D.sinkhorn_iters == 20);
  CHECK(D.sinkhorn_eps == 1e-6f);

  mhcjit_config M;
  REQUIRE(mhcjit_config_init(&M, MHCJIT_CONTRACT_MEGATRON) == MHCJIT_SUCCESS);
  CHECK(M.contract == MHCJIT_CONTRACT_MEGATRON);
  CHECK(M.rms_outside == 1);
  CHECK(M.rms_eps == 1e-6f);
  CHECK(M.pre_eps == 1e-6f);
  CHECK(M.sinkhorn == MHCJIT_SINKHORN_SOFTMAX_EPS);
}

TEST_CASE("mhcjit_config_init rejects a null config and an unknown contract") {
  CHECK(mhcjit_config_init(nullptr, MHCJIT_CONTRACT_TE) == MHCJIT_ERROR_INVALID_ARGUMENT);
  CHECK(contains(lastError(), "config"));
  CHECK(contains(lastError(), "null"));

  mhcjit_config C;
  std::memset(&C, 0, sizeof C);
  checkInvalid(mhcjit_config_init(&C, static_cast<mhcjit_contract>(7)), {"contract", "7"});
  checkInvalid(mhcjit_config_init(&C, static_cast<mhcjit_contract>(-1)), {"contract", "-1"});
  CHECK(C.struct_size == 0); // left untouched
}

TEST_CASE("a successful call clears the last error") {
  CHECK(forward(nullptr) == MHCJIT_ERROR_INVALID_ARGUMENT);
  REQUIRE_FALSE(lastError().empty());
  mhcjit_config C;
  REQUIRE(mhcjit_config_init(&C, MHCJIT_CONTRACT_TE) == MHCJIT_SUCCESS);
  CHECK(lastError().empty());
}

TEST_CASE("mhcjit_version is the library version") {
  CHECK(std::string(mhcjit_version()) == MHCJIT_VERSION);
  CHECK(std::string(mhcjit_version()) == "0.1.0");
}

// ---- aggregate forward validation ----

TEST_CASE("aggregate forward rejects a null config") {
  checkInvalid(forward(nullptr), {"config", "null"});
}

TEST_CASE("aggregate forward rejects a config with the wrong struct_size") {
  mhcjit_config C = teConfig();
  C.struct_size = sizeof(mhcjit_config) - 8;
  checkInvalid(forward(&C), {"struct_size", std::to_string(sizeof(mhcjit_config) - 8).c_str(),
                             std::to_string(sizeof(mhcjit_config)).c_str(), "mhcjit_config_init"});
  C.struct_size = 0;
  checkInvalid(forward(&C), {"struct_size"});
}

TEST_CASE("aggregate forward rejects n = 0 and n = 9 with the allowed range") {
  mhcjit_config C = teConfig();
  C.n = 0;
  checkInvalid(forward(&C), {"n = 0", "1..8"});
  C.n = 9;
  checkInvalid(forward(&C), {"n = 9", "1..8"});
  C.n = -3;
  checkInvalid(forward(&C), {"n = -3", "1..8"});
}

TEST_CASE("aggregate forward rejects C = 0 and a config whose c was never set") {
  mhcjit_config C;
  REQUIRE(mhcjit_config_init(&C, MHCJIT_CONTRACT_TE) == MHCJIT_SUCCESS);
  checkInvalid(forward(&C), {"C = 0", "at least 1"});
  C.c = -1;
  checkInvalid(forward(&C), {"C = -1"});
}

TEST_CASE("aggregate forward rejects bad enum values naming the field") {
  {
    mhcjit_config C = teConfig();
    C.dtype = static_cast<mhcjit_dtype>(3);
    checkInvalid(forward(&C), {"dtype", "3"});
    C.dtype = static_cast<mhcjit_dtype>(-1);
    checkInvalid(forward(&C), {"dtype", "-1"});
  }
  {
    mhcjit_config C = teConfig();
    C.layout = static_cast<mhcjit_layout>(9);
    checkInvalid(forward(&C), {"layout", "9"});
  }
  {
    mhcjit_config C = teConfig();
    C.contract = static_cast<mhcjit_contract>(5);
    checkInvalid(forward(&C), {"contract", "5"});
  }
  {
    mhcjit_config C = teConfig();
    C.precision = static_cast<mhcjit_precision>(2);
    checkInvalid(forward(&C), {"precision", "2"});
  }
  {
    mhcjit_config C = teConfig();
    C.sinkhorn = static_cast<mhcjit_sinkhorn>(4);
    checkInvalid(forward(&C), {"sinkhorn", "4"});
  }
}

TEST_CASE("aggregate forward rejects non-finite contract constants naming the constant") {
  mhcjit_config C = teConfig();
  C.rms_eps = std::numeric_limits<float>::quiet_NaN();
  checkInvalid(forward(&C), {"rms_eps"});
  C = teConfig();
  C.post_mult = std::numeric_limits<float>::infinity();
  checkInvalid(forward(&C), {"post_mult"});
  C = teConfig();
  C.sinkhorn_iters = 0;
  checkInvalid(forward(&C), {"sinkhorn_iters = 0"});
}

TEST_CASE("aggregate forward rejects M = 0 and M = -1 with the supported range") {
  mhcjit_config C = teConfig();
  checkInvalid(forward(&C, 0), {"M = 0", "1..2^40"});
  checkInvalid(forward(&C, -1), {"M = -1", "1..2^40"});
  checkInvalid(forward(&C, (int64_t(1) << 40) + 1), {"M = 1099511627777"});
}

TEST_CASE("aggregate forward rejects null x, pre and y naming the pointer") {
  mhcjit_config C = teConfig();
  checkInvalid(forward(&C, 4096, nullptr, Pre, Y), {"'x'", "null"});
  checkInvalid(forward(&C, 4096, X, nullptr, Y), {"'pre'", "null"});
  checkInvalid(forward(&C, 4096, X, Pre, nullptr), {"'y'", "null"});
}

TEST_CASE("aggregate forward rejects pointers not aligned to their elements") {
  mhcjit_config C = teConfig();
  checkInvalid(forward(&C, 4096, reinterpret_cast<void *>(0x1001), Pre, Y),
               {"'x'", "0x1001", "2-byte"});
  checkInvalid(forward(&C, 4096, X, reinterpret_cast<float *>(0x20002), Y),
               {"'pre'", "0x20002", "4-byte"});
  checkInvalid(forward(&C, 4096, X, Pre, reinterpret_cast<void *>(0x30003)), {"'y'", "2-byte"});
  C.dtype = MHCJIT_FP32;
  checkInvalid(forward(&C, 4096, X, Pre, reinterpret_cast<void *>(0x30002)),
               {"'y'", "0x30002", "4-byte"});
}

TEST_CASE("a valid forward call gets past validation and fails only for want of a GPU") {
  if (!noGpu()) {
    MESSAGE("skipped: a GPU is present and the pointers here are fake");
    return;
  }
  mhcjit_config C = teConfig();
  CHECK(forward(&C) == MHCJIT_ERROR_NO_DEVICE);
  CHECK_FALSE(lastError().empty());
  // element-aligned (not 16-byte aligned) pointers are valid too
  CHECK(forward(&C, 1, reinterpret_cast<void *>(0x10002), Pre, reinterpret_cast<void *>(0x30006)) ==
        MHCJIT_ERROR_NO_DEVICE);
  mhcjit_config D;
  REQUIRE(mhcjit_config_init(&D, MHCJIT_CONTRACT_DEEPSEEK) == MHCJIT_SUCCESS);
  D.c = 1;
  D.n = 8;
  D.dtype = MHCJIT_FP32;
  D.layout = MHCJIT_LAYOUT_SBCN;
  CHECK(forward(&D, int64_t(1) << 40) == MHCJIT_ERROR_NO_DEVICE);
}

// ---- aggregate backward validation ----

TEST_CASE("aggregate backward rejects a null config and a wrong struct_size") {
  checkInvalid(backward(nullptr), {"config", "null"});
  mhcjit_config C = teConfig();
  C.struct_size += 4;
  checkInvalid(backward(&C), {"struct_size", "mhcjit_config_init"});
}

TEST_CASE("aggregate backward rejects n = 0, n = 9, C = 0 and a bad dtype") {
  mhcjit_config C = teConfig();
  C.n = 0;
  checkInvalid(backward(&C), {"n = 0", "1..8"});
  C.n = 9;
  checkInvalid(backward(&C), {"n = 9", "1..8"});
  C = teConfig();
  C.c = 0;
  checkInvalid(backward(&C), {"C = 0"});
  C = teConfig();
  C.dtype = static_cast<mhcjit_dtype>(42);
  checkInvalid(backward(&C), {"dtype", "42"});
}

TEST_CASE("aggregate backward rejects M = 0 and M = -1") {
  mhcjit_config C = teConfig();
  checkInvalid(backward(&C, 0), {"M = 0"});
  checkInvalid(backward(&C, -1), {"M = -1"});
}

TEST_CASE("aggregate backward rejects each null pointer by name") {
  mhcjit_config C = teConfig();
  checkInvalid(backward(&C, 8, nullptr, X, Pre, DX, DPre), {"'dy'", "null"});
  checkInvalid(backward(&C, 8, DY, nullptr, Pre, DX, DPre), {"'x'", "null"});
  checkInvalid(backward(&C, 8, DY, X, nullptr, DX, DPre), {"'pre'", "null"});
  checkInvalid(backward(&C, 8, DY, X, Pre, nullptr, DPre), {"'dx'", "null"});
  checkInvalid(backward(&C, 8, DY, X, Pre, DX, nullptr), {"'dpre'", "null"});
}

TEST_CASE("aggregate backward rejects misaligned pointers by name") {
  mhcjit_config C = teConfig();
  checkInvalid(backward(&C, 8, reinterpret_cast<void *>(0x1001)), {"'dy'", "0x1001", "2-byte"});
  checkInvalid(backward(&C, 8, DY, reinterpret_cast<void *>(0x1003)), {"'x'", "0x1003"});
  checkInvalid(backward(&C, 8, DY, X, Pre, DX, reinterpret_cast<float *>(0x60001)),
               {"'dpre'", "4-byte"});
}

TEST_CASE("an accumulating backward needs dx aligned to fp32, a writing one to the stream dtype") {
  mhcjit_config C = teConfig(); // bf16
  void *const Dx2 = reinterpret_cast<void *>(0x50002); // 2-byte aligned only
  checkInvalid(backward(&C, 8, DY, X, Pre, Dx2, DPre, /*accumulate=*/1), {"'dx'", "0x50002", "4-byte"});
  if (noGpu()) {
    CHECK(backward(&C, 8, DY, X, Pre, Dx2, DPre, /*accumulate=*/0) == MHCJIT_ERROR_NO_DEVICE);
    CHECK(backward(&C, 8, DY, X, Pre, DX, DPre, /*accumulate=*/1) == MHCJIT_ERROR_NO_DEVICE);
  } else {
    MESSAGE("skipped the NO_DEVICE checks: a GPU is present and the pointers here are fake");
  }
}

TEST_CASE("a valid backward call gets past validation and fails only for want of a GPU") {
  if (!noGpu()) {
    MESSAGE("skipped: a GPU is present and the pointers here are fake");
    return;
  }
  mhcjit_config C = teConfig();
  CHECK(backward(&C) == MHCJIT_ERROR_NO_DEVICE);
  const std::string Message = lastError();
  CAPTURE(Message);
  const bool SaysWhy = contains(Message, "libcuda") || contains(Message, "device") || contains(Message, "driver");
  CHECK(SaysWhy);
}

// ---- scale_sinkhorn (scale and sinkhorn fused) validation ----

namespace {

// The fused op's tensors in the order of the C functions: H, ms, alpha, beta, then pre, post,
// res (forward) or dpre, dpost, dres, dH, dms, dalpha, dbeta (backward). All fp32.
const std::vector<std::string> FusedFwdNames = {"H", "ms", "alpha", "beta", "pre", "post", "res"};
const std::vector<std::string> FusedBwdNames = {"H",    "ms",   "alpha", "beta",   "dpre", "dpost",
                                                "dres", "dH",   "dms",   "dalpha", "dbeta"};

/// Fake device pointers for Count tensors: non-null, 16-byte aligned, 64 KiB apart.
std::vector<float *> fusedPointers(size_t Count) {
  std::vector<float *> P;
  for (size_t I = 0; I < Count; ++I)
    P.push_back(reinterpret_cast<float *>(0x100000 + 0x10000 * I));
  return P;
}

mhcjit_status fusedForward(const mhcjit_config *C, int64_t M, const std::vector<float *> &P) {
  return mhcjit_scale_sinkhorn_fwd(C, M, P[0], P[1], P[2], P[3], P[4], P[5], P[6], nullptr);
}

mhcjit_status fusedBackward(const mhcjit_config *C, int64_t M, const std::vector<float *> &P) {
  return mhcjit_scale_sinkhorn_bwd(C, M, P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[8], P[9], P[10],
                                   nullptr);
}

/// Both directions of the fused op, each with its own names, pointers and call.
struct FusedDirection {
  const char *Name;
  const std::vector<std::string> &Tensors;
  mhcjit_status (*Call)(const mhcjit_config *, int64_t, const std::vector<float *> &);
};
const FusedDirection FusedDirections[] = {{"forward", FusedFwdNames, fusedForward},
                                          {"backward", FusedBwdNames, fusedBackward}};

} // namespace

TEST_CASE("scale_sinkhorn rejects a null config, a wrong struct_size, n = 9 and an unknown sinkhorn") {
  for (const FusedDirection &D : FusedDirections) {
    CAPTURE(D.Name);
    const std::vector<float *> P = fusedPointers(D.Tensors.size());
    checkInvalid(D.Call(nullptr, 8, P), {"config", "null"});
    mhcjit_config C = teConfig();
    C.struct_size += 4;
    checkInvalid(D.Call(&C, 8, P), {"struct_size", "mhcjit_config_init"});
    C = teConfig();
    C.n = 9;
    checkInvalid(D.Call(&C, 8, P), {"n = 9", "1..8"});
    C.n = 0;
    checkInvalid(D.Call(&C, 8, P), {"n = 0", "1..8"});
    C = teConfig();
    C.sinkhorn = static_cast<mhcjit_sinkhorn>(4);
    checkInvalid(D.Call(&C, 8, P), {"sinkhorn", "4"});
    C = teConfig();
    C.sinkhorn_iters = 0;
    checkInvalid(D.Call(&C, 8, P), {"sinkhorn_iters = 0"});
  }
}

TEST_CASE("scale_sinkhorn rejects M = 0, M = -1 and M past 2^40 with the supported range") {
  mhcjit_config C = teConfig();
  for (const FusedDirection &D : FusedDirections) {
    CAPTURE(D.Name);
    const std::vector<float *> P = fusedPointers(D.Tensors.size());
    checkInvalid(D.Call(&C, 0, P), {"M = 0", "1..2^40"});
    checkInvalid(D.Call(&C, -1, P), {"M = -1", "1..2^40"});
    checkInvalid(D.Call(&C, (int64_t(1) << 40) + 1, P), {"M = 1099511627777"});
  }
}

TEST_CASE("scale_sinkhorn rejects each null pointer by name") {
  mhcjit_config C = teConfig();
  for (const FusedDirection &D : FusedDirections)
    for (size_t I = 0; I < D.Tensors.size(); ++I) {
      CAPTURE(D.Name);
      CAPTURE(D.Tensors[I]);
      std::vector<float *> P = fusedPointers(D.Tensors.size());
      P[I] = nullptr;
      const std::string Quoted = "'" + D.Tensors[I] + "'";
      checkInvalid(D.Call(&C, 8, P), {Quoted.c_str(), "null"});
    }
}

TEST_CASE("scale_sinkhorn rejects each pointer not aligned to fp32 by name, whatever the stream dtype") {
  // every tensor of the fused op is fp32 (SPEC.md "Notation"), so 2-byte alignment is never enough
  for (mhcjit_dtype T : {MHCJIT_BF16, MHCJIT_FP32}) {
    mhcjit_config C = teConfig();
    C.dtype = T;
    for (const FusedDirection &D : FusedDirections)
      for (size_t I = 0; I < D.Tensors.size(); ++I) {
        CAPTURE(D.Name);
        CAPTURE(D.Tensors[I]);
        std::vector<float *> P = fusedPointers(D.Tensors.size());
        const uintptr_t Odd = reinterpret_cast<uintptr_t>(P[I]) + 2;
        P[I] = reinterpret_cast<float *>(Odd);
        char Hex[32]; // upper-case digits, as the library's message writes them
        std::snprintf(Hex, sizeof Hex, "0x%llX", static_cast<unsigned long long>(Odd));
        const std::string Quoted = "'" + D.Tensors[I] + "'";
        checkInvalid(D.Call(&C, 8, P), {Quoted.c_str(), Hex, "4-byte"});
      }
  }
}

TEST_CASE("a valid scale_sinkhorn call gets past validation and fails only for want of a GPU") {
  if (!noGpu()) {
    MESSAGE("skipped: a GPU is present and the pointers here are fake");
    return;
  }
  mhcjit_config Te = teConfig();
  mhcjit_config Ds;
  REQUIRE(mhcjit_config_init(&Ds, MHCJIT_CONTRACT_DEEPSEEK) == MHCJIT_SUCCESS);
  Ds.c = 1;
  Ds.n = 8;
  for (const FusedDirection &D : FusedDirections) {
    CAPTURE(D.Name);
    std::vector<float *> P = fusedPointers(D.Tensors.size());
    CHECK(D.Call(&Te, 4096, P) == MHCJIT_ERROR_NO_DEVICE);
    CHECK_FALSE(lastError().empty());
    CHECK(D.Call(&Ds, int64_t(1) << 40, P) == MHCJIT_ERROR_NO_DEVICE);
    // element-aligned (4 bytes, not 16) is valid for fp32 tensors
    P.back() = reinterpret_cast<float *>(reinterpret_cast<uintptr_t>(P.back()) + 4);
    CHECK(D.Call(&Te, 1, P) == MHCJIT_ERROR_NO_DEVICE);
  }
}

// ---- the last-error message ----

TEST_CASE("mhcjit_last_error keeps the whole message") {
  mhcjit_config C = teConfig();
  C.struct_size = 12;
  REQUIRE(forward(&C) == MHCJIT_ERROR_INVALID_ARGUMENT);
  const std::string Expected = "config.struct_size = 12 but this library expects " +
                               std::to_string(sizeof(mhcjit_config)) +
                               "; initialise the config with mhcjit_config_init()";
  CHECK(lastError() == Expected);
  // the pointer stays valid and unchanged until the next call on this thread
  const char *Raw = mhcjit_last_error();
  CHECK(std::string(Raw) == Expected);
  CHECK(std::strlen(Raw) == Expected.size());
}

TEST_CASE("the spec error reaches the C caller in full, with its prefix") {
  mhcjit_config C = teConfig();
  C.n = 9;
  REQUIRE(forward(&C) == MHCJIT_ERROR_INVALID_ARGUMENT);
  CHECK(lastError() == "invalid kernel spec: n = 9 is outside the supported range 1..8");
}

TEST_CASE("the last error is per thread: another thread's failure leaves this one's alone") {
  mhcjit_config C = teConfig();
  C.n = 9;
  REQUIRE(forward(&C) == MHCJIT_ERROR_INVALID_ARGUMENT);
  const std::string Mine = lastError();
  REQUIRE(contains(Mine, "n = 9"));

  std::string TheirsBefore, TheirsAfter;
  mhcjit_status TheirStatus = MHCJIT_SUCCESS;
  std::thread Other([&] {
    TheirsBefore = mhcjit_last_error(); // a fresh thread has no error yet
    TheirStatus = mhcjit_aggregate_bwd(nullptr, 1, DY, X, Pre, DX, DPre, 0, nullptr);
    TheirsAfter = mhcjit_last_error();
  });
  Other.join();
  CHECK(TheirsBefore.empty());
  CHECK(TheirStatus == MHCJIT_ERROR_INVALID_ARGUMENT);
  CHECK(contains(TheirsAfter, "config is null"));
  CHECK(lastError() == Mine);

  // and a success on another thread does not clear this thread's message either
  std::thread Clearer([] {
    mhcjit_config D;
    mhcjit_config_init(&D, MHCJIT_CONTRACT_TE);
  });
  Clearer.join();
  CHECK(lastError() == Mine);
}
