// mhcjit runtime: the per-(context, stream) buffers behind streamWorkspace() and
// streamArrivalCounters().
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
using Pool = std::map<std::pair<unsigned long long, CUstream>, Buffer>;
std::mutex PoolLock;
Pool Workspaces, Counters;

/// At least Bytes of the (context, Stream) buffer of Buffers, grown by half again so a slowly
/// growing M does not reallocate on every call. With Zeroed, a new buffer is set to zero on
/// Stream before any later work there.
llvm::Expected<CUdeviceptr> streamBuffer(Pool &Buffers, CUstream Stream, size_t Bytes, bool Zeroed) {
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  const DriverApi &Api = *driverApi();
  unsigned long long ContextId = 0;
  if (llvm::Error E = checkCuda(Api.cuCtxGetId(*Context, &ContextId), "cuCtxGetId"))
    return std::move(E);
  std::lock_guard<std::mutex> Guard(PoolLock);
  Buffer &B = Buffers[{ContextId, Stream}];
  if (B.Bytes < Bytes) {
    if (B.Pointer)
      Api.cuMemFree(B.Pointer);
    B = Buffer();
    const size_t Want = std::max<size_t>(Bytes + Bytes / 2, Zeroed ? 4096 : 1 << 20);
    CUdeviceptr Pointer = 0;
    if (llvm::Error E = checkCuda(Api.cuMemAlloc(&Pointer, Want),
                                  "cuMemAlloc(" + llvm::Twine(Want) + " bytes of workspace)"))
      return std::move(E);
    if (Zeroed)
      if (llvm::Error E = checkCuda(Api.cuMemsetD32Async(Pointer, 0, Want / 4, Stream), "cuMemsetD32Async")) {
        Api.cuMemFree(Pointer);
        return std::move(E);
      }
    B = Buffer{Pointer, Want};
  }
  return B.Pointer;
}
} // namespace

llvm::Expected<float *> streamWorkspace(CUstream Stream, size_t Bytes) {
  auto Pointer = streamBuffer(Workspaces, Stream, Bytes, false);
  if (!Pointer)
    return Pointer.takeError();
  return reinterpret_cast<float *>(*Pointer);
}

llvm::Expected<unsigned *> streamArrivalCounters(CUstream Stream, size_t Count) {
  auto Pointer = streamBuffer(Counters, Stream, Count * sizeof(unsigned), true);
  if (!Pointer)
    return Pointer.takeError();
  return reinterpret_cast<unsigned *>(*Pointer);
}

} // namespace mhcjit
