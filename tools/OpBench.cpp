// mhc-jit bench (ops): times every op and direction with CUDA events, L2 flushed before each
// repetition, median of 25 after 3 warm-ups, against the device-to-device copy bandwidth
// measured in the same run. Speed of light = the op's minimal bytes / copy bandwidth.
#include "OpBench.h"

#include "DeviceBuffer.h"
#include "HostTypes.h"
#include "Parallel.h"

#include "mhcjit/Driver.h"
#include "mhcjit/mhcjit.hpp"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <functional>
#include <map>
#include <random>

namespace mhcjit {

namespace {

constexpr int WarmUps = 3, Repeats = 25;

/// Median milliseconds of Launch, each repetition after an L2 flush (a 256 MiB memset).
llvm::Expected<double> timeMedian(const std::function<llvm::Error()> &Launch, DeviceBuffer &Flush) {
  const DriverApi &Api = *driverApi();
  CUevent Start, Stop;
  if (llvm::Error E = checkCuda(Api.cuEventCreate(&Start, CU_EVENT_DEFAULT), "cuEventCreate"))
    return std::move(E);
  if (llvm::Error E = checkCuda(Api.cuEventCreate(&Stop, CU_EVENT_DEFAULT), "cuEventCreate"))
    return std::move(E);
  std::vector<double> Times;
  for (int I = 0; I < WarmUps + Repeats; ++I) {
    if (llvm::Error E = Flush.fill(static_cast<unsigned char>(I)))
      return std::move(E);
    Api.cuEventRecord(Start, nullptr);
    if (llvm::Error E = Launch())
      return std::move(E);
    Api.cuEventRecord(Stop, nullptr);
    if (llvm::Error E = checkCuda(Api.cuEventSynchronize(Stop), "cuEventSynchronize"))
      return std::move(E);
    float Ms = 0;
    Api.cuEventElapsedTime(&Ms, Start, Stop);
    if (I >= WarmUps)
      Times.push_back(Ms);
  }
  Api.cuEventDestroy(Start);
  Api.cuEventDestroy(Stop);
  std::sort(Times.begin(), Times.end());
  return Times[Times.size() / 2];
}

/// Random device tensors by name, allocated on first use and reused across configs.
class Tensors {
public:
  llvm::Expected<void *> get(const std::string &Name, size_t Bytes, float Scale) {
    auto It = Buffers.find(Name);
    if (It != Buffers.end() && It->second.size() >= Bytes)
      return It->second.get();
    // random fp32 words rescaled into a harmless range; stream tensors read them as pairs of
    // bf16 values, which are finite too (never time on zeros)
    std::vector<float> Host(Bytes / 4 + 1);
    parallelFor(int64_t(Host.size()), [&](int64_t Begin, int64_t End) {
      std::minstd_rand Rng(static_cast<unsigned>(Begin) + 1);
      std::uniform_real_distribution<float> U(0.25f, 1.0f);
      for (int64_t I = Begin; I < End; ++I)
        Host[I] = U(Rng) * Scale;
    });
    auto B = DeviceBuffer::upload(Host);
    if (!B)
      return B.takeError();
    Buffers[Name] = std::move(*B);
    return Buffers[Name].get();
  }

private:
  std::map<std::string, DeviceBuffer> Buffers;
};

} // namespace

llvm::Expected<double> measureCopyBandwidth() {
  const size_t Bytes = size_t(1) << 30;
  auto Src = DeviceBuffer::allocate(Bytes);
  if (!Src)
    return Src.takeError();
  auto Dst = DeviceBuffer::allocate(Bytes);
  if (!Dst)
    return Dst.takeError();
  auto Flush = DeviceBuffer::allocate(1 << 28);
  if (!Flush)
    return Flush.takeError();
  if (llvm::Error E = Src->fill(1))
    return std::move(E);
  auto Ms = timeMedian(
      [&] {
        return checkCuda(driverApi()->cuMemcpyDtoD(reinterpret_cast<CUdeviceptr>(Dst->get()),
                                                   reinterpret_cast<CUdeviceptr>(Src->get()), Bytes),
                         "cuMemcpyDtoD");
      },
      *Flush);
  if (!Ms)
    return Ms.takeError();
  return 2.0 * Bytes / (*Ms * 1e-3); // bytes read plus bytes written, per second
}

llvm::Expected<std::vector<BenchRow>> benchOps(const std::vector<BenchShape> &Shapes,
                                               const std::vector<Op> &Ops, const MixConfig &Base,
                                               double CopyBandwidth) {
  Tensors T;
  auto Flush = DeviceBuffer::allocate(1 << 28);
  if (!Flush)
    return Flush.takeError();
  std::vector<BenchRow> Rows;
  for (const BenchShape &Shape : Shapes) {
    MixConfig Config = Base;
    Config.C = Shape.C;
    const int64_t M = Shape.B * Shape.T, N = Config.N, C = Config.C, K = N * C;
    const int64_t Mix = N * N + 2 * N, S = dtypeSize(Config.StreamType);
    std::map<std::string, void *> P;
    // name, bytes, value scale
    const std::vector<std::tuple<std::string, int64_t, float>> Needed = {
        {"x", M * K * S, 1.0f}, {"dx", M * K * S, 1.0f}, {"out", M * K * S, 1.0f}, {"dout", M * K * S, 1.0f},
        {"y", M * C * S, 1.0f}, {"dy", M * C * S, 1.0f}, {"f", M * C * S, 1.0f}, {"df", M * C * S, 1.0f},
        {"H", M * Mix * 4, 0.1f}, {"dH", M * Mix * 4, 1.0f}, {"ms", M * 4, 1.0f}, {"dms", M * 4, 1.0f},
        {"pre", M * N * 4, 1.0f}, {"post", M * N * 4, 1.0f}, {"logits", M * N * N * 4, 1.0f},
        {"res", M * N * N * 4, 0.25f}, {"dpre", M * N * 4, 1.0f}, {"dpost", M * N * 4, 1.0f},
        {"dlogits", M * N * N * 4, 1.0f}, {"dres", M * N * N * 4, 1.0f},
        {"phi", Mix * K * 4, 0.01f}, {"dphi", Mix * K * 4, 1.0f}, {"w", N * K * 4, 0.01f}, {"dw", N * K * 4, 1.0f},
        {"alpha", 16, 1.0f}, {"beta", Mix * 4, 0.5f}, {"dalpha", 16, 1.0f}, {"dbeta", Mix * 4, 1.0f},
        {"scale", 16, 1.0f}, {"base", N * 4, 0.5f}, {"dscale", 16, 1.0f}, {"dbase", N * 4, 1.0f}};
    for (const auto &[Name, Bytes, Scale] : Needed) {
      auto Ptr = T.get(Name, size_t(Bytes), Scale);
      if (!Ptr)
        return Ptr.takeError();
      P[Name] = *Ptr;
    }
    auto F = [&](const char *Name) { return static_cast<float *>(P[Name]); };
    struct Entry {
      Op O;
      Direction D;
      std::function<llvm::Error()> Launch;
      double Bytes; ///< minimal bytes: each input read once, each output written once
    };
    const double Mt = double(M), Sd = double(S);
    std::vector<Entry> Entries = {
        {Op::Project, Direction::Forward,
         [&] { return projectForward(Config, {M, P["x"], F("phi"), nullptr, F("H"), F("ms")}, nullptr); },
         Mt * (K * Sd + 4 * Mix + 4) + 4.0 * Mix * K},
        {Op::Project, Direction::Backward,
         [&] {
           return projectBackward(Config, {M, P["x"], F("phi"), nullptr, F("dH"), F("dms"), P["dx"], F("dphi"), nullptr, false},
                                  nullptr);
         },
         Mt * (2 * K * Sd + 4 * Mix + 4) + 8.0 * Mix * K},
        {Op::Scale, Direction::Forward,
         [&] {
           return scaleForward(Config, {M, F("H"), F("ms"), F("alpha"), F("beta"), F("pre"), F("post"), F("logits")}, nullptr);
         },
         Mt * (8.0 * Mix + 4)},
        {Op::Scale, Direction::Backward,
         [&] {
           return scaleBackward(Config, {M, F("H"), F("ms"), F("alpha"), F("beta"), F("dpre"), F("dpost"), F("dlogits"),
                                         F("dH"), F("dms"), F("dalpha"), F("dbeta")}, nullptr);
         },
         Mt * (12.0 * Mix + 8)},
        {Op::Sinkhorn, Direction::Forward,
         [&] { return sinkhornForward(Config, {M, F("logits"), F("res")}, nullptr); }, Mt * 8.0 * N * N},
        {Op::Sinkhorn, Direction::Backward,
         [&] { return sinkhornBackward(Config, {M, F("logits"), F("dres"), F("dlogits")}, nullptr); }, Mt * 12.0 * N * N},
        {Op::Aggregate, Direction::Forward,
         [&] { return aggregateForward(Config, {M, P["x"], F("pre"), P["y"]}, nullptr); }, Mt * (K * Sd + 4 * N + C * Sd)},
        {Op::Aggregate, Direction::Backward,
         [&] { return aggregateBackward(Config, {M, P["dy"], P["x"], F("pre"), P["dx"], F("dpre"), false}, nullptr); },
         Mt * (C * Sd + 2 * K * Sd + 8 * N)},
        {Op::ExpandCombine, Direction::Forward,
         [&] { return expandCombineForward(Config, {M, P["f"], nullptr, F("post"), P["x"], F("res"), P["out"]}, nullptr); },
         Mt * (C * Sd + 2 * K * Sd + 4 * N + 4 * N * N)},
        {Op::ExpandCombine, Direction::Backward,
         [&] {
           return expandCombineBackward(Config, {M, P["dout"], P["f"], nullptr, F("post"), P["x"], F("res"), P["df"], nullptr,
                                                 F("dpost"), F("dres"), P["dx"], false}, nullptr);
         },
         Mt * (3 * K * Sd + 2 * C * Sd + 8 * N + 8 * N * N)},
        {Op::Expand, Direction::Forward, [&] { return expandForward(Config, {M, P["y"], P["out"]}, nullptr); },
         Mt * (C * Sd + K * Sd)},
        {Op::Expand, Direction::Backward, [&] { return expandBackward(Config, {M, P["dout"], P["dy"]}, nullptr); },
         Mt * (C * Sd + K * Sd)},
        {Op::Contract, Direction::Forward, [&] { return contractForward(Config, {M, P["x"], P["y"]}, nullptr); },
         Mt * (C * Sd + K * Sd)},
        {Op::Contract, Direction::Backward, [&] { return contractBackward(Config, {M, P["dy"], P["dx"], false}, nullptr); },
         Mt * (C * Sd + K * Sd)},
        {Op::Head, Direction::Forward,
         [&] { return headForward(Config, {M, P["x"], F("w"), F("scale"), F("base"), P["y"]}, nullptr); },
         Mt * (K * Sd + C * Sd) + 4.0 * N * K},
        {Op::Head, Direction::Backward,
         [&] {
           return headBackward(Config, {M, P["x"], F("w"), F("scale"), F("base"), P["dy"], P["dx"], F("dw"), F("dscale"),
                                        F("dbase"), false}, nullptr);
         },
         Mt * (2 * K * Sd + C * Sd) + 8.0 * N * K},
    };
    for (const Entry &E : Entries) {
      if (std::find(Ops.begin(), Ops.end(), E.O) == Ops.end())
        continue;
      auto Ms = timeMedian(E.Launch, *Flush);
      if (!Ms)
        return Ms.takeError();
      BenchRow R;
      R.Shape = Shape;
      R.Operation = E.O;
      R.Dir = E.D;
      R.Milliseconds = *Ms;
      R.Bytes = E.Bytes;
      R.GBps = E.Bytes / (*Ms * 1e6);
      R.SolPercent = 100.0 * (E.Bytes / CopyBandwidth) / (*Ms * 1e-3);
      Rows.push_back(R);
    }
  }
  return Rows;
}

} // namespace mhcjit
