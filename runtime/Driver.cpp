// mhcjit runtime: lazy loading of libcuda and the current-context rule.
// NOTE: only cuGetProcAddress is looked up with dlsym; it hands out the versioned entry points.
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"

#include <dlfcn.h>
#include <mutex>
#include <string>

namespace mhcjit {

namespace {

struct DriverState {
  DriverApi Api;
  std::string Failure; ///< empty when loaded
};

using GetProcAddressFn = CUresult (*)(const char *, void **, int, cuuint64_t,
                                      CUdriverProcAddressQueryResult *);

DriverState loadDriver() {
  DriverState S;
  void *Library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!Library) {
    const char *Why = dlerror();
    S.Failure = std::string("the CUDA driver (libcuda.so.1) could not be loaded: ") +
                (Why ? Why : "unknown reason") + "; a GPU and its driver are needed to launch kernels";
    return S;
  }
  auto GetProc = reinterpret_cast<GetProcAddressFn>(dlsym(Library, "cuGetProcAddress_v2"));
  if (!GetProc) {
    S.Failure = "the CUDA driver is too old: cuGetProcAddress_v2 is missing (need a CUDA 12+ driver)";
    return S;
  }
  bool Missing = false;
#define MHCJIT_DRIVER_RESOLVE(Name)                                                                \
  {                                                                                                \
    void *Fn = nullptr;                                                                            \
    CUdriverProcAddressQueryResult Status;                                                         \
    if (GetProc(#Name, &Fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &Status) != CUDA_SUCCESS || \
        !Fn) {                                                                                     \
      S.Failure += (Missing ? ", " : "the CUDA driver lacks: ") + std::string(#Name);              \
      Missing = true;                                                                              \
    }                                                                                              \
    S.Api.Name = reinterpret_cast<decltype(S.Api.Name)>(Fn);                                       \
  }
  MHCJIT_DRIVER_FUNCTIONS(MHCJIT_DRIVER_RESOLVE)
#undef MHCJIT_DRIVER_RESOLVE
  if (Missing)
    return S;
  if (CUresult R = S.Api.cuInit(0)) {
    const char *Name = nullptr;
    S.Api.cuGetErrorName(R, &Name);
    S.Failure = std::string("cuInit failed: ") + (Name ? Name : "unknown error") +
                " (is a GPU visible to this process?)";
  }
  return S;
}

const DriverState &driverState() {
  static const DriverState State = loadDriver();
  return State;
}

} // namespace

llvm::Expected<const DriverApi &> driverApi() {
  const DriverState &S = driverState();
  if (!S.Failure.empty())
    return makeError(Errc::NoDevice, S.Failure);
  return S.Api;
}

llvm::Error cudaError(CUresult Result, const llvm::Twine &What) {
  const char *Name = "CUDA_ERROR_UNKNOWN", *Text = "";
  const DriverState &S = driverState();
  if (S.Api.cuGetErrorName) {
    S.Api.cuGetErrorName(Result, &Name);
    S.Api.cuGetErrorString(Result, &Text);
  }
  return makeError(Errc::CudaFailed, What + ": " + Name + " (" + (Text ? Text : "") + ")");
}

llvm::Expected<CUcontext> ensureCurrentContext() {
  auto Api = driverApi();
  if (!Api)
    return Api.takeError();
  CUcontext Context = nullptr;
  if (llvm::Error E = checkCuda(Api->cuCtxGetCurrent(&Context), "cuCtxGetCurrent"))
    return std::move(E);
  if (Context)
    return Context;
  int Count = 0;
  if (llvm::Error E = checkCuda(Api->cuDeviceGetCount(&Count), "cuDeviceGetCount"))
    return std::move(E);
  if (Count == 0)
    return makeError(Errc::NoDevice, "no CUDA device is visible to this process");
  CUdevice Device;
  if (llvm::Error E = checkCuda(Api->cuDeviceGet(&Device, 0), "cuDeviceGet(0)"))
    return std::move(E);
  // NOTE: retained once per process and never released, like the CUDA runtime's primary context.
  static std::mutex RetainLock;
  static CUcontext Primary = nullptr;
  {
    std::lock_guard<std::mutex> Guard(RetainLock);
    if (!Primary)
      if (llvm::Error E = checkCuda(Api->cuDevicePrimaryCtxRetain(&Primary, Device),
                                    "cuDevicePrimaryCtxRetain(device 0)"))
        return std::move(E);
  }
  if (llvm::Error E = checkCuda(Api->cuCtxSetCurrent(Primary), "cuCtxSetCurrent"))
    return std::move(E);
  return Primary;
}

bool gpuAvailable() {
  auto Api = driverApi();
  if (!Api) {
    llvm::consumeError(Api.takeError());
    return false;
  }
  int Count = 0;
  return Api->cuDeviceGetCount(&Count) == CUDA_SUCCESS && Count > 0;
}

} // namespace mhcjit
