// mhcjit tool support: a parameter tensor (phi, gamma, bias) in its own element type, fp32 or a
// stream dtype (SPEC.md "Notation"), as the float64 references and the GPU tests read it.
#pragma once

#include "mhcjit/KernelSpec.h"

#include <string>
#include <vector>

namespace mhcjit {

/// The elements of a parameter tensor as the device reads them: stored as type() (fp32, bf16 or
/// fp16) and held here decoded to fp32, which is exact for all three. An empty tensor stands
/// for an absent optional parameter (gamma, bias).
class ParamTensor {
public:
  ParamTensor() = default;
  /// fp32 parameters; implicit, so an fp32 vector passes wherever a ParamTensor is expected.
  ParamTensor(std::vector<float> Fp32Values) : Values(std::move(Fp32Values)) {}

  /// Decodes Bytes holding elements of Type (encodeStream()'s format: little-endian bits).
  static ParamTensor fromBytes(const std::string &Bytes, DType Type);
  /// Values rounded to Type (round to nearest even): what a device buffer of Type holds.
  /// Example: 0.1f as bf16 -> bits 0x3dcd -> 0.10009765625.
  static ParamTensor rounded(const std::vector<float> &Values, DType Type);

  DType type() const { return Type; }
  bool empty() const { return Values.empty(); }
  size_t size() const { return Values.size(); }
  float operator[](size_t I) const { return Values[I]; }
  const float *data() const { return Values.data(); }
  /// The decoded elements.
  const std::vector<float> &values() const { return Values; }
  /// The bytes of a device buffer of type() holding these elements.
  std::string bytes() const;

private:
  std::vector<float> Values;
  DType Type = DType::FP32;
};

} // namespace mhcjit
