// mhcjit tool support: host-side bf16/fp16 conversions (round to nearest even), for test data.
#pragma once

#include "mhcjit/KernelSpec.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mhcjit {

uint16_t floatToBf16(float V);
float bf16ToFloat(uint16_t Bits);
uint16_t floatToFp16(float V);
float fp16ToFloat(uint16_t Bits);

/// Values rounded to T and stored as T's bytes (2 or 4 bytes per element).
std::string encodeStream(const std::vector<float> &Values, DType T);
/// The inverse of encodeStream.
std::vector<float> decodeStream(const std::string &Bytes, DType T);
/// Each value rounded to T and back (what the GPU sees as input).
std::vector<float> roundToDType(const std::vector<float> &Values, DType T);

} // namespace mhcjit
