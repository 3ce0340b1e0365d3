// mhcjit tool support: bit-exact bf16/fp16 <-> fp32 conversions on the host.
#include "HostTypes.h"
#include "Parallel.h"

#include <cmath>
#include <cstring>

namespace mhcjit {

namespace {
uint32_t bitsOf(float V) {
  uint32_t B;
  std::memcpy(&B, &V, 4);
  return B;
}
float floatOf(uint32_t B) {
  float V;
  std::memcpy(&V, &B, 4);
  return V;
}
} // namespace

uint16_t floatToBf16(float V) {
  uint32_t B = bitsOf(V);
  if (std::isnan(V))
    return static_cast<uint16_t>((B >> 16) | 0x40); // keep it a (quiet) NaN
  // Round to nearest even: add 0x7fff plus the lowest kept bit, then truncate.
  B += 0x7fffu + ((B >> 16) & 1u);
  return static_cast<uint16_t>(B >> 16);
}

float bf16ToFloat(uint16_t Bits) { return floatOf(uint32_t(Bits) << 16); }

uint16_t floatToFp16(float V) {
  uint32_t B = bitsOf(V);
  uint16_t Sign = static_cast<uint16_t>((B >> 16) & 0x8000u);
  uint32_t Abs = B & 0x7fffffffu;
  if (Abs >= 0x7f800000u) // Inf or NaN
    return Sign | (Abs > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (Abs >= 0x477ff000u) // rounds to >= 65520: overflow to Inf
    return Sign | 0x7c00;
  if (Abs < 0x38800000u) { // below the smallest normal 2^-14: subnormal or zero
    // Value in units of 2^-24, rounded to nearest even.
    float Scaled = floatOf(Abs) * 16777216.0f; // exact: a power-of-two scale
    return Sign | static_cast<uint16_t>(std::nearbyint(Scaled));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  uint32_t Rebased = Abs - (112u << 23);
  Rebased += 0xfffu + ((Rebased >> 13) & 1u);
  return Sign | static_cast<uint16_t>(Rebased >> 13);
}

float fp16ToFloat(uint16_t Bits) {
  uint32_t Sign = uint32_t(Bits & 0x8000u) << 16;
  uint32_t Exp = (Bits >> 10) & 0x1f, Mant = Bits & 0x3ffu;
  if (Exp == 0) // zero or subnormal: Mant * 2^-24
    return floatOf(Sign) + (Sign ? -1.0f : 1.0f) * float(Mant) * 0x1p-24f;
  if (Exp == 31)
    return floatOf(Sign | 0x7f800000u | (Mant << 13));
  return floatOf(Sign | ((Exp + 112u) << 23) | (Mant << 13));
}

std::string encodeStream(const std::vector<float> &Values, DType T) {
  std::string Bytes(Values.size() * dtypeSize(T), '\0');
  parallelFor(int64_t(Values.size()), [&](int64_t Begin, int64_t End) {
    for (int64_t I = Begin; I < End; ++I) {
      if (T == DType::FP32) {
        std::memcpy(&Bytes[I * 4], &Values[I], 4);
      } else {
        uint16_t H = T == DType::BF16 ? floatToBf16(Values[I]) : floatToFp16(Values[I]);
        std::memcpy(&Bytes[I * 2], &H, 2);
      }
    }
  });
  return Bytes;
}

std::vector<float> decodeStream(const std::string &Bytes, DType T) {
  size_t Count = Bytes.size() / dtypeSize(T);
  std::vector<float> Values(Count);
  parallelFor(int64_t(Count), [&](int64_t Begin, int64_t End) {
    for (int64_t I = Begin; I < End; ++I) {
      if (T == DType::FP32) {
        std::memcpy(&Values[I], &Bytes[I * 4], 4);
      } else {
        uint16_t H;
        std::memcpy(&H, &Bytes[I * 2], 2);
        Values[I] = T == DType::BF16 ? bf16ToFloat(H) : fp16ToFloat(H);
      }
    }
  });
  return Values;
}

std::vector<float> roundToDType(const std::vector<float> &Values, DType T) {
  return decodeStream(encodeStream(Values, T), T);
}

} // namespace mhcjit
