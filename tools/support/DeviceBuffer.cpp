// mhcjit tool support: DeviceBuffer over the lazily loaded Driver API.
#include "DeviceBuffer.h"

#include "mhcjit/Driver.h"

namespace mhcjit {

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&O) noexcept {
  if (this != &O) {
    this->~DeviceBuffer();
    Ptr = O.Ptr;
    Bytes = O.Bytes;
    O.Ptr = 0;
    O.Bytes = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (Ptr) {
    if (auto Api = driverApi())
      Api->cuMemFree(Ptr);
    else
      llvm::consumeError(Api.takeError());
  }
  Ptr = 0;
}

llvm::Expected<DeviceBuffer> DeviceBuffer::allocate(size_t Bytes) {
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  DeviceBuffer B;
  if (llvm::Error E = checkCuda(driverApi()->cuMemAlloc(&B.Ptr, Bytes ? Bytes : 1),
                                "cuMemAlloc(" + llvm::Twine(Bytes) + " bytes)"))
    return std::move(E);
  B.Bytes = Bytes;
  return std::move(B);
}

llvm::Expected<DeviceBuffer> DeviceBuffer::upload(const std::string &Data) {
  auto B = allocate(Data.size());
  if (!B)
    return B.takeError();
  if (llvm::Error E = B->copyFrom(Data.data(), Data.size()))
    return std::move(E);
  return B;
}

llvm::Expected<DeviceBuffer> DeviceBuffer::upload(const std::vector<float> &Data) {
  return upload(std::string(reinterpret_cast<const char *>(Data.data()), Data.size() * 4));
}

llvm::Error DeviceBuffer::copyFrom(const void *Host, size_t Count) {
  return checkCuda(driverApi()->cuMemcpyHtoD(Ptr, Host, Count), "cuMemcpyHtoD");
}

llvm::Error DeviceBuffer::copyTo(void *Host, size_t Count) const {
  return checkCuda(driverApi()->cuMemcpyDtoH(Host, Ptr, Count), "cuMemcpyDtoH");
}

llvm::Error DeviceBuffer::fill(unsigned char Byte) {
  return checkCuda(driverApi()->cuMemsetD8(Ptr, Byte, Bytes), "cuMemsetD8");
}

llvm::Expected<std::string> DeviceBuffer::bytes() const {
  std::string Host(Bytes, '\0');
  if (llvm::Error E = copyTo(&Host[0], Bytes))
    return std::move(E);
  return Host;
}

llvm::Expected<std::vector<float>> DeviceBuffer::floats() const {
  std::vector<float> Host(Bytes / 4);
  if (llvm::Error E = copyTo(Host.data(), Host.size() * 4))
    return std::move(E);
  return Host;
}

} // namespace mhcjit
