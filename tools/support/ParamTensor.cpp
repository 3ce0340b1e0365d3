// mhcjit tool support: parameter tensors in fp32 or a stream dtype, decoded for the references.
#include "ParamTensor.h"
#include "HostTypes.h"

namespace mhcjit {

ParamTensor ParamTensor::fromBytes(const std::string &Bytes, DType Type) {
  ParamTensor T(decodeStream(Bytes, Type));
  T.Type = Type;
  return T;
}

ParamTensor ParamTensor::rounded(const std::vector<float> &Values, DType Type) {
  return fromBytes(encodeStream(Values, Type), Type);
}

std::string ParamTensor::bytes() const { return encodeStream(Values, Type); }

} // namespace mhcjit
