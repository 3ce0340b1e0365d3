// mhcjit runtime: the CUDA Driver API, opened with dlopen at first use.
// The library therefore loads, generates, compiles and caches on machines with no driver.
#pragma once

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cuda.h>

namespace mhcjit {

// Each entry: the Driver API function mhcjit calls. The member has the function's exact type.
#define MHCJIT_DRIVER_FUNCTIONS(X)                                                                 \
  X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString) X(cuDeviceGetCount)        \
  X(cuDeviceGet) X(cuDeviceGetAttribute) X(cuDeviceGetName) X(cuCtxGetCurrent) X(cuCtxSetCurrent)  \
  X(cuCtxGetDevice) X(cuCtxGetId) X(cuCtxSynchronize) X(cuDevicePrimaryCtxRetain)                  \
  X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) X(cuFuncGetAttribute)               \
  X(cuLaunchKernel) X(cuMemAlloc) X(cuMemFree) X(cuMemcpyHtoD) X(cuMemcpyDtoH) X(cuMemcpyDtoD)     \
  X(cuMemsetD8) X(cuMemsetD32) X(cuStreamCreate) X(cuStreamDestroy) X(cuStreamSynchronize)         \
  X(cuEventCreate) X(cuEventDestroy) X(cuEventRecord) X(cuEventSynchronize) X(cuEventElapsedTime)    \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor) X(cuLaunchKernelEx) X(cuFuncSetAttribute)

/// Function pointers into libcuda, with the exact types cuda.h declares.
struct DriverApi {
#define MHCJIT_DRIVER_MEMBER(Name) decltype(&::Name) Name = nullptr;
  MHCJIT_DRIVER_FUNCTIONS(MHCJIT_DRIVER_MEMBER)
#undef MHCJIT_DRIVER_MEMBER
};

/// Opens libcuda.so.1 and runs cuInit(0) once per process (thread-safe). Fails with Errc::NoDevice
/// when the driver is absent or cuInit fails; the same error is returned on every later call.
llvm::Expected<const DriverApi &> driverApi();

/// An error of kind Errc::CudaFailed for a failed call: "<What>: CUDA_ERROR_X (description)".
llvm::Error cudaError(CUresult Result, const llvm::Twine &What);

/// Success, or cudaError(Result, What).
inline llvm::Error checkCuda(CUresult Result, const llvm::Twine &What) {
  return Result == CUDA_SUCCESS ? llvm::Error::success() : cudaError(Result, What);
}

/// Makes sure a context is current on this thread: the caller's if there is one, else device 0's
/// primary context (retained once, as the CUDA runtime does). Returns that context.
llvm::Expected<CUcontext> ensureCurrentContext();

/// The device of the context that ensureCurrentContext() makes sure of.
llvm::Expected<CUdevice> currentDevice();

/// True when a driver and at least one device are present.
bool gpuAvailable();

} // namespace mhcjit
