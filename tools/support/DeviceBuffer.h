// mhcjit tool support: an owned device allocation with checked copies (tests, demo, bench).
#pragma once

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <string>
#include <vector>

namespace mhcjit {

/// Device memory from cuMemAlloc in the current context, freed on destruction.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer &&O) noexcept : Ptr(O.Ptr), Bytes(O.Bytes) {
    O.Ptr = 0;
    O.Bytes = 0;
  }
  DeviceBuffer &operator=(DeviceBuffer &&O) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  ~DeviceBuffer();

  /// Bytes of device memory (at least 1 byte is allocated, so the pointer is never null).
  static llvm::Expected<DeviceBuffer> allocate(size_t Bytes);
  /// A buffer holding Data's bytes.
  static llvm::Expected<DeviceBuffer> upload(const std::string &Data);
  static llvm::Expected<DeviceBuffer> upload(const std::vector<float> &Data);

  llvm::Error copyFrom(const void *Host, size_t Count);
  llvm::Error copyTo(void *Host, size_t Count) const;
  /// Every byte set to Byte (0xff poisons fp32 and 16-bit floats as NaN).
  llvm::Error fill(unsigned char Byte);
  llvm::Expected<std::string> bytes() const;
  llvm::Expected<std::vector<float>> floats() const;

  void *get() const { return reinterpret_cast<void *>(Ptr); }
  float *getFloat() const { return reinterpret_cast<float *>(Ptr); }
  size_t size() const { return Bytes; }

private:
  CUdeviceptr Ptr = 0;
  size_t Bytes = 0;
};

} // namespace mhcjit
