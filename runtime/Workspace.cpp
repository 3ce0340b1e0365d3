// mhcjit runtime: the per-(context, stream) workspace pool behind streamWorkspace().
#include "mhcjit/Workspace.h"
#include "mhcjit/Driver.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

namespace mhcjit {

namespace {
struct Buffer {
  CUdeviceptr Pointer = 0;
  size_t Bytes = 0;
};
std::mutex PoolLock;
std::map<std::pair<unsigned long long, CUstream>, Buffer> Pool;
} // namespace

llvm::Expected<float *> streamWorkspace(CUstream Stream, size_t Bytes) {
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  const DriverApi &Api = *driverApi();
  unsigned long long ContextId = 0;
  if (llvm::Error E = checkCuda(Api.cuCtxGetId(*Context, &ContextId), "cuCtxGetId"))
    return std::move(E);
  std::lock_guard<std::mutex> Guard(PoolLock);
  Buffer &B = Pool[{ContextId, Stream}];
  if (B.Bytes < Bytes) {
    if (B.Pointer)
      Api.cuMemFree(B.Pointer);
    B = Buffer();
    // NOTE: grow by half again, so a slowly growing M does not reallocate on every call.
    size_t Want = std::max<size_t>(Bytes + Bytes / 2, 1 << 20);
    if (llvm::Error E = checkCuda(Api.cuMemAlloc(&B.Pointer, Want),
                                  "cuMemAlloc(" + llvm::Twine(Want) + " bytes of workspace)"))
      return std::move(E);
    B.Bytes = Want;
  }
  return reinterpret_cast<float *>(B.Pointer);
}

} // namespace mhcjit
