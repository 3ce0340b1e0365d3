// mhcjit runtime: op calls on scratch tensors (ScratchLaunch.h), with each op direction's
// tensors and minimal bytes in one table.
#include "mhcjit/ScratchLaunch.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <tuple>
#include <vector>

namespace mhcjit {

namespace {

/// Fills Bytes at Pointer with Pattern repeated: one upload, then device copies that double
/// the filled prefix (log2(Bytes / pattern) copies, no large host buffer).
llvm::Error fillRepeated(CUdeviceptr Pointer, size_t Bytes, const std::vector<uint8_t> &Pattern) {
  const DriverApi &Api = *driverApi();
  size_t Filled = std::min(Bytes, Pattern.size());
  if (llvm::Error E = checkCuda(Api.cuMemcpyHtoD(Pointer, Pattern.data(), Filled), "cuMemcpyHtoD(scratch)"))
    return E;
  while (Filled < Bytes) {
    size_t Chunk = std::min(Filled, Bytes - Filled);
    if (llvm::Error E = checkCuda(Api.cuMemcpyDtoD(Pointer + Filled, Pointer, Chunk), "cuMemcpyDtoD(scratch)"))
      return E;
    Filled += Chunk;
  }
  return llvm::Error::success();
}

/// V (positive, normal in every dtype: [2^-14, 65504]) as Type's bits, truncated: scratch
/// values need only be finite and of a realistic scale.
void encodePositive(float V, DType Type, uint8_t *Out) {
  uint32_t Bits;
  std::memcpy(&Bits, &V, 4);
  if (Type == DType::FP32) {
    std::memcpy(Out, &Bits, 4);
    return;
  }
  uint16_t Half = Type == DType::BF16
                      ? uint16_t(Bits >> 16)
                      : uint16_t(((((Bits >> 23) & 0xff) - 127 + 15) << 10) | ((Bits >> 13) & 0x3ff));
  std::memcpy(Out, &Half, 2);
}

} // namespace

ScratchTensors::~ScratchTensors() {
  if (Buffers.empty())
    return;
  const DriverApi &Api = *driverApi(); // something was allocated, so the driver is there
  for (auto &KV : Buffers)
    Api.cuMemFree(KV.second.Pointer);
}

size_t ScratchTensors::allocatedBytes() const {
  size_t Sum = 0;
  for (const auto &KV : Buffers)
    Sum += KV.second.Bytes;
  return Sum;
}

llvm::Expected<void *> ScratchTensors::get(const std::string &Name, size_t Bytes, float Scale, DType Type) {
  Bytes = std::max<size_t>(Bytes, 16);
  auto It = Buffers.find(Name);
  if (It != Buffers.end() && It->second.Bytes >= Bytes && It->second.Type == Type)
    return reinterpret_cast<void *>(It->second.Pointer);
  auto Api = driverApi();
  if (!Api)
    return Api.takeError();
  if (auto Context = ensureCurrentContext(); !Context)
    return Context.takeError();
  if (It != Buffers.end()) {
    Api->cuMemFree(It->second.Pointer);
    Buffers.erase(It);
  }
  Buffer B;
  if (llvm::Error E = checkCuda(Api->cuMemAlloc(&B.Pointer, Bytes),
                                "cuMemAlloc(" + llvm::Twine(Bytes) + " bytes of scratch '" + Name + "')"))
    return std::move(E);
  B.Bytes = Bytes;
  B.Type = Type;
  Buffers[Name] = B;
  // random values of Type in a harmless range (never time on zeros)
  const size_t Size = dtypeSize(Type);
  std::vector<uint8_t> Pattern((1 << 16) * Size);
  std::minstd_rand Rng(static_cast<unsigned>(std::hash<std::string>()(Name)) | 1u);
  std::uniform_real_distribution<float> U(0.25f, 1.0f);
  for (size_t I = 0; I < Pattern.size(); I += Size)
    encodePositive(U(Rng) * Scale, Type, &Pattern[I]);
  if (llvm::Error E = fillRepeated(B.Pointer, Bytes, Pattern))
    return std::move(E);
  return reinterpret_cast<void *>(B.Pointer);
}

llvm::Expected<ScratchLaunch> scratchLaunch(const MixConfig &Config, Op Operation, Direction Dir,
                                            int64_t M, ScratchTensors &Scratch) {
  if (M < 1)
    return makeError(Errc::InvalidArgument, "timing needs M >= 1 tokens, got " + llvm::Twine(M));
  const int64_t N = Config.N, C = Config.C, K = N * C, Mix = N * N + 2 * N;
  const int64_t S = dtypeSize(Config.StreamType);
  // every tensor an op call may use: bytes and the scale of its values
  const std::map<std::string, std::pair<int64_t, float>> Sizes = {
      {"x", {M * K * S, 1.0f}}, {"dx", {M * K * S, 1.0f}}, {"out", {M * K * S, 1.0f}}, {"dout", {M * K * S, 1.0f}},
      {"y", {M * C * S, 1.0f}}, {"dy", {M * C * S, 1.0f}}, {"f", {M * C * S, 1.0f}}, {"df", {M * C * S, 1.0f}},
      {"H", {M * Mix * 4, 0.1f}}, {"dH", {M * Mix * 4, 1.0f}}, {"ms", {M * 4, 1.0f}}, {"dms", {M * 4, 1.0f}},
      {"pre", {M * N * 4, 1.0f}}, {"post", {M * N * 4, 1.0f}}, {"logits", {M * N * N * 4, 1.0f}},
      {"res", {M * N * N * 4, 0.25f}}, {"dpre", {M * N * 4, 1.0f}}, {"dpost", {M * N * 4, 1.0f}},
      {"dlogits", {M * N * N * 4, 1.0f}}, {"dres", {M * N * N * 4, 1.0f}},
      {"phi", {Mix * K * 4, 0.01f}}, {"dphi", {Mix * K * 4, 1.0f}}, {"w", {N * K * 4, 0.01f}}, {"dw", {N * K * 4, 1.0f}},
      {"alpha", {16, 1.0f}}, {"beta", {Mix * 4, 0.5f}}, {"dalpha", {16, 1.0f}}, {"dbeta", {Mix * 4, 1.0f}},
      {"scale", {16, 1.0f}}, {"base", {N * 4, 0.5f}}, {"dscale", {16, 1.0f}}, {"dbase", {N * 4, 1.0f}}};
  const std::set<std::string> StreamTensors = {"x", "dx", "out", "dout", "y", "dy", "f", "df"};
  std::map<std::string, void *> P;
  auto Need = [&](std::initializer_list<const char *> Names) -> llvm::Error {
    for (const char *Name : Names) {
      const auto &[Bytes, Scale] = Sizes.at(Name);
      const DType Type = StreamTensors.count(Name) ? Config.StreamType : DType::FP32;
      auto Pointer = Scratch.get(Name, size_t(Bytes), Scale, Type);
      if (!Pointer)
        return Pointer.takeError();
      P[Name] = *Pointer;
    }
    return llvm::Error::success();
  };
  auto F = [&](const char *Name) { return static_cast<float *>(P[Name]); };
  const double Mt = double(M), Sd = double(S);
  const bool Fwd = Dir == Direction::Forward;
  const MixConfig Cfg = Config;
  ScratchLaunch L;
  switch (Operation) {
  case Op::Project:
    if (Fwd) {
      if (llvm::Error E = Need({"x", "phi", "H", "ms"}))
        return std::move(E);
      ProjectForwardArgs A{M, P["x"], F("phi"), nullptr, F("H"), F("ms")};
      L = {[=] { return projectForward(Cfg, A, nullptr); }, Mt * (K * Sd + 4 * Mix + 4) + 4.0 * Mix * K};
    } else {
      if (llvm::Error E = Need({"x", "phi", "dH", "dms", "dx", "dphi"}))
        return std::move(E);
      ProjectBackwardArgs A{M, P["x"], F("phi"), nullptr, F("dH"), F("dms"), P["dx"], F("dphi"), nullptr, false};
      L = {[=] { return projectBackward(Cfg, A, nullptr); }, Mt * (2 * K * Sd + 4 * Mix + 4) + 8.0 * Mix * K};
    }
    break;
  case Op::Scale:
    if (Fwd) {
      if (llvm::Error E = Need({"H", "ms", "alpha", "beta", "pre", "post", "logits"}))
        return std::move(E);
      ScaleForwardArgs A{M, F("H"), F("ms"), F("alpha"), F("beta"), F("pre"), F("post"), F("logits")};
      L = {[=] { return scaleForward(Cfg, A, nullptr); }, Mt * (8.0 * Mix + 4)};
    } else {
      if (llvm::Error E = Need({"H", "ms", "alpha", "beta", "dpre", "dpost", "dlogits", "dH", "dms", "dalpha", "dbeta"}))
        return std::move(E);
      ScaleBackwardArgs A{M, F("H"), F("ms"), F("alpha"), F("beta"), F("dpre"), F("dpost"), F("dlogits"),
                          F("dH"), F("dms"), F("dalpha"), F("dbeta")};
      L = {[=] { return scaleBackward(Cfg, A, nullptr); }, Mt * (12.0 * Mix + 8)};
    }
    break;
  case Op::Sinkhorn:
    if (Fwd) {
      if (llvm::Error E = Need({"logits", "res"}))
        return std::move(E);
      SinkhornForwardArgs A{M, F("logits"), F("res")};
      L = {[=] { return sinkhornForward(Cfg, A, nullptr); }, Mt * 8.0 * N * N};
    } else {
      if (llvm::Error E = Need({"logits", "dres", "dlogits"}))
        return std::move(E);
      SinkhornBackwardArgs A{M, F("logits"), F("dres"), F("dlogits")};
      L = {[=] { return sinkhornBackward(Cfg, A, nullptr); }, Mt * 12.0 * N * N};
    }
    break;
  case Op::ScaleSinkhorn:
    // The logits never reach memory, so the minimal bytes are scale's: the fused forward reads
    // H and ms and writes pre, post and res; the backward reads H, ms, dpre, dpost and dres
    // and writes dH and dms. The values are what scale and sinkhorn get: H in [0.025, 0.1),
    // ms in [0.25, 1), alpha in [0.25, 1) and beta in [0.125, 0.5) give logits
    // H*r*alpha + beta in [0.13, 0.7] (r in (1, 2]), a span well under sinkhorn's 20 (PERF.md:
    // logits spanning more made the bench time sinkhorn's slow path).
    if (Fwd) {
      if (llvm::Error E = Need({"H", "ms", "alpha", "beta", "pre", "post", "res"}))
        return std::move(E);
      ScaleSinkhornForwardArgs A{M, F("H"), F("ms"), F("alpha"), F("beta"), F("pre"), F("post"), F("res")};
      L = {[=] { return scaleSinkhornForward(Cfg, A, nullptr); }, Mt * (8.0 * Mix + 4)};
    } else {
      if (llvm::Error E = Need({"H", "ms", "alpha", "beta", "dpre", "dpost", "dres", "dH", "dms", "dalpha", "dbeta"}))
        return std::move(E);
      ScaleSinkhornBackwardArgs A{M, F("H"), F("ms"), F("alpha"), F("beta"), F("dpre"), F("dpost"), F("dres"),
                                  F("dH"), F("dms"), F("dalpha"), F("dbeta")};
      L = {[=] { return scaleSinkhornBackward(Cfg, A, nullptr); }, Mt * (12.0 * Mix + 8)};
    }
    break;
  case Op::Aggregate:
    if (Fwd) {
      if (llvm::Error E = Need({"x", "pre", "y"}))
        return std::move(E);
      AggregateForwardArgs A{M, P["x"], F("pre"), P["y"]};
      L = {[=] { return aggregateForward(Cfg, A, nullptr); }, Mt * (K * Sd + 4 * N + C * Sd)};
    } else {
      if (llvm::Error E = Need({"dy", "x", "pre", "dx", "dpre"}))
        return std::move(E);
      AggregateBackwardArgs A{M, P["dy"], P["x"], F("pre"), P["dx"], F("dpre"), false};
      L = {[=] { return aggregateBackward(Cfg, A, nullptr); }, Mt * (C * Sd + 2 * K * Sd + 8 * N)};
    }
    break;
  case Op::ExpandCombine:
    if (Fwd) {
      if (llvm::Error E = Need({"f", "post", "x", "res", "out"}))
        return std::move(E);
      ExpandCombineForwardArgs A{M, P["f"], nullptr, F("post"), P["x"], F("res"), P["out"]};
      L = {[=] { return expandCombineForward(Cfg, A, nullptr); }, Mt * (C * Sd + 2 * K * Sd + 4 * N + 4 * N * N)};
    } else {
      if (llvm::Error E = Need({"dout", "f", "post", "x", "res", "df", "dpost", "dres", "dx"}))
        return std::move(E);
      ExpandCombineBackwardArgs A{M, P["dout"], P["f"], nullptr, F("post"), P["x"], F("res"), P["df"], nullptr,
                                  F("dpost"), F("dres"), P["dx"], false};
      L = {[=] { return expandCombineBackward(Cfg, A, nullptr); },
           Mt * (3 * K * Sd + 2 * C * Sd + 8 * N + 8 * N * N)};
    }
    break;
  case Op::Expand:
    if (Fwd) {
      if (llvm::Error E = Need({"y", "out"}))
        return std::move(E);
      ExpandForwardArgs A{M, P["y"], P["out"]};
      L = {[=] { return expandForward(Cfg, A, nullptr); }, Mt * (C * Sd + K * Sd)};
    } else {
      if (llvm::Error E = Need({"dout", "dy"}))
        return std::move(E);
      ExpandBackwardArgs A{M, P["dout"], P["dy"]};
      L = {[=] { return expandBackward(Cfg, A, nullptr); }, Mt * (C * Sd + K * Sd)};
    }
    break;
  case Op::Contract:
    if (Fwd) {
      if (llvm::Error E = Need({"x", "y"}))
        return std::move(E);
      ContractForwardArgs A{M, P["x"], P["y"]};
      L = {[=] { return contractForward(Cfg, A, nullptr); }, Mt * (C * Sd + K * Sd)};
    } else {
      if (llvm::Error E = Need({"dy", "dx"}))
        return std::move(E);
      ContractBackwardArgs A{M, P["dy"], P["dx"], false};
      L = {[=] { return contractBackward(Cfg, A, nullptr); }, Mt * (C * Sd + K * Sd)};
    }
    break;
  case Op::Head:
    if (Fwd) {
      if (llvm::Error E = Need({"x", "w", "scale", "base", "y"}))
        return std::move(E);
      HeadForwardArgs A{M, P["x"], F("w"), F("scale"), F("base"), P["y"]};
      L = {[=] { return headForward(Cfg, A, nullptr); }, Mt * (K * Sd + C * Sd) + 4.0 * N * K};
    } else {
      if (llvm::Error E = Need({"x", "w", "scale", "base", "dy", "dx", "dw", "dscale", "dbase"}))
        return std::move(E);
      HeadBackwardArgs A{M, P["x"], F("w"), F("scale"), F("base"), P["dy"], P["dx"], F("dw"), F("dscale"),
                         F("dbase"), false};
      L = {[=] { return headBackward(Cfg, A, nullptr); }, Mt * (2 * K * Sd + C * Sd) + 8.0 * N * K};
    }
    break;
  case Op::ReduceRows:
    return makeError(Errc::InvalidArgument, "reduce_rows is a helper kernel, not an op call to time");
  }
  return L;
}

} // namespace mhcjit
