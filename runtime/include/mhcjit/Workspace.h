// mhcjit runtime: device scratch memory for per-block partial sums and arrival counters, one
// buffer of each per (context, stream).
#pragma once

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <cstddef>

namespace mhcjit {

/// At least Bytes of device memory reserved for work on Stream in the current context, valid
/// until the next call for the same stream. Calls on one stream are ordered, so reuse is safe;
/// other streams get their own buffers. Growing frees the old buffer (cuMemFree synchronises).
llvm::Expected<float *> streamWorkspace(CUstream Stream, size_t Bytes);

/// At least Count unsigned counters for kernels on Stream in the current context, zero when a
/// kernel on Stream first sees them (set on Stream when allocated); each kernel that counts in
/// them leaves them zero again, so they need no reset between calls.
llvm::Expected<unsigned *> streamArrivalCounters(CUstream Stream, size_t Count);

} // namespace mhcjit
