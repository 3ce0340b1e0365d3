// mhcjit GPU tests: running any OpDef on the device and checking it against its reference.
#include "OpHarness.h"
#include "GpuTestSupport.h"

#include "DeviceBuffer.h"
#include "HostTypes.h"
#include "Parallel.h"
#include "Reference.h"

#include "mhcjit/KernelProvider.h"

#include <cstring>

namespace mhcjit {
namespace test {

namespace {

const TensorDef *find(const std::vector<TensorDef> &Defs, const std::string &Name) {
  for (const TensorDef &D : Defs)
    if (D.Name == Name)
      return &D;
  return nullptr;
}

size_t bytesOf(const OpDef &Def, const TensorDef &T) {
  return size_t(T.Elements) * dtypeSize(storedType(Def, T.Store));
}

std::string encode(const OpDef &Def, const TensorDef &T, const std::vector<float> &V) {
  return encodeStream(V, storedType(Def, T.Store));
}

} // namespace

DType storedType(const OpDef &Def, Storage Store) {
  switch (Store) {
  case Storage::Stream: return Def.Config.StreamType;
  case Storage::Param: return Def.ParamStore;
  case Storage::F32: return DType::FP32;
  }
  return DType::FP32;
}

std::vector<TensorDef> directionInputs(const OpDef &Def, Direction Dir) {
  std::vector<TensorDef> In = Def.Inputs;
  if (Dir == Direction::Backward)
    for (const TensorDef &O : Def.Outputs)
      In.push_back({"d" + O.Name, O.Elements, O.Store, [](Random &R, int64_t) { return R.normal(); }});
  return In;
}

std::vector<TensorDef> directionOutputs(const OpDef &Def, Direction Dir) {
  if (Dir == Direction::Forward)
    return Def.Outputs;
  std::vector<TensorDef> Out;
  for (const std::string &Name : Def.Differentiable) {
    const TensorDef *I = find(Def.Inputs, Name);
    // parameter gradients are fp32 whatever the parameters are stored in (SPEC.md "Notation")
    Storage Store = (Def.Accumulate && Name == "x") || I->Store == Storage::Param ? Storage::F32 : I->Store;
    Out.push_back({"d" + Name, I->Elements, Store, [](Random &R, int64_t) { return R.normal(); }});
  }
  return Out;
}

HostTensors drawInputs(const OpDef &Def, Direction Dir, uint64_t Seed) {
  HostTensors Host;
  std::vector<TensorDef> Draw = directionInputs(Def, Dir);
  const std::vector<TensorDef> Outputs = directionOutputs(Def, Dir);
  if (Dir == Direction::Backward && Def.Accumulate)
    if (const TensorDef *Dx = find(Outputs, "dx"))
      Draw.push_back(*Dx); // the fp32 buffer dx is added into
  uint64_t Stream = 0;
  for (const TensorDef &T : Draw) {
    std::vector<float> V(T.Elements);
    const uint64_t TensorSeed = Seed ^ (++Stream * 0x9e3779b97f4a7c15ull);
    parallelFor(
        T.Elements,
        [&](int64_t Begin, int64_t End) {
          Random R(TensorSeed + uint64_t(Begin) * 0x2545f4914f6cdd1dull);
          for (int64_t I = Begin; I < End; ++I)
            V[I] = T.Draw(R, I);
        },
        1 << 12);
    // the dx start value is an fp32 buffer even though x is a stream tensor
    const DType Stored = storedType(Def, T.Store);
    Host[T.Name] = Stored == DType::FP32 ? V : roundToDType(V, Stored);
  }
  return Host;
}

HostTensors runOnDevice(const OpDef &Def, Direction Dir, const HostTensors &Inputs) {
  std::vector<TensorDef> In = directionInputs(Def, Dir), Out = directionOutputs(Def, Dir);
  std::map<std::string, DeviceBuffer> Buffers;
  DevicePtrs Pointers;
  const size_t Off = Def.MisalignBytes;
  auto At = [&](const std::string &Name) {
    return reinterpret_cast<CUdeviceptr>(Buffers[Name].get()) + Off;
  };
  auto Upload = [&](const TensorDef &T, const std::vector<float> &Values) {
    const std::string Bytes = encode(Def, T, Values);
    Buffers[T.Name] = take(DeviceBuffer::allocate(Bytes.size() + Off));
    ok(checkCuda(driverApi()->cuMemcpyHtoD(At(T.Name), Bytes.data(), Bytes.size()), "upload of " + T.Name));
  };
  for (const TensorDef &T : In)
    Upload(T, Inputs.at(T.Name));
  for (const TensorDef &T : Out) {
    auto Start = Inputs.find(T.Name);
    if (Start != Inputs.end()) {
      Upload(T, Start->second);
    } else {
      Buffers[T.Name] = take(DeviceBuffer::allocate(bytesOf(Def, T) + Off));
      ok(Buffers[T.Name].fill(0xff)); // NaN in every dtype: an unwritten element fails
    }
  }
  for (const auto &[Name, Buffer] : Buffers)
    Pointers[Name] = reinterpret_cast<void *>(At(Name));
  ok(Dir == Direction::Forward ? Def.Forward(Pointers) : Def.Backward(Pointers));
  ok(checkCuda(driverApi()->cuCtxSynchronize(), "cuCtxSynchronize after " + Def.Label));
  HostTensors Result;
  for (const TensorDef &T : Out) {
    std::string Bytes(bytesOf(Def, T), '\0');
    ok(checkCuda(driverApi()->cuMemcpyDtoH(Bytes.data(), At(T.Name), Bytes.size()), "download of " + T.Name));
    Result[T.Name] = decodeStream(Bytes, storedType(Def, T.Store));
  }
  return Result;
}

HostTensors checkAgainstReference(const OpDef &Def, Direction Dir, const HostTensors &Inputs,
                                  double Tolerance) {
  const char *DirName = Dir == Direction::Forward ? "forward" : "backward";
  HostTensors First = runOnDevice(Def, Dir, Inputs);
  RefTensors Ref = Dir == Direction::Forward ? Def.ForwardRef(Inputs) : Def.BackwardRef(Inputs);
  for (const TensorDef &T : directionOutputs(Def, Dir)) {
    const std::string &Name = T.Name;
    const std::vector<float> &Values = First.at(Name);
    auto R = Ref.find(Name);
    if (R == Ref.end()) {
      FAIL_CHECK(Def.Label << " " << DirName << ": no reference for " << Name);
      continue;
    }
    auto Magnitude = Ref.find(magnitudeOf(Name));
    double Err = relativeError(Values, R->second, subnormalStep(storedType(Def, T.Store)),
                               Magnitude == Ref.end() ? nullptr : &Magnitude->second);
    CHECK_MESSAGE(Err <= Tolerance, Def.Label << " " << DirName << " " << Name << ": relative error "
                                              << Err << " > " << Tolerance);
  }
  HostTensors Second = runOnDevice(Def, Dir, Inputs);
  for (const auto &[Name, Values] : First) {
    const std::vector<float> &Again = Second[Name];
    bool Same = Again.size() == Values.size() &&
                std::memcmp(Again.data(), Values.data(), Values.size() * sizeof(float)) == 0;
    CHECK_MESSAGE(Same, Def.Label << " " << DirName << " " << Name << " is not bitwise reproducible");
  }
  return First;
}

void buildAll(const std::vector<KernelSpec> &Specs) {
  std::string Arch = take(currentDeviceArch());
  std::vector<std::string> Failures(Specs.size());
  parallelFor(
      int64_t(Specs.size()),
      [&](int64_t Begin, int64_t End) {
        for (int64_t I = Begin; I < End; ++I)
          if (auto Built = buildKernel(Specs[I], Arch, runtimeOptions()); !Built)
            Failures[I] = llvm::toString(Built.takeError());
      },
      /*Grain=*/1);
  for (const std::string &F : Failures)
    CHECK_MESSAGE(F.empty(), F);
}

double toleranceFor(const MixConfig &Config, Op Operation) {
  if (Config.StreamType != DType::FP32)
    return 1e-2;
  if (Operation == Op::Project && Config.Prec == Precision::TF32)
    return 2e-3;
  return 1e-5;
}

} // namespace test
} // namespace mhcjit
