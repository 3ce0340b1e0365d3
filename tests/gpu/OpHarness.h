// mhcjit GPU tests: a generic description of an op (tensors, launches, references) and the
// runner that checks any op against its float64 reference with poisoned outputs and bitwise reruns.
#pragma once

#include "mhcjit/mhcjit.hpp"

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace mhcjit {
namespace test {

class Random;

/// Where a tensor lives on the device: in the stream dtype, fp32, or the parameter dtype of the
/// config (phi, gamma, bias: fp32, or the stream dtype with MixConfig::Params = Stream).
enum class Storage { Stream, F32, Param };

/// A named tensor of an op and how test values for it are drawn.
struct TensorDef {
  std::string Name;
  int64_t Elements = 0;
  Storage Store = Storage::F32;
  std::function<float(Random &, int64_t Index)> Draw; ///< inputs only
};

using HostTensors = std::map<std::string, std::vector<float>>;
using RefTensors = std::map<std::string, std::vector<double>>;
/// A reference entry named magnitudeOf(output) holds, element by element, the scale the
/// output's error is measured against instead of the reference itself (see relativeError).
constexpr const char *kMagnitudeSuffix = ".magnitude";
inline std::string magnitudeOf(const std::string &Output) { return Output + kMagnitudeSuffix; }
using DevicePtrs = std::map<std::string, void *>;

/// One op at one config and M: forward and backward with their references. Backward inputs are
/// the forward inputs plus "d<output>"; backward outputs are "d<input>" for each differentiable
/// input ("dx" is fp32 and pre-filled when the case accumulates dx).
struct OpDef {
  std::string Label;
  MixConfig Config;
  int64_t M = 0;
  bool Accumulate = false;
  DType ParamStore = DType::FP32; ///< the dtype of Storage::Param tensors
  size_t MisalignBytes = 0;       ///< every tensor starts this many bytes past an aligned allocation
  std::vector<TensorDef> Inputs, Outputs;
  std::vector<std::string> Differentiable;
  std::function<llvm::Error(const DevicePtrs &)> Forward, Backward;
  std::function<RefTensors(const HostTensors &)> ForwardRef, BackwardRef;
};

/// How the rows of x (and of H, ms) are drawn: Scaled multiplies each token's row by 10^U(-4, 0)
/// (SPEC.md "Accuracy": the eps constants matter); Unit leaves them N(0, 1), for the finite
/// differences, whose fp32 loss cannot resolve a step of a 1e-4 row next to rows of 1.
enum class RowScale { Scaled, Unit };

/// The op definitions (OpDefs.cpp). Optional: with gamma (project) or bias (expand_combine).
/// phi, gamma and bias are Storage::Param: in the stream dtype when Config.Params is Stream (and
/// the stream is bf16 or fp16), and their references read them in that dtype.
OpDef makeOpDef(Op Operation, const MixConfig &Config, int64_t M, bool Optional, bool Accumulate,
                RowScale Rows = RowScale::Scaled);

/// The dtype a tensor of Store occupies on the device for Def.
DType storedType(const OpDef &Def, Storage Store);

/// Draws every input of Def (and, with Backward, every upstream gradient and the dx to
/// accumulate into), rounded to what the device stores.
HostTensors drawInputs(const OpDef &Def, Direction Dir, uint64_t Seed);

/// What a direction reads and writes.
std::vector<TensorDef> directionInputs(const OpDef &Def, Direction Dir);
std::vector<TensorDef> directionOutputs(const OpDef &Def, Direction Dir);

/// Uploads Inputs, poisons the outputs (or uploads their start values when Inputs holds them),
/// launches Dir, and returns every output, decoded to fp32. Failures are test failures.
HostTensors runOnDevice(const OpDef &Def, Direction Dir, const HostTensors &Inputs);

/// Runs Dir twice: the outputs must match the reference within Tolerance and be bitwise equal
/// across the runs. Returns the first run's outputs.
HostTensors checkAgainstReference(const OpDef &Def, Direction Dir, const HostTensors &Inputs,
                                  double Tolerance);

/// Compiles Specs for the current device on all cores (so no test case times a compilation);
/// every failure is a test failure.
void buildAll(const std::vector<KernelSpec> &Specs);

/// SPEC.md's bound for a config: fp32 stream 1e-5 (tf32 precision 2e-3), bf16/fp16 1e-2.
double toleranceFor(const MixConfig &Config, Op Operation);

} // namespace test
} // namespace mhcjit
