// mhc-jit demo, the main job: with a GPU, aggregate forward and backward on random data, checked
// against the float64 reference and timed; without one, pre-warm for sm_90a and show the results.
#include "SpecOptions.h"

#include "DeviceBuffer.h"
#include "HostTypes.h"
#include "Reference.h"

#include "mhcjit/Driver.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/mhcjit.hpp"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <functional>
#include <random>

namespace mhcjit {

namespace {

/// Milliseconds per call of Launch, by CUDA events over Repeats calls after one warm-up.
llvm::Expected<double> timeLaunches(const std::function<llvm::Error()> &Launch, int Repeats) {
  const DriverApi &Api = *driverApi();
  if (llvm::Error E = Launch())
    return std::move(E);
  CUevent Start, Stop;
  if (llvm::Error E = checkCuda(Api.cuEventCreate(&Start, CU_EVENT_DEFAULT), "cuEventCreate"))
    return std::move(E);
  if (llvm::Error E = checkCuda(Api.cuEventCreate(&Stop, CU_EVENT_DEFAULT), "cuEventCreate"))
    return std::move(E);
  Api.cuEventRecord(Start, nullptr);
  for (int I = 0; I < Repeats; ++I)
    if (llvm::Error E = Launch())
      return std::move(E);
  Api.cuEventRecord(Stop, nullptr);
  if (llvm::Error E = checkCuda(Api.cuEventSynchronize(Stop), "cuEventSynchronize"))
    return std::move(E);
  float Ms = 0;
  Api.cuEventElapsedTime(&Ms, Start, Stop);
  Api.cuEventDestroy(Start);
  Api.cuEventDestroy(Stop);
  return double(Ms) / Repeats;
}

llvm::Error runOnGpu(Layout L) {
  const int64_t M = 4096, C = 7168;
  const int N = 4;
  MixConfig Config;
  Config.N = N;
  Config.C = C;
  Config.StreamType = DType::BF16;
  Config.StreamLayout = L;
  StreamShape Shape{M, N, C, L};
  std::mt19937_64 Rng(std::random_device{}());
  std::normal_distribution<float> Normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> Uniform(0.0f, 1.0f);
  std::vector<float> X(Shape.elements()), DY(M * C), Pre(M * N);
  for (float &V : X) V = Normal(Rng);
  for (float &V : DY) V = Normal(Rng);
  for (float &V : Pre) V = Uniform(Rng);
  X = roundToDType(X, DType::BF16);
  DY = roundToDType(DY, DType::BF16);

  auto DX_ = DeviceBuffer::upload(encodeStream(X, DType::BF16));
  if (!DX_) return DX_.takeError();
  auto DDy = DeviceBuffer::upload(encodeStream(DY, DType::BF16));
  if (!DDy) return DDy.takeError();
  auto DPre = DeviceBuffer::upload(Pre);
  if (!DPre) return DPre.takeError();
  auto DYOut = DeviceBuffer::allocate(M * C * 2);
  if (!DYOut) return DYOut.takeError();
  auto DDx = DeviceBuffer::allocate(Shape.elements() * 2);
  if (!DDx) return DDx.takeError();
  auto DDpre = DeviceBuffer::allocate(M * N * 4);
  if (!DDpre) return DDpre.takeError();
  for (DeviceBuffer *B : {&*DYOut, &*DDx, &*DDpre})
    if (llvm::Error E = B->fill(0xff)) // NaN poison: an unwritten element fails the check
      return E;

  AggregateForwardArgs Fwd{M, DX_->get(), DPre->getFloat(), DYOut->get()};
  AggregateBackwardArgs Bwd{M, DDy->get(), DX_->get(), DPre->getFloat(), DDx->get(), DDpre->getFloat(), false};
  auto ColdStart = std::chrono::steady_clock::now();
  if (llvm::Error E = aggregateForward(Config, Fwd, nullptr)) return E;
  if (llvm::Error E = aggregateBackward(Config, Bwd, nullptr)) return E;
  double ColdMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ColdStart).count();
  if (llvm::Error E = checkCuda(driverApi()->cuCtxSynchronize(), "cuCtxSynchronize")) return E;

