// mhcjit runtime: lazy loading of libcuda and the current-context rule.
// Every entry point is resolved with dlsym under the name cuda.h binds it to.
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

DriverState loadDriver() {
  DriverState S;
  void *Library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!Library) {
    const char *Why = dlerror();
    S.Failure = std::string("the CUDA driver (libcuda.so.1) could not be loaded: ") +
                (Why ? Why : "unknown reason") + "; a GPU and its driver are needed to launch kernels";
    return S;
  }
  bool Missing = false;
  // NOTE: each name is looked up as the header spells it after its macros (cuMemAlloc ->
  // cuMemAlloc_v2), so the symbol has exactly the signature cuda.h declares. cuGetProcAddress
  // with CUDA_VERSION would hand out newer ABIs instead (cuCtxGetDevice -> the 2-argument _v2).
#define MHCJIT_STRINGIFY_EXPANDED(Name) MHCJIT_STRINGIFY(Name)
#define MHCJIT_STRINGIFY(Name) #Name
#define MHCJIT_DRIVER_RESOLVE(Name)                                                                \
  {                                                                                                \
    void *Fn = dlsym(Library, MHCJIT_STRINGIFY_EXPANDED(Name));                                    \
    if (!Fn) {                                                                                     \
      S.Failure += (Missing ? ", " : "the CUDA driver lacks: ") + std::string(MHCJIT_STRINGIFY_EXPANDED(Name)); \
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

llvm::Expected<CUdevice> currentDevice() {
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  CUdevice Device;
  if (llvm::Error E = checkCuda(driverApi()->cuCtxGetDevice(&Device), "cuCtxGetDevice"))
    return std::move(E);
  return Device;
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