  auto Y = DYOut->bytes();
  if (!Y) return Y.takeError();
  auto Dx = DDx->bytes();
  if (!Dx) return Dx.takeError();
  auto Dpre = DDpre->floats();
  if (!Dpre) return Dpre.takeError();
  std::vector<double> RefDx, RefDpre;
  aggregateBackwardRef(Shape, DY, X, Pre, nullptr, RefDx, RefDpre);
  double ErrY = relativeError(decodeStream(*Y, DType::BF16), aggregateForwardRef(Shape, X, Pre));
  double ErrDx = relativeError(decodeStream(*Dx, DType::BF16), RefDx);
  double ErrDpre = relativeError(*Dpre, RefDpre);

  auto FwdMs = timeLaunches([&] { return aggregateForward(Config, Fwd, nullptr); }, 50);
  if (!FwdMs) return FwdMs.takeError();
  auto BwdMs = timeLaunches([&] { return aggregateBackward(Config, Bwd, nullptr); }, 50);
  if (!BwdMs) return BwdMs.takeError();
  double FwdBytes = double(M) * (N * C * 2 + N * 4 + C * 2);
  double BwdBytes = double(M) * (C * 2 + N * C * 2 + N * 4 + N * C * 2 + N * 4);
  const double Tolerance = 1e-2; // SPEC.md: bf16 stream
  bool Ok = ErrY <= Tolerance && ErrDx <= Tolerance && ErrDpre <= Tolerance;
  llvm::outs() << llvm::format("aggregate n=%d C=%lld M=%lld bf16 %s: first calls (JIT or cache) %.1f ms\n",
                               N, (long long)C, (long long)M, layoutName(L).data(), ColdMs)
               << llvm::format("  fwd: rel. error y %.2e; %.1f us, %.0f GB/s\n", ErrY, *FwdMs * 1e3, FwdBytes / (*FwdMs * 1e6))
               << llvm::format("  bwd: rel. error dx %.2e, dpre %.2e; %.1f us, %.0f GB/s\n", ErrDx, ErrDpre, *BwdMs * 1e3, BwdBytes / (*BwdMs * 1e6))
               << "  check against the float64 reference (tolerance 1e-2): " << (Ok ? "PASS" : "FAIL") << "\n";
  if (!Ok)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "the GPU results do not match the reference");
  return llvm::Error::success();
}

int runOffline(const std::string &Root) {
  const std::string Arch = "sm_90a";
  llvm::outs() << "No GPU here: pre-warming aggregate kernels for " << Arch << " into " << Root << "\n";
  RuntimeOptions Options = runtimeOptions();
  size_t Compiled = 0, Cached = 0;
  llvm::Optional<BuiltKernel> Shown;
  for (ContractKind K : {ContractKind::TE, ContractKind::DeepSeek})
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (int64_t C : {4096, 7168}) {
        MixConfig Config;
        Config.C = C;
        Config.Contract = contractPreset(K);
        auto Spec = specFor(Config, Op::Aggregate, D);
        if (!Spec) {
          llvm::errs() << "mhc-jit demo: " << llvm::toString(Spec.takeError()) << "\n";
          return 1;
        }
        auto Built = buildKernel(*Spec, Arch, Options);
        if (!Built) {
          llvm::errs() << "mhc-jit demo: " << llvm::toString(Built.takeError()) << "\n";
          return 1;
        }
        (Built->Origin == KernelOrigin::Compiled ? Compiled : Cached)++;
        llvm::outs() << "  " << originName(Built->Origin) << ": " << specLabel(*Spec) << "  ("
                     << Built->Entry->Resources.Registers << " registers, "
                     << Built->Entry->Cubin.size() << " byte cubin)\n";
        if (!Shown)
          Shown = *Built;
      }
  llvm::outs() << Compiled << " compiled, " << Cached << " already cached\n\n"
               << "Source of " << Shown->Entry->LoweredName << " (the translation unit; "
               << "`mhc-jit inspect --show source` adds the templates):\n"
               << Shown->Entry->Source << "\nCache listing:\n";
  return listCacheEntries(Root);
}

} // namespace

int runDemo() {
  std::string Root = applyCacheDirOption();
  if (!gpuAvailable())
    return runOffline(Root);
  for (Layout L : {Layout::SBCN, Layout::SBNC})
    if (llvm::Error E = runOnGpu(L)) {
      llvm::errs() << "mhc-jit demo: " << llvm::toString(std::move(E)) << "\n";
      return 1;
    }
  return 0;
}

} // namespace mhcjit
